"""Quorum: the k-of-n rule, partition self-check, the report format and the exchanges (pure + tmp dir)."""
from __future__ import annotations

import json
import os
import threading
from types import SimpleNamespace

import pytest

from failover_engine.detection.health import Health
from failover_engine.core.model import Detection
from failover_engine.detection.results import FailureKind, ProbeResult
from failover_engine.detection.quorum import (
    DirectoryExchange,
    InMemoryExchange,
    ObserverReport,
    aggregate,
    aggregate_all,
    endpoint_key,
    self_partitioned,
)
from failover_engine.detection.signals import SignalTracker

NOW = 1_700_000_000.0
TTL = 30.0
KEY = endpoint_key("web", "a")


def report(observer: str, health: str | None, *, at: float = NOW, partitioned: bool = False,
           verdict_at: float | None = None) -> ObserverReport:
    verdicts = {} if health is None else {
        KEY: {"health": health, "reason": f"{observer} sees {health}", "at": verdict_at or at}}
    return ObserverReport(observer, at, verdicts, control_ok=not partitioned, partitioned=partitioned)


def reports_of(healths: list[str]) -> list[ObserverReport]:
    return [report(f"obs-{chr(ord('a') + i)}", h) for i, h in enumerate(healths)]


def probe(ok: bool) -> ProbeResult:
    return ProbeResult(ok, FailureKind.none if ok else FailureKind.timeout, "x", 1.0 if ok else None, NOW)


# --------------------------------------------------------------------------- k of n
@pytest.mark.parametrize("healths, required, expected", [
    (["unhealthy", "healthy", "healthy"], 2, Health.healthy),  # one observer cut off: no failover
    (["unhealthy", "unknown", "unknown"], 2, Health.unknown),
    (["unhealthy", "unhealthy", "healthy"], 2, Health.unhealthy),
    (["unhealthy", "unhealthy", "unhealthy"], 2, Health.unhealthy),
    (["unhealthy", "unhealthy", "healthy"], 3, Health.unknown),
    (["healthy", "healthy", "unknown"], 2, Health.healthy),
    (["healthy", "unknown", "unknown"], 2, Health.unknown),
    (["unhealthy", "healthy", "healthy"], 1, Health.unhealthy),  # a quorum of 1: any one observer suffices
    ([], 1, Health.unknown),
])
def test_k_of_n(healths, required, expected):
    v = aggregate(reports_of(healths), KEY, required, NOW, TTL)
    assert v.health is expected
    assert v.down_votes == healths.count("unhealthy") and v.up_votes == healths.count("healthy")
    assert v.required == required and isinstance(v.reason, str)


def test_one_of_three_down_is_not_unhealthy():
    v = aggregate(reports_of(["unhealthy", "healthy", "healthy"]), KEY, 2, NOW, TTL)
    assert v.health is not Health.unhealthy
    assert v.reason == "2 of 3 observers report up (quorum 2); 1 report down"


def test_two_of_three_down_is_unhealthy_with_the_first_reason():
    v = aggregate(reports_of(["unhealthy", "unhealthy", "healthy"]), KEY, 2, NOW, TTL)
    assert v.health is Health.unhealthy and v.voters == ["obs-a", "obs-b", "obs-c"]
    assert v.reason == "2 of 3 observers report down (quorum 2): obs-a: obs-a sees unhealthy; 1 report up"


def test_partitioned_observer_abstains():
    reps = [report("obs-a", "unhealthy"), report("obs-b", "unhealthy", partitioned=True)]
    v = aggregate(reps, KEY, 2, NOW, TTL)
    assert v.health is Health.unknown and v.down_votes == 1
    assert v.abstained == ["obs-b"] and v.voters == ["obs-a"]
    assert v.reason == "no quorum: 1 of 2 required observers report down; obs-b abstains (partitioned)"


