"""The resolve step's pure parts: the model's checks, the expected answer, the per-nameserver
verdict and the timeline's propagation phase and client RTO."""
from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from failover_engine.config.loader import parse_strategy
from failover_engine.core.errors import StrategyError
from failover_engine.core.propagation import NameserverResult, ResolveResult, canonical_value, resolve_expectation
from failover_engine.core.timeline import Timeline, render_timeline

T0 = 1_700_000_000.0
HTTP = {"type": "http", "url": "http://127.0.0.1:1/health"}
BASE: dict[str, Any] = {"version": 1, "services": {"shop": {
    "endpoints": [{"name": "use1", "role": "primary", "region": "us-east-1", "probe": HTTP},
                  {"name": "usw2", "role": "standby", "region": "us-west-2", "probe": HTTP}],
    "routing": [{"adapter": "route53", "hosted_zone": "drill.example.", "record": "shop.drill.example.",
                 "mode": "failover", "ttl": 30,
                 "endpoints": {"use1": {"values": ["192.0.2.10"]}, "usw2": {"values": ["198.51.100.10"]}}}]}}}
TM_ROUTING = [{"adapter": "trafficmanager", "resource_group": "rg", "profile": "shop",
               "endpoints": {"use1": {"endpoint": "e1"}, "usw2": {"endpoint": "e2"}}}]


def strategy(resolve: Any, routing: list[dict[str, Any]] | None = None) -> Any:
    data = copy.deepcopy(BASE)
    shop = data["services"]["shop"]
    shop["validation"] = {"resolve": resolve}
    if routing is not None:
        shop["routing"] = routing
    return parse_strategy(yaml.safe_dump(data))[0].services["shop"]


def problems(resolve: Any, routing: list[dict[str, Any]] | None = None) -> list[str]:
    with pytest.raises(StrategyError) as err:
        strategy(resolve, routing)
    return [f"{p.path}: {p.message}" for p in err.value.problems]


# --------------------------------------------------------------------------- the model
def test_defaults_ask_the_authoritative_servers_for_the_first_records_name() -> None:
    spec = strategy({}).validation.resolve
    assert spec.nameservers == "authoritative" and spec.name is None and spec.protocol == "udp"
    assert (spec.deadline, spec.interval, spec.timeout) == (60.0, 0.5, 1.0)


@pytest.mark.parametrize("resolve, expected", [
    ({"nameservers": ["dns.example.com"]}, "invalid nameserver 'dns.example.com'"),
    ({"nameservers": ["127.0.0.1:0"]}, "port out of range"),
    ({"nameservers": ["127.0.0.1:70000"]}, "port out of range"),
    ({"nameservers": ["127.0.0.1", "127.0.0.1:53"]}, "a nameserver is listed twice"),
    ({"nameservers": "127.0.0.1:5353"}, "nameservers is a list of 'IP', 'IP:port' or '[IPv6]:port'"),
    ({"deadline": 0}, "greater than 0"),
    ({"deadline": "0s"}, "greater than 0"),
    ({"deadline": -1}, "a duration cannot be negative"),
    ({"deadline": "soon"}, "invalid duration 'soon'"),
    ({"interval": 0}, "greater than 0"),
    ({"deadline": "2s", "interval": "5s"}, "interval (5 s) must not exceed deadline (2 s)"),
    ({"deadline": "1s", "timeout": "2s"}, "timeout (2 s) must not exceed deadline (1 s)"),
    ({"name": "a..b"}, "invalid name 'a..b'"),
    ({"expect": []}, "at least 1 item"),
    ({"protocol": "doh"}, "'udp' or 'tcp'"),
    ({"type": "MX"}, "'A', 'AAAA', 'CNAME' or 'TXT'"),
    ({"expect": {"use1": ["192.0.2.10"], "euw1": ["203.0.113.1"]}}, "unknown endpoint(s) euw1"),
    ({"nameservers": ["127.0.0.1"], "surprise": 1}, "unknown field"),
])
def test_a_bad_resolve_step_is_refused_with_its_reason(resolve: dict[str, Any], expected: str) -> None:
    found = problems(resolve)
    assert any("validation.resolve" in p and expected in p for p in found), found


