"""Several observers, one verdict: the report they exchange and the k-of-n rule.

Each observer (vantage point) publishes an :class:`ObserverReport` - its verdict per endpoint,
whether its control targets answer, and whether it believes itself partitioned - to a
:class:`VerdictExchange`. A decider collects the fresh reports and :func:`aggregate` s them per
endpoint: an endpoint is ``unhealthy`` only when ``required`` observers that can see the
network say so, so one observer cut off from an endpoint cannot trigger a failover.

Reports are plain JSON (:meth:`ObserverReport.to_json`) so that observers in other processes,
hosts or regions can share them: :class:`InMemoryExchange` for observers in one process,
:class:`DirectoryExchange` for processes sharing a directory (one host, or a shared volume).
An HTTP or object-store exchange only has to implement ``publish`` and ``collect``.

``at`` is the observer's wall clock: across hosts, ``verdict_ttl`` must exceed the clock skew.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

from failover_engine.detection.health import Health

REPORT_VERSION = 1
_OBSERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # as model.Name: safe as a file name
_HEALTH = {h.value for h in Health}


def endpoint_key(service: str, endpoint: str) -> str:
    """The key of an endpoint in a report: ``service/endpoint`` (names never contain '/')."""
    return f"{service}/{endpoint}"


# --------------------------------------------------------------------------- the report
def _number(value: Any, what: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _check_entry(key: Any, entry: Any) -> dict[str, Any]:
    if not isinstance(key, str) or not isinstance(entry, dict):
        raise ValueError(f"verdict {key!r} must be an object keyed by a string")
    if entry.get("health") not in _HEALTH:
        raise ValueError(f"verdict {key!r}: health must be one of {sorted(_HEALTH)}")
    if not isinstance(entry.get("reason"), str):
        raise ValueError(f"verdict {key!r}: reason must be a string")
    _number(entry.get("at"), f"verdict {key!r}: at", optional=True)
    return dict(entry)


@dataclass
class ObserverReport:
    """What one observer saw, at one moment.

    ``verdicts`` maps an endpoint key (:func:`endpoint_key`) to ``{"health", "reason", "at"}``
    (``at``: when that verdict was last updated; extra keys are kept and passed along).
    ``control_ok``: whether every control target answered (``None``: no control targets).
    ``partitioned``: the observer concluded it is the one cut off (see :func:`self_partitioned`);
    its verdicts are then not counted.
    """

    observer: str
    at: float
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    control_ok: bool | None = None
    partitioned: bool = False

    @classmethod
    def from_verdicts(cls, observer: str, at: float, verdicts: Mapping[str, Any], *,
                      control_ok: bool | None = None, partitioned: bool = False) -> "ObserverReport":
        """Build a report from verdict objects (``.health``, ``.reason``, optionally ``.at``)."""
        entries = {key: {"health": str(getattr(v.health, "value", v.health)), "reason": v.reason,
                         "at": getattr(v, "at", None) or at} for key, v in verdicts.items()}
        return cls(observer, at, entries, control_ok, partitioned)

    def to_dict(self) -> dict[str, Any]:
        return {"version": REPORT_VERSION, "observer": self.observer, "at": self.at,
                "control_ok": self.control_ok, "partitioned": self.partitioned,
                "verdicts": {k: dict(v) for k, v in self.verdicts.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> "ObserverReport":
        """Parse and check a report; raises ValueError for anything malformed."""
        if not isinstance(data, dict) or data.get("version") != REPORT_VERSION:
            raise ValueError(f"not an observer report of version {REPORT_VERSION}")
        observer = data.get("observer")
        if not isinstance(observer, str) or not _OBSERVER_NAME.match(observer):
            raise ValueError(f"invalid observer name {observer!r}: use letters, digits, '_', '.', '-'")
        control_ok, partitioned = data.get("control_ok"), data.get("partitioned", False)
        if control_ok is not None and not isinstance(control_ok, bool):
            raise ValueError("control_ok must be true, false or null")
        if not isinstance(partitioned, bool):
            raise ValueError("partitioned must be true or false")
        verdicts = data.get("verdicts", {})
        if not isinstance(verdicts, dict):
            raise ValueError("verdicts must be an object")
        at = _number(data.get("at"), "at")
        assert at is not None
        return cls(observer, at, {k: _check_entry(k, v) for k, v in verdicts.items()}, control_ok, partitioned)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ObserverReport":
        return cls.from_dict(json.loads(text))


# --------------------------------------------------------------------------- partition self-check
def _failed(item: Any) -> bool:
    """Did this round's check fail? A ProbeResult (``.ok``), else a verdict's last result
    (``.last.ok``), else a verdict's health (only ``unhealthy`` counts as failed)."""
    if hasattr(item, "ok"):
        return not item.ok
    last = getattr(item, "last", None)
    if last is not None and hasattr(last, "ok"):
        return not last.ok
    health = getattr(item, "health", None)
    if health is not None:
        return str(getattr(health, "value", health)) == Health.unhealthy.value
    return not getattr(item, "healthy", True)


