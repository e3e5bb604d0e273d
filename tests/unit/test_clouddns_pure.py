"""CloudDnsAdapter without a network: desired/active_of, binding_problems, record sets as attributes,
the change bodies built from plan changes, and the retry/error path of CloudDnsApi.call.

Nothing here opens a socket: the pure functions take data, and the retry tests hand ``call`` a
function that raises the real client libraries' error types (googleapiclient HttpError,
google.api_core exceptions) as the clients would.
"""
from __future__ import annotations

import json

import httplib2
import pytest
from google.api_core import exceptions as core_exceptions
from googleapiclient.errors import HttpError

from failover_engine.adapters import adapter_class, make_adapter
from failover_engine.adapters.base import Capability
from failover_engine.adapters.clouddns import CloudDnsAdapter, records
from failover_engine.adapters.clouddns.api import RETRYABLE_STATUS, CloudDnsApi
from failover_engine.adapters.clouddns.records import attrs_of, change_bodies, fqdn, in_zone, rrset_of
from failover_engine.core.errors import AdapterError, CloudDnsError, StrategyError
from failover_engine.config.loader import parse_strategy
from failover_engine.core.model import CloudDnsConnection, CloudDnsEndpointBinding, CloudDnsRouting
from failover_engine.core.plan import Change, ResourceKey

ZONE = "shop-zone"
KEY = ResourceKey("clouddns", ZONE, "www.shop.example.", "A")
LOCATIONS = {"a": "us-east1", "b": "us-west1", "c": "europe-west1"}


def binding(mode: str = "simple", names: tuple[str, ...] = ("a", "b"), **kw) -> CloudDnsRouting:
    kw.setdefault("managed_zone", ZONE)
    kw.setdefault("record", "WWW.Shop.example")
    eps = kw.pop("endpoints", None) or {
        n: CloudDnsEndpointBinding(values=[f"198.51.100.{i}", f"192.0.2.{i}"] if n == "b" else [f"192.0.2.{i}"],
                                   location=LOCATIONS.get(n))
        for i, n in enumerate(names, start=1)}
    return CloudDnsRouting(mode=mode, endpoints=eps, **kw)


@pytest.fixture
def adapter() -> CloudDnsAdapter:
    return CloudDnsAdapter(CloudDnsConnection(project="p", endpoint_url="http://127.0.0.1:9", credentials="anonymous"))


# --------------------------------------------------------------------------- registry, names
def test_registry_resolves_clouddns_and_declares_capabilities():
    cls = adapter_class("clouddns")
    assert cls is CloudDnsAdapter and cls.kind == "clouddns"
    assert cls.capabilities == {Capability.SIMPLE_SWAP, Capability.FAILOVER_RECORDS, Capability.WEIGHTED,
                                Capability.ATOMIC_BATCH, Capability.READ_BACK}
    built = make_adapter("clouddns", CloudDnsConnection(project="p", credentials="anonymous"))
    assert isinstance(built, CloudDnsAdapter) and built.calls == 0


def test_building_the_adapter_makes_no_call_and_no_client():
    a = CloudDnsAdapter(None)  # project and credentials would come from google.auth.default(), lazily
    assert a.calls == 0 and a.api._records is None and a.api._zones is None


@pytest.mark.parametrize("name, want", [("www.shop.example", "www.shop.example."),
                                        ("WWW.Shop.EXAMPLE.", "www.shop.example."),
                                        (" www.shop.example ", "www.shop.example.")])
def test_fqdn(name, want):
    assert fqdn(name) == want


@pytest.mark.parametrize("name, zone, inside", [("www.shop.example.", "shop.example.", True),
                                                ("shop.example.", "shop.example.", True),
                                                ("WWW.SHOP.example", "shop.example.", True),
                                                ("www.myshop.example.", "shop.example.", False),
                                                ("www.other.example.", "shop.example.", False)])
def test_in_zone(name, zone, inside):
    assert in_zone(name, zone) is inside


# --------------------------------------------------------------------------- desired / active_of
def test_desired_simple_is_one_record_set_with_the_active_values(adapter):
    assert adapter.desired(binding("simple", ttl=30), {"b": 100}) == {
        KEY: {"ttl": 30, "values": ["192.0.2.2", "198.51.100.2"]}}


