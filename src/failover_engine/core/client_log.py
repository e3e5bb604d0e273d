"""What a client saw during a drill, from its request log (pure: no I/O).

The drill's load client (:mod:`failover_engine.lab.client`) resolves the service's name like a
caching stub and sends one request every ``interval`` to the endpoint its answer names; each
request is a :class:`ClientRequest`. This module turns that log and a run's timeline into figures:

* **client-observed outage**: the first failed request to the first successful request on the new
  routing (an answer whose endpoints are all in the run's target and none of which failed);
  0 when no request failed;
* **reached**: that first success on the new routing (after the switch was applied); the client's
  own RTO is reached − the engine's first signal, the same origin as the engine's RTO;
* **expected**: the engine's client RTO (``client_rto_s``: propagated + the longest TTL a cache
  could still hold) + one request interval + ``slack``; without a resolve step, the engine's RTO +
  the longest TTL the client was given;
* **failed per phase**: requests (and failed ones) in each phase of the run's timeline, plus
  ``before signal`` (from the window's start to the first signal) and ``after engine`` (from the end
  of the engine's last phase to the window's end: clients still holding the old answer).
  Validation and propagation both start when the change is applied, so a request can count in both.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from failover_engine.core.timeline import PHASES, iso

# how late the client may be beside the engine's client RTO, on top of one request interval: its
# thread's wake-ups, one DNS query and one connection on a busy 2-core machine (docs/drill-report.md)
DEFAULT_SLACK_S = 0.5


@dataclass(frozen=True)
class ClientRequest:
    """One request of the load client: when, what answer it used and what came back."""

    at: float                               # epoch seconds, when it was sent
    ok: bool                                # HTTP 200 from the endpoint
    endpoint: str | None = None             # the endpoint the address used belongs to (None: no answer)
    address: str | None = None              # the answer's value it connected to
    answer: tuple[str, ...] = ()            # the whole answer in use
    answer_endpoints: tuple[str, ...] = ()  # the endpoints of that answer
    status: int | None = None               # HTTP status
    error: str | None = None                # why it failed (dns: ..., refused, timeout, status 503, ...)
    latency_ms: float | None = None
    ttl: float | None = None                # the TTL the answer in use was given

    def to_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 6), "ok": self.ok, "endpoint": self.endpoint, "address": self.address,
                "answer": list(self.answer), "answer_endpoints": list(self.answer_endpoints),
                "status": self.status, "error": self.error, "latency_ms": self.latency_ms, "ttl": self.ttl}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClientRequest":
        return cls(at=float(d["at"]), ok=bool(d.get("ok")), endpoint=d.get("endpoint"), address=d.get("address"),
                   answer=tuple(d.get("answer") or ()), answer_endpoints=tuple(d.get("answer_endpoints") or ()),
                   status=d.get("status"), error=d.get("error"), latency_ms=d.get("latency_ms"), ttl=d.get("ttl"))


def epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 timestamp as reports write them (None stays None)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def stamps(timeline: dict[str, Any] | None) -> dict[str, float]:
    """A report's ``timeline.timestamps`` as epoch seconds (those that are set)."""
    out = {}
    for key, value in ((timeline or {}).get("timestamps") or {}).items():
        t = epoch(value)
        if t is not None:
            out[key] = t
    return out


def phase_bounds(timeline: dict[str, Any] | None) -> list[tuple[str, float, float]]:
    """(phase, start, end) of every phase a report's timeline has both ends of, in PHASES order
    (apply starts when a promotion ended, when there was one)."""
    ts = stamps(timeline)
    out = []
    for name, a, b in PHASES:
        if name == "apply" and "promoted_at" in ts:
            a = "promoted_at"
        if a in ts and b in ts:
            out.append((name, ts[a], ts[b]))
    return out


def engine_end(timeline: dict[str, Any] | None) -> float | None:
    """When the engine's last phase ended (validated or propagated, the later)."""
    ends = [t for _name, _a, t in phase_bounds(timeline)]
    return max(ends) if ends else None


def target_endpoints(outcome: dict[str, Any] | None) -> set[str]:
    """The endpoints a run's plan moved traffic to (weight > 0)."""
    target = ((outcome or {}).get("plan") or {}).get("target") or {}
    return {str(ep) for ep, weight in target.items() if weight}


