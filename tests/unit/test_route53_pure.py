"""Route53Adapter without a network: desired/active_of, binding_problems, batches_for, and the retry path.

The adapter gets ``client=object()`` wherever no call is expected, so any API call would fail loudly.
Where calls are the point (retries, apply), a small fake of the boto3 client raises real botocore errors.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from failover_engine.adapters import adapter_class, make_adapter
from failover_engine.adapters.base import Capability
from failover_engine.adapters.route53 import (
    MAX_RECORDS_PER_BATCH,
    RETRYABLE,
    Route53Adapter,
    fqdn,
    same_attrs,
)
from failover_engine.core.errors import AdapterError, ConcurrentEditError, Route53ConcurrentEditError, Route53Error
from failover_engine.core.model import Route53Connection, Route53EndpointBinding, Route53Routing
from failover_engine.core.plan import Change, ResourceKey

ZONE = "Z0123456789"


def binding(mode: str = "simple", names: tuple[str, ...] = ("a", "b"), **kw) -> Route53Routing:
    kw.setdefault("hosted_zone_id", ZONE)
    kw.setdefault("record", "WWW.Example.com")
    eps = kw.pop("endpoints", None) or {
        n: Route53EndpointBinding(values=[f"192.0.2.{i}", f"198.51.100.{i}"] if n == "b" else [f"192.0.2.{i}"])
        for i, n in enumerate(names, start=1)}
    return Route53Routing(mode=mode, endpoints=eps, **kw)


@pytest.fixture
def adapter() -> Route53Adapter:
    return Route53Adapter(client=object())


# --------------------------------------------------------------------------- registry, names
def test_registry_resolves_route53_and_declares_capabilities():
    cls = adapter_class("route53")
    assert cls is Route53Adapter and cls.kind == "route53"
    assert {Capability.SIMPLE_SWAP, Capability.FAILOVER_RECORDS, Capability.WEIGHTED,
            Capability.ATOMIC_BATCH, Capability.READ_BACK} <= cls.capabilities
    assert isinstance(make_adapter("route53", Route53Connection(max_attempts=2)), Route53Adapter)


def test_registry_names_the_known_adapters_for_an_unknown_one():
    from failover_engine.adapters import _REGISTRY

    with pytest.raises(ValueError, match="unknown adapter 'azure'; known: ") as exc:
        adapter_class("azure")
    assert str(exc.value).endswith(", ".join(sorted(_REGISTRY)))
    assert {"route53", "clouddns", "trafficmanager"} <= set(_REGISTRY)


@pytest.mark.parametrize("name, want", [("www.example.com", "www.example.com."), ("WWW.Example.COM.", "www.example.com."),
                                        (" www.example.com ", "www.example.com."),
                                        ("\\052.example.com.", "*.example.com.")])
def test_fqdn(name, want):
    assert fqdn(name) == want


@pytest.mark.parametrize("zone_id", [ZONE, f"/hostedzone/{ZONE}"])
def test_zone_id_from_the_binding_needs_no_call(adapter, zone_id):
    assert adapter.zone_id(binding(hosted_zone_id=zone_id)) == ZONE
    assert adapter.calls == 0


# --------------------------------------------------------------------------- desired / active_of
def key(sid: str | None = None) -> ResourceKey:
    return ResourceKey("route53", ZONE, "www.example.com.", "A", sid)


def test_desired_simple_is_one_record_with_the_active_values(adapter):
    assert adapter.desired(binding("simple", ttl=30), {"b": 100}) == {
        key(): {"ttl": 30, "values": ["192.0.2.2", "198.51.100.2"]}}


def test_desired_failover_flips_primary_and_secondary(adapter):
    b = binding("failover", endpoints={
        "a": Route53EndpointBinding(values=["192.0.2.1"], set_identifier="a-primary", health_check_id="hc-a"),
        "b": Route53EndpointBinding(values=["192.0.2.2"])})
    assert adapter.desired(b, {"b": 100}) == {
        key("a-primary"): {"ttl": 60, "values": ["192.0.2.1"], "failover": "SECONDARY", "health_check_id": "hc-a"},
        key("b"): {"ttl": 60, "values": ["192.0.2.2"], "failover": "PRIMARY"},
    }


def test_desired_weighted_gives_active_and_inactive_weights(adapter):
    b = binding("weighted", ("a", "b", "c"), active_weight=200, inactive_weight=1)
    got = adapter.desired(b, {"a": 100, "c": 50})
    assert {k.set_identifier: v["weight"] for k, v in got.items()} == {"a": 200, "b": 1, "c": 100}


@pytest.mark.parametrize("assignment", [{"a": 100, "b": 100}, {}, {"a": 0}])
def test_desired_simple_needs_exactly_one_active(adapter, assignment):
    with pytest.raises(Route53Error, match="exactly one active endpoint"):
        adapter.desired(binding("simple"), assignment)


@pytest.mark.parametrize(
    "mode, names, extra, assignment",
    [
        ("simple", ("a", "b"), {}, {"a": 100}),
        ("simple", ("a", "b"), {}, {"b": 100}),
        ("simple", ("a", "b", "c"), {}, {"c": 100}),
        ("failover", ("a", "b"), {}, {"a": 100}),
        ("failover", ("a", "b"), {}, {"b": 100}),
        ("weighted", ("a", "b", "c"), {}, {"a": 100}),
        ("weighted", ("a", "b", "c"), {}, {"c": 100}),
        ("weighted", ("a", "b", "c"), {}, {"a": 50, "b": 50}),
        ("weighted", ("a", "b", "c"), {}, {"a": 100, "b": 100, "c": 100}),
        ("weighted", ("a", "b"), {"active_weight": 255}, {"b": 100}),
        ("weighted", ("a", "b"), {"active_weight": 10, "inactive_weight": 1}, {"a": 100}),
    ],
)
def test_active_of_desired_round_trips(adapter, mode, names, extra, assignment):
    b = binding(mode, names, **extra)
    state = adapter.desired(b, assignment)
    assert adapter.active_of(b, state) == assignment
    assert set(state) == set(adapter.resource_keys(b))


@pytest.mark.parametrize(
    "mode, state",
    [
        ("simple", {}),
        ("simple", {key(): None}),
        ("simple", {key(): {"ttl": 60, "values": ["203.0.113.9"]}}),
        ("failover", {}),
        ("failover", {key("a"): {"failover": "PRIMARY"}, key("b"): {"failover": "PRIMARY"}}),
        ("failover", {key("a"): {"failover": "SECONDARY"}, key("b"): {"failover": "SECONDARY"}}),
        ("weighted", {key("a"): {"weight": 100}}),  # b's record is missing
        ("weighted", {key("a"): {"weight": 0}, key("b"): {"weight": 0}}),
    ],
)
def test_active_of_an_unrecognised_state_is_none(adapter, mode, state):
    assert adapter.active_of(binding(mode), state) is None


def test_active_of_simple_ignores_value_order(adapter):
    state = {key(): {"ttl": 60, "values": ["198.51.100.2", "192.0.2.2"]}}
    assert adapter.active_of(binding("simple"), state) == {"b": 100}


def test_active_of_failover_with_one_record_present(adapter):
    assert adapter.active_of(binding("failover"), {key("b"): {"failover": "PRIMARY"}}) == {"b": 100}


def test_resource_keys_are_the_same_whichever_endpoint_is_active(adapter):
    for mode in ("simple", "failover", "weighted"):
        b = binding(mode)
        assert set(adapter.desired(b, {"a": 100})) == set(adapter.desired(b, {"b": 100})) == set(adapter.resource_keys(b))


# --------------------------------------------------------------------------- binding_problems
@pytest.mark.parametrize(
    "b, path, reason",
    [
        (binding(hosted_zone_id=None), "hosted_zone_id", "give hosted_zone_id or hosted_zone"),
        (binding("failover", ("a", "b", "c")), "endpoints", "exactly two endpoints"),
        (binding("failover", ("a",)), "endpoints", "exactly two endpoints"),
        (binding("weighted", endpoints={"a": Route53EndpointBinding(values=["1.1.1.1"], set_identifier="x"),
                                        "b": Route53EndpointBinding(values=["2.2.2.2"], set_identifier="x")}),
         "endpoints", "set_identifier values must be unique"),
        (binding("failover", endpoints={"a": Route53EndpointBinding(values=["1.1.1.1"], set_identifier="b"),
                                        "b": Route53EndpointBinding(values=["2.2.2.2"])}),
         "endpoints", "set_identifier values must be unique"),  # default sid is the endpoint name
        (binding(type="CNAME", endpoints={"a": Route53EndpointBinding(values=["x.example.com", "y.example.com"]),
                                          "b": Route53EndpointBinding(values=["z.example.com"])}),
         "endpoints.a.values", "exactly one value"),
        (binding("weighted", active_weight=5, inactive_weight=5), "active_weight", "greater than inactive_weight"),
    ],
)
def test_binding_problems(b, path, reason):
    problems = Route53Adapter.binding_problems(b)
    assert any(p == path and reason in m for p, m in problems), problems


@pytest.mark.parametrize("b", [binding("simple"), binding("failover"), binding("weighted", ("a", "b", "c")),
                               binding(hosted_zone_id=None, hosted_zone="example.com."),
                               binding("simple", endpoints={"a": Route53EndpointBinding(values=["1.1.1.1"],
                                                                                        set_identifier="x"),
                                                            "b": Route53EndpointBinding(values=["2.2.2.2"],
                                                                                        set_identifier="x")})])
def test_sound_bindings_have_no_problems(b):
    assert Route53Adapter.binding_problems(b) == []


# --------------------------------------------------------------------------- batches_for
def rec(name: str, values: list[str] | None = None, sid: str | None = None, zone: str = ZONE,
        failover: str | None = None) -> tuple[ResourceKey, dict]:
    attrs: dict = {"ttl": 60, "values": values or ["192.0.2.1"]}
    if failover:
        attrs["failover"] = failover
    return ResourceKey("route53", zone, name, "A", sid), attrs


def update(i: int, values: list[str] | None = None, zone: str = ZONE) -> Change:
    k, attrs = rec(f"r{i}.example.com.", values, zone=zone)
    return Change(k, {**attrs, "ttl": 30}, attrs)


def delete(i: int, values: list[str] | None = None) -> Change:
    k, attrs = rec(f"r{i}.example.com.", values)
    return Change(k, attrs, None)


def create(i: int, values: list[str] | None = None) -> Change:
    k, attrs = rec(f"r{i}.example.com.", values)
    return Change(k, None, attrs)


def pair(name: str = "www.example.com.", to: str = "b") -> list[Change]:
    """A failover flip: two records of one name/type that must change together."""
    ka, a = rec(name, ["192.0.2.1"], "a")
    kb, b = rec(name, ["192.0.2.2"], "b")
    a_after, b_after = ("SECONDARY", "PRIMARY") if to == "b" else ("PRIMARY", "SECONDARY")
    return [Change(ka, {**a, "failover": b_after}, {**a, "failover": a_after}),
            Change(kb, {**b, "failover": a_after}, {**b, "failover": b_after})]


def weight_of(batch: list[dict]) -> int:
    """ResourceRecord elements of a batch: DELETE and CREATE each count once per value."""
    return sum(len(e["ResourceRecordSet"]["ResourceRecords"]) for e in batch)


def chars_of(batch: list[dict]) -> int:
    return sum(len(r["Value"]) for e in batch for r in e["ResourceRecordSet"]["ResourceRecords"])


def test_an_update_is_the_delete_of_the_exact_before_record_and_the_create_of_the_after_record():
    changes = pair()
    out = Route53Adapter.batches_for(changes)
    assert list(out) == [ZONE]
    (batch,) = out[ZONE]
    assert [(e["Action"], e["ResourceRecordSet"]["SetIdentifier"], e["ResourceRecordSet"]["Failover"])
            for e in batch] == [("DELETE", "a", "PRIMARY"), ("DELETE", "b", "SECONDARY"),
                                ("CREATE", "a", "SECONDARY"), ("CREATE", "b", "PRIMARY")]
    assert batch[0]["ResourceRecordSet"] == {"Name": "www.example.com.", "Type": "A", "TTL": 60,
                                             "ResourceRecords": [{"Value": "192.0.2.1"}],
                                             "SetIdentifier": "a", "Failover": "PRIMARY"}
    assert batch[2]["ResourceRecordSet"] == {**batch[0]["ResourceRecordSet"], "Failover": "SECONDARY"}
    assert "UPSERT" not in {e["Action"] for e in batch}


def test_rrset_carries_weight_and_health_check():
    k = ResourceKey("route53", ZONE, "w.example.com.", "A", "a")
    (batch,) = Route53Adapter.batches_for([Change(k, None, {"ttl": 60, "values": ["1.1.1.1"], "weight": 7,
                                                            "health_check_id": "hc"})])[ZONE]
    rrs = batch[0]["ResourceRecordSet"]
    assert (batch[0]["Action"], rrs["Weight"], rrs["HealthCheckId"], rrs["SetIdentifier"]) == ("CREATE", 7, "hc", "a")


@pytest.mark.parametrize(
    "n, make, sizes",
    [
        (1000, update, [1000, 1000]),  # DELETE + CREATE: two elements per single-value record
        (500, update, [1000]),         # exactly at the limit
        (501, update, [1000, 2]),
        (1000, delete, [1000]),        # a DELETE alone counts once
        (1001, delete, [1000, 1]),
        (1001, create, [1000, 1]),     # so does a CREATE
        (250, lambda i: update(i, [f"192.0.2.{j}" for j in range(1, 5)]), [250, 250]),  # 4 values x 2
    ],
)
def test_batches_chunk_at_the_resource_record_limit(n, make, sizes):
    batches = Route53Adapter.batches_for([make(i) for i in range(n)])[ZONE]
    assert [len(b) for b in batches] == sizes
    assert all(weight_of(b) <= MAX_RECORDS_PER_BATCH for b in batches)


def test_a_thousand_failover_pairs_are_four_full_batches_with_every_pair_whole():
    """1,000 services, each a PRIMARY/SECONDARY pair flipping: 2,000 records, 4,000 elements."""
    changes = [c for i in range(1000) for c in pair(f"svc{i:04d}.example.com.")]
    batches = Route53Adapter.batches_for(changes)[ZONE]
    assert [weight_of(b) for b in batches] == [1000, 1000, 1000, 1000]
    assert [len(b) for b in batches] == [1000, 1000, 1000, 1000]
    where: dict[str, set[int]] = {}
    for i, b in enumerate(batches):
        for e in b:
            where.setdefault(e["ResourceRecordSet"]["Name"], set()).add(i)
    assert len(where) == 1000 and all(len(w) == 1 for w in where.values())  # no pair split
    actions = [(e["Action"], e["ResourceRecordSet"]["Name"], e["ResourceRecordSet"]["SetIdentifier"])
               for b in batches for e in b]
    assert sum(1 for a in actions if a[0] == "DELETE") == sum(1 for a in actions if a[0] == "CREATE") == 2000


def test_a_failover_pair_is_never_split_across_batches():
    # 499 single-value updates weigh 998; the pair (4) would cross 1000.
    changes = [update(i) for i in range(499)] + pair()
    batches = Route53Adapter.batches_for(changes)[ZONE]
    assert len(batches) == 2
    where = [i for i, b in enumerate(batches) for e in b if e["ResourceRecordSet"]["Name"] == "www.example.com."]
    assert len(where) == 4 and len(set(where)) == 1
    assert all(weight_of(b) <= MAX_RECORDS_PER_BATCH for b in batches)


def test_a_pair_whose_changes_are_far_apart_in_the_input_stays_together():
    first, second = pair()
    changes = [first] + [update(i) for i in range(499)] + [second]
    batches = Route53Adapter.batches_for(changes)[ZONE]
    where = {i for i, b in enumerate(batches) for e in b if e["ResourceRecordSet"]["Name"] == "www.example.com."}
    assert len(where) == 1
    assert sum(len(b) for b in batches) == 1002


def test_a_record_too_large_for_one_batch_is_refused_before_any_call():
    k, attrs = rec("big.example.com.", [f"10.0.{i // 250}.{i % 250}" for i in range(501)])
    with pytest.raises(Route53Error) as exc:
        Route53Adapter.batches_for([Change(k, {**attrs, "ttl": 30}, attrs)])
    assert exc.value.code == "BatchTooLarge" and "1002 ResourceRecord elements" in str(exc.value)


def test_noop_changes_produce_no_entries():
    k, attrs = rec("www.example.com.")
    assert Route53Adapter.batches_for([Change(k, attrs, dict(attrs)), Change(k, None, None)]) == {}
    out = Route53Adapter.batches_for([Change(k, attrs, dict(attrs)), update(1)])
    assert [e["ResourceRecordSet"]["Name"] for b in out[ZONE] for e in b] == ["r1.example.com."] * 2


def test_delete_uses_the_before_state():
    k, attrs = rec("old.example.com.", ["203.0.113.5"], "a", failover="SECONDARY")
    (batch,) = Route53Adapter.batches_for([Change(k, attrs, None)])[ZONE]
    assert batch == [{"Action": "DELETE", "ResourceRecordSet": {
        "Name": "old.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "203.0.113.5"}],
        "SetIdentifier": "a", "Failover": "SECONDARY"}}]


def test_create_is_a_create_of_the_after_state_only():
    k, attrs = rec("new.example.com.", ["203.0.113.6"])
    (batch,) = Route53Adapter.batches_for([Change(k, None, attrs)])[ZONE]
    assert [e["Action"] for e in batch] == ["CREATE"]
    assert batch[0]["ResourceRecordSet"]["ResourceRecords"] == [{"Value": "203.0.113.6"}]


def test_the_delete_is_the_record_set_as_read_when_it_is_the_one_planned_against():
    """Fields a plan does not show (here GeoLocation) stay in the DELETE, so that it matches
    what Route 53 holds exactly."""
    k = ResourceKey("route53", ZONE, "www.example.com.", "A", "a")
    raw = {"Name": "www.example.com.", "Type": "A", "SetIdentifier": "a", "Failover": "PRIMARY", "TTL": 60,
           "ResourceRecords": [{"Value": "192.0.2.1"}], "HealthCheckId": "hc-1",
           "GeoLocation": {"CountryCode": "*"}}
    before = Route53Adapter._attrs_of(raw)
    assert before == {"ttl": 60, "values": ["192.0.2.1"], "failover": "PRIMARY", "health_check_id": "hc-1"}
    change = Change(k, before, {**before, "failover": "SECONDARY"})
    (batch,) = Route53Adapter.batches_for([change], {k: raw})[ZONE]
    assert batch[0] == {"Action": "DELETE", "ResourceRecordSet": raw}
    assert batch[0]["ResourceRecordSet"] is not raw  # a copy: the batch never aliases what was read
    # a record set read for another plan (different values) is not used: rebuilt from `before`
    other = {**raw, "TTL": 300}
    (batch,) = Route53Adapter.batches_for([change], {k: other})[ZONE]
    assert "GeoLocation" not in batch[0]["ResourceRecordSet"] and batch[0]["ResourceRecordSet"]["TTL"] == 60


@pytest.mark.parametrize("raw", [
    {"Name": "www.example.com.", "Type": "A", "SetIdentifier": "a", "Weight": 10, "TTL": 60,
     "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}], "HealthCheckId": "hc"},
    {"Name": "www.example.com.", "Type": "A", "SetIdentifier": "a", "Failover": "SECONDARY",
     "AliasTarget": {"HostedZoneId": "Z2", "DNSName": "lb.example.net.", "EvaluateTargetHealth": True}},
    {"Name": "www.example.com.", "Type": "A", "TTL": 0, "ResourceRecords": [{"Value": "192.0.2.1"}]},
])
def test_attrs_round_trip_to_the_record_set_route53_holds(raw):
    k = Route53Adapter._key_of(ZONE, raw)
    assert Route53Adapter._rrset(k, Route53Adapter._attrs_of(raw)) == raw


def test_batches_are_per_zone():
    out = Route53Adapter.batches_for([update(1, zone="ZA"), update(2, zone="ZB"), update(3, zone="ZA")])
    assert {z: [len(b) for b in bs] for z, bs in out.items()} == {"ZA": [4], "ZB": [2]}


def test_deletes_chunk_at_the_value_character_limit():
    value = "x" * 500
    batches = Route53Adapter.batches_for([delete(i, [value]) for i in range(70)])[ZONE]  # 35,000 chars
    assert [len(b) for b in batches] == [64, 6]


def test_updates_count_the_values_of_the_delete_and_of_the_create():
    value = "x" * 500
    batches = Route53Adapter.batches_for([update(i, [value]) for i in range(40)])[ZONE]  # 40,000 chars sent
    assert [chars_of(b) for b in batches] == [32000, 8000]
    assert [len(b) for b in batches] == [64, 16]


@pytest.mark.parametrize("a, b, same", [
    ({"ttl": 60, "values": ["1", "2"]}, {"ttl": 60, "values": ["2", "1"]}, True),
    ({"ttl": 60, "values": ["1"]}, {"ttl": 61, "values": ["1"]}, False),
    ({"ttl": 60, "values": ["1"], "failover": "PRIMARY"}, {"ttl": 60, "values": ["1"]}, False),
    (None, None, True),
    (None, {"ttl": 60, "values": ["1"]}, False),
])
def test_same_attrs_ignores_value_order_only(a, b, same):
    assert same_attrs(a, b) is same


# --------------------------------------------------------------------------- retries (fake boto3 client)
def client_error(code: str, op: str = "ListHostedZonesByName") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, op)


class FakeRoute53Client:
    """Stand-in for the boto3 route53 client: each call takes the next scripted outcome."""

    def __init__(self, outcomes: list):
        self.outcomes = list(outcomes)
        self.requests: list[tuple[str, dict]] = []

    def _next(self, op: str, kwargs: dict):
        self.requests.append((op, kwargs))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def list_hosted_zones_by_name(self, **kw):
        return self._next("list_hosted_zones_by_name", kw)


ZONES = {"HostedZones": [{"Name": "example.com.", "Id": f"/hostedzone/{ZONE}"}]}


def make(outcomes: list, max_attempts: int = 5) -> tuple[Route53Adapter, FakeRoute53Client, list[float]]:
    sleeps: list[float] = []
    client = FakeRoute53Client(outcomes)
    a = Route53Adapter(Route53Connection(max_attempts=max_attempts), client=client, sleep=sleeps.append)
    return a, client, sleeps


@pytest.mark.parametrize("code", sorted(RETRYABLE))
def test_throttling_is_retried_then_the_result_returned(code):
    a, client, sleeps = make([client_error(code), client_error(code), ZONES])
    assert a.zone_id(binding(hosted_zone_id=None, hosted_zone="Example.com")) == ZONE
    assert a.calls == 3 and len(client.requests) == 3
    assert client.requests[0] == ("list_hosted_zones_by_name", {"DNSName": "example.com.", "MaxItems": "1"})
    assert len(sleeps) == 2 and all(0 < s <= 20.0 for s in sleeps)


def test_backoff_grows_and_stays_bounded():
    a, _unused, sleeps = make([client_error("Throttling")] * 19 + [ZONES], max_attempts=20)
    a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com."))
    assert len(sleeps) == 19
    assert sleeps[0] <= 0.4 and max(sleeps) <= 20.0 and sleeps[-1] >= 10.0


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_retries_are_bounded_by_max_attempts(max_attempts):
    a, client, sleeps = make([client_error("Throttling")], max_attempts=max_attempts)
    with pytest.raises(Route53Error) as exc:
        a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com."))
    assert a.calls == max_attempts == len(client.requests)
    assert len(sleeps) == max_attempts - 1
    assert exc.value.code == "Throttling"


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidChangeBatch", "NoSuchHostedZone", "InvalidInput"])
def test_a_non_retryable_error_is_raised_at_once_with_code_and_resource(code):
    a, client, sleeps = make([client_error(code), ZONES])
    with pytest.raises(Route53Error) as exc:
        a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com"))
    err = exc.value
    assert (err.code, err.resource) == (code, "example.com.")
    assert isinstance(err, AdapterError)
    assert str(err) == f"route53 [example.com.]: list_hosted_zones_by_name failed: {code} happened ({code})"
    assert a.calls == 1 and sleeps == []


def test_zone_lookup_is_cached():
    a, client, _unused = make([ZONES])
    b = binding(hosted_zone_id=None, hosted_zone="example.com.")
    assert a.zone_id(b) == a.zone_id(b) == ZONE
    assert len(client.requests) == 1


def test_a_missing_zone_is_a_typed_error():
    a, _unused, _unused = make([{"HostedZones": [{"Name": "other.com.", "Id": "/hostedzone/ZX"}]}])
    with pytest.raises(Route53Error) as exc:
        a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com."))
    assert (exc.value.code, exc.value.resource) == ("NoSuchHostedZone", "example.com.")


def test_missing_credentials_say_what_to_do():
    a, _unused, sleeps = make([NoCredentialsError()])
    with pytest.raises(Route53Error, match="no AWS credentials found; set AWS_PROFILE"):
        a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com."))
    assert sleeps == []


def test_an_unreachable_endpoint_names_it():
    sleeps: list[float] = []
    client = FakeRoute53Client([EndpointConnectionError(endpoint_url="http://127.0.0.1:1")])
    a = Route53Adapter(Route53Connection(endpoint_url="http://127.0.0.1:1"), client=client, sleep=sleeps.append)
    with pytest.raises(Route53Error, match=r"cannot reach Route 53 at http://127\.0\.0\.1:1"):
        a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com."))


# --------------------------------------------------------------------------- apply (fake client)
def listing_of(changes: list[Change]) -> dict:
    """A list_resource_record_sets answer holding every change's before-record."""
    return {"IsTruncated": False, "ResourceRecordSets": [Route53Adapter._rrset(c.key, c.before) for c in changes
                                                         if c.before is not None]}


