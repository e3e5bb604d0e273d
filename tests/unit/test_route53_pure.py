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
    MAX_VALUE_CHARS_PER_BATCH,
    RETRYABLE,
    Route53Adapter,
    fqdn,
)
from failover_engine.errors import AdapterError, Route53Error
from failover_engine.model import Route53Connection, Route53EndpointBinding, Route53Routing
from failover_engine.plan import Change, ResourceKey

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


def upsert(i: int, values: list[str] | None = None, zone: str = ZONE) -> Change:
    k, attrs = rec(f"r{i}.example.com.", values, zone=zone)
    return Change(k, {**attrs, "ttl": 30}, attrs)


def delete(i: int, values: list[str] | None = None) -> Change:
    k, attrs = rec(f"r{i}.example.com.", values)
    return Change(k, attrs, None)


def pair(name: str = "www.example.com.", to: str = "b") -> list[Change]:
    """A failover flip: two records of one name/type that must change together."""
    ka, a = rec(name, ["192.0.2.1"], "a")
    kb, b = rec(name, ["192.0.2.2"], "b")
    a_after, b_after = ("SECONDARY", "PRIMARY") if to == "b" else ("PRIMARY", "SECONDARY")
    return [Change(ka, {**a, "failover": b_after}, {**a, "failover": a_after}),
            Change(kb, {**b, "failover": a_after}, {**b, "failover": b_after})]


def weight_of(batch: list[dict]) -> int:
    return sum(len(e["ResourceRecordSet"]["ResourceRecords"]) * (2 if e["Action"] == "UPSERT" else 1) for e in batch)


def test_two_changes_make_one_batch_with_full_record_sets():
    changes = pair()
    out = Route53Adapter.batches_for(changes)
    assert list(out) == [ZONE]
    (batch,) = out[ZONE]
    assert [e["Action"] for e in batch] == ["UPSERT", "UPSERT"]
    assert batch[0]["ResourceRecordSet"] == {"Name": "www.example.com.", "Type": "A", "TTL": 60,
                                             "ResourceRecords": [{"Value": "192.0.2.1"}],
                                             "SetIdentifier": "a", "Failover": "SECONDARY"}
    assert batch[1]["ResourceRecordSet"]["Failover"] == "PRIMARY"


def test_rrset_carries_weight_and_health_check():
    k = ResourceKey("route53", ZONE, "w.example.com.", "A", "a")
    (batch,) = Route53Adapter.batches_for([Change(k, None, {"ttl": 60, "values": ["1.1.1.1"], "weight": 7,
                                                            "health_check_id": "hc"})])[ZONE]
    rrs = batch[0]["ResourceRecordSet"]
    assert (rrs["Weight"], rrs["HealthCheckId"], rrs["SetIdentifier"]) == (7, "hc", "a")


@pytest.mark.parametrize(
    "n, make, sizes",
    [
        (1000, upsert, [500, 500]),   # UPSERT counts twice: 500 per batch
        (500, upsert, [500]),         # exactly at the limit
        (501, upsert, [500, 1]),
        (1000, delete, [1000]),       # DELETE counts once
        (1001, delete, [1000, 1]),
        (250, lambda i: upsert(i, [f"192.0.2.{j}" for j in range(1, 5)]), [125, 125]),  # 4 values x 2
    ],
)
def test_batches_chunk_at_the_resource_record_limit(n, make, sizes):
    batches = Route53Adapter.batches_for([make(i) for i in range(n)])[ZONE]
    assert [len(b) for b in batches] == sizes
    assert all(weight_of(b) <= MAX_RECORDS_PER_BATCH for b in batches)


def test_a_failover_pair_is_never_split_across_batches():
    # 499 single-value UPSERTs weigh 998; the pair (4) would cross 1000.
    changes = [upsert(i) for i in range(499)] + pair()
    batches = Route53Adapter.batches_for(changes)[ZONE]
    assert len(batches) == 2
    where = [i for i, b in enumerate(batches) for e in b if e["ResourceRecordSet"]["Name"] == "www.example.com."]
    assert len(where) == 2 and where[0] == where[1]
    assert all(weight_of(b) <= MAX_RECORDS_PER_BATCH for b in batches)


def test_a_pair_whose_changes_are_far_apart_in_the_input_stays_together():
    first, second = pair()
    changes = [first] + [upsert(i) for i in range(499)] + [second]
    batches = Route53Adapter.batches_for(changes)[ZONE]
    where = {i for i, b in enumerate(batches) for e in b if e["ResourceRecordSet"]["Name"] == "www.example.com."}
    assert len(where) == 1
    assert sum(len(b) for b in batches) == 501


def test_noop_changes_produce_no_entries():
    k, attrs = rec("www.example.com.")
    assert Route53Adapter.batches_for([Change(k, attrs, dict(attrs)), Change(k, None, None)]) == {}
    out = Route53Adapter.batches_for([Change(k, attrs, dict(attrs)), upsert(1)])
    assert [e["ResourceRecordSet"]["Name"] for b in out[ZONE] for e in b] == ["r1.example.com."]


def test_delete_uses_the_before_state():
    k, attrs = rec("old.example.com.", ["203.0.113.5"], "a", failover="SECONDARY")
    (batch,) = Route53Adapter.batches_for([Change(k, attrs, None)])[ZONE]
    assert batch == [{"Action": "DELETE", "ResourceRecordSet": {
        "Name": "old.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "203.0.113.5"}],
        "SetIdentifier": "a", "Failover": "SECONDARY"}}]