def expected_client_rto(timeline: dict[str, Any] | None, interval: float, slack: float,
                        max_ttl: float | None = None) -> float | None:
    """The engine's client RTO + one request interval + slack (see the module's doc)."""
    tl = timeline or {}
    base = tl.get("client_rto_s")
    if base is None and tl.get("rto_s") is not None:
        base = tl["rto_s"] + (max_ttl or 0.0)
    return None if base is None else round(float(base) + interval + slack, 6)


@dataclass
class StageFigures:
    """A client's figures over one run (a drill's failover or failback)."""

    stage: str
    start: float
    end: float
    requests: int = 0
    failed: int = 0
    first_failure_at: float | None = None
    reached_at: float | None = None      # the first success on the new routing after the switch
    outage_s: float | None = None        # first failure -> reached (0: none failed; None: never reached)
    client_rto_s: float | None = None    # reached - the engine's first signal
    expected_s: float | None = None
    failed_endpoints: tuple[str, ...] = ()
    served: dict[str, int] | None = None  # successful requests per endpoint
    phases: list[dict[str, Any]] | None = None

    @property
    def reached(self) -> bool:
        return self.reached_at is not None

    @property
    def within(self) -> bool:
        """Reached, and no later than expected (when an expectation exists)."""
        if not self.reached:
            return False
        return self.expected_s is None or self.client_rto_s is None or self.client_rto_s <= self.expected_s

    def verdict(self) -> str:
        """One line for a person."""
        if not self.reached:
            return "the client never reached the new routing" + (
                f" (its requests to {', '.join(self.failed_endpoints)} failed)" if self.failed_endpoints else "")
        if not self.within:
            return (f"the client reached the new routing {_ms(self.client_rto_s)} after the first signal, later than "
                    f"the expected {_ms(self.expected_s)}")
        return "the client reached the new routing within the expected client RTO"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "start": iso(self.start), "end": iso(self.end), "requests": self.requests,
                "failed": self.failed, "first_failure_at": iso(self.first_failure_at),
                "reached_at": iso(self.reached_at), "reached": self.reached, "outage_s": self.outage_s,
                "client_rto_s": self.client_rto_s, "expected_client_rto_s": self.expected_s, "within": self.within,
                "failed_endpoints": list(self.failed_endpoints), "served": self.served or {},
                "failed_per_phase": self.phases or [], "verdict": self.verdict()}


def stage_windows(stages: Sequence[tuple[str, dict[str, Any] | None]], start: float,
                  end: float) -> list[tuple[str, float, float]]:
    """(stage, window start, window end) of each run that has a timeline: a run's window starts at
    ``start`` (the first) or at its own first signal, and ends where the next run's starts, or at
    ``end``."""
    firsts = []
    for name, outcome in stages:
        ts = stamps((outcome or {}).get("timeline"))
        if "first_signal_at" in ts:
            firsts.append((name, ts["first_signal_at"]))
    out = []
    for i, (name, first) in enumerate(firsts):
        w_start = start if i == 0 else first
        w_end = firsts[i + 1][1] if i + 1 < len(firsts) else end
        out.append((name, min(w_start, first), max(w_end, w_start)))
    return out


