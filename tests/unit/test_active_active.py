"""Active-active: which members take traffic (select_members) and safety rules as data."""
from __future__ import annotations

import pytest

from failover_engine.core.errors import StrategyError
from failover_engine.config.loader import parse_strategy
from failover_engine.core.selection import SimpleVerdict, select_members, select_target

STRATEGY = """
version: 1
services:
  web:
    strategy: active_active
    redistribution: {redistribution}
    endpoints:
      - {{name: a, role: active, region: r1, zone: z1, weight: 50, probe: {{type: tcp, host: 127.0.0.1, port: 1}}}}
      - {{name: b, role: active, region: r1, zone: z2, weight: 30, probe: {{type: tcp, host: 127.0.0.1, port: 2}}}}
      - {{name: c, role: active, region: r1, zone: z3, weight: 20, probe: {{type: tcp, host: 127.0.0.1, port: 3}}}}
    routing:
      - adapter: route53
        hosted_zone_id: Z1
        record: web.example.com.
        mode: weighted
        endpoints:
          a: {{values: [192.0.2.1]}}
          b: {{values: [192.0.2.2]}}
          c: {{values: [192.0.2.3]}}
    policy: {{failback: {failback}, failback_stable_period: 60s}}
"""


def service(redistribution: str = "proportional", failback: str = "automatic"):
    strategy, _unused = parse_strategy(STRATEGY.format(redistribution=redistribution, failback=failback))
    return strategy.services["web"]


def verdicts(**health: str) -> dict[str, SimpleVerdict]:
    return {n: SimpleVerdict(h, f"{n} is {h}") for n, h in health.items()}


ALL = {"a": 50, "b": 30, "c": 20}


@pytest.mark.parametrize("health, current, want_action, want_target", [
    ({"a": "healthy", "b": "healthy", "c": "healthy"}, ALL, "none", ALL),
    ({"a": "healthy", "b": "healthy", "c": "unhealthy"}, ALL, "rebalance", {"a": 50, "b": 30}),
    ({"a": "unhealthy", "b": "healthy", "c": "unhealthy"}, ALL, "rebalance", {"b": 30}),
    ({"a": "unhealthy", "b": "unhealthy", "c": "unhealthy"}, ALL, "none", ALL),  # never zero members
    ({"a": "healthy", "b": "healthy", "c": "healthy"}, {"a": 50, "b": 30}, "rebalance", ALL),  # manual: back at once
    ({"a": "healthy", "b": "unknown", "c": "healthy"}, ALL, "rebalance", {"a": 50, "c": 20}),
])
def test_members_follow_health_and_weights_keep_proportions(health, current, want_action, want_target):
    d = select_members(service(), verdicts(**health), current)
    assert (d.action, d.target) == (want_action, want_target)


def test_zero_healthy_members_is_refused_and_keeps_the_rotation():
    d = select_members(service(), verdicts(a="unhealthy", b="unhealthy", c="unhealthy"), ALL)
    assert d.target == ALL and d.refusals and "zero healthy members" in d.refusals[0]


def test_equal_redistribution_gives_every_healthy_member_the_same_weight():
    d = select_members(service("equal"), verdicts(a="healthy", b="unhealthy", c="healthy"), ALL)
    assert d.target == {"a": 100, "c": 100}


@pytest.mark.parametrize("failback, stable, back", [("automatic", 61.0, True), ("automatic", 10.0, False),
                                                    ("manual", 1000.0, False)])
def test_automatic_return_needs_the_stable_period_and_the_policy(failback, stable, back):
    current = {"a": 50, "b": 30}
    d = select_target(service(failback=failback), verdicts(a="healthy", b="healthy", c="healthy"), current,
                      "auto", stable_for_each={"a": 1000, "b": 1000, "c": stable})
    assert ("c" in (d.target or {})) is back
    assert d.action == ("rebalance" if back else "none")


def test_a_person_can_bring_a_member_back_at_once():
    d = select_target(service(failback="manual"), verdicts(a="healthy", b="healthy", c="healthy"),
                      {"a": 50, "b": 30}, "failover")
    assert d.action == "rebalance" and d.target == ALL


@pytest.mark.parametrize("edit, problem", [
    (("role: active, region: r1, zone: z2", "role: standby, region: r1, zone: z2"), "role 'active'"),
    (("mode: weighted", "mode: simple"), "use mode weighted"),
])
def test_active_active_is_checked_at_load(edit, problem):
    text = STRATEGY.format(redistribution="proportional", failback="manual").replace(*edit)
    with pytest.raises(StrategyError, match=problem):
        parse_strategy(text)


def test_rules_are_validated_at_load():
    text = STRATEGY.format(redistribution="proportional", failback="manual") + \
        "    rules:\n      - {rule: min_active, count: 5}\n      - {rule: max_out, count: 1, of: zones}\n"
    with pytest.raises(StrategyError, match="min_active 5 exceeds the 3 endpoint"):
        parse_strategy(text)
    ok, _unused = parse_strategy(text.replace("count: 5", "count: 2"))
    assert [r.rule for r in ok.services["web"].rules] == ["min_active", "max_out"]


def test_min_capacity_needs_capacity_on_every_endpoint():
    text = STRATEGY.format(redistribution="proportional", failback="manual") + \
        "    rules:\n      - {rule: min_capacity, capacity: 10}\n"
    with pytest.raises(StrategyError, match="min_capacity needs `capacity` on every endpoint"):
        parse_strategy(text)
    with_capacity = text.replace("weight: 50,", "weight: 50, capacity: 6,").replace(
        "weight: 30,", "weight: 30, capacity: 4,").replace("weight: 20,", "weight: 20, capacity: 2,")
    ok, _unused = parse_strategy(with_capacity)
    assert ok.services["web"].rules[0].capacity == 10


def test_zone_adapters_need_equal_weights():
    text = """
version: 1
services:
  web:
    strategy: active_active
    scope: zone
    endpoints:
      - {name: a, role: active, region: r1, zone: use1-az1, weight: 60}
      - {name: b, role: active, region: r1, zone: use1-az2, weight: 40}
    routing:
      - adapter: zonalshift
        resource_identifier: arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/1
        endpoints: {a: {zone: use1-az1}, b: {zone: use1-az2}}
"""
    with pytest.raises(StrategyError, match="cannot weight them"):
        parse_strategy(text)
    ok, _unused = parse_strategy(text.replace("weight: 60", "weight: 40"))
    assert ok.services["web"].routing[0].adapter == "zonalshift"
