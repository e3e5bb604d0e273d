"""HealthTracker: thresholds, hysteresis, streak resets and timestamps (pure, no I/O)."""
from __future__ import annotations

import json

import pytest

from failover_engine.detection.health import Health, HealthTracker, HealthVerdict
from failover_engine.detection.results import FailureKind, ProbeResult

T0 = 1_700_000_000.0
LETTER = {"U": Health.unknown, "H": Health.healthy, "X": Health.unhealthy}


def ok(at: float) -> ProbeResult:
    return ProbeResult(True, FailureKind.none, "ok 200 in 3 ms", 3.0, at, "a")


def fail(at: float, reason: str = "connection refused") -> ProbeResult:
    return ProbeResult(False, FailureKind.refused, reason, None, at, "a")


def feed(tracker: HealthTracker, pattern: str) -> list[HealthVerdict]:
    """Feed 'S' (success) / 'F' (failure) results at T0, T0+1, ... and return every verdict."""
    return [tracker.observe(ok(T0 + i) if c == "S" else fail(T0 + i)) for i, c in enumerate(pattern)]


def test_starts_unknown_before_any_probe():
    v = HealthTracker("a", 3, 2).verdict
    assert (v.health, v.consecutive_failures, v.consecutive_successes, v.last) == (Health.unknown, 0, 0, None)
    assert not v.healthy


@pytest.mark.parametrize("threshold", [1, 2, 3, 5])
def test_unhealthy_exactly_at_failure_threshold(threshold):
    verdicts = feed(HealthTracker("a", threshold, 2), "F" * threshold)
    assert all(v.health is Health.unknown for v in verdicts[:-1])
    last = verdicts[-1]
    assert last.health is Health.unhealthy
    assert last.consecutive_failures == threshold
    assert last.first_failure_at == T0
    assert last.detected_at == T0 + threshold - 1


@pytest.mark.parametrize("threshold", [1, 2, 4])
def test_healthy_exactly_at_recovery_threshold_from_unhealthy(threshold):
    tracker = HealthTracker("a", 1, threshold)
    feed(tracker, "F")
    verdicts = [tracker.observe(ok(T0 + 10 + i)) for i in range(threshold)]
    assert all(v.health is Health.unhealthy for v in verdicts[:-1])
    last = verdicts[-1]
    assert last.healthy and last.consecutive_successes == threshold
    assert (last.first_success_at, last.recovered_at) == (T0 + 10, T0 + 10 + threshold - 1)
    assert (last.first_failure_at, last.detected_at) == (None, None)


@pytest.mark.parametrize(
    "failure_threshold, recovery_threshold, pattern, expected",
    [
        (3, 2, "SS", "UH"),
        (3, 2, "S", "U"),
        (3, 2, "SSFF", "UHHH"),  # two failures are not enough
        (3, 2, "SSFFF", "UHHHX"),
        (3, 2, "SSFFSFF", "UHHHHHH"),  # a success resets the failure streak
        (3, 2, "FFFS", "UUXX"),  # one success is not enough to recover
        (3, 2, "FFFSFSS", "UUXXXXH"),  # a failure resets the recovery streak
        (3, 2, "FFFSS", "UUXXH"),
        (2, 2, "FSFSFS", "UUUUUU"),  # flapping never decides
        (1, 1, "SFSF", "HXHX"),  # thresholds of 1: no hysteresis
        (2, 3, "FFSSFSSS", "UXXXXXXH"),
    ],
)
def test_hysteresis(failure_threshold, recovery_threshold, pattern, expected):
    verdicts = feed(HealthTracker("a", failure_threshold, recovery_threshold), pattern)
    assert "".join(next(k for k, h in LETTER.items() if h is v.health) for v in verdicts) == expected