def test_a_profile_has_no_record_so_name_and_expect_must_be_given() -> None:
    [found] = problems({}, TM_ROUTING)
    assert "validation.resolve.name" in found and "give the name clients resolve" in found
    [found] = problems({"name": "shop.trafficmanager.net."}, TM_ROUTING)
    assert "validation.resolve.expect" in found and "give the expected answer" in found
    ok = strategy({"name": "shop.trafficmanager.net.", "expect": {"use1": ["a.example."], "usw2": ["b.example."]}},
                  TM_ROUTING)
    assert ok.validation.resolve.expect == {"use1": ["a.example."], "usw2": ["b.example."]}


def test_the_json_schema_describes_the_step() -> None:
    import json

    from failover_engine.config.loader import json_schema

    defs = json.loads(json_schema())["$defs"]
    assert "resolve" in defs["Validation"]["properties"]
    props = defs["Resolve"]["properties"]
    assert {"nameservers", "name", "type", "expect", "deadline", "interval", "timeout", "protocol"} <= set(props)


# --------------------------------------------------------------------------- the expected answer
def test_the_default_expectation_is_the_targets_values_in_the_records_binding() -> None:
    svc = strategy({"nameservers": ["127.0.0.1"]})
    exp = resolve_expectation(svc, {"usw2": 100})
    assert (exp.name, exp.rdtype, exp.record_ttl) == ("shop.drill.example.", "A", 30)
    assert exp.expected == {"198.51.100.10"} and exp.old == {"192.0.2.10"}
    assert exp.matches(["198.51.100.10"]) and not exp.matches(["192.0.2.10"]) and not exp.matches([])
    assert not exp.matches(["198.51.100.10", "192.0.2.10"])  # an answer still holding the old value
    assert resolve_expectation(svc, {"use1": 100}).expected == {"192.0.2.10"}


def test_an_explicit_expectation_as_a_list_or_per_endpoint() -> None:
    listed = strategy({"nameservers": ["127.0.0.1"], "expect": ["198.51.100.10"]})
    assert resolve_expectation(listed, {"use1": 100}).expected == {"198.51.100.10"}
    mapped = strategy({"name": "Shop.TrafficManager.net", "type": "CNAME",
                       "expect": {"use1": ["E1.example."], "usw2": ["e2.example"]}}, TM_ROUTING)
    exp = resolve_expectation(mapped, {"usw2": 100})
    assert (exp.name, exp.rdtype, exp.record_ttl) == ("shop.trafficmanager.net.", "CNAME", None)
    assert exp.expected == {"e2.example"} and exp.old == {"e1.example"} and exp.matches(["E2.Example."])
    lacking = strategy({"name": "shop.trafficmanager.net.", "expect": {"use1": ["e1.example."]}}, TM_ROUTING)
    with pytest.raises(ValueError, match="give `expect` for every endpoint"):
        resolve_expectation(lacking, {"usw2": 100})


def test_a_weighted_target_of_several_endpoints_matches_any_of_their_values() -> None:
    svc = strategy({"nameservers": ["127.0.0.1"]})
    exp = resolve_expectation(svc, {"use1": 60, "usw2": 40})
    assert exp.matches(["192.0.2.10"]) and exp.matches(["198.51.100.10"]) and exp.old == frozenset()
    assert resolve_expectation(svc, {"use1": 100, "usw2": 0}).old == {"198.51.100.10"}


@pytest.mark.parametrize("raw, canonical", [("192.0.2.1", "192.0.2.1"), ("2001:DB8:0::1", "2001:db8::1"),
                                            ("WWW.Example.COM.", "www.example.com"), ('"v=1 x"', "v=1 x")])
def test_values_compare_in_a_canonical_form(raw: str, canonical: str) -> None:
    assert canonical_value(raw) == canonical


