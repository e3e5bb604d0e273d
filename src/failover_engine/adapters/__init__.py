"""Adapter registry: name → class, imported lazily so a cloud SDK loads only when used."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failover_engine.adapters.base import Adapter

_REGISTRY: dict[str, str] = {
    "route53": "failover_engine.adapters.route53:Route53Adapter",
    "clouddns": "failover_engine.adapters.clouddns:CloudDnsAdapter",
    "trafficmanager": "failover_engine.adapters.trafficmanager:TrafficManagerAdapter",
    "zonalshift": "failover_engine.adapters.zonalshift:ZonalShiftAdapter",
    "elb": "failover_engine.adapters.elb:ClassicElbAdapter",
    "elbv2": "failover_engine.adapters.elbv2:Elbv2Adapter",
}


def adapter_class(kind: str) -> "type[Adapter]":
    try:
        target = _REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown adapter {kind!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    module, _sep, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def make_adapter(kind: str, connection: Any | None) -> "Adapter":
    """Build an adapter for a connection config (None: the provider's defaults, e.g. real AWS)."""
    return adapter_class(kind)(connection)
