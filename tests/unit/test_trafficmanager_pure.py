"""TrafficManagerAdapter without a network: desired/active_of, binding_problems, the update
ordering (checked step by step by a simulator written here, not the adapter's own), retries and
credentials.

Where an API call would be wrong, the adapter gets ``client=object()``, so any call fails loudly.
Retries are driven by raising azure-core's real exception types from a scripted function.
"""
from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace
from typing import Any

import pytest
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ServiceRequestError,
                                   ServiceResponseError, ServiceResponseTimeoutError)
from azure.mgmt.core.exceptions import ARMErrorFormat

from failover_engine.adapters import adapter_class, make_adapter
from failover_engine.adapters.base import Capability
from failover_engine.adapters.trafficmanager import (
    MAX_RETRY_AFTER,
    EndpointState,
    EnvTokenCredential,
    OrderingError,
    TrafficManagerAdapter,
    _retry_after,
    order_updates,
)
from failover_engine.core.errors import AdapterError, StrategyError, TrafficManagerError
from failover_engine.config.loader import parse_strategy
from failover_engine.core.model import TrafficManagerConnection, TrafficManagerEndpointBinding, TrafficManagerRouting
from failover_engine.core.plan import Change, ResourceKey

SCOPE = "rg-shop/shop-tm"
E, D = "Enabled", "Disabled"


def binding(mode: str = "priority", names: tuple[str, ...] = ("a", "b"), **kw: Any) -> TrafficManagerRouting:
    eps = kw.pop("endpoints", None) or {n: TrafficManagerEndpointBinding(endpoint=f"{n}-ep") for n in names}
    return TrafficManagerRouting(resource_group="rg-shop", profile="shop-tm", mode=mode, endpoints=eps, **kw)


def key(name: str, etype: str = "ExternalEndpoints") -> ResourceKey:
    return ResourceKey("trafficmanager", SCOPE, f"{name}-ep", etype)


@pytest.fixture
def adapter() -> TrafficManagerAdapter:
    return TrafficManagerAdapter(TrafficManagerConnection(subscription_id="sub"), client=object())


# --------------------------------------------------------------------------- registry
def test_registry_resolves_the_adapter_and_it_declares_no_atomic_batch():
    cls = adapter_class("trafficmanager")
    assert cls is TrafficManagerAdapter and cls.kind == "trafficmanager"
    assert cls.capabilities == {Capability.SIMPLE_SWAP, Capability.FAILOVER_RECORDS, Capability.WEIGHTED,
                                Capability.READ_BACK}
    assert Capability.ATOMIC_BATCH not in cls.capabilities  # per-endpoint PATCHes, ordered
    ad = make_adapter("trafficmanager", TrafficManagerConnection(subscription_id="sub", max_attempts=2))
    assert isinstance(ad, TrafficManagerAdapter) and ad.calls == 0


# --------------------------------------------------------------------------- desired / active_of
def test_desired_priority_promotes_the_active_and_keeps_declared_order(adapter):
    got = adapter.desired(binding("priority", ("a", "b", "c")), {"c": 100})
    assert got == {key("c"): {"priority": 1, "endpoint_status": E},
                   key("a"): {"priority": 2, "endpoint_status": E},
                   key("b"): {"priority": 3, "endpoint_status": E}}


def test_desired_status_enables_the_active_only(adapter):
    assert adapter.desired(binding("status", ("a", "b", "c")), {"b": 100}) == {
        key("a"): {"endpoint_status": D}, key("b"): {"endpoint_status": E}, key("c"): {"endpoint_status": D}}


def test_desired_weighted_scales_and_disables_the_inactive(adapter):
    b = binding("weighted", ("a", "b", "c"), active_weight=600, inactive_weight=5)
    assert adapter.desired(b, {"a": 100, "c": 50}) == {
        key("a"): {"weight": 600, "endpoint_status": E}, key("b"): {"weight": 5, "endpoint_status": D},
        key("c"): {"weight": 300, "endpoint_status": E}}