def test_desired_primary_backup_makes_the_active_endpoint_the_primary_target(adapter):
    b = binding("primary_backup", ("a", "b", "c"), trickle_ratio=0.05)
    assert adapter.desired(b, {"b": 100}) == {KEY: {
        "ttl": 60, "primary": ["192.0.2.2", "198.51.100.2"],
        "backup": [{"location": "europe-west1", "values": ["192.0.2.3"]},
                   {"location": "us-east1", "values": ["192.0.2.1"]}],
        "trickle_ratio": 0.05}}


def test_desired_weighted_gives_every_endpoint_an_item(adapter):
    b = binding("weighted", ("a", "b", "c"), active_weight=200, inactive_weight=1)
    (attrs,) = adapter.desired(b, {"a": 100, "c": 50}).values()
    assert attrs == {"ttl": 60, "wrr": [{"weight": 200.0, "values": ["192.0.2.1"]},
                                        {"weight": 1.0, "values": ["192.0.2.2", "198.51.100.2"]},
                                        {"weight": 100.0, "values": ["192.0.2.3"]}]}


@pytest.mark.parametrize("mode", ["simple", "primary_backup"])
@pytest.mark.parametrize("assignment", [{"a": 100, "b": 100}, {}, {"a": 0}])
def test_desired_needs_exactly_one_active_in_simple_and_primary_backup(adapter, mode, assignment):
    with pytest.raises(CloudDnsError, match="exactly one active endpoint"):
        adapter.desired(binding(mode), assignment)


@pytest.mark.parametrize(
    "mode, names, extra, assignment",
    [
        ("simple", ("a", "b"), {}, {"a": 100}),
        ("simple", ("a", "b"), {}, {"b": 100}),
        ("simple", ("a", "b", "c"), {}, {"c": 100}),
        ("primary_backup", ("a", "b"), {}, {"a": 100}),
        ("primary_backup", ("a", "b"), {"trickle_ratio": 0.1}, {"b": 100}),
        ("primary_backup", ("a", "b", "c"), {}, {"c": 100}),
        ("weighted", ("a", "b", "c"), {}, {"a": 100}),
        ("weighted", ("a", "b", "c"), {}, {"c": 100}),
        ("weighted", ("a", "b", "c"), {}, {"a": 50, "b": 50}),
        ("weighted", ("a", "b", "c"), {}, {"a": 100, "b": 100, "c": 100}),
        ("weighted", ("a", "b"), {"active_weight": 1000}, {"b": 100}),
        ("weighted", ("a", "b"), {"active_weight": 0.5, "inactive_weight": 0.1}, {"a": 100}),
    ],
)
def test_active_of_desired_round_trips_through_the_api_shape(adapter, mode, names, extra, assignment):
    b = binding(mode, names, **extra)
    state = adapter.desired(b, assignment)
    assert adapter.active_of(b, state) == assignment
    # and through the record set the API would hold
    via_api = {k: attrs_of(json.loads(json.dumps(rrset_of(k, v)))) for k, v in state.items()}
    assert via_api == state
    assert adapter.active_of(b, via_api) == assignment
    assert set(state) == set(adapter.resource_keys(b)) == {KEY}


@pytest.mark.parametrize(
    "mode, state",
    [
        ("simple", {}),
        ("simple", {KEY: None}),
        ("simple", {KEY: {"ttl": 60, "values": ["203.0.113.9"]}}),
        ("simple", {KEY: {"ttl": 60, "wrr": [{"weight": 1.0, "values": ["192.0.2.1"]}]}}),  # mode changed by hand
        ("primary_backup", {KEY: {"ttl": 60, "values": ["192.0.2.1"]}}),
        ("primary_backup", {KEY: {"ttl": 60, "primary": ["203.0.113.9"], "backup": [], "trickle_ratio": 0.0}}),
        ("weighted", {KEY: {"ttl": 60, "wrr": [{"weight": 100.0, "values": ["192.0.2.1"]}]}}),  # b's item missing
        ("weighted", {KEY: {"ttl": 60, "wrr": [{"weight": 0.0, "values": ["192.0.2.1"]},
                                               {"weight": 0.0, "values": ["192.0.2.2", "198.51.100.2"]}]}}),
        ("weighted", {KEY: {"ttl": 60, "routing_policy": {"geo": {"items": []}}}}),
    ],
)
def test_active_of_an_unrecognised_state_is_none(adapter, mode, state):
    assert adapter.active_of(binding(mode), state) is None


def test_active_of_ignores_value_order(adapter):
    state = {KEY: {"ttl": 5, "values": ["198.51.100.2", "192.0.2.2"]}}
    assert adapter.active_of(binding("simple"), state) == {"b": 100}