class FakeChangeClient:
    """Answers the pre-write read with ``records`` (a listing), accepts every batch."""

    def __init__(self, statuses: list[str] | None = None, records: dict | None = None):
        self.batches: list[dict] = []
        self.statuses = list(statuses or ["INSYNC"])
        self.records = records or {"IsTruncated": False, "ResourceRecordSets": []}
        self.polls = self.reads = 0

    def list_resource_record_sets(self, **kw):
        self.reads += 1
        return self.records

    def change_resource_record_sets(self, HostedZoneId, ChangeBatch):  # noqa: N803 - boto3 spelling
        self.batches.append({"zone": HostedZoneId, **ChangeBatch})
        return {"ChangeInfo": {"Id": f"/change/C{len(self.batches)}", "Status": "PENDING"}}

    def get_change(self, Id):  # noqa: N803
        self.polls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"ChangeInfo": {"Id": Id, "Status": status}}


def test_apply_of_noops_makes_no_call():
    client = FakeChangeClient()
    a = Route53Adapter(client=client)
    k, attrs = rec("www.example.com.")
    receipt = a.apply([Change(k, attrs, dict(attrs))])
    assert (receipt.calls, receipt.batches, client.batches) == (0, [], [])


def test_apply_reads_then_sends_one_batch_and_waits_for_insync():
    changes = pair()
    client = FakeChangeClient(["PENDING", "INSYNC"], listing_of(changes))
    sleeps: list[float] = []
    a = Route53Adapter(client=client, sleep=sleeps.append)
    receipt = a.apply(changes, comment="drill")
    assert len(client.batches) == 1 and client.batches[0]["Comment"] == "drill"
    assert client.batches[0]["zone"] == ZONE and len(client.batches[0]["Changes"]) == 4
    assert receipt.calls == 3  # one change, two polls (Route 53 checks the DELETEs: no read before writing)
    assert receipt.batches == [{"zone": ZONE, "changes": 4, "change_id": "/change/C1"}]
    assert len(sleeps) == 1