def self_partitioned(endpoint_results: Mapping[str, Any], control_ok: Sequence[bool]) -> bool:
    """Whether an observer should conclude that it is the one cut off, and abstain.

    ``endpoint_results``: the latest result (or verdict) of every endpoint of every service this
    observer watches; ``control_ok``: whether each control target answered.

    * With control targets: partitioned when every endpoint and every control target failed.
      (Endpoints down but control targets fine is a real outage; control targets down but some
      endpoint fine means the control targets are the problem.)
    * Without control targets: partitioned when every endpoint failed and there are at least
      two. One endpoint down alone is indistinguishable from an outage, so it is not enough;
      with two or more, all down at once is more likely this observer's network - and if it is
      a real global outage, no endpoint is healthy to fail over to, so abstaining loses nothing.
    * No endpoints: nothing to judge, not partitioned.
    """
    if not endpoint_results:
        return False
    if not all(_failed(item) for item in endpoint_results.values()):
        return False
    if control_ok:
        return not any(control_ok)
    return len(endpoint_results) >= 2


# --------------------------------------------------------------------------- exchanges
class VerdictExchange(Protocol):
    """Carries observer reports between observers and deciders.

    ``publish`` must replace the observer's previous report (one current report per observer)
    and must never leave a half-written report visible. ``collect`` returns the current report of
    every observer, skipping the stale (more than the exchange's ttl away from ``now``) and the
    unreadable; it never raises for one bad report.
    """

    def publish(self, report: ObserverReport) -> None: ...

    def collect(self, now: float) -> list[ObserverReport]: ...


def age_problem(at: float, now: float, ttl: float | None) -> str | None:
    """Why a time stamp is not fresh at ``now`` (older than ``ttl``, or more than ``ttl`` in the
    future: a clock that far off cannot be trusted), or None when it is fresh."""
    if ttl is None or abs(now - at) <= ttl:
        return None
    return f"{now - at:.1f} s old (ttl {ttl:g} s)" if at < now else f"{at - now:.1f} s in the future (ttl {ttl:g} s)"


def _encode(report: ObserverReport) -> str:
    """The report as JSON, checked as a reader would check it (so a bad report fails its publisher,
    not every collector)."""
    text = report.to_json()
    ObserverReport.from_json(text)
    return text


def _fresh(report: ObserverReport, now: float, ttl: float | None) -> bool:
    return age_problem(report.at, now, ttl) is None


class InMemoryExchange:
    """Observers in one process (tests, a single monitor). Thread-safe. Reports go through
    JSON, so that they behave as they would between processes."""

    def __init__(self, ttl: float | None = None):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._reports: dict[str, str] = {}

    def publish(self, report: ObserverReport) -> None:
        text = _encode(report)
        with self._lock:
            self._reports[report.observer] = text

    def collect(self, now: float) -> list[ObserverReport]:
        with self._lock:
            texts = [self._reports[name] for name in sorted(self._reports)]
        reports = [ObserverReport.from_json(t) for t in texts]
        return [r for r in reports if _fresh(r, now, self.ttl)]


class DirectoryExchange:
    """Observers in separate processes sharing a directory: each writes ``<observer>.json``.

    Writes go to a temporary file in the same directory and are renamed over the report
    (``os.replace``), so a reader sees the old report or the new one, never half of one.
    ``collect`` skips reports older than ``ttl`` and files it cannot read or parse (listed in
    :attr:`skipped` with the reason, for diagnostics).
    """

    def __init__(self, path: str | os.PathLike[str], ttl: float):
        self.path = Path(path)
        self.ttl = ttl
        self.skipped: list[tuple[str, str]] = []
        self.path.mkdir(parents=True, exist_ok=True)

    def publish(self, report: ObserverReport) -> None:
        data = _encode(report).encode()
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{report.observer}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / f"{report.observer}.json")
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise

    def collect(self, now: float) -> list[ObserverReport]:
        reports, skipped = [], []
        for file in sorted(self.path.glob("*.json")):
            report, why = self._read(file, now)
            if report is not None:
                reports.append(report)
            else:
                skipped.append((file.name, why))
        self.skipped = skipped
        return reports

    def _read(self, file: Path, now: float) -> tuple[ObserverReport | None, str]:
        try:
            report = ObserverReport.from_json(file.read_bytes())
        except (OSError, ValueError) as exc:  # JSON and Unicode errors are ValueErrors
            return None, f"unreadable: {exc}"
        if report.observer != file.stem:
            return None, f"names observer {report.observer!r}"
        problem = age_problem(report.at, now, self.ttl)
        if problem is not None:
            return None, f"stale: {problem}"
        return report, ""


