"""Detection signals beyond up/down: one :class:`SignalTracker` per endpoint (and observer).

Each probe result feeds three signals; each says *why* when it fires:

* ``consecutive`` - :class:`~failover_engine.detection.health.HealthTracker`: ``failure_threshold``
  failures in a row (it keeps firing until ``recovery_threshold`` successes in a row).
* ``latency`` - the nearest-rank percentile of the latencies in the last ``latency.window``
  probes is over ``latency.limit`` (needs ``latency.min_samples`` samples). Samples are the
  answers judged on their content: successes, and failures of kind ``slow`` (an answer that
  only failed for being slow is still a latency sample; a quick 500 or a refusal is not).
* ``error_rate`` - failures / probes in the last ``error_rate.window`` probes is at least
  ``error_rate.threshold`` (needs ``error_rate.min_samples`` probes).

Failures are also counted per :class:`~failover_engine.detection.results.FailureKind` (timeouts, refusals,
DNS failures, ... separately), in the window and in total.

Combining, with hysteresis (the *raw* health):

* unhealthy as soon as any signal fires;
* healthy again only when no signal fires and the last ``recovery_threshold`` probes were
  *clean* (a success while the window signals were under their limits) - so a window signal
  needs its window back under the limit for ``recovery_threshold`` probes in a row too;
* from ``unknown``, healthy after ``recovery_threshold`` clean probes (as HealthTracker does).

Then the *effective* health (the verdict's ``health``): a change of the raw health takes effect
only once it has held for ``detection.min_dwell`` seconds; until then the verdict keeps the old
health and its reason starts with ``pending:``. Changes of the effective health between
``healthy`` and ``unhealthy`` (not the first one, out of ``unknown``) are counted in a sliding
``flap.window``; more than ``flap.max_transitions`` there sets ``flapping``, which clears once
the window holds no more than that. Acting on ``flapping`` (holding automation, raising an
event) is the monitor's job.

Times: ``first_failure_at`` / ``first_success_at`` are probe times (``ProbeResult.at``), as in
HealthTracker; ``detected_at`` / ``recovered_at`` / ``since`` / ``at`` and the dwell and flap
windows use the tracker's ``clock`` (the moment the result was observed).
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from failover_engine.detection.health import Health, HealthTracker, HealthVerdict
from failover_engine.core.model import Detection, ErrorRateSignal, LatencySignal
from failover_engine.detection.results import FailureKind, ProbeResult

Clock = Callable[[], float]

DEFAULT_WINDOW = 20
"""Probes kept for the per-kind counts when neither window signal is configured."""

TRANSITION_HISTORY = 256
"""Effective transitions kept in :attr:`SignalTracker.transitions` (oldest dropped first)."""

SIGNAL_NAMES = ("consecutive", "latency", "error_rate")
FAILURE_KINDS = tuple(k.value for k in FailureKind if k is not FailureKind.none)


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(FAILURE_KINDS, 0)


@dataclass
class EndpointVerdict(HealthVerdict):
    """What a :class:`SignalTracker` concludes about one endpoint after a probe.

    Satisfies :class:`~failover_engine.core.selection.Verdict` (``health``, ``reason``).
    ``reason`` is the main reason; ``reasons`` and ``signals`` list every signal firing now
    (in the order of :data:`SIGNAL_NAMES`). ``counts`` / ``totals`` map every failure kind
    (``"timeout"``, ``"refused"``, ``"dns"``, ...) to its count in the window / since start.
    ``pending`` is the health waiting out ``min_dwell``; ``None`` when nothing is pending.
    """

    reasons: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=_zero_counts)
    totals: dict[str, int] = field(default_factory=_zero_counts)
    latency_p: float | None = None
    error_rate: float | None = None
    flapping: bool = False
    flap_count: int = 0
    pending: Health | None = None
    since: float | None = None
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as their string values, ``last`` as a dict)."""
        return {
            **super().to_dict(),
            "reasons": list(self.reasons),
            "signals": list(self.signals),
            "counts": dict(self.counts),
            "totals": dict(self.totals),
            "latency_p": self.latency_p,
            "error_rate": self.error_rate,
            "flapping": self.flapping,
            "flap_count": self.flap_count,
            "pending": self.pending.value if self.pending is not None else None,
            "since": self.since,
            "at": self.at,
        }