def test_with_check_before_write_it_reads_the_zone_before_the_batch():
    changes = pair()
    client = FakeChangeClient(["PENDING", "INSYNC"], listing_of(changes))
    sleeps: list[float] = []
    a = Route53Adapter(Route53Connection(check_before_write=True), client=client, sleep=sleeps.append)
    receipt = a.apply(changes, comment="drill")
    assert len(client.batches) == 1
    assert receipt.calls == 4  # the read just before writing, one change, two polls
    assert receipt.batches == [{"zone": ZONE, "changes": 4, "change_id": "/change/C1"}]
    assert len(sleeps) == 1


def test_a_record_edited_since_the_plan_is_refused_before_any_write():
    changes = pair()
    records = listing_of(changes)
    records["ResourceRecordSets"][1]["TTL"] = 999  # someone edited b meanwhile
    client = FakeChangeClient(records=records)
    a = Route53Adapter(Route53Connection(check_before_write=True), client=client, sleep=lambda s: None)
    with pytest.raises(Route53ConcurrentEditError) as exc:
        a.apply(changes)
    err = exc.value
    assert client.batches == [] and err.written == () and err.unknown == ()
    assert isinstance(err, Route53Error) and isinstance(err, ConcurrentEditError) and err.code == "ConcurrentEdit"
    assert err.key == changes[1].key and err.expected == dict(changes[1].before)
    assert err.found == {**changes[1].before, "ttl": 999}
    assert str(changes[1].key) in str(err) and '"ttl": 999' in str(err) and '"ttl": 60' in str(err)
    assert "Nothing in this batch was written" in str(err) and "Re-plan" in str(err)