@pytest.mark.parametrize("stale", [
    {"at": NOW - TTL - 1},  # the whole report is old
    {"verdict_at": NOW - TTL - 1},  # a fresh report carrying an old verdict
    {"at": NOW + TTL + 1},  # a clock that far ahead cannot be trusted
])
def test_stale_reports_and_verdicts_are_ignored(stale):
    reps = [report("obs-a", "unhealthy"), report("obs-b", "unhealthy", **stale), report("obs-c", "healthy")]
    v = aggregate(reps, KEY, 2, NOW, TTL)
    assert v.health is Health.unknown and v.abstained == ["obs-b"]
    assert v.abstentions["obs-b"].startswith("stale")


def test_newest_report_of_an_observer_counts():
    reps = [report("obs-a", "unhealthy", at=NOW - 5), report("obs-a", "healthy", at=NOW - 1),
            report("obs-b", "healthy")]
    v = aggregate(reps, KEY, 2, NOW, TTL)
    assert v.health is Health.healthy and v.up_votes == 2 and v.down_votes == 0


def test_expected_observers_without_a_report_abstain():
    v = aggregate(reports_of(["unhealthy"]), KEY, 2, NOW, TTL, observers=["obs-a", "obs-b"])
    assert v.abstentions == {"obs-b": "no report"}
    assert v.reason.endswith("obs-b abstains (no report)")


def test_missing_verdict_abstains_and_aggregate_all_covers_every_key():
    other = endpoint_key("web", "b")
    reps = reports_of(["unhealthy", "unhealthy"])
    out = aggregate_all(reps, [KEY, other], 2, NOW, TTL)
    assert out[KEY].health is Health.unhealthy
    assert out[other].health is Health.unknown
    assert out[other].abstentions == {"obs-a": "no verdict", "obs-b": "no verdict"}
    assert json.loads(json.dumps(out[KEY].to_dict()))["health"] == "unhealthy"


def test_required_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        aggregate([], KEY, 0, NOW, TTL)


def test_one_observer_cut_off_cannot_fail_over_end_to_end():
    """Three in-process observers with trackers; obs-a alone loses the endpoint."""
    det = Detection(failure_threshold=2, recovery_threshold=1)
    exchange = InMemoryExchange(ttl=TTL)
    for name, up in (("obs-a", False), ("obs-b", True), ("obs-c", True)):
        tracker = SignalTracker(KEY, det, clock=lambda: NOW)
        for _i in range(3):
            tracker.observe(probe(up))
        exchange.publish(ObserverReport.from_verdicts(name, NOW, {KEY: tracker.verdict}))
    v = aggregate(exchange.collect(NOW), KEY, 2, NOW, TTL)
    assert v.health is Health.healthy and v.down_votes == 1


# --------------------------------------------------------------------------- partition self-check
@pytest.mark.parametrize("endpoints, control, expected", [
    ([False, False], [False, False], True),  # everything lost at once: it is us
    ([False], [False], True),
    ([False, False], [True, False], False),  # a control target answers: the endpoints are down
    ([False, False], [True], False),
    ([True, False], [False], False),  # an endpoint answers: the control target is the problem
    ([False, False], [], True),  # no control targets: all of >= 2 endpoints down at once
    ([False], [], False),  # a single endpoint down is an outage, not a partition
    ([True, True], [], False),
    ([], [False], False),  # nothing watched, nothing to judge
])
def test_self_partitioned(endpoints, control, expected):
    results = {f"web/{i}": probe(ok) for i, ok in enumerate(endpoints)}
    assert self_partitioned(results, control) is expected


def test_self_partitioned_accepts_verdicts():
    det = Detection(failure_threshold=5)
    tracker = SignalTracker(KEY, det, clock=lambda: NOW)
    verdict = tracker.observe(probe(False))  # still unknown, but its last probe failed
    assert self_partitioned({KEY: verdict, "web/b": SimpleNamespace(health="unhealthy")}, [False])
    assert not self_partitioned({KEY: verdict, "web/b": SimpleNamespace(health=Health.healthy)}, [False])


# --------------------------------------------------------------------------- report format
def test_report_json_round_trip_keeps_extra_keys():
    rep = report("obs-a", "unhealthy")
    rep.verdicts[KEY]["flapping"] = True
    back = ObserverReport.from_json(rep.to_json())
    assert back == rep and back.verdicts[KEY]["flapping"] is True