def test_keys_carry_the_endpoint_type_and_the_profile(adapter):
    b = binding(endpoints={"a": TrafficManagerEndpointBinding(endpoint="East", endpoint_type="AzureEndpoints"),
                           "b": TrafficManagerEndpointBinding(endpoint="West", endpoint_type="NestedEndpoints")})
    assert adapter.resource_keys(b) == [ResourceKey("trafficmanager", SCOPE, "East", "AzureEndpoints"),
                                        ResourceKey("trafficmanager", SCOPE, "West", "NestedEndpoints")]
    assert str(adapter.resource_keys(b)[0]) == "trafficmanager:rg-shop/shop-tm/East/AzureEndpoints"


@pytest.mark.parametrize("mode, assignment", [("priority", {"a": 100, "b": 100}), ("priority", {}),
                                              ("status", {}), ("weighted", {"a": 0}), ("status", {"zz": 100})])
def test_desired_needs_an_active_endpoint(adapter, mode, assignment):
    with pytest.raises(TrafficManagerError, match="active endpoint"):
        adapter.desired(binding(mode), assignment)


@pytest.mark.parametrize(
    "mode, names, extra, assignment",
    [
        ("priority", ("a", "b"), {}, {"a": 100}),
        ("priority", ("a", "b"), {}, {"b": 100}),
        ("priority", ("a", "b", "c"), {}, {"c": 100}),
        ("status", ("a", "b"), {}, {"b": 100}),
        ("status", ("a", "b", "c"), {}, {"a": 100}),
        ("status", ("a", "b", "c"), {}, {"a": 100, "c": 100}),
        ("weighted", ("a", "b"), {}, {"b": 100}),
        ("weighted", ("a", "b", "c"), {}, {"a": 50, "b": 50}),
        ("weighted", ("a", "b", "c"), {"active_weight": 10, "inactive_weight": 1}, {"c": 100}),
        ("weighted", ("a", "b", "c"), {"active_weight": 1000}, {"a": 100, "b": 100, "c": 100}),
    ],
)
def test_active_of_desired_round_trips(adapter, mode, names, extra, assignment):
    b = binding(mode, names, **extra)
    state = adapter.desired(b, assignment)
    assert adapter.active_of(b, state) == assignment
    assert set(state) == set(adapter.resource_keys(b))
    assert set(adapter.desired(b, {names[0]: 100})) == set(adapter.desired(b, {names[-1]: 100}))


def test_active_of_priority_is_the_enabled_endpoint_with_the_lowest_priority(adapter):
    b = binding("priority", ("a", "b", "c"))
    state = {key("a"): {"priority": 1, "endpoint_status": D}, key("b"): {"priority": 7, "endpoint_status": E},
             key("c"): {"priority": 3, "endpoint_status": E}}
    assert adapter.active_of(b, state) == {"c": 100}  # what Traffic Manager answers, not the lowest number


@pytest.mark.parametrize(
    "mode, state",
    [
        ("priority", {}),
        ("priority", {key("a"): {"priority": 1, "endpoint_status": E}}),  # b is missing from the profile
        ("priority", {key("a"): {"priority": 1, "endpoint_status": D}, key("b"): {"priority": 2, "endpoint_status": D}}),
        ("status", {key("a"): {"endpoint_status": D}, key("b"): {"endpoint_status": D}}),
        ("weighted", {key("a"): None, key("b"): {"weight": 5, "endpoint_status": E}}),
    ],
)
def test_active_of_an_unrecognised_state_is_none(adapter, mode, state):
    assert adapter.active_of(binding(mode), state) is None


# --------------------------------------------------------------------------- binding_problems
def test_binding_problems_reports_every_reason():
    b = binding("weighted", endpoints={"a": TrafficManagerEndpointBinding(endpoint="Same"),
                                       "b": TrafficManagerEndpointBinding(endpoint="same", endpoint_type="AzureEndpoints")},
                active_weight=5, inactive_weight=5)
    problems = TrafficManagerAdapter.binding_problems(b)
    assert (("endpoints", "b", "endpoint"), "Traffic Manager endpoint 'same' is already bound to 'a'; each "
            "service endpoint needs its own") in problems  # names are case-insensitive, whatever the type
    assert ("active_weight", "must be greater than inactive_weight") in problems
    assert len(problems) == 2