def test_apply_times_out_with_a_typed_error():
    changes = pair()
    client = FakeChangeClient(["PENDING"], listing_of(changes))
    a = Route53Adapter(Route53Connection(propagation_timeout=0), client=client, sleep=lambda s: None)
    with pytest.raises(Route53Error) as exc:
        a.apply(changes)
    assert (exc.value.code, exc.value.resource) == ("Timeout", ZONE)
    assert "still PENDING" in str(exc.value)


def test_a_5xx_answer_is_retried_like_throttling():
    err = ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"},
                       "ResponseMetadata": {"HTTPStatusCode": 503}}, "ListHostedZonesByName")
    a, client, sleeps = make([err, ZONES])
    assert a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com.")) == ZONE
    assert a.calls == 2 and len(sleeps) == 1


def test_the_sdk_client_does_not_retry_on_its_own_and_takes_the_connection_timeouts():
    """_call owns the retries; the boto3 client makes one attempt (no multiplied retries)."""
    a = Route53Adapter(Route53Connection(endpoint_url="http://127.0.0.1:9", max_attempts=7,
                                         connect_timeout="1500ms", read_timeout=4))
    cfg = a.client.meta.config
    assert cfg.retries["mode"] == "standard" and cfg.retries["total_max_attempts"] == 1
    assert (cfg.connect_timeout, cfg.read_timeout) == (1.5, 4.0)
    assert Route53Adapter(Route53Connection(endpoint_url="http://127.0.0.1:9")).client.meta.config.read_timeout == 10


