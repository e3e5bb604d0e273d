"""SignalTracker: latency percentile, error rate, kind counts, hysteresis, dwell, flapping (pure, no I/O)."""
from __future__ import annotations

import json

import pytest

from failover_engine.detection.health import Health
from failover_engine.core.model import Detection, ErrorRateSignal, FlapGuard, LatencySignal
from failover_engine.detection.results import FailureKind, ProbeResult
from failover_engine.detection.signals import EndpointVerdict, SignalTracker, check_latency, nearest_rank

T0 = 1_700_000_000.0
LETTER = {"U": Health.unknown, "H": Health.healthy, "X": Health.unhealthy}


class FakeClock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def ok(at: float, latency_ms: float = 10.0) -> ProbeResult:
    return ProbeResult(True, FailureKind.none, f"ok 200 in {latency_ms:.0f} ms", latency_ms, at, "a")


def fail(at: float, kind: FailureKind = FailureKind.refused, latency_ms: float | None = None) -> ProbeResult:
    return ProbeResult(False, kind, f"{kind.value} failure", latency_ms, at, "a")


def tracker(**detection: object) -> tuple[SignalTracker, FakeClock]:
    clock = FakeClock()
    return SignalTracker("a", Detection(**detection), clock=clock), clock


def feed(t: SignalTracker, clock: FakeClock, results: list[ProbeResult]) -> list[EndpointVerdict]:
    """Observe each result with the clock at the result's time."""
    out = []
    for r in results:
        clock.now = r.at
        out.append(t.observe(r))
    return out


def pattern(text: str, start: float = T0, step: float = 1.0) -> list[ProbeResult]:
    """'S' success (10 ms), 'L' slow success (500 ms), 'F' refused, 'T' timeout, 'D' dns."""
    make = {"S": ok, "L": lambda at: ok(at, 500.0), "F": fail,
            "T": lambda at: fail(at, FailureKind.timeout), "D": lambda at: fail(at, FailureKind.dns)}
    return [make[c](start + i * step) for i, c in enumerate(text)]


def letters(verdicts: list[EndpointVerdict]) -> str:
    back = {v: k for k, v in LETTER.items()}
    return "".join(back[v.health] for v in verdicts)


# --------------------------------------------------------------------------- latency
@pytest.mark.parametrize("values, percentile, expected", [
    ([5.0], 95, 5.0),
    ([float(v) for v in range(1, 11)], 50, 5.0),
    ([float(v) for v in range(1, 11)], 70, 7.0),  # 70 * 10 / 100 is exactly rank 7, no float drift
    ([float(v) for v in range(1, 11)], 90, 9.0),
    ([float(v) for v in range(1, 11)], 95, 10.0),
    ([float(v) for v in range(10, 0, -1)], 100, 10.0),
])
def test_nearest_rank(values, percentile, expected):
    assert nearest_rank(values, percentile) == expected


def test_latency_percentile_fires_with_its_reason():
    t, clock = tracker(latency=LatencySignal(limit=0.3, window=20, min_samples=5))
    results = [ok(T0 + i, 100.0) for i in range(18)] + [ok(T0 + 18, 412.0), ok(T0 + 19, 412.0)]
    v = feed(t, clock, results)[-1]
    assert v.health is Health.unhealthy
    assert v.signals == ["latency"]
    assert v.reason == "p95 latency 412 ms > 300 ms over last 20 probes"
    assert v.reasons == [v.reason] and v.latency_p == 412.0


def test_latency_needs_min_samples():
    t, clock = tracker(latency=LatencySignal(limit=0.3, window=20, min_samples=5))
    verdicts = feed(t, clock, pattern("LLLL"))
    assert all(v.latency_p is None and "latency" not in v.signals for v in verdicts)
    assert feed(t, clock, pattern("L", start=T0 + 4))[-1].signals == ["latency"]


def test_latency_samples_are_answers_not_refusals():
    spec = LatencySignal(limit=0.1, percentile=100, window=5, min_samples=1)
    assert check_latency(spec, [fail(T0), fail(T0 + 1, FailureKind.timeout)]) == (None, None)
    p, why = check_latency(spec, [ok(T0, 20.0), fail(T0 + 1, FailureKind.slow, 900.0)])
    assert p == 900.0 and why is not None  # an answer that failed for being slow is a sample
    assert check_latency(spec, [ok(T0, 20.0), fail(T0 + 1, FailureKind.status, 900.0)])[0] == 20.0