def test_a_strategy_reports_the_binding_problems_with_their_place():
    text = """
version: 1
services:
  shop:
    endpoints:
      - {name: east, role: primary, region: eastus}
      - {name: west.1, role: standby, region: westus}
    routing:
      - {adapter: trafficmanager, resource_group: rg, profile: p, mode: weighted, active_weight: 5,
         inactive_weight: 5, endpoints: {east: {endpoint: same}, west.1: {endpoint: SAME}}}
"""
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text)
    msg = str(exc.value)
    assert "2 problem(s)" in msg
    assert "services.shop.routing[0].endpoints.west.1.endpoint" in msg and "already bound to 'east'" in msg
    assert "services.shop.routing[0].active_weight" in msg


@pytest.mark.parametrize("b", [binding("priority"), binding("status", ("a", "b", "c")),
                               binding("weighted", active_weight=2, inactive_weight=1)])
def test_sound_bindings_have_no_problems(b):
    assert TrafficManagerAdapter.binding_problems(b) == []


# --------------------------------------------------------------------------- update ordering
def simulate(current: dict[str, EndpointState], steps: list, priority_routing: bool) -> list[frozenset[str]]:
    """Replay PATCHes; assert unique priorities after each; return who takes traffic after each."""
    state, serving = dict(current), []
    for name, attrs in steps:
        assert attrs, "an empty PATCH is a wasted call"
        state[name] = replace(state[name], **attrs)
        prios = [s.priority for s in state.values()]
        assert len(prios) == len(set(prios)), f"duplicate priority after {name} {attrs}: {state}"
        enabled = sorted((s.priority, n) for n, s in state.items() if s.endpoint_status == E)
        serving.append(frozenset([enabled[0][1]] if priority_routing and enabled else [n for _unused, n in enabled]))
    current.clear()
    current.update(state)
    return serving


def test_a_two_endpoint_swap_hands_over_in_the_first_patch():
    current = {"a": EndpointState(1, 1, E), "b": EndpointState(2, 1, E)}
    steps = order_updates(current, {"a": {"priority": 2}, "b": {"priority": 1}}, priority_routing=True)
    assert steps == [("a", {"priority": 1000}), ("b", {"priority": 1}), ("a", {"priority": 2})]
    assert simulate(current, steps, True) == [{"b"}] * 3
    assert current == {"a": EndpointState(2, 1, E), "b": EndpointState(1, 1, E)}


def test_a_third_endpoint_in_between_steps_aside_and_never_answers():
    current = {"use1": EndpointState(2, 1, E), "usw2": EndpointState(3, 1, E), "euw1": EndpointState(1, 1, E)}
    wanted = {"usw2": {"priority": 1}, "use1": {"priority": 2}, "euw1": {"priority": 3}}
    serving = simulate(current, order_updates(current, wanted, priority_routing=True), True)
    assert set().union(*serving) == {"euw1", "usw2"} and serving[-1] == {"usw2"}
    assert [s.priority for s in current.values()] == [2, 1, 3]


def test_enabling_comes_before_disabling():
    current = {"a": EndpointState(1, 1000, E), "b": EndpointState(2, 1, D)}
    steps = order_updates(current, {"a": {"weight": 1, "endpoint_status": D}, "b": {"weight": 1000, "endpoint_status": E}},
                          priority_routing=False)
    assert steps == [("b", {"weight": 1000, "endpoint_status": E}), ("a", {"weight": 1, "endpoint_status": D})]


def test_in_a_priority_profile_the_answering_endpoint_is_disabled_last():
    current = {"a": EndpointState(1, 1, E), "b": EndpointState(2, 1, E), "c": EndpointState(3, 1, D)}
    steps = order_updates(current, {"a": {"endpoint_status": D}, "b": {"endpoint_status": D},
                                    "c": {"endpoint_status": E}}, priority_routing=True)
    assert [n for n, _unused in steps] == ["c", "b", "a"]
    assert simulate(current, steps, True) == [{"a"}, {"a"}, {"c"}]


def test_nothing_to_do_is_no_patch():
    current = {"a": EndpointState(1, 1, E), "b": EndpointState(2, 1, E)}
    assert order_updates(current, {"a": {"priority": 1}, "b": {}}, priority_routing=True) == []