def test_resource_keys_are_the_same_whichever_endpoint_is_active(adapter):
    for mode in ("simple", "primary_backup", "weighted"):
        b = binding(mode)
        assert set(adapter.desired(b, {"a": 100})) == set(adapter.desired(b, {"b": 100})) == {KEY}
    assert adapter.calls == 0


# --------------------------------------------------------------------------- binding_problems
def eps(**values_and_locations) -> dict[str, CloudDnsEndpointBinding]:
    return {n: CloudDnsEndpointBinding(values=v[0], location=v[1]) for n, v in values_and_locations.items()}


@pytest.mark.parametrize(
    "b, path, reason",
    [
        (binding("primary_backup", endpoints=eps(a=(["192.0.2.1"], "us-east1"), b=(["192.0.2.2"], None))),
         "endpoints.b.location", "needs the GCP region of every endpoint"),
        (binding("primary_backup", endpoints=eps(a=(["192.0.2.1"], None), b=(["192.0.2.2"], "us-west1"))),
         "endpoints.a.location", "may become a backup"),
        (binding("primary_backup", endpoints=eps(a=(["192.0.2.1"], "us-east1"), b=(["192.0.2.2"], "US-EAST1"))),
         "endpoints.b.location", "distinct locations"),
        (binding("primary_backup", ("a",)), "endpoints", "at least one backup"),
        (binding("primary_backup", type="CNAME", endpoints=eps(a=(["a.example."], "us-east1"),
                                                               b=(["b.example."], "us-west1"))),
         "type", "use A or AAAA"),
        (binding("simple", trickle_ratio=0.1), "trickle_ratio", "primary_backup only"),
        (binding("weighted", active_weight=5, inactive_weight=5), "active_weight", "greater than inactive_weight"),
        (binding("weighted", active_weight=1, inactive_weight=2), "active_weight", "greater than inactive_weight"),
        (binding(type="CNAME", endpoints=eps(a=(["x.example.", "y.example."], None), b=(["z.example."], None))),
         "endpoints.a.values", "exactly one value"),
        (binding(endpoints=eps(a=(["192.0.2.1", "192.0.2.2"], None), b=(["192.0.2.2", "192.0.2.1"], None))),
         "endpoints.b.values", "same values as endpoint 'a'"),
    ],
)
def test_binding_problems(b, path, reason):
    problems = CloudDnsAdapter.binding_problems(b)
    assert any(p == path and reason in m for p, m in problems), problems


@pytest.mark.parametrize("b", [binding("simple"), binding("primary_backup"), binding("primary_backup", ("a", "b", "c")),
                               binding("primary_backup", type="AAAA", trickle_ratio=0.2,
                                       endpoints=eps(a=(["2001:db8::1"], "us-east1"), b=(["2001:db8::2"], "us-west1"))),
                               binding("weighted", ("a", "b", "c"), active_weight=0.5, inactive_weight=0)])
def test_sound_bindings_have_no_problems(b):
    assert CloudDnsAdapter.binding_problems(b) == []


def test_a_strategy_with_an_unsound_clouddns_binding_names_every_problem():
    text = """
connections:
  gcp: {type: clouddns, project: p}
services:
  shop:
    endpoints:
      - {name: use1, role: primary, region: us-east1}
      - {name: usw2, role: standby, region: us-west1}
    routing:
      - adapter: clouddns
        connection: gcp
        managed_zone: shop
        record: www.shop.example.
        mode: primary_backup
        type: TXT
        endpoints:
          use1: {values: ['"a"']}
          usw2: {values: ['"b"'], location: us-west1}
"""
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text)
    paths = {p.path.split(" (line")[0] for p in exc.value.problems}
    assert {"services.shop.routing[0].type", "services.shop.routing[0].endpoints.use1.location"} <= paths


# --------------------------------------------------------------------------- record sets as attributes
def pb_rrset(**extra) -> dict:
    rrs = {"kind": "dns#resourceRecordSet", "name": "www.shop.example.", "type": "A", "ttl": 60, "routingPolicy": {
        "primaryBackup": {"primaryTargets": {"externalEndpoints": ["192.0.2.1"]},
                          "backupGeoTargets": {"items": [{"location": "us-west1", "rrdatas": ["192.0.2.2"]}]},
                          "trickleTraffic": 0.1}}}
    rrs["routingPolicy"].update(extra)
    return rrs


