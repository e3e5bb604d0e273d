"""select_target: which endpoint should take traffic, as a pure function (exhaustive over its inputs)."""
from __future__ import annotations

import itertools
from typing import NamedTuple

import pytest

from failover_engine.core.model import (
    Endpoint,
    HttpProbe,
    Policy,
    Role,
    Route53EndpointBinding,
    Route53Routing,
    Service,
)
from failover_engine.core.selection import Decision, SimpleVerdict, select_target

HEALTHS = ("healthy", "unhealthy", "unknown", "noprobe")
"""unknown: the endpoint has a probe but its verdict is unknown; noprobe: no probe, no verdict."""


def make_service(health: dict[str, str], *, failover: str = "manual", failback: str = "manual",
                 stable_period: float = 600.0, order: tuple[str, ...] = ("p", "s")) -> Service:
    endpoints = []
    for name in order:
        probe = None if health.get(name) == "noprobe" else HttpProbe(url=f"https://{name}.example.com/health")
        endpoints.append(Endpoint(name=name, role=Role.primary if name == "p" else Role.standby,
                                  region=f"r-{name}", probe=probe))
    routing = Route53Routing(hosted_zone_id="Z1", record="www.example.com.",
                             endpoints={n: Route53EndpointBinding(values=[f"192.0.2.{i}"])
                                        for i, n in enumerate(order, start=1)})
    return Service(endpoints=endpoints, routing=[routing],
                   policy=Policy(failover=failover, failback=failback, failback_stable_period=stable_period))


def verdicts_for(health: dict[str, str]) -> dict[str, SimpleVerdict]:
    return {n: SimpleVerdict(h, f"{n} is {h}") for n, h in health.items() if h != "noprobe"}


def assignment(name: str | None) -> dict[str, int] | None:
    return None if name is None else {name: 100}


# --------------------------------------------------------------------------- the oracle
class Expect(NamedTuple):
    action: str
    target: str | None  # the endpoint of the resulting assignment; None: the current one is kept
    refused: bool
    warned: bool = False


def _target_verdict(health: str) -> tuple[bool, bool]:
    """(refused, warned) for moving traffic to an endpoint of this health."""
    return health in ("unhealthy", "unknown"), health == "noprobe"


def expected(action: str, current: str | None, health: dict[str, str], failover: str, failback: str,
             stable: bool, switch_to: str | None) -> Expect:
    """The documented behaviour, written independently of the implementation."""
    if action == "failover":
        if current == "s":
            return Expect("none", None, False)  # already failed over
        return Expect("failover", "s", *_target_verdict(health["s"]))
    if action in ("failback", "switch"):
        target = "p" if action == "failback" else switch_to
        refused, warned = _target_verdict(health[target])
        if current == target:
            return Expect("none", None, False, warned)
        return Expect(action, target, refused, warned)
    # auto
    if current is None:
        return Expect("none", None, True)  # routing state unknown: automation holds
    if health[current] == "unhealthy":
        if failover == "manual":
            return Expect("none", None, False)  # alert only
        if current == "p":
            return Expect("failover", "s", *_target_verdict(health["s"]))
        if health["p"] == "healthy":
            return Expect("switch", "p", False)
        return Expect("none", None, True)  # nowhere healthy to go
    if current == "s" and failback == "automatic" and health["p"] == "healthy" and stable:
        return Expect("failback", "p", False)
    return Expect("none", None, False)


CASES = []
for action, current, hp, hs, fo, fb, stable in itertools.product(
        ("failover", "failback", "switch", "auto"), ("p", "s", None), HEALTHS, HEALTHS,
        ("automatic", "manual"), ("automatic", "manual"), (True, False)):
    if action != "auto" and (fo, fb, stable) != ("manual", "manual", False):
        continue  # the policy only matters to `auto`
    for switch_to in (("p", "s") if action == "switch" else (None,)):
        CASES.append(pytest.param(action, current, hp, hs, fo, fb, stable, switch_to,
                                  id=f"{action}-{switch_to or ''}-cur={current}-p={hp}-s={hs}-fo={fo}-fb={fb}"
                                     f"-{'stable' if stable else 'fresh'}"))