@pytest.mark.parametrize("pattern, failures, successes", [
    ("FFS", 0, 1), ("SSF", 1, 0), ("FFSFF", 2, 0), ("SSFSS", 0, 2), ("FFFFFF", 6, 0),
])
def test_streak_counters_reset_on_the_other_outcome(pattern, failures, successes):
    last = feed(HealthTracker("a", 10, 10), pattern)[-1]
    assert (last.consecutive_failures, last.consecutive_successes) == (failures, successes)


def test_pending_failure_streak_timestamps_restart_after_a_success():
    tracker = HealthTracker("a", 3, 1)
    verdicts = feed(tracker, "SFFSFF")
    assert verdicts[2].first_failure_at == T0 + 1
    assert verdicts[3].first_failure_at is None  # streak broken
    assert verdicts[5].first_failure_at == T0 + 4
    assert verdicts[5].detected_at is None and verdicts[5].healthy
    crossing = tracker.observe(fail(T0 + 6))
    assert (crossing.first_failure_at, crossing.detected_at) == (T0 + 4, T0 + 6)


def test_detection_times_survive_a_lone_success_while_unhealthy():
    tracker = HealthTracker("a", 2, 2)
    verdicts = feed(tracker, "SSFFSF")
    assert verdicts[3].health is Health.unhealthy
    assert (verdicts[3].first_failure_at, verdicts[3].detected_at) == (T0 + 2, T0 + 3)
    assert verdicts[4].first_success_at == T0 + 4  # a recovery streak is pending
    assert (verdicts[4].first_failure_at, verdicts[4].detected_at) == (T0 + 2, T0 + 3)
    assert verdicts[5].first_success_at is None  # ... and broken again
    assert (verdicts[5].first_failure_at, verdicts[5].detected_at) == (T0 + 2, T0 + 3)
    assert verdicts[5].recovered_at is None


def test_recovery_times_survive_a_lone_failure_while_healthy():
    verdicts = feed(HealthTracker("a", 3, 2), "SSSF")
    assert (verdicts[3].first_success_at, verdicts[3].recovered_at) == (T0, T0 + 1)
    assert verdicts[3].first_failure_at == T0 + 3 and verdicts[3].detected_at is None


def test_first_signal_never_after_detection():
    verdicts = feed(HealthTracker("a", 4, 3), "SSSFSFFFFSSFSSS")
    for v in verdicts:
        if v.detected_at is not None:
            assert v.first_failure_at is not None and v.first_failure_at <= v.detected_at
        if v.recovered_at is not None:
            assert v.first_success_at is not None and v.first_success_at <= v.recovered_at


@pytest.mark.parametrize("pattern, reason", [
    ("FFF", "3 consecutive failures (last: connection refused)"),
    ("FFFF", "4 consecutive failures (last: connection refused)"),
    ("SS", "2 consecutive successes"),
    ("SSF", "still healthy: 1 consecutive failure (last: connection refused), 3 needed to be unhealthy"),
    ("F", "still unknown: 1 consecutive failure (last: connection refused), 3 needed to be unhealthy"),
    ("FFFS", "still unhealthy: 1 consecutive success, 2 needed to be healthy"),
])
def test_reason_says_why(pattern, reason):
    assert feed(HealthTracker("a", 3, 2), pattern)[-1].reason == reason


def test_verdicts_are_snapshots_and_serialise():
    tracker = HealthTracker("a", 2, 2)
    first = tracker.observe(fail(T0))
    tracker.observe(fail(T0 + 1))
    assert first.health is Health.unknown and first.consecutive_failures == 1  # not mutated later
    data = json.loads(json.dumps(tracker.verdict.to_dict()))
    assert data["health"] == "unhealthy" and data["endpoint"] == "a"
    assert data["last"]["kind"] == "refused" and data["detected_at"] == T0 + 1


@pytest.mark.parametrize("failure_threshold, recovery_threshold", [(0, 1), (1, 0), (-1, 2)])
def test_thresholds_below_one_are_refused(failure_threshold, recovery_threshold):
    with pytest.raises(ValueError, match="at least 1"):
        HealthTracker("a", failure_threshold, recovery_threshold)