class ScriptedZoneClient(FakeRoute53Client):
    def list_resource_record_sets(self, **kw):
        return self._next("list_resource_record_sets", kw)

    def change_resource_record_sets(self, **kw):
        return self._next("change_resource_record_sets", kw)

    def get_change(self, **kw):
        return self._next("get_change", kw)


def test_a_targeted_read_asks_for_the_record_sets_it_expects():
    b = binding("failover", record="www.example.com.")  # endpoints a, b: set identifiers a, b
    listing = {"IsTruncated": False, "ResourceRecordSets": [
        {"Name": "www.example.com.", "Type": "A", "TTL": 60, "SetIdentifier": sid, "Failover": role,
         "ResourceRecords": [{"Value": "192.0.2.9"}]} for sid, role in (("a", "PRIMARY"), ("b", "SECONDARY"))]}
    client = ScriptedZoneClient([listing])
    a = Route53Adapter(Route53Connection(), client=client, sleep=lambda s: None)
    got = a.read([b])
    op, kw = client.requests[0]
    assert op == "list_resource_record_sets" and kw["MaxItems"] == "2" and kw["StartRecordName"] == "www.example.com."
    assert len(client.requests) == 1
    assert sorted(v["failover"] for v in got.values()) == ["PRIMARY", "SECONDARY"]