def stage_figures(requests: Iterable[ClientRequest], stage: str, outcome: dict[str, Any] | None,
                  window: tuple[float, float], interval: float, slack: float = DEFAULT_SLACK_S) -> StageFigures:
    """The figures of one client over one run (``outcome``: the run's report) within ``window``."""
    tl = (outcome or {}).get("timeline") or {}
    ts = stamps(tl)
    start, end = window
    reqs = sorted((r for r in requests if start <= r.at < end), key=lambda r: r.at)
    target = target_endpoints(outcome)
    applied = ts.get("applied_at")
    figures = StageFigures(stage, start, end, requests=len(reqs), failed=sum(1 for r in reqs if not r.ok))
    failed: set[str] = set()
    for r in reqs:
        if not r.ok:
            if figures.first_failure_at is None:
                figures.first_failure_at = r.at
            if r.endpoint:
                failed.add(r.endpoint)
            continue
        answer = set(r.answer_endpoints) or ({r.endpoint} if r.endpoint else set())
        if (applied is not None and r.at >= applied and answer and answer <= target and not answer & failed
                and figures.reached_at is None):
            figures.reached_at = r.at
    figures.failed_endpoints = tuple(sorted(failed))
    if figures.first_failure_at is None:
        figures.outage_s = 0.0
    elif figures.reached_at is not None and figures.reached_at > figures.first_failure_at:
        figures.outage_s = round(figures.reached_at - figures.first_failure_at, 6)
    if figures.reached_at is not None and "first_signal_at" in ts:
        figures.client_rto_s = round(figures.reached_at - ts["first_signal_at"], 6)
    ttls = [r.ttl for r in reqs if r.ttl is not None]
    figures.expected_s = expected_client_rto(tl, interval, slack, max(ttls) if ttls else None)
    served: dict[str, int] = {}
    for r in reqs:
        if r.ok and r.endpoint:
            served[r.endpoint] = served.get(r.endpoint, 0) + 1
    figures.served = served
    figures.phases = failed_per_phase(reqs, tl, window)
    return figures


def failed_per_phase(requests: Sequence[ClientRequest], timeline: dict[str, Any] | None,
                     window: tuple[float, float]) -> list[dict[str, Any]]:
    """Per phase of the run (and before the signal, and after the engine): its bounds, the requests
    sent in it and how many failed. Windows are half-open [start, end)."""
    ts = stamps(timeline)
    bounds: list[tuple[str, float, float]] = []
    if "first_signal_at" in ts:
        bounds.append(("before signal", window[0], ts["first_signal_at"]))
    bounds += phase_bounds(timeline)
    last = engine_end(timeline)
    if last is not None:
        bounds.append(("after engine", last, window[1]))
    out = []
    for name, a, b in bounds:
        inside = [r for r in requests if a <= r.at < b]
        out.append({"phase": name, "start": iso(a), "end": iso(b), "duration_s": round(max(0.0, b - a), 6),
                    "requests": len(inside), "failed": sum(1 for r in inside if not r.ok)})
    return out


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def client_figures(clients: dict[str, Any], stages: Sequence[tuple[str, dict[str, Any] | None]],
                   slack: float = DEFAULT_SLACK_S, judged: str = "failover") -> dict[str, Any]:
    """Every client's figures per run of a drill, and the verdict: ``ok`` when every client reached
    the new routing of the ``judged`` run within its expected client RTO (pure).

    ``clients`` is what the drill's clients recorded (``DrillClients.to_dict()``: ``interval_s``
    and per client its ``requests``, ``started_at``, ``stopped_at``); ``stages`` the drill's runs
    (name, report) in order. Returns ``clients`` with each client's ``stages`` added, ``slack_s``,
    ``ok`` and ``verdict``."""
    interval = float(clients.get("interval_s") or 0.05)
    out = []
    reasons = []
    judged_any = False
    for client in clients.get("clients") or []:
        reqs = [ClientRequest.from_dict(r) for r in client.get("requests") or []]
        start = epoch(client.get("started_at")) or (reqs[0].at if reqs else 0.0)
        end = epoch(client.get("stopped_at")) or (reqs[-1].at + interval if reqs else start)
        by_name = dict(stages)
        figures = {name: stage_figures(reqs, name, by_name.get(name), (a, b), interval, slack)
                   for name, a, b in stage_windows(stages, start, end)}
        label = client.get("label") or client.get("name")
        if judged in figures:
            judged_any = True
            if not figures[judged].within:
                reasons.append(f"{label}: {figures[judged].verdict()}")
        out.append({**client, "stages": {name: f.to_dict() for name, f in figures.items()}})
    if not out:
        verdict = "no client: the service has no name the lab's DNS server answers"
    elif not judged_any:
        verdict = f"not measured: the {judged} did not run"
    else:
        verdict = "; ".join(reasons) or f"every client reached the new routing within the expected client RTO " \
                                        f"(the {judged})"
    return {**{k: v for k, v in clients.items() if k != "clients"}, "slack_s": slack,
            "ok": bool(out) and judged_any and not reasons, "verdict": verdict, "clients": out}
