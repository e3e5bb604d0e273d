"""What a drill's client saw, from its request log (failover_engine.core.client_log): the outage,
reaching the new routing, the expected client RTO, requests failed per phase, the drill's verdict."""
from __future__ import annotations

from typing import Any

import pytest

from failover_engine.core.client_log import (ClientRequest, client_figures, epoch, expected_client_rto,
                                             failed_per_phase, phase_bounds, stage_figures, stage_windows)
from failover_engine.core.timeline import Timeline

T0 = 1_800_000_000.0
INTERVAL = 0.05
OLD, NEW = ("192.0.2.10",), ("198.51.100.10",)


def timeline(first: float, detected: float, decided: float, applied: float, validated: float,
             propagated: float | None = None, ttl: float | None = None) -> dict[str, Any]:
    """A run's timeline as its report holds it (ISO timestamps, phases, RTOs), seconds after T0."""
    tl = Timeline("failure", T0 + first, T0 + detected, T0 + decided, T0 + applied, T0 + validated,
                  propagated_at=None if propagated is None else T0 + propagated, client_ttl=ttl)
    return tl.to_dict()


def run(target: dict[str, int], **times: Any) -> dict[str, Any]:
    return {"status": "succeeded", "plan": {"target": target}, "timeline": timeline(**times)}


def log(*spans: tuple[float, float, bool, tuple[str, ...], tuple[str, ...]]) -> list[ClientRequest]:
    """Requests every INTERVAL over each span, 5 ms into each slot (never on a phase's bound):
    (from, to, ok, answer, answer's endpoints)."""
    out = []
    for start, end, ok, answer, endpoints in spans:
        n = round((end - start) / INTERVAL)
        for i in range(n):
            out.append(ClientRequest(T0 + start + i * INTERVAL + 0.005, ok, endpoints[i % len(endpoints)], answer[i % len(answer)],
                                     answer, endpoints, 200 if ok else None, None if ok else "connection refused",
                                     ttl=1.0))
    return out


FAILOVER = run({"usw2": 100}, first=1.0, detected=1.5, decided=2.5, applied=2.6, validated=2.7, propagated=2.65,
               ttl=1.0)
# the primary goes down at 0.8; the client holds the old answer until its cache expires at 3.0
CLIENT = log((0.0, 0.8, True, OLD, ("use1",)), (0.8, 3.0, False, OLD, ("use1",)), (3.0, 5.0, True, NEW, ("usw2",)))


def test_the_outage_runs_from_the_first_failure_to_the_first_success_on_the_new_routing() -> None:
    fig = stage_figures(CLIENT, "failover", FAILOVER, (T0, T0 + 5.0), INTERVAL, slack=0.5)
    assert fig.first_failure_at == pytest.approx(T0 + 0.805)
    assert fig.reached_at == pytest.approx(T0 + 3.005) and fig.reached
    assert fig.outage_s == pytest.approx(2.2)
    assert fig.client_rto_s == pytest.approx(2.005)  # reached - the engine's first signal
    assert fig.failed == 44 and fig.requests == 100 and fig.failed_endpoints == ("use1",)
    assert fig.served == {"use1": 16, "usw2": 40}
    # the engine's client RTO (propagated 2.65 - first 1.0 + TTL 1) + interval + slack
    assert fig.expected_s == pytest.approx(1.65 + 1.0 + INTERVAL + 0.5)
    assert fig.within and "within the expected" in fig.verdict()


def test_a_client_later_than_expected_is_not_within() -> None:
    late = log((0.0, 0.8, True, OLD, ("use1",)), (0.8, 4.5, False, OLD, ("use1",)), (4.5, 5.0, True, NEW, ("usw2",)))
    fig = stage_figures(late, "failover", FAILOVER, (T0, T0 + 5.0), INTERVAL, slack=0.5)
    assert fig.reached and fig.client_rto_s == pytest.approx(3.505) and not fig.within
    assert "later than the expected 3200 ms" in fig.verdict()