def test_an_unmanaged_endpoint_on_a_wanted_priority_is_refused_before_any_write():
    current = {"a": EndpointState(1, 1, E), "b": EndpointState(3, 1, E), "x": EndpointState(2, 1, E)}
    with pytest.raises(OrderingError, match=r"share a priority \(priority 2: a, x\)"):
        order_updates(current, {"a": {"priority": 2}, "b": {"priority": 1}}, priority_routing=True)


def test_an_unknown_endpoint_is_refused():
    with pytest.raises(OrderingError, match="no endpoint.*zz"):
        order_updates({"a": EndpointState(1)}, {"zz": {"priority": 1}}, priority_routing=True)


def test_unmanaged_endpoints_are_never_written():
    current = {"a": EndpointState(1, 1, E), "b": EndpointState(2, 1, E), "x": EndpointState(5, 1, E),
               "y": EndpointState(1000, 1, D)}
    steps = order_updates(current, {"a": {"priority": 2}, "b": {"priority": 1}}, priority_routing=True)
    assert {n for n, _unused in steps} <= {"a", "b"}
    assert all(p["priority"] != 1000 for _unused, p in steps)  # y's priority is not free


def random_case(rng: random.Random) -> tuple[dict[str, EndpointState], dict[str, dict], bool, str]:
    n = rng.randint(2, 6)
    names = [f"e{i}" for i in range(n)]
    pool = rng.sample([*range(1, 12), 999, 1000], n)
    current = {m: EndpointState(p, rng.randint(1, 1000), rng.choice([E, E, D])) for m, p in zip(names, pool)}
    managed = names if rng.random() < 0.6 else rng.sample(names, rng.randint(2, n))
    active, others = managed[0], managed[1:]
    mode = rng.choice(["priority", "status", "weighted"])
    if mode == "priority":
        for u in set(names) - set(managed):  # desired() takes 1..k for the bound endpoints
            if current[u].priority < 12:
                current[u] = replace(current[u], priority=current[u].priority + 20)
        wanted = {active: {"priority": 1, "endpoint_status": E},
                  **{m: {"priority": i, "endpoint_status": E} for i, m in enumerate(others, 2)}}
    elif mode == "status":
        wanted = {active: {"endpoint_status": E}, **{m: {"endpoint_status": D} for m in others}}
    else:
        wanted = {active: {"weight": 1000, "endpoint_status": E}, **{m: {"weight": 1, "endpoint_status": D} for m in others}}
    return current, wanted, mode in ("priority", "status") or rng.random() < 0.5, active


@pytest.mark.parametrize("seed", range(12))
def test_random_switches_keep_priorities_unique_traffic_flowing_and_hand_over_directly(seed):
    rng = random.Random(seed)
    for _i in range(300):
        current, wanted, priority_routing, _active = random_case(rng)
        start = dict(current)
        steps = order_updates(current, wanted, priority_routing=priority_routing)
        touched = {n for n, _unused in steps}
        assert touched <= set(wanted), "an unmanaged endpoint was written"
        enabled0 = sorted((s.priority, n) for n, s in start.items() if s.endpoint_status == E)
        start_serving = frozenset([enabled0[0][1]] if priority_routing and enabled0 else [n for _unused, n in enabled0])
        serving = simulate(current, steps, priority_routing)
        for n, attrs in wanted.items():
            assert all(getattr(current[n], k) == v for k, v in attrs.items()), (start, wanted, steps)
        if start_serving:
            assert all(serving), f"traffic dropped: {start} {steps}"
        if priority_routing and serving:
            end = serving[-1]
            seen = [s for s, _unused in itertools.groupby([start_serving, *serving])]
            assert seen in ([end], [start_serving, end]), f"hand-over went through a third: {seen} {steps}"


# --------------------------------------------------------------------------- retries and errors (no network)
class FakeResponse:
    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None):
        self.status_code, self.reason, self.headers = status, "x", headers or {}
        self._body = {"error": {"code": code, "message": f"{code} happened."}}

    def text(self, encoding: str | None = None) -> str:
        return json.dumps(self._body)


def http_error(status: int, code: str, **headers: str) -> HttpResponseError:
    cls = ClientAuthenticationError if status == 401 else HttpResponseError
    return cls(response=FakeResponse(status, code, headers), error_format=ARMErrorFormat)