# --------------------------------------------------------------------------- the k-of-n rule
@dataclass
class QuorumVerdict:
    """The observers' agreed health of one endpoint. Satisfies selection.Verdict.

    ``down_votes`` / ``up_votes``: how many counted observers report unhealthy / healthy;
    ``voters``: who voted (either way); ``abstained``: who did not, with the reason in
    ``abstentions`` (partitioned, stale, no verdict for this endpoint, unknown, no report).
    """

    endpoint: str
    health: Health
    reason: str
    down_votes: int
    up_votes: int
    abstained: list[str]
    voters: list[str]
    required: int
    abstentions: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.health is Health.healthy

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "health": self.health.value, "reason": self.reason,
                "down_votes": self.down_votes, "up_votes": self.up_votes, "abstained": list(self.abstained),
                "voters": list(self.voters), "required": self.required, "abstentions": dict(self.abstentions)}


def _latest(reports: Iterable[ObserverReport]) -> dict[str, ObserverReport]:
    """The newest report of each observer."""
    out: dict[str, ObserverReport] = {}
    for r in reports:
        if r.observer not in out or r.at > out[r.observer].at:
            out[r.observer] = r
    return out


def _ballot(report: ObserverReport, endpoint: str, now: float, ttl: float) -> tuple[str, str]:
    """('down' | 'up' | 'abstain', reason) of one observer about one endpoint."""
    if report.partitioned:
        return "abstain", "partitioned"
    problem = age_problem(report.at, now, ttl)
    if problem is not None:
        return "abstain", f"stale report: {problem}"
    entry = report.verdicts.get(endpoint)
    if entry is None:
        return "abstain", "no verdict"
    at = entry.get("at")
    problem = age_problem(at, now, ttl) if isinstance(at, (int, float)) else None
    if problem is not None:
        return "abstain", f"stale verdict: {problem}"
    health = entry.get("health")
    if health == Health.unhealthy.value:
        return "down", str(entry.get("reason", ""))
    if health == Health.healthy.value:
        return "up", str(entry.get("reason", ""))
    return "abstain", "unknown"


def aggregate(reports: Sequence[ObserverReport], endpoint: str, required: int, now: float, ttl: float,
              observers: Sequence[str] | None = None) -> QuorumVerdict:
    """The k-of-n verdict about ``endpoint`` (an :func:`endpoint_key`).

    Counted: the newest report of each observer, unless it is partitioned or older than ``ttl``
    (report ``at`` or verdict ``at``); an observer whose verdict is ``unknown`` or missing
    abstains too. ``observers``, when given, names the observers expected: those without a
    report abstain ("no report").

    * ``unhealthy`` when at least ``required`` counted observers report it unhealthy - even if
      ``required`` others report it healthy (a low quorum is the operator asking for that);
    * else ``healthy`` when at least ``required`` report it healthy;
    * else ``unknown`` ("no quorum"): neither side has enough fresh votes. ``unknown`` never
      triggers a failover and makes a target ineligible, so a split view holds automation.
    """
    if required < 1:
        raise ValueError(f"required must be at least 1, not {required}")
    latest = _latest(reports)
    down: list[tuple[str, str]] = []
    up: list[tuple[str, str]] = []
    abstentions: dict[str, str] = {}
    for name in sorted(latest):
        vote, why = _ballot(latest[name], endpoint, now, ttl)
        if vote == "down":
            down.append((name, why))
        elif vote == "up":
            up.append((name, why))
        else:
            abstentions[name] = why
    for name in observers or ():
        if name not in latest:
            abstentions[name] = "no report"
    health = (Health.unhealthy if len(down) >= required
              else Health.healthy if len(up) >= required else Health.unknown)
    voters = sorted(name for name, _unused in down + up)
    reason = _quorum_reason(health, down, up, abstentions, required)
    return QuorumVerdict(endpoint, health, reason, len(down), len(up), sorted(abstentions), voters,
                         required, abstentions)


def aggregate_all(reports: Sequence[ObserverReport], endpoints: Iterable[str], required: int, now: float,
                  ttl: float, observers: Sequence[str] | None = None) -> dict[str, QuorumVerdict]:
    """:func:`aggregate` for each endpoint key."""
    return {key: aggregate(reports, key, required, now, ttl, observers) for key in endpoints}


def _quorum_reason(health: Health, down: list[tuple[str, str]], up: list[tuple[str, str]],
                   abstentions: dict[str, str], required: int) -> str:
    counted = len(down) + len(up) + len(abstentions)
    if health is Health.unhealthy:
        text = f"{len(down)} of {counted} observers report down (quorum {required}): {down[0][0]}: {down[0][1]}"
        return text + (f"; {len(up)} report up" if up else "")
    if health is Health.healthy:
        return f"{len(up)} of {counted} observers report up (quorum {required})" + (
            f"; {len(down)} report down" if down else "")
    text = f"no quorum: {len(down)} of {required} required observers report down"
    if up:
        text += f", {len(up)} up"
    for name in sorted(abstentions):
        text += f"; {name} abstains ({abstentions[name]})"
    return text
