"""Plans are data: Change actions and inverses, Plan.is_noop, render, diff and to_dict."""
from __future__ import annotations

import json

import pytest

from failover_engine.core.plan import Change, Plan, PlanStep, ResourceKey

KEY = ResourceKey("route53", "Z1", "www.example.com.", "A", "use1")
KEY2 = ResourceKey("route53", "Z1", "www.example.com.", "A", "usw2")
PRIMARY = {"ttl": 60, "values": ["192.0.2.10"], "failover": "PRIMARY"}
SECONDARY = {"ttl": 60, "values": ["192.0.2.10"], "failover": "SECONDARY"}


def plan(*steps: PlanStep, refusals: tuple[str, ...] = (), warnings: tuple[str, ...] = (),
         current: dict | None = None) -> Plan:
    return Plan("web", "failover", {"use1": 100} if current is None else current, {"usw2": 100},
                "use1 fails its checks", tuple(steps), warnings, refusals)


def step(*changes: Change, index: int = 0) -> PlanStep:
    return PlanStep(index, "route53", "aws", "flip www.example.com.", tuple(changes))


# --------------------------------------------------------------------------- ResourceKey
@pytest.mark.parametrize(
    "key, text",
    [
        (KEY, "route53:Z1/www.example.com./A[use1]"),
        (ResourceKey("route53", "Z1", "www.example.com.", "A"), "route53:Z1/www.example.com./A"),
        (ResourceKey("tm", "profile", "web"), "tm:profile/web"),
    ],
)
def test_resource_key_str(key, text):
    assert str(key) == text


def test_resource_keys_are_hashable_values_and_sortable():
    same = ResourceKey("route53", "Z1", "www.example.com.", "A", "use1")
    assert same == KEY and hash(same) == hash(KEY)
    assert sorted([KEY2, KEY]) == [KEY, KEY2]


# --------------------------------------------------------------------------- Change
@pytest.mark.parametrize(
    "before, after, action",
    [
        (None, PRIMARY, "create"),
        (PRIMARY, None, "delete"),
        (PRIMARY, SECONDARY, "update"),
        (PRIMARY, dict(PRIMARY), "noop"),
        (None, None, "noop"),
        ({"ttl": 60, "values": ["a"]}, {"ttl": 60, "values": ["a"], "weight": 0}, "update"),
        ({"ttl": 60}, {"ttl": 300}, "update"),
    ],
)
def test_change_action(before, after, action):
    assert Change(KEY, before, after).action == action


@pytest.mark.parametrize("before, after", [(None, PRIMARY), (PRIMARY, None), (PRIMARY, SECONDARY), (None, None)])
def test_change_inverse_swaps_before_and_after(before, after):
    change = Change(KEY, before, after)
    inv = change.inverse()
    assert (inv.key, inv.before, inv.after) == (KEY, after, before)
    assert inv.inverse() == change
    assert inv.action == {"create": "delete", "delete": "create"}.get(change.action, change.action)


def test_change_to_dict_is_plain_json():
    d = Change(KEY, PRIMARY, SECONDARY).to_dict()
    assert d == {"resource": str(KEY), "action": "update", "before": PRIMARY, "after": SECONDARY}
    json.dumps(d)


def test_change_to_dict_turns_tuples_and_sets_into_lists():
    d = Change(KEY, None, {"values": ("b", "a"), "tags": {"x"}}).to_dict()
    assert d["before"] is None
    assert d["after"] == {"values": ["b", "a"], "tags": ["x"]}


# --------------------------------------------------------------------------- PlanStep
def test_step_effective_drops_noops_and_inverse_reverses_only_effective():
    flip = Change(KEY, PRIMARY, SECONDARY)
    same = Change(KEY2, SECONDARY, SECONDARY)
    s = step(flip, same, index=2)
    assert s.effective == (flip,)
    inv = s.inverse()
    assert inv.index == 2 and inv.changes == (flip.inverse(),)
    assert inv.description == "rollback of: flip www.example.com."
    assert [c["action"] for c in s.to_dict()["changes"]] == ["update"]


# --------------------------------------------------------------------------- Plan
@pytest.mark.parametrize(
    "steps, noop",
    [
        ((), True),
        ((step(Change(KEY, PRIMARY, PRIMARY)),), True),
        ((step(Change(KEY, PRIMARY, PRIMARY)), step(Change(KEY2, None, None), index=1)), True),
        ((step(Change(KEY, PRIMARY, SECONDARY)),), False),
        ((step(Change(KEY, PRIMARY, PRIMARY)), step(Change(KEY2, None, SECONDARY), index=1)), False),
    ],
)
def test_plan_is_noop(steps, noop):
    p = plan(*steps)
    assert p.is_noop is noop
    assert (p.changes == []) is noop


