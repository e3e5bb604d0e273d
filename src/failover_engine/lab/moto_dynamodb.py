"""DynamoDB item operations as atomic as AWS's, on top of moto (5.2.x) in this process (the lab installs it).

moto's ``update_item`` (and ``put_item``, ``delete_item``) read the item, evaluate the condition
and then change the item, with no lock, while its server answers requests in threads: two
conditional writes whose conditions exclude each other can both succeed when they arrive at the
same moment. Seen on the lab: two monitors starting together both acquired a free leader lease
(``attribute_not_exists(holder)``), both at epoch 1, each told it was the leader. DynamoDB
evaluates a write's condition and applies it atomically per item, and a read never sees half a
write; leases with fencing epochs rely on exactly that.

:func:`install` serializes moto's DynamoDB item reads and writes (one lock for the backend class:
the lab's tables are small and its traffic light) so the lab behaves as DynamoDB does. It is
idempotent; :func:`uninstall` restores moto's methods.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "batch_get_item", "batch_write_item",
              "transact_get_items", "transact_write_items", "query", "scan")
_LOCK = threading.RLock()
_ORIGINALS: dict[str, Callable[..., Any]] = {}


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    return call


def install() -> None:
    """Serialize this process's moto DynamoDB item operations (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    with _LOCK:
        for name in OPERATIONS:
            if name not in _ORIGINALS and hasattr(DynamoDBBackend, name):
                _ORIGINALS[name] = getattr(DynamoDBBackend, name)
                setattr(DynamoDBBackend, name, _serialized(_ORIGINALS[name]))


def uninstall() -> None:
    """Back to moto's own methods."""
    from moto.dynamodb.models import DynamoDBBackend

    with _LOCK:
        for name, method in _ORIGINALS.items():
            setattr(DynamoDBBackend, name, method)
        _ORIGINALS.clear()