@pytest.mark.parametrize("text", [
    "", "{not json", "[]", '{"version": 2}', '{"version": 1, "observer": "../x", "at": 1}',
    '{"version": 1, "observer": "a", "at": "now"}', '{"version": 1, "observer": "a", "at": true}',
    '{"version": 1, "observer": "a", "at": 1, "verdicts": {"k": {"health": "meh", "reason": ""}}}',
    '{"version": 1, "observer": "a", "at": 1, "verdicts": {"k": {"health": "healthy"}}}',
    '{"version": 1, "observer": "a", "at": 1, "partitioned": "no"}',
    '{"version": 1, "observer": "a", "at": 1, "control_ok": 1}',
])
def test_malformed_reports_are_refused(text):
    with pytest.raises(ValueError):
        ObserverReport.from_json(text)


# --------------------------------------------------------------------------- exchanges
def test_in_memory_exchange_replaces_and_skips_stale():
    ex = InMemoryExchange(ttl=TTL)
    ex.publish(report("obs-a", "healthy", at=NOW - 1))
    ex.publish(report("obs-a", "unhealthy"))
    ex.publish(report("obs-b", "healthy", at=NOW - TTL - 1))
    got = ex.collect(NOW)
    assert [(r.observer, r.verdicts[KEY]["health"]) for r in got] == [("obs-a", "unhealthy")]


def test_in_memory_exchange_is_thread_safe():
    ex = InMemoryExchange()
    threads = [threading.Thread(target=lambda n=n: [ex.publish(report(f"obs-{n}", "healthy")) for _i in range(50)])
               for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r.observer for r in ex.collect(NOW)) == [f"obs-{n}" for n in range(8)]


def test_directory_exchange_round_trip_between_two_instances(tmp_path):
    one, two = DirectoryExchange(tmp_path, TTL), DirectoryExchange(tmp_path, TTL)  # as two processes would
    one.publish(report("obs-a", "unhealthy"))
    two.publish(report("obs-b", "healthy"))
    one.publish(report("obs-a", "healthy"))  # replaces obs-a's previous report
    for ex in (one, two):
        got = {r.observer: r for r in ex.collect(NOW)}
        assert set(got) == {"obs-a", "obs-b"} and got["obs-a"].verdicts[KEY]["health"] == "healthy"
    assert sorted(os.listdir(tmp_path)) == ["obs-a.json", "obs-b.json"]  # no temporary file left


def test_directory_exchange_skips_torn_garbage_stale_and_misnamed_files(tmp_path):
    ex = DirectoryExchange(tmp_path, TTL)
    ex.publish(report("obs-a", "unhealthy"))
    whole = report("obs-t", "healthy").to_json()
    (tmp_path / "obs-t.json").write_text(whole[: len(whole) // 2])  # torn write
    (tmp_path / "obs-g.json").write_bytes(b"\xff\xfe garbage")
    (tmp_path / "obs-x.json").write_text(report("obs-y", "healthy").to_json())  # names another observer
    (tmp_path / "obs-s.json").write_text(report("obs-s", "healthy", at=NOW - TTL - 5).to_json())
    (tmp_path / ".obs-a.123.tmp").write_text("{")  # an unfinished write of another process
    assert [r.observer for r in ex.collect(NOW)] == ["obs-a"]
    skipped = dict(ex.skipped)
    assert set(skipped) == {"obs-t.json", "obs-g.json", "obs-x.json", "obs-s.json"}
    assert skipped["obs-s.json"].startswith("stale") and skipped["obs-t.json"].startswith("unreadable")


@pytest.mark.parametrize("bad", [report("../escape", "healthy"), report("obs-a", "sideways")])
def test_exchanges_refuse_a_bad_report_at_publish(tmp_path, bad):
    with pytest.raises(ValueError):
        DirectoryExchange(tmp_path, TTL).publish(bad)
    with pytest.raises(ValueError):
        InMemoryExchange().publish(bad)
    assert os.listdir(tmp_path) == []
