"""Write-ahead journal of one run: what it was about to change, written down before it changed it.

A run that changes provider state (one service, or a whole region in one transaction) opens a
journal before its first write: the run id, the holder (pid, host), every service's plan with
its fingerprint, and the before- and after-state of every resource the plans touch. It then
appends a record when each write group starts and ends, and closes the journal when the run
ends, whatever the outcome. Every record is one JSON line, appended and fsynced, so a run killed
at any instant leaves a journal that says how far it got.

A journal that is still open while no process holds its services' locks belongs to a run that
died: an *interrupted run*. :mod:`failover_engine.engine.recovery` finishes it (forward to the target,
or back to the journal's before-state) and closes it. Journals live in ``STATE/journal/`` (0700),
one ``<run_id>.jsonl`` (0600) per run.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from failover_engine.engine.events import redact
from failover_engine.core.plan import Plan, ResourceKey
from failover_engine.engine.files import private_dir


def key_to_dict(key: ResourceKey) -> dict[str, Any]:
    return {"adapter": key.adapter, "scope": key.scope, "name": key.name, "type": key.type,
            "set_identifier": key.set_identifier}


def key_from_dict(data: dict[str, Any]) -> ResourceKey:
    return ResourceKey(data["adapter"], data["scope"], data["name"], data.get("type") or "",
                       data.get("set_identifier"))


def _plain(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(value, default=list))


@dataclass
class JournaledChange:
    """One resource of a journaled plan: its routing step, and its state before and after."""

    step: int
    key: ResourceKey
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "key": key_to_dict(self.key), "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JournaledChange":
        return cls(int(d["step"]), key_from_dict(d["key"]), d.get("before"), d.get("after"))


@dataclass
class JournaledPlan:
    """What a journal knows of one service's plan."""

    service: str
    action: str
    current: dict[str, int] | None
    target: dict[str, int]
    fingerprint: str
    changes: list[JournaledChange]

    @classmethod
    def of(cls, plan: Plan) -> "JournaledPlan":
        changes = [JournaledChange(s.index, c.key, _plain(c.before), _plain(c.after))
                   for s in plan.steps for c in s.changes]
        return cls(plan.service, plan.action, plan.current, dict(plan.target), plan.fingerprint(), changes)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "action": self.action, "current": self.current, "target": self.target,
                "fingerprint": self.fingerprint, "changes": [c.to_dict() for c in self.changes]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JournaledPlan":
        return cls(d["service"], d["action"], d.get("current"), dict(d.get("target") or {}), d.get("fingerprint", ""),
                   [JournaledChange.from_dict(c) for c in d.get("changes", [])])

    @property
    def effective(self) -> list[JournaledChange]:
        return [c for c in self.changes if c.before != c.after]


@dataclass
class JournalState:
    """A journal read back: its opening record, the write groups started and ended, and whether
    (and how) it was closed."""

    path: Path
    run_id: str
    holder: dict[str, Any]
    opened_at: float
    kind: str
    plans: dict[str, JournaledPlan]
    started_groups: dict[str, list[ResourceKey]] = field(default_factory=dict)
    ended_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> how recovery ended it
    closed: dict[str, Any] | None = None
    epochs: dict[str, int] = field(default_factory=dict)  # the run's lease epochs (lease coordination only)

    @property
    def open(self) -> bool:
        return self.closed is None

    @property
    def pending_services(self) -> list[str]:
        """Services of an open journal that no recovery has finished yet."""
        return sorted(s for s in self.plans if s not in self.resolved)

    def touched(self, service: str) -> set[ResourceKey]:
        """Keys of ``service`` inside write groups that started (whatever they ended as: a group that
        started may have written anything, including intermediate states)."""
        keys = {c.key for c in self.plans[service].changes}
        return {k for ks in self.started_groups.values() for k in ks if k in keys}

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "holder": self.holder, "opened_at": self.opened_at,
                "services": sorted(self.plans), "pending": self.pending_services,
                "groups_started": len(self.started_groups), "groups_ended": len(self.ended_groups),
                "journal": str(self.path)}


