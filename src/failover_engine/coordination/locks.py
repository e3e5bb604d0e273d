"""One failover per service at a time.

:class:`LockProvider` is the seam: :class:`FileLock` serves one machine (fcntl.flock on a
file per service, released by the kernel if the process dies);
:class:`~failover_engine.coordination.dynamodb.DynamoLock` serves several (leases with fencing
epochs in a DynamoDB table). The engine calls :meth:`LockProvider.fence` before every provider
write and before recording an outcome: a holder that lost its lease stops there.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Iterator

from failover_engine.core.errors import LockHeld


class LockProvider(ABC):
    @abstractmethod
    def hold(self, service: str, purpose: str) -> contextlib.AbstractContextManager[None]:
        """Context manager that holds the service's lock, or raises LockHeld at once."""

    def is_held(self, service: str) -> bool:
        """Whether some run holds the service's lock now (a journal left open by a run whose lock
        is free belongs to a run that died). Providers that cannot tell say True (never guess dead)."""
        return True

    def fence(self, services: Iterable[str]) -> None:
        """Raise LeaseLost (or CoordinationError) unless this process still holds every one of these
        services' locks. A kernel lock cannot be lost while its process lives: nothing to check."""

    def epochs(self, services: Iterable[str]) -> dict[str, int]:
        """The fencing epoch of each held lock (empty for locks without epochs)."""
        return {}

    def taken_over(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Services whose lock this process took from a holder whose lease had lapsed (holder, epoch,
        purpose): that holder may have died mid-run."""
        return {}

    def lapsed(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Services whose lock another holder still names but no longer renews (holder, epoch,
        purpose, expired_at): it died, or stopped, maybe mid-run, maybe on another host. A kernel
        lock goes with its process (and its journal is on this host): none."""
        return {}


class FileLock(LockProvider):
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @contextlib.contextmanager
    def hold(self, service: str, purpose: str) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{service}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(service, self._holder(path)) from None
            info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose, "since": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def is_held(self, service: str) -> bool:
        path = self.directory / f"{service}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases the probe's own lock
        return False

    @staticmethod
    def _holder(path: Path) -> str:
        try:
            info = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            return "unknown holder"
        if not info:
            return "a run that is just starting"
        age = time.time() - float(info.get("since", time.time()))
        return f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose')}, {age:.0f}s ago)"