@pytest.mark.parametrize("action, current, hp, hs, failover, failback, stable, switch_to", CASES)
def test_select_target_exhaustive(action, current, hp, hs, failover, failback, stable, switch_to):
    health = {"p": hp, "s": hs}
    svc = make_service(health, failover=failover, failback=failback, stable_period=600.0)
    decision = select_target(svc, verdicts_for(health), assignment(current), action, switch_to,
                             primary_stable_for=600.0 if stable else 599.0)
    want = expected(action, current, health, failover, failback, stable, switch_to)
    assert isinstance(decision, Decision)
    assert decision.action == want.action, decision.reason
    assert decision.target == (assignment(want.target) if want.target else assignment(current))
    assert bool(decision.refusals) == want.refused, decision
    if want.action != "none":
        assert bool(decision.warnings) == want.warned, decision
    assert decision.reason


# --------------------------------------------------------------------------- named cases
def test_failover_when_already_failed_over_is_a_noop():
    health = {"p": "unhealthy", "s": "healthy"}
    d = select_target(make_service(health), verdicts_for(health), {"s": 100}, "failover")
    assert (d.action, d.target, d.refusals) == ("none", {"s": 100}, ())
    assert "already failed over" in d.reason


def test_failover_to_an_unhealthy_target_is_refused_with_its_reason():
    health = {"p": "healthy", "s": "unhealthy"}
    d = select_target(make_service(health), verdicts_for(health), {"p": 100}, "failover")
    assert (d.action, d.target) == ("failover", {"s": 100})
    assert len(d.refusals) == 1 and "'s'" in d.refusals[0] and "s is unhealthy" in d.refusals[0]


def test_failover_to_an_endpoint_with_unknown_health_is_refused():
    health = {"p": "healthy", "s": "unknown"}
    d = select_target(make_service(health), verdicts_for(health), {"p": 100}, "failover")
    assert d.refusals and "unknown" in d.refusals[0]


def test_failover_to_an_endpoint_without_a_probe_only_warns():
    health = {"p": "healthy", "s": "noprobe"}
    d = select_target(make_service(health), verdicts_for(health), {"p": 100}, "failover")
    assert (d.action, d.target, d.refusals) == ("failover", {"s": 100}, ())
    assert "no probe" in d.warnings[0]


def test_a_probed_endpoint_without_a_verdict_counts_as_unknown():
    svc = make_service({"p": "healthy", "s": "healthy"})
    d = select_target(svc, {"p": SimpleVerdict("healthy")}, {"p": 100}, "failover")
    assert d.refusals and "not probed" in d.refusals[0]


ORDER = ("p", "s1", "s2", "s3")


@pytest.mark.parametrize(
    "health, current, want",
    [
        ({"s1": "healthy", "s2": "healthy", "s3": "healthy"}, "p", "s1"),
        ({"s1": "unhealthy", "s2": "healthy", "s3": "healthy"}, "p", "s2"),
        ({"s1": "unknown", "s2": "unhealthy", "s3": "healthy"}, "p", "s3"),
        ({"s1": "noprobe", "s2": "unknown", "s3": "healthy"}, "p", "s3"),
        ({"s1": "unhealthy", "s2": "healthy", "s3": "healthy"}, None, "s2"),
        # none healthy: the first declared standby, refused
        ({"s1": "unhealthy", "s2": "unhealthy", "s3": "unknown"}, "p", "s1"),
    ],
)
def test_several_standbys_first_healthy_in_declared_order(health, current, want):
    health = {"p": "unhealthy", **health}
    svc = make_service(health, order=ORDER)
    d = select_target(svc, verdicts_for(health), assignment(current), "failover")
    assert (d.action, d.target) == ("failover", {want: 100})
    assert bool(d.refusals) == (health[want] != "healthy")


def test_declared_order_not_name_order_decides():
    health = {"p": "unhealthy", "s1": "healthy", "s2": "healthy", "s3": "healthy"}
    svc = make_service(health, order=("p", "s3", "s1", "s2"))
    d = select_target(svc, verdicts_for(health), {"p": 100}, "failover")
    assert d.target == {"s3": 100}