# --------------------------------------------------------------------------- per-nameserver verdict
def test_nameservers_results_give_propagation_time_client_ttl_and_the_reason() -> None:
    exp = resolve_expectation(strategy({"nameservers": ["127.0.0.1"]}), {"usw2": 100})
    fast, slow, silent = NameserverResult("a:53"), NameserverResult("b:53"), NameserverResult("c:53")
    fast.note(T0 + 0.1, "NOERROR", ["198.51.100.10"], 30, None, exp)
    slow.note(T0 + 0.1, "NOERROR", ["192.0.2.10"], 300, None, exp)   # a cache: the old answer, a long TTL
    slow.note(T0 + 0.2, "NXDOMAIN", [], None, None, exp)
    silent.note(T0 + 0.1, None, [], None, "no answer within 1 s", exp)
    result = ResolveResult(exp.name, exp.rdtype, sorted(exp.expected), 5.0, T0, [fast, slow, silent], record_ttl=30)
    assert not result.ok and result.propagated_at is None and result.client_ttl == 300.0
    result.finish()
    [reason] = result.reasons
    assert reason.startswith("resolve: shop.drill.example. A did not answer 198.51.100.10 within 5 s: ")
    assert "b:53 still answers NXDOMAIN" in reason and "c:53 gave no answer (no answer within 1 s)" in reason
    assert "a:53" not in reason
    assert slow.to_dict()["last_old"] == ["NXDOMAIN"] and slow.max_old_ttl == 300 and slow.queries == 2

    slow.note(T0 + 0.4, "NOERROR", ["198.51.100.10"], 30, None, exp)
    silent.note(T0 + 0.3, "NOERROR", ["198.51.100.10"], 30, None, exp)
    done = ResolveResult(exp.name, exp.rdtype, ["198.51.100.10"], 5.0, T0, [fast, slow, silent], record_ttl=30)
    done.finish()
    assert done.ok and done.reasons == [] and done.propagated_at == T0 + 0.4
    assert done.to_dict()["nameservers"][1]["first_new_at"].endswith("Z")


def test_with_no_old_answer_seen_the_client_ttl_is_the_records_then_the_answers() -> None:
    exp = resolve_expectation(strategy({"nameservers": ["127.0.0.1"]}), {"usw2": 100})
    ns = NameserverResult("a:53")
    ns.note(T0, "NOERROR", ["198.51.100.10"], 20, None, exp)
    assert ResolveResult("n.", "A", [], 5.0, T0, [ns], record_ttl=30).client_ttl == 30.0
    assert ResolveResult("n.", "A", [], 5.0, T0, [ns]).client_ttl == 20.0


# --------------------------------------------------------------------------- the timeline
def timeline(**kw: Any) -> Timeline:
    return Timeline("failure", first_signal_at=T0, detected_at=T0 + 1.5, decided_at=T0 + 1.75,
                    applied_at=T0 + 4.0, validated_at=T0 + 5.25, **kw)


def test_without_a_resolve_step_the_timeline_is_as_before() -> None:
    shown = timeline().to_dict()
    assert list(shown["phases_s"]) == ["detection", "decision", "apply", "validation"]
    assert "propagated_at" not in shown["timestamps"] and shown["client_rto_s"] is None
    assert "client RTO" not in render_timeline(timeline())


def test_propagation_is_a_phase_after_validation_and_client_rto_adds_the_ttl() -> None:
    t = timeline(propagated_at=T0 + 6.0, client_ttl=30.0)
    assert t.phases() == {"detection": 1.5, "decision": 0.25, "apply": 2.25, "validation": 1.25, "propagation": 2.0}
    assert t.rto == 5.25 and t.client_rto == 36.0 and t.complete
    shown = t.to_dict()
    assert list(shown["timestamps"])[-1] == "propagated_at" and shown["client_rto_s"] == 36.0
    assert shown["client_ttl_s"] == 30.0
    lines = render_timeline(t).splitlines()
    assert [ln.split()[0] for ln in lines[1:]] == ["detection", "decision", "apply", "validation", "propagation",
                                                   "RTO", "client"]
    assert "36000 ms" in lines[-1] and "TTL of 30 s" in lines[-1]


def test_a_missed_propagation_has_no_client_rto_and_is_incomplete() -> None:
    t = timeline(client_ttl=30.0)
    assert t.phases()["propagation"] is None and t.client_rto is None and not t.complete
    assert t.to_dict()["timestamps"]["propagated_at"] is None


def test_promotion_and_propagation_together() -> None:
    t = timeline(promoted_at=T0 + 3.0, propagated_at=T0 + 4.5, client_ttl=10.0)
    assert list(t.phases()) == ["detection", "decision", "promotion", "apply", "validation", "propagation"]
    assert t.phases()["apply"] == 1.0 and t.client_rto == 14.5