def test_attrs_of_reads_each_known_shape():
    plain = {"ttl": "300", "rrdatas": ["192.0.2.9", "192.0.2.1"]}
    assert attrs_of(plain) == {"ttl": 300, "values": ["192.0.2.1", "192.0.2.9"]}
    assert attrs_of(pb_rrset()) == {"ttl": 60, "primary": ["192.0.2.1"], "trickle_ratio": 0.1,
                                    "backup": [{"location": "us-west1", "values": ["192.0.2.2"]}]}
    wrr = {"ttl": 60, "routingPolicy": {"wrr": {"items": [{"rrdatas": ["192.0.2.2"]},  # weight 0 is left out
                                                          {"weight": 3, "rrdatas": ["192.0.2.1"]}]}}}
    assert attrs_of(wrr) == {"ttl": 60, "wrr": [{"weight": 3.0, "values": ["192.0.2.1"]},
                                                {"weight": 0.0, "values": ["192.0.2.2"]}]}


@pytest.mark.parametrize("policy", [
    {"geo": {"items": [{"location": "us-east1", "rrdatas": ["192.0.2.1"]}]}},
    {"wrr": {"items": [{"weight": 1, "healthCheckedTargets": {"externalEndpoints": ["192.0.2.1"]}}]}},
    {"primaryBackup": {"primaryTargets": {"internalLoadBalancers": [{"ipAddress": "10.0.0.1"}]},
                       "backupGeoTargets": {"items": [{"location": "us-west1", "rrdatas": ["192.0.2.2"]}]}}},
])
def test_attrs_of_keeps_an_unknown_routing_policy_whole(policy):
    attrs = attrs_of({"ttl": 60, "routingPolicy": policy})
    assert attrs == {"ttl": 60, "routing_policy": policy}
    assert rrset_of(KEY, attrs)["routingPolicy"] == policy


def test_rrset_of_primary_backup_leaves_out_a_zero_trickle():
    rrs = rrset_of(KEY, {"ttl": 60, "primary": ["192.0.2.1"], "trickle_ratio": 0.0,
                         "backup": [{"location": "us-west1", "values": ["192.0.2.2"]}]})
    assert rrs == {"name": "www.shop.example.", "type": "A", "ttl": 60, "routingPolicy": {"primaryBackup": {
        "primaryTargets": {"externalEndpoints": ["192.0.2.1"]},
        "backupGeoTargets": {"items": [{"location": "us-west1", "rrdatas": ["192.0.2.2"]}]}}}}


# --------------------------------------------------------------------------- change bodies
A = {"ttl": 60, "values": ["192.0.2.1"]}
B = {"ttl": 60, "values": ["192.0.2.2"]}


def key(i: int, zone: str = ZONE) -> ResourceKey:
    return ResourceKey("clouddns", zone, f"r{i}.shop.example.", "A")


def test_an_update_is_the_deletion_of_the_before_state_and_the_addition_of_the_after_state():
    assert change_bodies([Change(KEY, A, B)]) == {ZONE: [{
        "deletions": [{"name": "www.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.1"]}],
        "additions": [{"name": "www.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.2"]}]}]}


def test_create_adds_delete_deletes_noop_sends_nothing():
    assert change_bodies([Change(KEY, None, A)])[ZONE] == [{"additions": [rrset_of(KEY, A)], "deletions": []}]
    assert change_bodies([Change(KEY, A, None)])[ZONE] == [{"additions": [], "deletions": [rrset_of(KEY, A)]}]
    assert change_bodies([Change(KEY, A, dict(A)), Change(key(1), None, None)]) == {}


def test_every_change_of_a_zone_is_one_body_and_zones_are_apart():
    out = change_bodies([Change(key(1), A, B), Change(key(2, "other"), A, B), Change(key(3), None, B),
                         Change(key(4), A, A)])
    assert {z: [(len(b["additions"]), len(b["deletions"])) for b in bodies] for z, bodies in out.items()} == {
        ZONE: [(2, 1)], "other": [(1, 1)]}


def test_the_deletion_is_the_record_set_as_read_when_it_is_the_one_planned_against():
    raw = pb_rrset(healthCheck="https://www.googleapis.com/compute/v1/projects/p/global/healthChecks/hc")
    raw["routingPolicy"]["primaryBackup"]["backupGeoTargets"]["enableFencing"] = True
    before = attrs_of(raw)
    after = {**before, "primary": ["192.0.2.2"], "backup": [{"location": "us-east1", "values": ["192.0.2.1"]}]}
    (body,) = change_bodies([Change(KEY, before, after)], {KEY: raw})[ZONE]
    assert body["deletions"] == [{k: v for k, v in raw.items() if k != "kind"}]  # exact, fields plans don't show
    added = body["additions"][0]["routingPolicy"]
    assert added["healthCheck"] == raw["routingPolicy"]["healthCheck"]  # carried over
    assert added["primaryBackup"]["backupGeoTargets"]["enableFencing"] is True
    assert added["primaryBackup"]["primaryTargets"] == {"externalEndpoints": ["192.0.2.2"]}


