"""failover-engine: detect, plan, apply, validate and roll back failovers across clouds."""

__version__ = "0.1.0"