def test_every_batch_is_sent_before_waiting_for_propagation():
    changes = [update(i) for i in range(1000)]  # two batches in one zone
    client = ScriptedZoneClient([{"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}},
                                 {"ChangeInfo": {"Id": "/change/C2", "Status": "PENDING"}},
                                 {"ChangeInfo": {"Status": "INSYNC"}}])
    a = Route53Adapter(Route53Connection(), client=client, sleep=lambda s: None)
    receipt = a.apply(changes)
    ops = [op for op, _unused in client.requests]
    assert ops == ["change_resource_record_sets", "change_resource_record_sets", "get_change", "get_change"]
    assert receipt.calls == 4 and [b["change_id"] for b in receipt.batches] == ["/change/C1", "/change/C2"]


def test_a_read_timeout_is_not_repeated_and_says_which_timeout():
    from botocore.exceptions import ReadTimeoutError

    client = ScriptedZoneClient([ReadTimeoutError(endpoint_url="http://127.0.0.1:9/")])
    a = Route53Adapter(Route53Connection(max_attempts=3, read_timeout=3), client=client, sleep=lambda s: None)
    with pytest.raises(Route53Error) as exc:
        a.read([binding("failover", record="www.example.com.")])
    assert exc.value.code == "ReadTimeout" and "within read_timeout 3s" in str(exc.value)
    assert len(client.requests) == 1 and exc.value.answer_lost is True


def test_a_connection_reset_on_a_read_is_retried():
    from botocore.exceptions import ConnectionClosedError

    listing = {"IsTruncated": False, "ResourceRecordSets": []}
    client = ScriptedZoneClient([ConnectionClosedError(endpoint_url="http://127.0.0.1:9/"), listing])
    a = Route53Adapter(Route53Connection(max_attempts=3), client=client, sleep=lambda s: None)
    assert a.read([binding("simple", record="www.example.com.")]) == {key(): None}
    assert len(client.requests) == 2


def test_a_subset_of_a_name_is_found_on_a_server_that_cannot_page_inside_a_name():
    """moto gives no NextRecordIdentifier: ask again from the same start for more items (it used to
    ask for the same page forever)."""
    def rrs(sid: str, role: str) -> dict:
        return {"Name": "www.example.com.", "Type": "A", "TTL": 60, "SetIdentifier": sid, "Failover": role,
                "ResourceRecords": [{"Value": "192.0.2.9"}]}
    first = {"IsTruncated": True, "NextRecordName": "www.example.com.", "NextRecordType": "A",
             "ResourceRecordSets": [rrs("a", "PRIMARY")]}
    more = {"IsTruncated": False, "ResourceRecordSets": [rrs("a", "PRIMARY"), rrs("b", "SECONDARY")]}
    client = ScriptedZoneClient([first, more])
    a = Route53Adapter(Route53Connection(), client=client, sleep=lambda s: None)
    assert a._read_zone(ZONE, {key("b")}) == {key("b"): rrs("b", "SECONDARY")}
    assert [kw["MaxItems"] for _unused, kw in client.requests] == ["1", "4"]
    assert all("StartRecordIdentifier" not in kw for _unused, kw in client.requests)