def test_a_record_set_read_before_a_different_plan_is_not_used_for_the_deletion():
    stale = {"name": KEY.name, "type": "A", "ttl": 300, "rrdatas": ["203.0.113.1"]}
    (body,) = change_bodies([Change(KEY, A, B)], {KEY: stale})[ZONE]
    assert body["deletions"] == [rrset_of(KEY, A)]


def test_two_changes_to_one_record_set_are_refused():
    with pytest.raises(CloudDnsError, match="two changes to the same record set"):
        change_bodies([Change(KEY, A, B), Change(KEY, B, A)])


def test_a_zone_is_split_only_at_the_per_change_quota(monkeypatch):
    monkeypatch.setattr(records, "MAX_RRSETS_PER_CHANGE", 3)
    bodies = change_bodies([Change(key(i), A, B) for i in range(7)])[ZONE]
    assert [len(b["additions"]) for b in bodies] == [len(b["deletions"]) for b in bodies] == [3, 3, 1]
    for b in bodies:  # each record set's deletion and addition travel together
        assert [d["name"] for d in b["deletions"]] == [a["name"] for a in b["additions"]]


# --------------------------------------------------------------------------- retries and errors
def http_error(status: int, reason: str, message: str = "boom") -> HttpError:
    body = {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}
    return HttpError(httplib2.Response({"status": status}), json.dumps(body).encode(), uri="http://x/dns/v1/...")


def scripted(outcomes: list):
    seen: list[int] = []

    def send():
        seen.append(1)
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return send, seen


def api(max_attempts: int = 5) -> tuple[CloudDnsApi, list[float]]:
    sleeps: list[float] = []
    conn = CloudDnsConnection(project="p", credentials="anonymous", max_attempts=max_attempts)
    return CloudDnsApi(conn, sleep=sleeps.append), sleeps


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUS))
def test_throttling_and_5xx_are_retried_then_the_result_returned(status):
    a, sleeps = api()
    send, seen = scripted([http_error(status, "rateLimitExceeded"), http_error(status, "backendError"), {"ok": 1}])
    assert a.call("list record sets", "z", send) == {"ok": 1}
    assert a.calls == len(seen) == a.last_attempts == 3
    assert len(sleeps) == 2 and all(0 < s <= 20.0 for s in sleeps)


def test_google_cloud_dns_errors_are_retried_too():
    a, _unused = api()
    throttled = core_exceptions.TooManyRequests("slow down", errors=[{"reason": "rateLimitExceeded"}])
    send, seen = scripted([throttled, "zone"])
    assert a.call("get managed zone", "z", send) == "zone" and len(seen) == 2


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_retries_are_bounded_by_max_attempts(max_attempts):
    a, sleeps = api(max_attempts)
    send, seen = scripted([http_error(500, "backendError", "Internal error encountered.")])
    with pytest.raises(CloudDnsError) as exc:
        a.call("create change", "z", send)
    assert a.calls == len(seen) == max_attempts and len(sleeps) == max_attempts - 1
    assert exc.value.code == "500 backendError" and exc.value.status == 500
    assert f"failed after {max_attempts} attempt(s): Internal error encountered." in str(exc.value)


def test_backoff_grows_and_stays_bounded():
    a, sleeps = api(20)
    send, _unused = scripted([http_error(429, "rateLimitExceeded")] * 19 + [{}])
    a.call("list record sets", "z", send)
    assert len(sleeps) == 19 and sleeps[0] <= 0.5 and max(sleeps) <= 20.0 and sleeps[-1] >= 10.0