def test_create_and_update_are_upserts_of_the_after_state():
    k, attrs = rec("new.example.com.", ["203.0.113.6"])
    (batch,) = Route53Adapter.batches_for([Change(k, None, attrs)])[ZONE]
    assert batch[0]["Action"] == "UPSERT" and batch[0]["ResourceRecordSet"]["ResourceRecords"] == [
        {"Value": "203.0.113.6"}]


def test_batches_are_per_zone():
    out = Route53Adapter.batches_for([upsert(1, zone="ZA"), upsert(2, zone="ZB"), upsert(3, zone="ZA")])
    assert {z: [len(b) for b in bs] for z, bs in out.items()} == {"ZA": [2], "ZB": [1]}


def test_deletes_chunk_at_the_value_character_limit():
    value = "x" * 500
    batches = Route53Adapter.batches_for([delete(i, [value]) for i in range(70)])[ZONE]  # 35,000 chars
    assert [len(b) for b in batches] == [64, 6]


def test_upserts_count_value_characters_twice():
    value = "x" * 500
    batches = Route53Adapter.batches_for([upsert(i, [value]) for i in range(40)])[ZONE]  # 20,000 chars, 40,000 counted
    counted = [sum(len(r["Value"]) * (2 if e["Action"] == "UPSERT" else 1)
                   for e in b for r in e["ResourceRecordSet"]["ResourceRecords"]) for b in batches]
    assert all(c <= MAX_VALUE_CHARS_PER_BATCH for c in counted), counted


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
    a, _, sleeps = make([client_error("Throttling")] * 19 + [ZONES], max_attempts=20)
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
    a, client, _ = make([ZONES])
    b = binding(hosted_zone_id=None, hosted_zone="example.com.")
    assert a.zone_id(b) == a.zone_id(b) == ZONE
    assert len(client.requests) == 1


def test_a_missing_zone_is_a_typed_error():
    a, _, _ = make([{"HostedZones": [{"Name": "other.com.", "Id": "/hostedzone/ZX"}]}])
    with pytest.raises(Route53Error) as exc:
        a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com."))
    assert (exc.value.code, exc.value.resource) == ("NoSuchHostedZone", "example.com.")


def test_missing_credentials_say_what_to_do():
    a, _, sleeps = make([NoCredentialsError()])
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
class FakeChangeClient:
    def __init__(self, statuses: list[str] | None = None):
        self.batches: list[dict] = []
        self.statuses = list(statuses or ["INSYNC"])
        self.polls = 0

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


def test_apply_sends_one_batch_and_waits_for_insync():
    client = FakeChangeClient(["PENDING", "INSYNC"])
    sleeps: list[float] = []
    a = Route53Adapter(client=client, sleep=sleeps.append)
    receipt = a.apply(pair(), comment="drill")
    assert len(client.batches) == 1 and client.batches[0]["Comment"] == "drill"
    assert client.batches[0]["zone"] == ZONE and len(client.batches[0]["Changes"]) == 2
    assert receipt.calls == 3  # one change + two polls
    assert receipt.batches == [{"zone": ZONE, "changes": 2, "change_id": "/change/C1"}]
    assert len(sleeps) == 1


def test_apply_times_out_with_a_typed_error():
    client = FakeChangeClient(["PENDING"])
    a = Route53Adapter(Route53Connection(propagation_timeout=0), client=client, sleep=lambda s: None)
    with pytest.raises(Route53Error) as exc:
        a.apply(pair())
    assert (exc.value.code, exc.value.resource) == ("Timeout", ZONE)
    assert "still PENDING" in str(exc.value)


def test_a_5xx_answer_is_retried_like_throttling():
    err = ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"},
                       "ResponseMetadata": {"HTTPStatusCode": 503}}, "ListHostedZonesByName")
    a, client, sleeps = make([err, ZONES])
    assert a.zone_id(binding(hosted_zone_id=None, hosted_zone="example.com.")) == ZONE
    assert a.calls == 2 and len(sleeps) == 1


def test_the_sdk_client_does_not_retry_on_its_own():
    """_call owns the retries; the boto3 client makes one attempt (no multiplied retries)."""
    a = Route53Adapter(Route53Connection(endpoint_url="http://127.0.0.1:9", max_attempts=7))
    cfg = a.client.meta.config.retries
    assert cfg["mode"] == "standard" and cfg["total_max_attempts"] == 1


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
    changes = [upsert(i) for i in range(1000)]  # two batches in one zone
    client = ScriptedZoneClient([{"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}}])
    client.get_change = lambda **kw: client._next("get_change", kw) or {"ChangeInfo": {"Status": "INSYNC"}}
    client.outcomes = [{"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}},
                       {"ChangeInfo": {"Id": "/change/C2", "Status": "PENDING"}},
                       {"ChangeInfo": {"Status": "INSYNC"}}]
    a = Route53Adapter(Route53Connection(), client=client, sleep=lambda s: None)
    receipt = a.apply(changes)
    ops = [op for op, _ in client.requests]
    assert ops == ["change_resource_record_sets", "change_resource_record_sets", "get_change", "get_change"]
    assert receipt.calls == 4 and [b["change_id"] for b in receipt.batches] == ["/change/C1", "/change/C2"]
