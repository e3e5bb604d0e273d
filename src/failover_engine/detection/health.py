"""Health verdicts from consecutive probe results, with hysteresis.

A :class:`HealthTracker` starts ``unknown``. ``failure_threshold`` consecutive failures make
it ``unhealthy``; ``recovery_threshold`` consecutive successes make it ``healthy``. Shorter
streaks leave the health as it is, so one lost probe does not flip an endpoint.

Timestamps are the ``at`` of probe results (``time.time()`` when the probe started):

* ``first_failure_at`` / ``detected_at`` - the first failure of the failure streak and the
  failure that reached ``failure_threshold``. While the endpoint is unhealthy they keep
  describing the streak that made it unhealthy (a lone success does not erase when the outage
  was detected); otherwise ``first_failure_at`` is the start of the pending failure streak
  (``None`` after a success) and ``detected_at`` is ``None``.
* ``first_success_at`` / ``recovered_at`` - the same for successes and ``healthy``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from failover_engine.detection.results import ProbeResult


class Health(str, Enum):
    unknown = "unknown"
    healthy = "healthy"
    unhealthy = "unhealthy"


@dataclass
class HealthVerdict:
    """What a tracker concludes about one endpoint after a probe."""

    endpoint: str
    health: Health
    reason: str
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    first_failure_at: float | None = None
    detected_at: float | None = None
    first_success_at: float | None = None
    recovered_at: float | None = None
    last: ProbeResult | None = None

    @property
    def healthy(self) -> bool:
        return self.health is Health.healthy

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``health`` as its string value, ``last`` as a dict)."""
        return {
            "endpoint": self.endpoint,
            "health": self.health.value,
            "reason": self.reason,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "first_failure_at": self.first_failure_at,
            "detected_at": self.detected_at,
            "first_success_at": self.first_success_at,
            "recovered_at": self.recovered_at,
            "last": self.last.to_dict() if self.last is not None else None,
        }


def _plural(n: int, word: str) -> str:
    return f"{n} consecutive {word}{'' if n == 1 else ('es' if word.endswith('s') else 's')}"


class HealthTracker:
    """Turns the probe results of one endpoint, in order, into health verdicts."""

    def __init__(self, endpoint: str, failure_threshold: int, recovery_threshold: int):
        if failure_threshold < 1 or recovery_threshold < 1:
            raise ValueError(
                f"thresholds must be at least 1 (failure_threshold={failure_threshold}, "
                f"recovery_threshold={recovery_threshold})"
            )
        self.endpoint = endpoint
        self.failure_threshold = failure_threshold
        self.recovery_threshold = recovery_threshold
        self._verdict = HealthVerdict(endpoint, Health.unknown, "no probe yet", 0, 0)

    @property
    def verdict(self) -> HealthVerdict:
        """The latest verdict (a copy; ``unknown`` before the first probe)."""
        return replace(self._verdict)

    def observe(self, result: ProbeResult) -> HealthVerdict:
        """Take one probe result into account and return the new verdict."""
        v = replace(self._verdict)
        v.last = result
        if result.ok:
            self._on_success(v, result.at)
        else:
            self._on_failure(v, result.at)
        v.reason = self._reason(v, result)
        self._verdict = v
        return replace(v)

    def _on_failure(self, v: HealthVerdict, at: float) -> None:
        v.consecutive_failures += 1
        v.consecutive_successes = 0
        if v.health is not Health.healthy:
            v.first_success_at = None  # a pending recovery streak is broken
        if v.health is Health.unhealthy:
            return  # keeps describing the streak that made it unhealthy
        if v.consecutive_failures == 1:
            v.first_failure_at = at
        if v.consecutive_failures >= self.failure_threshold:
            v.health, v.detected_at = Health.unhealthy, at
            v.first_success_at = v.recovered_at = None

    def _on_success(self, v: HealthVerdict, at: float) -> None:
        v.consecutive_successes += 1
        v.consecutive_failures = 0
        if v.health is not Health.unhealthy:
            v.first_failure_at = None  # a pending failure streak is broken
        if v.health is Health.healthy:
            return  # keeps describing the streak that made it healthy
        if v.consecutive_successes == 1:
            v.first_success_at = at
        if v.consecutive_successes >= self.recovery_threshold:
            v.health, v.recovered_at = Health.healthy, at
            v.first_failure_at = v.detected_at = None

    def _reason(self, v: HealthVerdict, result: ProbeResult) -> str:
        if not result.ok:
            streak = f"{_plural(v.consecutive_failures, 'failure')} (last: {result.reason})"
            if v.health is Health.unhealthy:
                return streak
            return f"still {v.health.value}: {streak}, {self.failure_threshold} needed to be unhealthy"
        streak = _plural(v.consecutive_successes, "success")
        if v.health is Health.healthy:
            return streak
        return f"still {v.health.value}: {streak}, {self.recovery_threshold} needed to be healthy"