@pytest.mark.parametrize("status, reason, says", [
    (412, "conditionNotMet", "changed since it was read"),
    (409, "alreadyExists", "already exists"),
    (404, "notFound", "not found in project 'p'"),
    (403, "forbidden", "permission denied in project 'p'"),
    (400, "invalid", "refused: boom"),
])
def test_a_non_retryable_error_is_raised_at_once_with_status_reason_and_resource(status, reason, says):
    a, sleeps = api()
    msg = "The 'parameters.managedZone' resource named 'z' does not exist." if status == 404 else "boom"
    send, seen = scripted([http_error(status, reason, msg), {}])
    with pytest.raises(CloudDnsError) as exc:
        a.call("create change", "z/www.shop.example./A", send)
    err = exc.value
    assert isinstance(err, AdapterError) and (err.code, err.resource) == (f"{status} {reason}", "z/www.shop.example./A")
    assert says in str(err) and str(err).startswith("clouddns [z/www.shop.example./A]: ")
    assert len(seen) == 1 and sleeps == []


def test_a_transport_failure_names_the_endpoint():
    a, _unused = api()
    send, _unused = scripted([ConnectionRefusedError(111, "Connection refused")])
    with pytest.raises(CloudDnsError, match="cannot reach Cloud DNS at dns.googleapis.com") as exc:
        a.call("list record sets", "z", send)
    assert exc.value.code == "unreachable"


def test_missing_default_credentials_say_what_to_do(monkeypatch):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(**_unused):
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    a = CloudDnsApi(CloudDnsConnection(project="p"), sleep=lambda s: None)
    with pytest.raises(CloudDnsError, match="gcloud auth application-default login"):
        a.records  # noqa: B018 - building the client asks for credentials
    with pytest.raises(CloudDnsError, match="give `project` in the clouddns connection"):
        CloudDnsApi(CloudDnsConnection(project="", credentials="anonymous"), sleep=lambda s: None).project


def test_credentials_that_cannot_be_refreshed_are_a_typed_error_and_bugs_are_not_masked():
    from google.auth.exceptions import RefreshError

    a, _unused = api()
    send, _unused = scripted([RefreshError("invalid_grant: token expired")])
    with pytest.raises(CloudDnsError, match="could not be refreshed") as exc:
        a.call("list record sets", "z", send)
    assert exc.value.code == "credentials"
    send, _unused = scripted([TypeError("a bug of ours")])
    with pytest.raises(TypeError, match="a bug of ours"):
        a.call("list record sets", "z", send)


# --------------------------------------------------------------------------- lost answers, timeouts
def test_a_5xx_or_a_reset_may_have_been_carried_out_a_refused_connection_not():
    a, _unused = api(max_attempts=2)
    send, _unused = scripted([http_error(503, "backendError")])
    with pytest.raises(CloudDnsError) as exc:
        a.call("create change", "z", send)
    assert a.last_lost and exc.value.answer_lost
    refused = ConnectionRefusedError(111, "Connection refused")
    refused.failover_not_sent = True  # as the adapter's httplib2 connections mark a failed connect
    send, seen = scripted([refused])
    with pytest.raises(CloudDnsError) as exc:
        a.call("create change", "z", send)
    assert not a.last_lost and not exc.value.answer_lost and len(seen) == 1  # never sent: not repeated
    send, seen = scripted([ConnectionResetError(104, "Connection reset by peer"), {"id": "1"}])
    assert a.call("create change", "z", send) == {"id": "1"} and len(seen) == 2  # a reset is repeated
    assert a.last_lost


def test_a_read_timeout_is_not_repeated_and_names_the_timeout():
    a, sleeps = api(max_attempts=3)
    send, seen = scripted([TimeoutError("timed out")])
    with pytest.raises(CloudDnsError, match="no answer from Cloud DNS at dns.googleapis.com within read_timeout 10s"
                       ) as exc:
        a.call("create change", "z", send)
    assert (exc.value.code, exc.value.answer_lost, len(seen), sleeps) == ("timeout", True, 1, [])


def test_the_clients_take_the_connection_timeouts(monkeypatch):
    import requests

    conn = CloudDnsConnection(project="p", credentials="anonymous", endpoint_url="http://127.0.0.1:9",
                              connect_timeout="1500ms", read_timeout=4)
    a = CloudDnsApi(conn, sleep=lambda s: None)
    a.records  # noqa: B018 - builds the discovery client (no request)
    assert a._http.timeout == 4.0 and a._http.sends == 0
    seen: dict = {}

    def parent_request(self, method, url, **kw):  # what google-auth's session calls underneath
        seen.update(kw)
        raise ConnectionRefusedError(111, "no")

    monkeypatch.setattr(requests.Session, "request", parent_request)
    with pytest.raises(ConnectionRefusedError):
        a.zones._http.request("GET", "http://127.0.0.1:9/x", timeout=60)  # google-cloud-core passes 60
    assert seen["timeout"] == (1.5, 4.0)