def test_failover_to_an_explicit_target():
    health = {"p": "unhealthy", "s1": "healthy", "s2": "healthy", "s3": "healthy"}
    svc = make_service(health, order=ORDER)
    d = select_target(svc, verdicts_for(health), {"p": 100}, "failover", "s2")
    assert (d.action, d.target, d.refusals) == ("failover", {"s2": 100}, ())


def test_auto_with_a_manual_policy_only_alerts():
    health = {"p": "unhealthy", "s": "healthy"}
    d = select_target(make_service(health, failover="manual"), verdicts_for(health), {"p": 100}, "auto")
    assert (d.action, d.target, d.refusals) == ("none", {"p": 100}, ())
    assert "alert only" in d.reason


def test_auto_fails_over_with_an_automatic_policy():
    health = {"p": "unhealthy", "s": "healthy"}
    d = select_target(make_service(health, failover="automatic"), verdicts_for(health), {"p": 100}, "auto")
    assert (d.action, d.target, d.refusals) == ("failover", {"s": 100}, ())


def test_auto_moves_from_a_failed_standby_to_the_next_healthy_one():
    health = {"p": "unhealthy", "s1": "unhealthy", "s2": "healthy", "s3": "healthy"}
    svc = make_service(health, failover="automatic", order=ORDER)
    d = select_target(svc, verdicts_for(health), {"s1": 100}, "auto")
    assert (d.action, d.target, d.refusals) == ("switch", {"s2": 100}, ())


def test_auto_prefers_the_primary_when_the_active_standby_fails():
    health = {"p": "healthy", "s1": "unhealthy", "s2": "healthy", "s3": "healthy"}
    svc = make_service(health, failover="automatic", order=ORDER)
    d = select_target(svc, verdicts_for(health), {"s1": 100}, "auto")
    assert d.target == {"p": 100}


@pytest.mark.parametrize("stable_for, want", [(None, "none"), (0.0, "none"), (599.9, "none"),
                                              (600.0, "failback"), (1e6, "failback")])
def test_auto_failback_waits_for_the_stable_period(stable_for, want):
    health = {"p": "healthy", "s": "healthy"}
    svc = make_service(health, failback="automatic", stable_period=600.0)
    d = select_target(svc, verdicts_for(health), {"s": 100}, "auto", primary_stable_for=stable_for)
    assert d.action == want
    if want == "none":
        assert "not stable long enough" in d.reason and d.target == {"s": 100}
    else:
        assert d.target == {"p": 100}


def test_auto_failback_with_a_zero_stable_period_needs_no_stability_report():
    health = {"p": "healthy", "s": "healthy"}
    svc = make_service(health, failback="automatic", stable_period=0.0)
    assert select_target(svc, verdicts_for(health), {"s": 100}, "auto").action == "failback"


def test_auto_with_unknown_routing_state_holds():
    health = {"p": "unhealthy", "s": "healthy"}
    svc = make_service(health, failover="automatic")
    for current in (None, {}, {"p": 50, "s": 50}):
        d = select_target(svc, verdicts_for(health), current, "auto")
        assert d.action == "none" and d.refusals == ("routing state unknown",)


def test_switch_needs_a_target():
    svc = make_service({"p": "healthy", "s": "healthy"})
    with pytest.raises(ValueError, match="needs a target"):
        select_target(svc, {}, {"p": 100}, "switch")


def test_switch_to_an_unknown_endpoint_raises_keyerror():
    svc = make_service({"p": "healthy", "s": "healthy"})
    with pytest.raises(KeyError):
        select_target(svc, {}, {"p": 100}, "switch", "ghost")


def test_verdict_health_may_be_an_enum():
    from failover_engine.detection.health import Health

    health = {"p": "unhealthy", "s": "healthy"}
    verdicts = {"p": SimpleVerdict(Health.unhealthy, "down"), "s": SimpleVerdict(Health.healthy, "up")}
    d = select_target(make_service(health, failover="automatic"), verdicts, {"p": 100}, "auto")
    assert (d.action, d.target, d.refusals) == ("failover", {"s": 100}, ())


def test_select_target_does_not_mutate_its_inputs():
    health = {"p": "unhealthy", "s": "healthy"}
    current = {"p": 100}
    verdicts = verdicts_for(health)
    select_target(make_service(health, failover="automatic"), verdicts, current, "auto")
    assert current == {"p": 100} and verdicts == verdicts_for(health)