def scripted(outcomes: list) -> tuple[Any, list]:
    seen: list = []

    def fn(*args: Any) -> Any:
        seen.append(args)
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return fn, seen


def make(max_attempts: int = 5) -> tuple[TrafficManagerAdapter, list[float]]:
    sleeps: list[float] = []
    conn = TrafficManagerConnection(subscription_id="sub-1", max_attempts=max_attempts)
    return TrafficManagerAdapter(conn, client=object(), sleep=sleeps.append), sleeps


def test_429_waits_its_retry_after_then_succeeds():
    ad, sleeps = make()
    fn, seen = scripted([http_error(429, "TooManyRequests", **{"Retry-After": "7"}), "ok"])
    assert ad._call("profiles.get", SCOPE, fn, "rg", "p") == "ok"
    assert (sleeps, ad.calls, len(seen)) == ([7.0], 2, 2)


@pytest.mark.parametrize("status, code", [(500, "InternalServerError"), (503, "ServiceUnavailable"),
                                          (429, "TooManyRequests"), (409, "AnotherOperationInProgress")])
def test_retries_are_bounded_jittered_and_counted(status, code):
    ad, sleeps = make(max_attempts=4)
    fn, seen = scripted([http_error(status, code)])
    with pytest.raises(TrafficManagerError) as exc:
        ad._call("endpoints.update", f"{SCOPE}/ExternalEndpoints/a", fn)
    assert (ad.calls, len(seen), len(sleeps)) == (4, 4, 3)
    assert all(0 < s <= 20.0 for s in sleeps)
    assert (exc.value.code, exc.value.resource) == (code, f"{SCOPE}/ExternalEndpoints/a")
    assert "gave up after 4 attempt(s)" in str(exc.value)


def test_a_retry_after_beyond_the_cap_fails_at_once():
    ad, sleeps = make()
    fn, _unused = scripted([http_error(429, "TooManyRequests", **{"Retry-After": str(int(MAX_RETRY_AFTER) + 60)})])
    with pytest.raises(TrafficManagerError, match="Retry-After 120s is longer than the 60s"):
        ad._call("profiles.get", SCOPE, fn)
    assert (ad.calls, sleeps) == (1, [])


@pytest.mark.parametrize("status, code", [(400, "BadRequest"), (404, "ResourceNotFound"), (403, "AuthorizationFailed"),
                                          (401, "InvalidAuthenticationToken")])
def test_client_errors_are_raised_at_once_as_typed_errors(status, code):
    ad, sleeps = make()
    fn, _unused = scripted([http_error(status, code)])
    with pytest.raises(TrafficManagerError) as exc:
        ad._call("profiles.get", SCOPE, fn)
    err = exc.value
    assert isinstance(err, AdapterError) and (err.code, err.resource, ad.calls, sleeps) == (code, SCOPE, 1, [])
    assert str(err).startswith(f"trafficmanager [{SCOPE}]: profiles.get failed: {code} happened")


def test_not_found_names_the_profile_and_what_to_check():
    ad, _unused = make()
    fn, _unused = scripted([http_error(404, "ResourceNotFound")])
    with pytest.raises(TrafficManagerError, match=r"check resource_group \(rg-shop\) and profile \(shop-tm\).*sub-1"):
        ad._call("profiles.get", SCOPE, fn)


def test_an_unreachable_service_is_retried_then_reported():
    ad, sleeps = make(max_attempts=3)
    fn, _unused = scripted([ServiceRequestError("connection refused")])
    with pytest.raises(TrafficManagerError, match="cannot reach Azure Resource Manager after 3 attempt") as exc:
        ad._call("profiles.get", SCOPE, fn)
    assert (exc.value.code, ad.calls, len(sleeps)) == ("ServiceUnreachable", 3, 2)