def test_a_client_that_kept_the_old_answer_never_reached_the_new_routing() -> None:
    # a resolver holding the stale answer: failures until the primary came back, then the primary again
    stale = log((0.0, 0.8, True, OLD, ("use1",)), (0.8, 4.0, False, OLD, ("use1",)), (4.0, 5.0, True, OLD, ("use1",)))
    fig = stage_figures(stale, "failover", FAILOVER, (T0, T0 + 5.0), INTERVAL)
    assert not fig.reached and fig.outage_s is None and fig.client_rto_s is None and not fig.within
    assert fig.verdict() == "the client never reached the new routing (its requests to use1 failed)"


def test_no_failure_is_an_outage_of_zero_and_success_after_the_switch_reaches() -> None:
    back = run({"use1": 100}, first=1.0, detected=1.25, decided=2.0, applied=2.1, validated=2.2, propagated=2.2, ttl=1.0)
    moved = log((0.0, 2.5, True, NEW, ("usw2",)), (2.5, 4.0, True, OLD, ("use1",)))
    fig = stage_figures(moved, "failback", back, (T0, T0 + 4.0), INTERVAL)
    assert fig.outage_s == 0.0 and fig.failed == 0 and fig.reached_at == pytest.approx(T0 + 2.505) and fig.within


def test_a_success_on_the_old_routing_before_the_switch_does_not_count() -> None:
    # round robin over three zones, az2 down from 0.5: successes on az1/az3 go on, az2's fail
    zones = ("10.0.1.10", "10.0.2.10", "10.0.3.10")
    out = run({"az1": 100, "az3": 100}, first=1.0, detected=1.5, decided=2.5, applied=2.6, validated=2.7)
    reqs = [r if r.endpoint != "az2" or r.at < T0 + 0.5
            else ClientRequest(r.at, False, "az2", r.address, r.answer, r.answer_endpoints, error="refused")
            for r in log((0.0, 3.6, True, zones, ("az1", "az2", "az3")))]
    reqs += log((3.6, 5.0, True, (zones[0], zones[2]), ("az1", "az3")))
    fig = stage_figures(reqs, "failover", out, (T0, T0 + 5.0), INTERVAL, slack=0.5)
    assert fig.failed_endpoints == ("az2",) and fig.failed == 21
    assert fig.reached_at == pytest.approx(T0 + 3.605)  # the first success on an answer without az2
    # no resolve step: expected = the engine's RTO (1.7) + the longest TTL the client got (1) + interval + slack
    assert fig.expected_s == pytest.approx(1.7 + 1.0 + INTERVAL + 0.5) and fig.within


def test_requests_failed_per_phase_count_each_phase_of_the_timeline() -> None:
    phases = {p["phase"]: (p["requests"], p["failed"]) for p in failed_per_phase(CLIENT, FAILOVER["timeline"],
                                                                                 (T0, T0 + 5.0))}
    assert list(phases) == ["before signal", "detection", "decision", "apply", "validation", "propagation",
                            "after engine"]
    assert phases["before signal"] == (20, 4)     # 0.0-1.0: down from 0.8
    assert phases["detection"] == (10, 10)        # 1.0-1.5
    assert phases["decision"] == (20, 20)         # 1.5-2.5
    assert phases["apply"] == (2, 2)              # 2.5-2.6
    assert phases["validation"] == (2, 2)         # 2.6-2.7 (validation and propagation overlap)
    assert phases["propagation"] == (1, 1)        # 2.6-2.65
    assert phases["after engine"] == (46, 6)      # 2.7-5.0: the cache held the old answer until 3.0