def failover_plan(**kw) -> Plan:
    return plan(step(Change(KEY, PRIMARY, SECONDARY), Change(KEY2, SECONDARY, PRIMARY),
                     Change(ResourceKey("route53", "Z1", "old.example.com.", "A"), {"ttl": 60, "values": ["x"]}, None),
                     Change(ResourceKey("route53", "Z1", "new.example.com.", "A"), None, {"ttl": 60, "values": ["y"]}),
                     Change(ResourceKey("route53", "Z1", "same.example.com.", "A"), {"ttl": 5}, {"ttl": 5})), **kw)


def test_render_lists_every_changed_attribute_and_only_those():
    text = failover_plan().render()
    assert text.splitlines()[0] == "Plan for service 'web': failover use1 -> usw2"
    assert "  reason: use1 fails its checks" in text
    assert f"    ~ {KEY}" in text and f"    ~ {KEY2}" in text
    assert '        failover: "PRIMARY" -> "SECONDARY"' in text
    assert '        failover: "SECONDARY" -> "PRIMARY"' in text
    assert "    - route53:Z1/old.example.com./A" in text
    assert "    + route53:Z1/new.example.com./A" in text
    assert '        values: ["x"] -> null' in text and '        values: null -> ["y"]' in text
    assert "same.example.com." not in text  # a noop change is not shown
    assert "ttl: 60 -> 60" not in text      # unchanged attributes are not shown
    assert "  step 1: flip www.example.com." in text
    assert text.splitlines()[-1] == "  4 change(s) in 1 step(s)"


def test_render_shows_refusals_and_warnings():
    text = failover_plan(refusals=("target 'usw2' fails its checks: down",),
                         warnings=("target has no probe",)).render()
    assert "  REFUSED unless forced: target 'usw2' fails its checks: down" in text
    assert "  warning: target has no probe" in text


def test_render_of_a_noop_plan_says_so_and_still_shows_refusals():
    text = plan(step(Change(KEY, PRIMARY, PRIMARY)), refusals=("routing state unknown",)).render()
    assert "no changes: the requested state already holds" in text
    assert "REFUSED unless forced: routing state unknown" in text
    assert "step 1" not in text


@pytest.mark.parametrize("current, shown", [(None, "(unknown)"), ({}, "(none)"), ({"use1": 100}, "use1"),
                                            ({"b": 50, "a": 50}, "a=50,b=50")])
def test_render_formats_assignments(current, shown):
    p = Plan("web", "switch", current, {"usw2": 100}, "r", ())
    assert p.render().splitlines()[0] == f"Plan for service 'web': switch {shown} -> usw2"


def test_render_skips_steps_without_effective_changes_but_keeps_numbering():
    p = plan(step(Change(KEY, PRIMARY, PRIMARY), index=0), step(Change(KEY2, None, SECONDARY), index=1))
    text = p.render()
    assert "step 1:" not in text and "step 2:" in text
    assert text.endswith("1 change(s) in 1 step(s)")


def test_diff_has_before_and_after_of_effective_changes_only():
    d = failover_plan().diff()
    assert set(d) == {"before", "after"}
    assert d["before"][str(KEY)] == PRIMARY and d["after"][str(KEY)] == SECONDARY
    assert d["before"][str(KEY2)] == SECONDARY and d["after"][str(KEY2)] == PRIMARY
    assert d["after"]["route53:Z1/old.example.com./A"] is None
    assert d["before"]["route53:Z1/new.example.com./A"] is None
    assert "route53:Z1/same.example.com./A" not in d["before"]
    assert set(d["before"]) == set(d["after"])


def test_diff_of_a_noop_plan_is_empty():
    assert plan(step(Change(KEY, PRIMARY, PRIMARY))).diff() == {"before": {}, "after": {}}


def test_to_dict_is_json_and_complete():
    p = failover_plan(refusals=("r1",), warnings=("w1",))
    d = json.loads(json.dumps(p.to_dict()))
    assert {k: d[k] for k in ("service", "action", "current", "target", "reason", "noop", "warnings",
                              "refusals")} == {"service": "web", "action": "failover", "current": {"use1": 100},
                                               "target": {"usw2": 100}, "reason": "use1 fails its checks",
                                               "noop": False, "warnings": ["w1"], "refusals": ["r1"]}
    (s,) = d["steps"]
    assert (s["step"], s["adapter"], s["connection"]) == (0, "route53", "aws")
    assert [c["action"] for c in s["changes"]] == ["update", "update", "delete", "create"]


def test_plan_inverse_of_every_step_restores_the_before_state():
    p = failover_plan()
    forward = {c.key: c.after for c in p.changes}
    back = {c.key: c.after for s in p.steps for c in s.inverse().changes}
    assert back == {c.key: c.before for c in p.changes}
    assert set(forward) == set(back)