# --------------------------------------------------------------------------- window signals
def nearest_rank(values: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile: the smallest value with ``percentile``% of values at or below it."""
    if not values:
        raise ValueError("nearest_rank needs at least one value")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile * len(ordered) / 100 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def _num(value: float) -> str:
    """1.0 -> '1', 0.25 -> '0.25', 0.3333 -> '0.333'."""
    return f"{round(value, 3):g}"


def _pct(ratio: float) -> str:
    return f"{round(ratio * 100, 1):g}%"


def latency_samples(results: Sequence[ProbeResult]) -> list[float]:
    """Latencies of the answers judged on their content: successes and ``slow`` failures."""
    return [r.latency_ms for r in results
            if r.latency_ms is not None and (r.ok or r.kind is FailureKind.slow)]


def check_latency(spec: LatencySignal, window: Sequence[ProbeResult]) -> tuple[float | None, str | None]:
    """(percentile in ms or None when too few samples, reason when over the limit)."""
    recent = list(window)[-spec.window:]
    samples = latency_samples(recent)
    if not samples or len(samples) < spec.min_samples:
        return None, None
    value = nearest_rank(samples, spec.percentile)
    limit_ms = spec.limit * 1000
    if value <= limit_ms:
        return value, None
    return value, (f"p{spec.percentile:g} latency {value:.0f} ms > {limit_ms:.0f} ms "
                   f"over last {len(recent)} probes")


def check_error_rate(spec: ErrorRateSignal, window: Sequence[ProbeResult]) -> tuple[float | None, str | None]:
    """(failure ratio or None when too few probes, reason when at or over the threshold)."""
    recent = list(window)[-spec.window:]
    if not recent or len(recent) < spec.min_samples:
        return None, None
    rate = sum(not r.ok for r in recent) / len(recent)
    if rate < spec.threshold:
        return rate, None
    return rate, f"error rate {_pct(rate)} >= {_pct(spec.threshold)} over last {len(recent)} probes"


def _kind_of(result: ProbeResult) -> str:
    """The failure kind counted for a failed result (a failure without a kind counts as ``error``)."""
    return FailureKind.error.value if result.kind is FailureKind.none else result.kind.value


def window_size(detection: Detection) -> int:
    """Probes a tracker keeps: the larger configured window, else :data:`DEFAULT_WINDOW`."""
    sizes = [s.window for s in (detection.latency, detection.error_rate) if s is not None]
    return max(sizes) if sizes else DEFAULT_WINDOW


# --------------------------------------------------------------------------- the tracker
@dataclass
class _Marks:
    """Streak starts of the raw health, as HealthTracker keeps them for its own health."""

    first_failure_at: float | None = None
    first_success_at: float | None = None

    def update(self, clean: bool, at: float, before: Health, after: Health) -> None:
        if clean:
            if before is not Health.unhealthy:
                self.first_failure_at = None  # a pending failure streak is broken
            if before is Health.healthy:
                return
            if self.first_success_at is None:
                self.first_success_at = at
            if after is Health.healthy:
                self.first_failure_at = None
            return
        if before is not Health.healthy:
            self.first_success_at = None  # a pending recovery streak is broken
        if before is Health.unhealthy:
            return
        if self.first_failure_at is None:
            self.first_failure_at = at
        if after is Health.unhealthy:
            self.first_success_at = None


@dataclass
class _Effective:
    """The effective health, its pending change and what was frozen when it last changed."""

    health: Health = Health.unknown
    since: float | None = None
    pending: tuple[Health, float] | None = None
    detected_at: float | None = None
    recovered_at: float | None = None
    frozen_first_failure: float | None = None
    frozen_first_success: float | None = None


class SignalTracker:
    """Turns the probe results of one endpoint, in order, into :class:`EndpointVerdict` s.

    One tracker per endpoint per observer. Not thread-safe: feed it from one thread or task.
    """

    def __init__(self, endpoint: str, detection: Detection, clock: Clock = time.time):
        self.endpoint = endpoint
        self.detection = detection
        self._clock = clock
        self._streaks = HealthTracker(endpoint, detection.failure_threshold, detection.recovery_threshold)
        self._window: deque[ProbeResult] = deque(maxlen=window_size(detection))
        self._totals = _zero_counts()
        self._raw = Health.unknown
        self._clean_streak = 0
        self._held: list[str] = []  # signals that last made the raw health unhealthy
        self._marks = _Marks()
        self._eff = _Effective()
        self._flap_times: deque[float] = deque()
        self._transitions: deque[tuple[float, Health]] = deque(maxlen=TRANSITION_HISTORY)
        self._verdict = EndpointVerdict(endpoint, Health.unknown, "no probe yet")

    @property
    def verdict(self) -> EndpointVerdict:
        """The latest verdict (a copy; ``unknown`` before the first probe)."""
        return replace(self._verdict)

    @property
    def transitions(self) -> list[tuple[float, Health]]:
        """Effective health changes, oldest first: (clock time, new health)."""
        return list(self._transitions)

    def observe(self, result: ProbeResult) -> EndpointVerdict:
        """Take one probe result into account and return the new verdict."""
        now = self._clock()
        streak = self._streaks.observe(result)
        self._window.append(result)
        if not result.ok:
            self._totals[_kind_of(result)] += 1
        window = list(self._window)
        latency_p, latency_why = self._latency(window)
        error_rate, error_why = self._error_rate(window)
        fired = [(name, why) for name, why in (
            ("consecutive", streak.reason if streak.health is Health.unhealthy else None),
            ("latency", latency_why), ("error_rate", error_why)) if why is not None]
        clean = result.ok and latency_why is None and error_why is None
        self._clean_streak = self._clean_streak + 1 if clean else 0
        before = self._raw
        raw_reason = self._update_raw([name for name, _unused in fired], fired[0][1] if fired else None, streak)
        self._marks.update(clean, result.at, before, self._raw)
        pending_reason = self._settle(now)
        flap_count = self._flap_count(now)
        verdict = EndpointVerdict(
            self.endpoint, self._eff.health,
            f"{pending_reason}; {raw_reason}" if pending_reason else raw_reason,
            reasons=[why for _unused, why in fired], signals=[name for name, _unused in fired],
            counts=self._window_counts(window), totals=dict(self._totals),
            latency_p=latency_p, error_rate=error_rate,
            flapping=flap_count > self.detection.flap.max_transitions, flap_count=flap_count,
            pending=self._eff.pending[0] if self._eff.pending else None, since=self._eff.since, at=now,
            consecutive_failures=streak.consecutive_failures,
            consecutive_successes=streak.consecutive_successes, last=result)
        self._stamp(verdict)
        self._verdict = verdict
        return replace(verdict)

    # ------------------------------------------------------------------ signals
    def _latency(self, window: list[ProbeResult]) -> tuple[float | None, str | None]:
        spec = self.detection.latency
        return (None, None) if spec is None else check_latency(spec, window)

    def _error_rate(self, window: list[ProbeResult]) -> tuple[float | None, str | None]:
        spec = self.detection.error_rate
        return (None, None) if spec is None else check_error_rate(spec, window)

    @staticmethod
    def _window_counts(window: list[ProbeResult]) -> dict[str, int]:
        counts = _zero_counts()
        for r in window:
            if not r.ok:
                counts[_kind_of(r)] += 1
        return counts

    # ------------------------------------------------------------------ raw health (hysteresis)
    def _update_raw(self, fired: list[str], first_reason: str | None, streak: HealthVerdict) -> str:
        """Move the raw health and return its reason."""
        needed = self.detection.recovery_threshold
        if fired:
            self._raw, self._held = Health.unhealthy, fired
            return first_reason or ""
        if self._raw is not Health.healthy and self._clean_streak >= needed:
            self._raw = Health.healthy
        if self._raw is Health.unhealthy:
            return (f"still unhealthy ({', '.join(self._held)}): {self._clean_streak} of {needed} "
                    "successes in a row with every signal clear needed to be healthy")
        return streak.reason

    # ------------------------------------------------------------------ effective health (dwell, flaps)
    def _settle(self, now: float) -> str | None:
        """Apply the raw health once it has held for ``min_dwell``; the pending reason otherwise."""
        eff = self._eff
        if self._raw is eff.health:
            eff.pending = None
            return None
        if eff.pending is None or eff.pending[0] is not self._raw:
            eff.pending = (self._raw, now)
        held = now - eff.pending[1]
        dwell = self.detection.min_dwell
        if held >= dwell:
            self._transition(now)
            return None
        return f"pending: {self._raw.value} for {_num(held)} s of {_num(dwell)} s dwell"

    def _transition(self, now: float) -> None:
        eff = self._eff
        if eff.health is not Health.unknown:
            self._flap_times.append(now)
        eff.health, eff.since, eff.pending = self._raw, now, None
        self._transitions.append((now, self._raw))
        if self._raw is Health.unhealthy:
            eff.detected_at, eff.recovered_at = now, None
            eff.frozen_first_failure = self._marks.first_failure_at
        else:
            eff.recovered_at, eff.detected_at = now, None
            eff.frozen_first_success = self._marks.first_success_at

    def _flap_count(self, now: float) -> int:
        horizon = now - self.detection.flap.window
        while self._flap_times and self._flap_times[0] < horizon:
            self._flap_times.popleft()
        return len(self._flap_times)

    def _stamp(self, v: EndpointVerdict) -> None:
        """Fill the verdict's timestamps: frozen for the effective health, the raw streaks otherwise."""
        eff = self._eff
        v.detected_at, v.recovered_at = eff.detected_at, eff.recovered_at
        unhealthy, healthy = eff.health is Health.unhealthy, eff.health is Health.healthy
        v.first_failure_at = eff.frozen_first_failure if unhealthy else self._marks.first_failure_at
        v.first_success_at = eff.frozen_first_success if healthy else self._marks.first_success_at
