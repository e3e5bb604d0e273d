"""Append-only JSON-lines event log: every action the engine takes, one line each.

Lines are appended with O_APPEND and flushed + fsynced, so concurrent writers never interleave
inside a line and a crash loses at most the line being written. Values are redacted before
they are written (secrets never reach the log).
"""
from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

_SECRET_KEY = re.compile(r"(secret|password|passwd|token|credential|authorization|api[_-]?key|private)", re.I)
_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/?#\s]*@", re.I)  # all userinfo, up to the last @
REDACTED = "***"


def redact(value: Any) -> Any:
    """Copy of ``value`` with secret-looking keys masked and credentials stripped from URLs."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "")
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_CREDS.sub(lambda m: m.group("scheme") + REDACTED + "@", value)
    return value


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, event: str, service: str | None = None, **fields: Any) -> dict[str, Any]:
        now = time.time()
        record = {"ts": iso(now), "t": round(now, 6), "event": event, "service": service}
        record.update(redact(fields))
        line = json.dumps(record, default=str, sort_keys=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return record

    def append_many(self, entries: list[tuple[str, str | None, dict[str, Any]]]) -> None:
        """Append several events (event, service, fields) with one write and one fsync: a run over
        many services logs each service's events without paying a disk flush for every line."""
        if not entries:
            return
        now = time.time()
        lines = []
        for event, service, fields in entries:
            record = {"ts": iso(now), "t": round(now, 6), "event": event, "service": service}
            record.update(redact(fields))
            lines.append(json.dumps(record, default=str, sort_keys=False) + "\n")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, "".join(lines).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, service: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        out = [e for e in self._iter() if service is None or e.get("service") == service]
        return out[-limit:] if limit else out

    def _iter(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a torn last line after a crash