# --------------------------------------------------------------------------- error rate, kinds
def test_error_rate_spike_fires_with_its_reason():
    t, clock = tracker(failure_threshold=5, error_rate=ErrorRateSignal(threshold=0.5, window=20, min_samples=10))
    seq = "SFFSFFSFSFFSFFSFSFSF"  # 12 of 20 failed, never 5 in a row
    assert seq.count("F") == 12
    v = feed(t, clock, pattern(seq))[-1]
    assert v.health is Health.unhealthy and v.signals == ["error_rate"]
    assert v.reason == "error rate 60% >= 50% over last 20 probes"
    assert v.error_rate == pytest.approx(0.6)


def test_error_rate_waits_for_min_samples():
    t, clock = tracker(failure_threshold=5, error_rate=ErrorRateSignal(threshold=0.5, window=20, min_samples=10))
    verdicts = feed(t, clock, pattern("FSFSFSFSF"))
    assert all(v.error_rate is None and v.health is not Health.unhealthy for v in verdicts)
    assert feed(t, clock, pattern("S", start=T0 + 9))[-1].signals == ["error_rate"]


@pytest.mark.parametrize("kind", [FailureKind.timeout, FailureKind.refused, FailureKind.dns,
                                  FailureKind.tls, FailureKind.status])
def test_each_failure_kind_is_counted_on_its_own(kind):
    t, clock = tracker(failure_threshold=10)
    v = feed(t, clock, [fail(T0 + i, kind) for i in range(3)] + [ok(T0 + 3)])[-1]
    assert v.counts[kind.value] == 3 and v.totals[kind.value] == 3
    assert sum(v.counts.values()) == 3


def test_timeouts_refusals_and_dns_failures_are_reported_separately():
    t, clock = tracker(failure_threshold=10, error_rate=ErrorRateSignal(window=4, min_samples=100))
    v = feed(t, clock, pattern("TTFDDDS"))[-1]
    assert v.totals["timeout"] == 2 and v.totals["refused"] == 1 and v.totals["dns"] == 3
    assert (v.counts["timeout"], v.counts["refused"], v.counts["dns"]) == (0, 0, 3)  # window: last 4
    assert json.loads(json.dumps(v.to_dict()))["counts"]["dns"] == 3


# --------------------------------------------------------------------------- hysteresis, combination
@pytest.mark.parametrize("seq, expected", [
    ("SS", "UH"),
    ("FFF", "UUX"),
    ("SSFFSFFF", "UHHHHHHX"),
    ("FFFSFSS", "UUXXXXH"),  # recovery needs 2 successes in a row
])
def test_consecutive_hysteresis(seq, expected):
    t, clock = tracker(failure_threshold=3, recovery_threshold=2)
    verdicts = feed(t, clock, pattern(seq))
    assert letters(verdicts) == expected
    assert all(("consecutive" in v.signals) == (v.health is Health.unhealthy) for v in verdicts)


def test_latency_recovery_needs_clean_window_and_recovery_streak():
    t, clock = tracker(recovery_threshold=2, latency=LatencySignal(limit=0.3, percentile=100, window=5, min_samples=5))
    verdicts = feed(t, clock, pattern("SSSSS" + "L" + "SSSS" + "S" + "S"))
    assert letters(verdicts) == "UHHHH" + "X" + "XXXX" + "X" + "H"
    assert verdicts[9].signals == ["latency"]  # the slow answer is still in the window
    recovering = verdicts[10]
    assert recovering.signals == [] and recovering.reason.startswith("still unhealthy (latency): 1 of 2")


def test_every_firing_signal_is_listed_and_the_consecutive_one_leads():
    t, clock = tracker(failure_threshold=2, latency=LatencySignal(limit=0.1, percentile=100, window=4, min_samples=1),
                       error_rate=ErrorRateSignal(threshold=0.5, window=4, min_samples=4))
    results = [ok(T0, 50.0), ok(T0 + 1, 50.0), fail(T0 + 2, FailureKind.slow, 500.0),
               fail(T0 + 3, FailureKind.slow, 500.0)]
    v = feed(t, clock, results)[-1]
    assert v.signals == ["consecutive", "latency", "error_rate"]
    assert len(v.reasons) == 3 and v.reason == v.reasons[0]
    assert v.reason.startswith("2 consecutive failures")
    assert v.counts["slow"] == 2


@pytest.mark.parametrize("seq, expected", [
    # error rate 50% over 4 with one failure in a row: unhealthy although the streak never fires
    ("SSFSFS", "UHHHXX"),
    # back under 50% but only 1 clean success: still unhealthy; then 2 in a row: healthy
    ("SSFSFSSS", "UHHHXXXH"),
])
def test_window_signal_alone_makes_unhealthy_and_holds_recovery(seq, expected):
    t, clock = tracker(failure_threshold=3, recovery_threshold=2,
                       error_rate=ErrorRateSignal(threshold=0.5, window=4, min_samples=4))
    assert letters(feed(t, clock, pattern(seq))) == expected


