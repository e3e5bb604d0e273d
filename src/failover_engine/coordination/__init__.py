"""Who may act: one failover per service at a time (locks, or leases with fencing epochs), one
monitor acting among several (a leader lease), and the observers' shared verdicts.

``coordination: {type: file}`` (the default) keeps everything on one host; ``type: dynamodb``
puts it in one DynamoDB table (:mod:`failover_engine.coordination.dynamodb`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from failover_engine.coordination.locks import FileLock, LockProvider


def lock_for(strategy: Any, state_dir: str | Path) -> LockProvider:
    """The lock provider a strategy's ``coordination`` asks for (every entry point uses this one)."""
    config = getattr(strategy, "coordination", None)
    if config is not None and config.type == "dynamodb":
        from failover_engine.coordination.dynamodb import DynamoLock, DynamoTable, Leases

        return DynamoLock(Leases(DynamoTable(config), config.lease, group=config.group))
    return FileLock(Path(state_dir) / "locks")
