"""Append-only JSON-lines event log: every action the engine takes, one line each.

Lines are appended with O_APPEND and flushed + fsynced, so concurrent writers never interleave
inside a line and a crash loses at most the line being written. Values are redacted before
they are written (secrets never reach the log). The log is 0600 in a 0700 directory (see
:mod:`failover_engine.engine.state` for the rule).
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from failover_engine.engine.files import private_dir, tighten
from failover_engine.core.timeline import iso

# Words that make a key secret (case-insensitive substrings; "api_key", "api-key" and "apikey").
_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "authorization", "api_key", "api-key",
                 "apikey", "private")
# scheme://userinfo@ - all the userinfo, up to the last @ before the host (a password may hold an @).
# Linear time: the match starts at the LAST letter of the scheme ([a-z] then only [0-9+.-] up to
# "://"), so at most one start position reaches each "://", and its userinfo scan stops at the next
# /, ? , # or space (every later "://" holds a /): no character is scanned more than a few times.
# The output is the same as with the whole scheme matched, as the scheme is kept as it is. (The
# pattern this replaces, [a-z][a-z0-9+.-]*:// from the FIRST letter, was quadratic in a long run
# of letters: a 48 KB string took 13 s, 4 MiB about a day.)
_URL_CREDS = re.compile(r"([a-z][0-9+.-]*://)[^/?#\s]*@", re.I)
REDACTED = "***"


def _is_secret_key(key: str) -> bool:
    low = key.lower()
    return any(word in low for word in _SECRET_WORDS)


def strip_url_credentials(text: str) -> str:
    """``text`` with the userinfo of every ``scheme://userinfo@host`` replaced by ``***``."""
    if "@" not in text or "://" not in text:  # most text: two scans in C
        return text
    return _URL_CREDS.sub(lambda m: m.group(1) + REDACTED + "@", text)


def redact(value: Any) -> Any:
    """Copy of ``value`` with secret-looking keys masked and credentials stripped from URLs."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _is_secret_key(k) and v not in (None, "")
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return strip_url_credentials(value)
    return value


class EventLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._private = False  # directory made (or tightened) and the file's mode checked

    def _open_for_append(self) -> int:
        if not self._private:
            private_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if not self._private:
            tighten(self.path, fd)  # a log left 0644 by an older version
            self._private = True
        return fd

    def append(self, event: str, service: str | None = None, **fields: Any) -> dict[str, Any]:
        now = time.time()
        record = {"ts": iso(now), "t": round(now, 6), "event": event, "service": service}
        record.update(redact(fields))
        line = json.dumps(record, default=str, sort_keys=False) + "\n"
        fd = self._open_for_append()
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
        fd = self._open_for_append()
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
