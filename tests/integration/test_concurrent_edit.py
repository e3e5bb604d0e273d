"""Compare-and-swap writes of the DNS and traffic adapters, lost answers and timeouts, over HTTP(S).

Route 53 is the lab's moto (with AWS's change-batch semantics, see failover_engine/lab/moto_route53.py,
and once without them), Cloud DNS and Traffic Manager are the emulators. An operator edits the
provider with its own SDK (plain boto3, google-api-python-client, azure-mgmt-trafficmanager,
never through an adapter) at a chosen moment of an apply, and every test reads back what the
provider holds with that SDK: the operator's value stays, nothing of a refused batch is written,
and the error names the record and both values. The moments, lost answers and held requests come
from the fault proxy (tests/faultproxy.py) between the adapter and the provider: a hook runs just
before a write reaches the provider (``forward=False``) or just after it landed.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator

import pytest

from failover_engine.lab.moto_route53 import plain_moto
from failover_engine.adapters.clouddns import CloudDnsAdapter
from failover_engine.adapters.route53 import Route53Adapter
from failover_engine.adapters.trafficmanager import TrafficManagerAdapter
from failover_engine.core.errors import (
    CloudDnsError,
    ConcurrentEditError,
    Route53ConcurrentEditError,
    Route53Error,
    TrafficManagerConcurrentEditError,
    TrafficManagerError,
)
from failover_engine.core.model import (
    CloudDnsConnection,
    CloudDnsEndpointBinding,
    CloudDnsRouting,
    Route53Connection,
    Route53EndpointBinding,
    Route53Routing,
    TrafficManagerConnection,
    TrafficManagerEndpointBinding,
    TrafficManagerRouting,
)
from failover_engine.core.plan import Change
from faultproxy import emulator_tls

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ZONE, RECORD = "drill.example.", "shop.drill.example."  # the lab's failover pair
USE1, USW2 = "use1-primary", "usw2-standby"
TIMEOUT = 1.0  # read_timeout of the tests that hold a request
BOUND = 6.0  # generous bound on how long such a test may take (the old default was 60 s)


def plan(ad: Any, b: Any, target: str) -> list[Change]:
    """What the engine does: read, then every resource's change towards ``target`` taking traffic."""
    current = ad.read([b])
    return [c for c in (Change(k, current.get(k), v) for k, v in ad.desired(b, {target: 100}).items())
            if c.action != "noop"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel completes them) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# --------------------------------------------------------------------------- Route 53 (moto)
def r53_binding(record: str = RECORD) -> Route53Routing:
    return Route53Routing(hosted_zone=ZONE, record=record, ttl=30, mode="failover", endpoints={
        "use1": Route53EndpointBinding(values=["192.0.2.10"], set_identifier=USE1),
        "usw2": Route53EndpointBinding(values=["198.51.100.10"], set_identifier=USW2)})


def r53(url: str, **kw: Any) -> Route53Adapter:
    kw.setdefault("max_attempts", 2)
    return Route53Adapter(Route53Connection(endpoint_url=url, **kw), sleep=lambda s: None)


def records(lab: Any, name: str = RECORD) -> dict[str, dict[str, Any]]:
    """The record sets at ``name``, read with plain boto3 straight from moto, by SetIdentifier."""
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r.get("SetIdentifier", ""): r for r in sets if r["Name"] == name}