# --------------------------------------------------------------------------- timestamps
def test_timestamps_of_detection_and_recovery():
    t, clock = tracker(failure_threshold=3, recovery_threshold=2)
    verdicts = feed(t, clock, pattern("SSFFFFSS", start=T0))
    down = verdicts[4]
    assert (down.first_failure_at, down.detected_at, down.since) == (T0 + 2, T0 + 4, T0 + 4)
    assert verdicts[6].first_failure_at == T0 + 2 and verdicts[6].first_success_at == T0 + 6
    up = verdicts[7]
    assert (up.first_success_at, up.recovered_at, up.detected_at, up.first_failure_at) == (T0 + 6, T0 + 7, None, None)
    assert t.transitions == [(T0 + 1, Health.healthy), (T0 + 4, Health.unhealthy), (T0 + 7, Health.healthy)]


# --------------------------------------------------------------------------- dwell
def test_min_dwell_delays_effective_transitions():
    t, clock = tracker(failure_threshold=1, recovery_threshold=1, min_dwell=1.0)
    first = feed(t, clock, [ok(T0), ok(T0 + 0.5), ok(T0 + 1.0)])
    assert letters(first) == "UUH"
    assert first[0].reason.startswith("pending: healthy for 0 s of 1 s dwell")
    v = feed(t, clock, [fail(T0 + 2.0), fail(T0 + 2.3)])
    assert [x.health for x in v] == [Health.healthy, Health.healthy]
    assert v[1].reason.startswith("pending: unhealthy for 0.3 s of 1 s dwell")
    assert v[1].pending is Health.unhealthy and v[1].signals == ["consecutive"]
    down = feed(t, clock, [fail(T0 + 3.0)])[0]
    assert down.health is Health.unhealthy and down.pending is None
    assert (down.first_failure_at, down.detected_at) == (T0 + 2.0, T0 + 3.0)


def test_a_blip_shorter_than_the_dwell_never_takes_effect():
    t, clock = tracker(failure_threshold=1, recovery_threshold=1, min_dwell=5.0)
    feed(t, clock, [ok(T0), ok(T0 + 5)])
    verdicts = feed(t, clock, [fail(T0 + 6), fail(T0 + 8), ok(T0 + 10), ok(T0 + 20)])
    assert all(v.health is Health.healthy for v in verdicts)
    assert verdicts[-1].pending is None and t.transitions == [(T0 + 5, Health.healthy)]


# --------------------------------------------------------------------------- flapping
def test_flapping_sets_past_max_transitions_and_clears_after_the_window():
    t, clock = tracker(failure_threshold=1, recovery_threshold=1, flap=FlapGuard(max_transitions=2, window=10))
    verdicts = feed(t, clock, pattern("SFSF"))  # unknown->healthy is not a flap; then 3 flips
    assert [v.flap_count for v in verdicts] == [0, 1, 2, 3]
    assert [v.flapping for v in verdicts] == [False, False, False, True]
    fewer = feed(t, clock, [fail(T0 + 11.5)])[0]  # the flip at T0+1 left the 10 s window
    assert not fewer.flapping and fewer.flap_count == 2
    cleared = feed(t, clock, [fail(T0 + 13.5)])[0]
    assert not cleared.flapping and cleared.flap_count == 0


@pytest.mark.parametrize("at, flapping", [(T0 + 5, True), (T0 + 11, True), (T0 + 11.5, False)])
def test_flapping_holds_while_the_window_holds_too_many(at, flapping):
    t, clock = tracker(failure_threshold=1, recovery_threshold=1, flap=FlapGuard(max_transitions=2, window=10))
    feed(t, clock, pattern("SFSF"))  # flips at T0+1, +2, +3
    assert feed(t, clock, [fail(at)])[0].flapping is flapping


# --------------------------------------------------------------------------- the verdict
def test_verdict_before_any_probe_and_json_shape():
    t, clock = tracker()
    assert t.verdict.health is Health.unknown and t.verdict.last is None and t.verdict.reason == "no probe yet"
    v = feed(t, clock, pattern("SS"))[-1]
    data = json.loads(json.dumps(v.to_dict()))
    assert data["health"] == "healthy" and data["last"]["ok"] is True and data["pending"] is None
    assert v.healthy and v.health == "healthy"  # a str enum: selection.Verdict compatible
    assert t.verdict == v