class Journal:
    """The write side: ``Journal.open(...)``, then :meth:`group_started` / :meth:`group_ended`
    around every provider write, then :meth:`close`. Every record is fsynced before the call
    returns: what the journal says happened-before is true on disk."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd

    @staticmethod
    def directory(state_dir: str | Path) -> Path:
        return Path(state_dir) / "journal"

    @classmethod
    def open(cls, state_dir: str | Path, run_id: str, kind: str, plans: Iterable[Plan],
             extra: dict[str, Any] | None = None) -> "Journal":
        private_dir(state_dir)
        d = private_dir(cls.directory(state_dir))
        path = d / f"{run_id}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        journal = cls(path, fd)
        journal._write({"rec": "open", "run_id": run_id, "kind": kind,
                        "holder": {"pid": os.getpid(), "host": socket.gethostname()},
                        "plans": [JournaledPlan.of(p).to_dict() for p in plans], **redact(extra or {})})
        _fsync_dir(d)
        return journal

    def _write(self, record: dict[str, Any]) -> None:
        record = {"t": round(time.time(), 6), **record}
        os.write(self._fd, (json.dumps(record, default=str) + "\n").encode())
        os.fsync(self._fd)

    def group_started(self, group: str, keys: Iterable[ResourceKey]) -> None:
        self._write({"rec": "group_started", "group": group, "keys": [key_to_dict(k) for k in keys]})

    def group_ended(self, group: str, ok: bool, error: str | None = None) -> None:
        self._write({"rec": "group_ended", "group": group, "ok": ok, "error": error})

    def note(self, what: str, **fields: Any) -> None:
        self._write({"rec": "note", "what": what, **redact(fields)})

    def close(self, statuses: dict[str, str]) -> None:
        self._write({"rec": "closed", "statuses": statuses})
        os.close(self._fd)
        self._fd = -1

    def abandon(self) -> None:
        """Close the file without closing the journal (the run could not finish: it stays open and
        recovery finishes it, as after a crash)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one fsynced record to an existing journal (recovery's records)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (json.dumps({"t": round(time.time(), 6), **record}, default=str) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_journal(path: Path) -> JournalState | None:
    """A journal as recorded; None when its opening record never made it to disk (nothing was
    written to a provider before it, so there is nothing to recover)."""
    state: JournalState | None = None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line: the write it announced never started
        kind = rec.get("rec")
        if kind == "open":
            plans = {p["service"]: JournaledPlan.from_dict(p) for p in rec.get("plans", [])}
            state = JournalState(path, rec["run_id"], rec.get("holder", {}), rec.get("t", 0.0),
                                 rec.get("kind", "run"), plans)
            state.epochs = {str(k): int(v) for k, v in (rec.get("epochs") or {}).items()
                            if isinstance(v, int) and not isinstance(v, bool)}
        elif state is None:
            continue
        elif kind == "group_started":
            state.started_groups[rec["group"]] = [key_from_dict(k) for k in rec.get("keys", [])]
        elif kind == "group_ended":
            state.ended_groups[rec["group"]] = {"ok": rec.get("ok"), "error": rec.get("error")}
        elif kind == "resolved":
            state.resolved[rec["service"]] = rec
        elif kind == "closed":
            state.closed = rec
    return state


def journals(state_dir: str | Path) -> Iterator[JournalState]:
    """Every journal of a state directory, oldest first."""
    d = Journal.directory(state_dir)
    if not d.is_dir():
        return
    for path in sorted(d.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name)):
        state = read_journal(path)
        if state is not None:
            yield state


def open_journals(state_dir: str | Path, service: str | None = None) -> list[JournalState]:
    """Journals not closed (of ``service`` when given, with that service not yet recovered)."""
    return [j for j in journals(state_dir)
            if j.open and (service is None or service in j.pending_services)]


def prune(state_dir: str | Path, keep: int = 500) -> None:
    """Remove the oldest closed journals beyond ``keep`` (reports and events keep the history);
    open ones are never removed. Cheap while there are fewer than ``keep`` files."""
    d = Journal.directory(state_dir)
    if not d.is_dir() or sum(1 for _i in d.glob("*.jsonl")) <= keep:
        return
    closed = [j for j in journals(state_dir) if not j.open]
    for j in closed[:-keep] if keep else closed:
        try:
            j.path.unlink()
        except OSError:
            pass