def test_an_unreachable_service_wrote_nothing_but_a_lost_answer_may_have():
    ad, _unused = make(max_attempts=2)
    fn, _unused = scripted([ServiceRequestError("connection refused")])
    with pytest.raises(TrafficManagerError) as exc:
        ad._call("endpoints.update", SCOPE, fn)
    assert exc.value.answer_lost is False  # never sent
    fn, _unused = scripted([ServiceResponseError("connection reset by peer")])
    with pytest.raises(TrafficManagerError) as exc:
        ad._call("endpoints.update", SCOPE, fn)
    assert exc.value.answer_lost is True  # sent, its answer lost
    fn, _unused = scripted([http_error(503, "ServiceUnavailable")])
    with pytest.raises(TrafficManagerError) as exc:
        ad._call("endpoints.update", SCOPE, fn)
    assert exc.value.answer_lost is True  # a 5xx may come after the write


def test_a_read_timeout_is_not_repeated_and_names_the_timeout():
    ad, sleeps = make(max_attempts=3)
    fn, seen = scripted([ServiceResponseTimeoutError("read timed out")])
    with pytest.raises(TrafficManagerError, match="no answer from Azure Resource Manager within read_timeout 10s") as exc:
        ad._call("endpoints.update", SCOPE, fn)
    assert (exc.value.code, exc.value.answer_lost, len(seen), sleeps) == ("ReadTimeout", True, 1, [])


def test_the_client_takes_the_connection_timeouts(monkeypatch):
    monkeypatch.setenv("TM_UNIT_TOKEN", "t")
    conn = TrafficManagerConnection(subscription_id="s", credentials="token_env", token_env_var="TM_UNIT_TOKEN",
                                    endpoint_url="https://127.0.0.1:9", connect_timeout="1500ms", read_timeout=4)
    transport = TrafficManagerAdapter(conn).client._client._pipeline._transport
    assert (transport.connection_config.timeout, transport.connection_config.read_timeout) == (1.5, 4.0)


def test_a_credential_without_a_token_is_a_clear_error():
    ad, _unused = make()
    fn, _unused = scripted([ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")])
    with pytest.raises(TrafficManagerError, match="no Azure credentials.*az login") as exc:
        ad._call("profiles.get", SCOPE, fn)
    assert exc.value.code == "CredentialUnavailable"


@pytest.mark.parametrize("headers, want", [({"Retry-After": "3"}, 3.0), ({"retry-after-ms": "1500"}, 1.5),
                                           ({"x-ms-retry-after-ms": "250"}, 0.25), ({}, None),
                                           ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
                                           ({"Retry-After": "soon"}, None)])
def test_retry_after_forms(headers, want):
    assert _retry_after(FakeResponse(429, "x", headers)) == want


# --------------------------------------------------------------------------- credentials and connection
def test_token_env_reads_the_variable_at_each_request(monkeypatch):
    cred = EnvTokenCredential("TM_TEST_TOKEN")
    monkeypatch.setenv("TM_TEST_TOKEN", "first")
    assert cred.get_token("https://management.azure.com/.default").token == "first"
    monkeypatch.setenv("TM_TEST_TOKEN", "second")
    assert cred.get_token("https://management.azure.com/.default").token == "second"


def test_a_missing_token_variable_fails_before_any_call_and_never_shows_a_token(monkeypatch):
    monkeypatch.delenv("TM_TEST_TOKEN", raising=False)
    ad = TrafficManagerAdapter(TrafficManagerConnection(subscription_id="sub", credentials="token_env",
                                                        token_env_var="TM_TEST_TOKEN", endpoint_url="https://127.0.0.1:9"))
    with pytest.raises(TrafficManagerError, match="TM_TEST_TOKEN is not set or empty") as exc:
        ad.read([binding()])
    assert (exc.value.code, ad.calls) == ("MissingToken", 0)


def test_no_subscription_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    with pytest.raises(TrafficManagerError, match="no subscription_id.*AZURE_SUBSCRIPTION_ID"):
        TrafficManagerAdapter(None).client


def test_apply_refuses_to_create_or_delete_endpoints(adapter):
    create = Change(key("a"), None, {"priority": 1, "endpoint_status": E})
    with pytest.raises(TrafficManagerError, match="changes existing endpoints only") as exc:
        adapter.apply([create])
    assert exc.value.code == "EndpointMissing" and adapter.calls == 0


def test_apply_of_noops_makes_no_call(adapter):
    same = {"priority": 1, "endpoint_status": E}
    receipt = adapter.apply([Change(key("a"), same, dict(same))])
    assert (receipt.calls, receipt.batches, adapter.calls) == (0, [], 0)