def test_phase_bounds_start_apply_after_a_promotion_and_leave_out_phases_without_both_ends() -> None:
    tl = Timeline("failure", T0, T0 + 1, T0 + 2, T0 + 4, T0 + 5, promoted_at=T0 + 3).to_dict()
    assert [(n, a - T0, b - T0) for n, a, b in phase_bounds(tl)] == [
        ("detection", 0, 1), ("decision", 1, 2), ("promotion", 2, 3), ("apply", 3, 4), ("validation", 4, 5)]
    assert phase_bounds(None) == [] and phase_bounds({"timestamps": {"first_signal_at": None}}) == []


def test_stage_windows_split_the_client_log_at_each_runs_first_signal() -> None:
    back = run({"use1": 100}, first=8.0, detected=8.5, decided=9.0, applied=9.1, validated=9.2)
    windows = stage_windows([("failover", FAILOVER), ("failback", back), ("other", None)], T0, T0 + 12)
    assert [(n, a - T0, b - T0) for n, a, b in windows] == [("failover", 0.0, 8.0), ("failback", 8.0, 12.0)]


def test_expected_client_rto_and_epoch() -> None:
    assert expected_client_rto({"client_rto_s": 2.0, "rto_s": 1.0}, 0.05, 0.5) == pytest.approx(2.55)
    assert expected_client_rto({"client_rto_s": None, "rto_s": 1.0}, 0.05, 0.5, max_ttl=30) == pytest.approx(31.55)
    assert expected_client_rto({}, 0.05, 0.5) is None
    assert epoch("2027-01-15T08:00:00.250Z") == pytest.approx(1_800_000_000.25)
    assert epoch(12.5) == 12.5 and epoch(None) is None and epoch("not a time") is None and epoch(True) is None


def test_request_round_trip() -> None:
    r = CLIENT[30]
    assert ClientRequest.from_dict(r.to_dict()) == ClientRequest(round(r.at, 6), *list(r.__dict__.values())[1:])


def recorded(requests: list[ClientRequest], name: str = "shop.drill.example.") -> dict[str, Any]:
    return {"interval_s": INTERVAL, "min_ttl_s": 0.0, "clients": [
        {"label": f"route53 {name}", "name": name, "started_at": T0, "stopped_at": T0 + 12.0,
         "requests": [r.to_dict() for r in requests]}]}


def test_the_drill_passes_when_every_client_reached_the_standby_in_time() -> None:
    back = run({"use1": 100}, first=8.0, detected=8.25, decided=9.0, applied=9.1, validated=9.2, propagated=9.2,
               ttl=1.0)
    reqs = CLIENT + log((5.0, 9.5, True, NEW, ("usw2",)), (9.5, 12.0, True, OLD, ("use1",)))
    out = client_figures(recorded(reqs), [("failover", FAILOVER), ("failback", back)])
    assert out["ok"] and out["slack_s"] == 0.5 and out["min_ttl_s"] == 0.0
    [client] = out["clients"]
    assert set(client["stages"]) == {"failover", "failback"}
    over = client["stages"]["failover"]
    assert over["outage_s"] == pytest.approx(2.2) and over["within"] and over["failed"] == 44
    assert client["stages"]["failback"]["outage_s"] == 0.0 and client["stages"]["failback"]["reached"]
    assert client["requests"] and out["verdict"].startswith("every client reached")


def test_the_drill_fails_when_a_client_never_reached_the_standby() -> None:
    stale = log((0.0, 0.8, True, OLD, ("use1",)), (0.8, 6.0, False, OLD, ("use1",)), (6.0, 12.0, True, OLD, ("use1",)))
    out = client_figures(recorded(stale), [("failover", FAILOVER), ("failback", None)])
    assert not out["ok"]
    assert out["verdict"] == ("route53 shop.drill.example.: the client never reached the new routing "
                              "(its requests to use1 failed)")


def test_no_client_or_no_failover_is_not_a_pass() -> None:
    assert not client_figures({"interval_s": INTERVAL, "clients": []}, [("failover", FAILOVER)])["ok"]
    out = client_figures(recorded(CLIENT), [("failover", None), ("failback", None)])
    assert not out["ok"] and out["verdict"] == "not measured: the failover did not run"