def operator_sets_ttl(lab: Any, sid: str, ttl: int) -> None:
    """The operator's edit: plain boto3, straight to moto."""
    rrs = {**records(lab)[sid], "TTL": ttl}
    lab.route53_client().change_resource_record_sets(HostedZoneId=lab.zones[ZONE], ChangeBatch={
        "Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrs}]})


@pytest.mark.parametrize("semantics", ["aws", "plain moto"])
def test_route53_an_edit_since_the_plan_is_refused_before_any_write(lab_aws: Any, fault_proxy: Any,
                                                                    semantics: str) -> None:
    """Route 53 refuses the batch on its DELETE; on plain moto, which does not check DELETEs, the read
    just before the batch (check_before_write) sees the edit and nothing is sent."""
    proxy = fault_proxy(lab_aws.moto_url, "aws")
    ad, b = r53(proxy.url, check_before_write=semantics == "plain moto"), r53_binding()
    changes = plan(ad, b, "usw2")
    with plain_moto() if semantics == "plain moto" else contextlib.nullcontext():
        operator_sets_ttl(lab_aws, USW2, 999)
        with pytest.raises(Route53ConcurrentEditError) as exc:
            ad.apply(changes)

    err = exc.value
    assert isinstance(err, Route53Error) and isinstance(err, ConcurrentEditError) and err.code == "ConcurrentEdit"
    assert err.key.set_identifier == USW2 and str(err.key) in str(err)
    assert err.expected == {"ttl": 30, "values": ["198.51.100.10"], "failover": "SECONDARY"}
    assert err.found == {"ttl": 999, "values": ["198.51.100.10"], "failover": "SECONDARY"}
    assert '"ttl": 999' in str(err) and '"ttl": 30' in str(err) and "Nothing in this batch was written" in str(err)
    assert (err.written, err.unknown) == ((), ())
    if semantics == "plain moto":
        assert proxy.writes == []  # seen by the read before writing: no batch was sent
    else:
        assert [w.upstream_status for w in proxy.writes] == [400]  # refused whole by its DELETE
    now = records(lab_aws)
    assert (now[USW2]["TTL"], now[USW2]["Failover"]) == (999, "SECONDARY")  # the operator's value stays
    assert (now[USE1]["TTL"], now[USE1]["Failover"]) == (30, "PRIMARY")


def test_route53_an_edit_landing_just_before_our_batch_fails_the_batch_whole(lab_aws: Any, fault_proxy: Any) -> None:
    """The edit lands after our last read, just before our batch reaches Route 53: the DELETE of
    the exact before-record no longer matches, the batch is refused whole, nothing of it written."""
    proxy = fault_proxy(lab_aws.moto_url, "aws")
    proxy.inject("hook", at=1, forward=False, on_hit=lambda call: operator_sets_ttl(lab_aws, USW2, 999))
    ad, b = r53(proxy.url), r53_binding()

    with pytest.raises(Route53ConcurrentEditError) as exc:
        ad.apply(plan(ad, b, "usw2"))

    err = exc.value
    assert err.key.set_identifier == USW2 and (err.expected["ttl"], err.found["ttl"]) == (30, 999)
    assert "Route 53 refused the batch" in str(err) and "do not match the current values" in str(err)
    assert (err.written, err.unknown) == ((), ())
    assert len(proxy.writes) == 1 and proxy.writes[0].upstream_status == 400  # refused, and not sent again
    now = records(lab_aws)
    assert (now[USW2]["TTL"], now[USW2]["Failover"]) == (999, "SECONDARY")
    assert (now[USE1]["TTL"], now[USE1]["Failover"]) == (30, "PRIMARY")  # its half of the batch: not written


def test_route53_a_batch_whose_answer_was_lost_is_confirmed_by_reading(lab_aws: Any, fault_proxy: Any) -> None:
    """The batch lands, the connection is reset before the answer: the batch is sent again, the
    repeat fails on its DELETE (it cannot apply twice), and a read shows the batch landed."""
    proxy = fault_proxy(lab_aws.moto_url, "aws")
    proxy.inject("reset_after_apply", at=1)
    ad, b = r53(proxy.url), r53_binding()

    receipt = ad.apply(plan(ad, b, "usw2"))

    assert receipt.batches == [{"zone": lab_aws.zones[ZONE], "changes": 4, "change_id": None,
                                "confirmed_by_read": True}]
    assert [w.upstream_status for w in proxy.writes] == [200, 400]  # landed; the repeat refused
    now = records(lab_aws)
    assert (now[USE1]["Failover"], now[USW2]["Failover"]) == ("SECONDARY", "PRIMARY")
    assert len(now) == 2


def test_route53_a_batch_held_past_read_timeout_is_unknown_after_about_read_timeout(lab_aws: Any,
                                                                                    fault_proxy: Any) -> None:
    proxy = fault_proxy(lab_aws.moto_url, "aws")
    proxy.inject("timeout", at=1, hold=30)  # held, never forwarded, never answered
    ad, b = r53(proxy.url, read_timeout=TIMEOUT), r53_binding()
    changes = plan(ad, b, "usw2")

    started = time.monotonic()
    with pytest.raises(Route53Error) as exc:
        ad.apply(changes)
    took = time.monotonic() - started

    err = exc.value
    assert err.code == "ReadTimeout" and f"read_timeout {TIMEOUT:g}s" in str(err)
    assert TIMEOUT <= took < BOUND, took  # not the 60 s botocore waits by default, not max_attempts x
    assert err.written == () and set(err.unknown) == {c.key for c in changes}  # sent; outcome unknown
    assert len(proxy.writes) == 1
    assert records(lab_aws)[USE1]["Failover"] == "PRIMARY"


def test_route53_a_silent_endpoint_fails_a_read_after_read_timeout(silent_port: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ad = r53(f"http://127.0.0.1:{silent_port}", read_timeout=TIMEOUT, max_attempts=3)
    started = time.monotonic()
    with pytest.raises(Route53Error) as exc:
        ad.read([r53_binding().model_copy(update={"hosted_zone": None, "hosted_zone_id": "Z1"})])
    assert exc.value.code == "ReadTimeout" and time.monotonic() - started < BOUND
    assert ad.calls == 1  # a read timeout is not repeated


def test_route53_a_thousand_failover_pairs_flip_in_four_batches(lab_aws: Any, fault_proxy: Any) -> None:
    client = lab_aws.route53_client()
    zone = client.create_hosted_zone(Name="many.example.", CallerReference=f"many-{time.time()}")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    bindings = [Route53Routing(hosted_zone_id=zone_id, record=f"svc{i:04d}.many.example.", ttl=60, mode="failover",
                               endpoints={"a": Route53EndpointBinding(values=[f"10.0.{i // 250}.{i % 250}"]),
                                          "b": Route53EndpointBinding(values=[f"10.1.{i // 250}.{i % 250}"])})
                for i in range(1000)]
    seed = [{"Action": "CREATE", "ResourceRecordSet": {"Name": b.record, "Type": "A", "TTL": 60, "SetIdentifier": n,
                                                       "Failover": "PRIMARY" if n == "a" else "SECONDARY",
                                                       "ResourceRecords": [{"Value": e.values[0]}]}}
            for b in bindings for n, e in b.endpoints.items()]
    for i in range(0, len(seed), 1000):
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": seed[i:i + 1000]})
    proxy = fault_proxy(lab_aws.moto_url, "aws")
    ad = r53(proxy.url)
    current = ad.read(bindings)
    changes = [Change(k, current[k], v) for b in bindings for k, v in ad.desired(b, {"b": 100}).items()]

    receipt = ad.apply(changes)

    assert len(receipt.batches) == 4 and [b["changes"] for b in receipt.batches] == [1000] * 4
    assert len(proxy.writes) == 4
    held: dict[str, str] = {}
    for page in client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        held.update({f"{r['Name']}{r['SetIdentifier']}": r["Failover"] for r in page["ResourceRecordSets"]
                     if r["Type"] == "A"})
    assert len(held) == 2000 and all(v == ("SECONDARY" if k.endswith("a") else "PRIMARY") for k, v in held.items())


# --------------------------------------------------------------------------- Cloud DNS (emulator)
CDNS_ZONE, CDNS_RECORD = "shop", "www.shop.example."


@pytest.fixture
def cdns(clouddns_sdk: Any) -> Any:
    """The Cloud DNS emulator through the operator's SDK, with the zone and a record set (use1 active)."""
    clouddns_sdk.create_zone(CDNS_ZONE, "shop.example.")
    clouddns_sdk.put(CDNS_ZONE, {"name": CDNS_RECORD, "type": "A", "ttl": 30, "rrdatas": ["192.0.2.10"]})
    return clouddns_sdk


def cdns_adapter(url: str, **kw: Any) -> CloudDnsAdapter:
    kw.setdefault("max_attempts", 2)
    return CloudDnsAdapter(CloudDnsConnection(project="p", endpoint_url=url, credentials="anonymous", **kw),
                           sleep=lambda s: None)


def cdns_binding() -> CloudDnsRouting:
    return CloudDnsRouting(managed_zone=CDNS_ZONE, record=CDNS_RECORD, ttl=30, endpoints={
        "use1": CloudDnsEndpointBinding(values=["192.0.2.10"]), "usw2": CloudDnsEndpointBinding(values=["198.51.100.10"])})


def test_clouddns_an_edit_landing_just_before_our_change_is_a_concurrent_edit(cdns: Any, fault_proxy: Any) -> None:
    proxy = fault_proxy(cdns.emulator.url, "google")
    theirs = {"name": CDNS_RECORD, "type": "A", "ttl": 300, "rrdatas": ["192.0.2.10"]}
    proxy.inject("hook", at=1, forward=False, on_hit=lambda call: cdns.put(CDNS_ZONE, theirs))
    ad = cdns_adapter(proxy.url)

    with pytest.raises(ConcurrentEditError) as exc:
        ad.apply(plan(ad, cdns_binding(), "usw2"))

    err = exc.value
    assert isinstance(err, CloudDnsError) and err.code == "ConcurrentEdit"
    assert (err.expected, err.found) == ({"ttl": 30, "values": ["192.0.2.10"]}, {"ttl": 300, "values": ["192.0.2.10"]})
    assert (err.written, err.unknown) == ((), ()) and len(proxy.writes) == 1
    assert cdns.get(CDNS_ZONE, CDNS_RECORD) == theirs


def test_clouddns_a_change_whose_answer_was_lost_is_confirmed_by_reading(cdns: Any, fault_proxy: Any) -> None:
    """The change lands, the connection is reset: the change goes again (httplib2 or the adapter
    resends it), fails its own deletion (412), and a read shows it landed, once."""
    proxy = fault_proxy(cdns.emulator.url, "google")
    proxy.inject("reset_after_apply", at=1)
    ad = cdns_adapter(proxy.url)
    changes_before = len(cdns.emulator.changes("p", CDNS_ZONE))

    receipt = ad.apply(plan(ad, cdns_binding(), "usw2"))

    assert receipt.batches[0]["confirmed_by_read"] is True and receipt.batches[0]["change_id"] is None
    assert [w.upstream_status for w in proxy.writes] == [200, 412]
    assert cdns.get(CDNS_ZONE, CDNS_RECORD)["rrdatas"] == ["198.51.100.10"]
    assert len(cdns.emulator.changes("p", CDNS_ZONE)) == changes_before + 1


def test_clouddns_a_change_held_past_read_timeout_is_unknown_after_about_read_timeout(cdns: Any,
                                                                                      fault_proxy: Any) -> None:
    proxy = fault_proxy(cdns.emulator.url, "google")
    proxy.inject("timeout", at=1, hold=30)
    ad = cdns_adapter(proxy.url, read_timeout=TIMEOUT)
    changes = plan(ad, cdns_binding(), "usw2")

    started = time.monotonic()
    with pytest.raises(CloudDnsError) as exc:
        ad.apply(changes)

    assert exc.value.code == "timeout" and TIMEOUT <= time.monotonic() - started < BOUND
    assert exc.value.written == () and exc.value.unknown == (changes[0].key,)
    assert cdns.get(CDNS_ZONE, CDNS_RECORD)["rrdatas"] == ["192.0.2.10"]


def test_clouddns_a_silent_endpoint_fails_both_clients_after_read_timeout(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    for call in (lambda ad: ad.read([cdns_binding()]),              # google-api-python-client (httplib2)
                 lambda ad: ad.api.zone_dns_name(CDNS_ZONE)):       # google-cloud-dns (requests)
        ad = cdns_adapter(url, read_timeout=TIMEOUT, max_attempts=3)
        started = time.monotonic()
        with pytest.raises(CloudDnsError) as exc:
            call(ad)
        assert time.monotonic() - started < BOUND and exc.value.code in ("timeout", "unreachable"), exc.value
        assert ad.calls == 1


# --------------------------------------------------------------------------- Traffic Manager (emulator)
TM_RG = "rg-cas"
EXT = "ExternalEndpoints"


@pytest.fixture
def tm(trafficmanager_sdk: Any) -> Any:
    """Profiles p1..p3, each with two external endpoints, priority 1 (use1) and 2 (usw2)."""
    for p in ("p1", "p2", "p3"):
        trafficmanager_sdk.put_profile(TM_RG, p, "Priority", {"use1": {"priority": 1}, "usw2": {"priority": 2}})
    return trafficmanager_sdk


def tm_adapter(tm: Any, url: str, **kw: Any) -> TrafficManagerAdapter:
    kw.setdefault("max_attempts", 2)
    conn = TrafficManagerConnection(subscription_id=tm.subscription, endpoint_url=url, ca_bundle=tm.emulator.ca_file,
                                    credentials="token_env", token_env_var=tm.token_env_var, **kw)
    return TrafficManagerAdapter(conn, sleep=lambda s: None)


def tm_binding(profile: str = "p1") -> TrafficManagerRouting:
    return TrafficManagerRouting(resource_group=TM_RG, profile=profile, mode="priority", endpoints={
        "use1": TrafficManagerEndpointBinding(endpoint="use1"), "usw2": TrafficManagerEndpointBinding(endpoint="usw2")})


def tm_proxy(tm: Any, fault_proxy: Any) -> Any:
    return fault_proxy(tm.emulator.url, "azure", tls=emulator_tls(tm.emulator.ca_file), upstream_ca=tm.emulator.ca_file)


def test_trafficmanager_an_edit_between_two_patches_stops_the_sequence(tm: Any, fault_proxy: Any) -> None:
    """After our first PATCH (use1 parked) the operator disables usw2 with the Azure SDK: the read
    before our next PATCH sees it, nothing more is written, the operator's value stays."""
    proxy = tm_proxy(tm, fault_proxy)

    def operator_disables_usw2(call: Any) -> None:
        tm.client.endpoints.update(TM_RG, "p1", EXT, "usw2", {"properties": {"endpointStatus": "Disabled"}})

    proxy.inject("hook", at=1, forward=True, on_hit=operator_disables_usw2)
    ad = tm_adapter(tm, proxy.url)

    with pytest.raises(TrafficManagerConcurrentEditError) as exc:
        ad.apply(plan(ad, tm_binding(), "usw2"))

    err = exc.value
    assert isinstance(err, TrafficManagerError) and err.code == "ConcurrentEdit" and err.key.name == "usw2"
    assert err.expected == {"priority": 2, "weight": 1, "endpoint_status": "Enabled"}
    assert err.found == {"priority": 2, "weight": 1, "endpoint_status": "Disabled"}
    assert "Nothing more was written" in str(err)
    assert [k.name for k in err.written] == ["use1"] and err.unknown == ()
    assert len(proxy.writes) == 1
    now = tm.endpoints(TM_RG, "p1")
    assert now["usw2"]["status"] == "Disabled" and now["use1"]["priority"] == 1000  # parked: a valid profile


def test_trafficmanager_profiles_are_written_in_parallel_each_in_order(tm: Any, fault_proxy: Any) -> None:
    """The first PATCH of p1 is held until a PATCH of another profile arrives: written one profile
    after the other, that never happens."""
    proxy = tm_proxy(tm, fault_proxy)
    others = threading.Event()

    def wait_for_another_profile(call: Any) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any("/p1/" not in w.path for w in proxy.writes):
                others.set()
                return
            time.sleep(0.01)

    proxy.inject("hook", at=1, times=None, forward=False, on_hit=wait_for_another_profile, path="/p1/")
    ad = tm_adapter(tm, proxy.url)
    bindings = [tm_binding(p) for p in ("p1", "p2", "p3")]
    changes = [c for b in bindings for c in plan(ad, b, "usw2")]

    receipt = ad.apply(changes)

    assert others.is_set()
    assert [b["profile"] for b in receipt.batches] == [f"{TM_RG}/p1", f"{TM_RG}/p2", f"{TM_RG}/p3"]
    for b in receipt.batches:
        profile = b["profile"].split("/")[1]
        sent = [(w.path.rsplit("/", 1)[-1]) for w in proxy.writes if f"/{profile}/" in w.path]
        assert sent == [u["endpoint"] for u in b["updates"]]  # in the order computed, one after the other
        assert {n: e["priority"] for n, e in tm.endpoints(TM_RG, profile).items()} == {"use1": 2, "usw2": 1}


def test_trafficmanager_a_failing_profile_keeps_written_and_unknown_exact(tm: Any, fault_proxy: Any) -> None:
    proxy = tm_proxy(tm, fault_proxy)
    proxy.inject("500", at=1, times=None, path="/p2/")  # every PATCH of p2 answers 500
    ad = tm_adapter(tm, proxy.url)
    bindings = [tm_binding(p) for p in ("p1", "p2", "p3")]
    changes = [c for b in bindings for c in plan(ad, b, "usw2")]

    with pytest.raises(TrafficManagerError) as exc:
        ad.apply(changes)

    err = exc.value
    assert err.resource == f"{TM_RG}/p2/{EXT}/use1"
    moved = {(p, n) for p in ("p1", "p2", "p3") for n, e in tm.endpoints(TM_RG, p).items()
             if e["priority"] != {"use1": 1, "usw2": 2}[n]}
    assert {(k.scope.split("/")[1], k.name) for k in err.written} == moved  # exactly what the profiles show
    assert ("p2", "use1") not in moved and {(k.scope, k.name) for k in err.unknown} == {(f"{TM_RG}/p2", "use1")}


def test_trafficmanager_a_patch_held_past_read_timeout_is_unknown_after_about_read_timeout(tm: Any,
                                                                                           fault_proxy: Any) -> None:
    proxy = tm_proxy(tm, fault_proxy)
    proxy.inject("timeout", at=1, hold=30)
    ad = tm_adapter(tm, proxy.url, read_timeout=TIMEOUT)
    changes = plan(ad, tm_binding(), "usw2")

    started = time.monotonic()
    with pytest.raises(TrafficManagerError) as exc:
        ad.apply(changes)

    assert exc.value.code == "ReadTimeout" and TIMEOUT <= time.monotonic() - started < BOUND
    assert exc.value.written == () and [k.name for k in exc.value.unknown] == ["use1"]
    assert len(proxy.writes) == 1
