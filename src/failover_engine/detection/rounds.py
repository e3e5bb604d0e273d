"""Watching a service's endpoints: one probe round, or rounds until a condition holds.

:func:`probe_service` runs one round with the service's detection settings.
:func:`wait_for` probes every ``detection.interval`` and feeds :class:`HealthTracker` s until
every watched endpoint is ``unhealthy`` (or ``healthy``), or the timeout passes. It is used by
the ``endpoint_probe`` Ansible module (``wait_for``), by the CLI, and by drills measuring how
long detection takes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from failover_engine.core.errors import ProbeConfigError, UnknownEndpointError
from failover_engine.detection.health import Health, HealthTracker, HealthVerdict
from failover_engine.core.model import HttpProbe, Service, TcpProbe
from failover_engine.detection.results import ProbeResult
from failover_engine.detection.probes import probe_all

AwaitedState = Literal["unhealthy", "healthy"]
RoundCallback = Callable[[int, dict[str, HealthVerdict]], None]

_SERVICE_LABEL = "(this service)"  # a Service does not know its own name


def _probes_of(service: Service, names: list[str]) -> list[tuple[str, HttpProbe | TcpProbe | None]]:
    """(name, probe) of the named endpoints; raises for a name the service does not have."""
    known = service.endpoint_names
    out: list[tuple[str, HttpProbe | TcpProbe | None]] = []
    for name in names:
        if name not in known:
            raise UnknownEndpointError(_SERVICE_LABEL, name, known)
        out.append((name, service.endpoint(name).probe))
    return out


def probe_service(service: Service, endpoints: list[str] | None = None) -> dict[str, ProbeResult]:
    """Probe the service's endpoints (all, or those named) once, concurrently.

    Uses ``detection.timeout`` and ``detection.latency_limit``. Endpoints without a probe
    are skipped (absent from the result).
    """
    names = service.endpoint_names if endpoints is None else list(endpoints)
    items = [(name, probe) for name, probe in _probes_of(service, names) if probe is not None]
    detection = service.detection
    return probe_all(items, timeout=detection.timeout, latency_limit=detection.latency_limit)


@dataclass
class WaitResult:
    """How a :func:`wait_for` ended.

    ``first_signal_at``: the earliest probe, among the watched endpoints, that started the
    streak pointing to the awaited state (the first failure when waiting for ``unhealthy``).
    ``detected_at``: the probe at which the condition held (the last watched endpoint crossed
    its threshold). Both are ``time.time()`` values; ``detected_at`` is ``None`` unless reached.
    """

    reached: bool
    verdicts: dict[str, HealthVerdict]
    rounds: int
    elapsed: float
    first_signal_at: float | None
    detected_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "reached": self.reached,
            "rounds": self.rounds,
            "elapsed": self.elapsed,
            "first_signal_at": self.first_signal_at,
            "detected_at": self.detected_at,
            "verdicts": {name: v.to_dict() for name, v in self.verdicts.items()},
        }


def _signal_times(verdicts: dict[str, HealthVerdict], state: AwaitedState) -> tuple[float | None, float | None]:
    """(earliest streak start, latest threshold crossing) towards ``state``."""
    if state == "unhealthy":
        starts = [v.first_failure_at for v in verdicts.values()]
        crossings = [v.detected_at for v in verdicts.values()]
    else:
        starts = [v.first_success_at for v in verdicts.values()]
        crossings = [v.recovered_at for v in verdicts.values()]
    known_starts = [t for t in starts if t is not None]
    first = min(known_starts) if known_starts else None
    last = max(crossings) if crossings and all(t is not None for t in crossings) else None
    return first, last


def _watched_trackers(service: Service, endpoints: list[str]) -> dict[str, HealthTracker]:
    if not endpoints:
        raise ValueError("wait_for needs at least one endpoint")
    detection = service.detection
    trackers: dict[str, HealthTracker] = {}
    for name, probe in _probes_of(service, endpoints):
        if probe is None:
            raise ProbeConfigError(
                f"endpoint {name!r} has no probe, so its health cannot be watched; "
                "add a `probe:` to it or leave it out of the endpoints to wait for"
            )
        trackers[name] = HealthTracker(name, detection.failure_threshold, detection.recovery_threshold)
    return trackers


def _observe_round(service: Service, trackers: dict[str, HealthTracker]) -> dict[str, HealthVerdict]:
    results = probe_service(service, list(trackers))
    return {name: tracker.observe(results[name]) for name, tracker in trackers.items()}


def wait_for(service: Service, endpoints: list[str], state: AwaitedState, *, timeout: float,
             on_round: RoundCallback | None = None) -> WaitResult:
    """Probe ``endpoints`` every ``detection.interval`` until all of them are in ``state``.

    Rounds keep their cadence: a round starts ``interval`` after the previous one started
    (at once if the previous round took longer). At least one round runs; no round starts
    after ``timeout`` seconds. ``on_round(round_number, verdicts)`` is called after each round.
    """
    if state not in ("unhealthy", "healthy"):
        raise ValueError(f"state must be 'unhealthy' or 'healthy', not {state!r}")
    trackers = _watched_trackers(service, endpoints)
    awaited = Health(state)
    interval = service.detection.interval
    started = time.monotonic()
    deadline = started + timeout
    rounds = 0
    while True:
        round_started = time.monotonic()
        verdicts = _observe_round(service, trackers)
        rounds += 1
        if on_round is not None:
            on_round(rounds, verdicts)
        reached = all(v.health is awaited for v in verdicts.values())
        next_round = round_started + interval
        if reached or next_round > deadline:
            break
        time.sleep(max(0.0, next_round - time.monotonic()))
    first_signal_at, detected_at = _signal_times(verdicts, state)
    return WaitResult(
        reached=reached,
        verdicts=verdicts,
        rounds=rounds,
        elapsed=time.monotonic() - started,
        first_signal_at=first_signal_at,
        detected_at=detected_at if reached else None,
    )


# --------------------------------------------------------------------------- one round over many services
ProbeWant = tuple[str, Service, list[str]]  # (service name, service, endpoint names)


def probe_round(wanted: list[ProbeWant], *, confirm: bool = True) -> dict[str, dict[str, ProbeResult]]:
    """Probe the named endpoints of many services in ONE concurrent round.

    Identical probes (same spec, timeout and latency limit) run once, however many services share
    them. With ``confirm``, every probe that failed is probed once more in the same round, after a
    pause of min(detection.interval, 1 s), so one lost probe neither refuses nor allows a failover.
    Returns {service: {endpoint: result}}; endpoints without a probe are absent.
    """
    import asyncio

    jobs: dict[str, tuple[Any, float, float | None, float]] = {}  # probe id -> (spec, timeout, latency, pause)
    ids: dict[str, str] = {}  # dedup key (may hold header values: kept in memory only) -> probe id
    owners: list[tuple[str, str, str]] = []  # (service, endpoint, probe id)
    for svc_name, service, names in wanted:
        det = service.detection
        for name, probe in _probes_of(service, names):
            if probe is None:
                continue
            key = ids.setdefault(f"{probe.model_dump_json()}|{det.timeout}|{det.latency_limit}", f"p{len(ids)}")
            pause = min(det.interval, 1.0)
            if key in jobs:
                pause = min(pause, jobs[key][3])
            jobs[key] = (probe, det.timeout, det.latency_limit, pause)
            owners.append((svc_name, name, key))
    results = asyncio.run(_round(jobs, confirm)) if jobs else {}
    out: dict[str, dict[str, ProbeResult]] = {name: {} for name, _unused, _unused in wanted}
    for svc_name, name, key in owners:
        r = results[key]
        out[svc_name][name] = ProbeResult(r.ok, r.kind, r.reason, r.latency_ms, r.at, name)
    return out


async def _round(jobs: dict[str, tuple[Any, float, float | None, float]], confirm: bool) -> dict[str, ProbeResult]:
    import asyncio

    from failover_engine.detection.probes import probe_many

    async def once(keys: list[str]) -> dict[str, ProbeResult]:
        groups: dict[tuple[float, float | None], list[tuple[str, Any]]] = {}
        for k in keys:
            spec, timeout, latency, _unused = jobs[k]
            groups.setdefault((timeout, latency), []).append((k, spec))
        parts = await asyncio.gather(*(probe_many(items, timeout=t, latency_limit=lat, concurrency=512)
                                       for (t, lat), items in groups.items()))
        return {k: r for part in parts for k, r in part.items()}

    results = await once(list(jobs))
    failed = [k for k, r in results.items() if not r.ok]
    if confirm and failed:
        await asyncio.sleep(min(jobs[k][3] for k in failed))
        results.update(await once(failed))
    return results
