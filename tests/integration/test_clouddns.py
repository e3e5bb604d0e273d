"""CloudDnsAdapter against the Cloud DNS emulator over HTTP, with the real SDK clients.

The adapter's clients (google-api-python-client's dns v1, google-cloud-dns) talk to
failover_engine/lab/emulators/clouddns.py as they would to dns.googleapis.com; the emulator keeps state, so
every test asserts on the record sets it really holds and on the requests it really received.
The last part checks the emulator's own faithfulness, and the engine runs a failover end to end.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api_core import exceptions as core_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import dns

from failover_engine.lab.emulators.clouddns import ApiError, CloudDnsEmulator
from failover_engine.adapters.clouddns import CloudDnsAdapter, api as api_module
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import CloudDnsConcurrentEditError, CloudDnsError, ConcurrentEditError
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import CloudDnsConnection, CloudDnsEndpointBinding, CloudDnsRouting
from failover_engine.core.plan import Change

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PROJECT, ZONE, DNS_NAME = "p", "shop", "shop.example."
RECORD = "www.shop.example."
A_VALUES, B_VALUES = ["192.0.2.10"], ["198.51.100.10", "198.51.100.11"]
HEALTH_CHECK = "https://www.googleapis.com/compute/v1/projects/p/global/healthChecks/shop"


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def emulator(clouddns_emulator: CloudDnsEmulator) -> CloudDnsEmulator:
    """The emulator with the managed zone created by google-cloud-dns, as an operator would."""
    client = dns.Client(project=PROJECT, credentials=AnonymousCredentials(),
                        client_options={"api_endpoint": clouddns_emulator.url})
    client.zone(ZONE, DNS_NAME, description="shop").create()
    clouddns_emulator.requests.clear()
    return clouddns_emulator


def connection(em: CloudDnsEmulator, **kw: Any) -> CloudDnsConnection:
    kw.setdefault("max_attempts", 3)
    return CloudDnsConnection(project=PROJECT, endpoint_url=em.url, credentials="anonymous", **kw)


def make_adapter(em: CloudDnsEmulator, **kw: Any) -> tuple[CloudDnsAdapter, list[float]]:
    sleeps: list[float] = []
    return CloudDnsAdapter(connection(em, **kw), sleep=sleeps.append), sleeps


def binding(mode: str = "simple", record: str = RECORD, zone: str = ZONE, **kw: Any) -> CloudDnsRouting:
    return CloudDnsRouting(managed_zone=zone, record=record, mode=mode, ttl=30, endpoints={
        "use1": CloudDnsEndpointBinding(values=A_VALUES, location="us-east1"),
        "usw2": CloudDnsEndpointBinding(values=B_VALUES, location="us-west1")}, **kw)


def switch(adapter: CloudDnsAdapter, b: CloudDnsRouting, to: str) -> tuple[list[Change], Any]:
    """Plan from what the provider holds (as the engine does), then apply."""
    current = adapter.read([b])
    changes = [Change(k, current.get(k), v) for k, v in adapter.desired(b, {to: 100}).items()]
    return changes, adapter.apply(changes)


def held(em: CloudDnsEmulator, name: str = RECORD, rtype: str = "A") -> dict[str, Any] | None:
    return em.rrset(PROJECT, ZONE, name, rtype)


def change_posts(em: CloudDnsEmulator) -> list[Any]:
    return em.calls("POST", "/changes")


# --------------------------------------------------------------------------- switching in each mode
EXPECTED = {
    "simple": {"rrdatas": B_VALUES},
    "primary_backup": {"routingPolicy": {"primaryBackup": {
        "primaryTargets": {"externalEndpoints": B_VALUES},
        "backupGeoTargets": {"items": [{"location": "us-east1", "rrdatas": A_VALUES}]},
        "trickleTraffic": 0.05}}},
    "weighted": {"routingPolicy": {"wrr": {"items": [{"rrdatas": A_VALUES},  # weight 0: left out
                                                     {"weight": 100.0, "rrdatas": B_VALUES}]}}},
}


@pytest.mark.parametrize("mode", ["simple", "primary_backup", "weighted"])
def test_switch_is_one_atomic_change_and_reads_back(emulator: CloudDnsEmulator, mode: str) -> None:
    adapter, _unused = make_adapter(emulator)
    b = binding(mode, trickle_ratio=0.05 if mode == "primary_backup" else 0.0)
    switch(adapter, b, "use1")  # the record set, as the primary serves
    before = held(emulator)
    emulator.requests.clear()

    changes, receipt = switch(adapter, b, "usw2")

    assert [c.action for c in changes] == ["update"]
    (post,) = change_posts(emulator)  # one change: the deletion of what was there, the addition of the new
    assert [len(post.body["deletions"]), len(post.body["additions"])] == [1, 1]
    assert {k: v for k, v in before.items() if k != "kind"} == post.body["deletions"][0]
    now = held(emulator)
    assert {k: now[k] for k in EXPECTED[mode]} == EXPECTED[mode] and now["ttl"] == 30
    assert receipt.calls == 2 and receipt.batches == [
        {"zone": ZONE, "change_id": "2", "status": "pending", "additions": 1, "deletions": 1}]
    state = adapter.read([b])
    assert state == dict(adapter.desired(b, {"usw2": 100}))
    assert adapter.active_of(b, state) == {"usw2": 100}
    assert [c["status"] for c in emulator.changes(PROJECT, ZONE)] == ["done", "done", "done"]


@pytest.mark.parametrize("mode", ["simple", "primary_backup", "weighted"])
def test_asking_for_the_state_that_holds_makes_no_change_call(emulator: CloudDnsEmulator, mode: str) -> None:
    adapter, _unused = make_adapter(emulator)
    b = binding(mode)
    switch(adapter, b, "usw2")
    emulator.requests.clear()
    calls = adapter.calls

    changes, receipt = switch(adapter, b, "usw2")

    assert [c.action for c in changes] == ["noop"]
    assert receipt.calls == 0 and receipt.batches == [] and change_posts(emulator) == []
    assert adapter.calls == calls + 1  # the one filtered read


def test_rollback_applies_the_inverse_and_restores_the_exact_record_set(emulator: CloudDnsEmulator) -> None:
    adapter, _unused = make_adapter(emulator)
    b = binding("primary_backup", trickle_ratio=0.1)
    switch(adapter, b, "use1")
    original = held(emulator)

    changes, _unused = switch(adapter, b, "usw2")
    assert held(emulator) != original
    adapter.apply([c.inverse() for c in changes])

    assert held(emulator) == original
    assert adapter.active_of(b, adapter.read([b])) == {"use1": 100}


def test_fields_a_plan_does_not_show_are_matched_on_deletion_and_kept(emulator: CloudDnsEmulator) -> None:
    # the operator created the record with a health check and fencing (not in the binding)
    pb = {"primaryTargets": {"externalEndpoints": A_VALUES}, "trickleTraffic": 0.05,
          "backupGeoTargets": {"items": [{"location": "us-west1", "rrdatas": B_VALUES}], "enableFencing": True}}
    emulator.apply_change(PROJECT, ZONE, additions=[{"name": RECORD, "type": "A", "ttl": 30, "routingPolicy": {
        "primaryBackup": pb, "healthCheck": HEALTH_CHECK}}])
    adapter, _unused = make_adapter(emulator)
    b = binding("primary_backup", trickle_ratio=0.05)
    assert adapter.active_of(b, adapter.read([b])) == {"use1": 100}

    switch(adapter, b, "usw2")

    policy = held(emulator)["routingPolicy"]
    assert policy["healthCheck"] == HEALTH_CHECK
    assert policy["primaryBackup"]["backupGeoTargets"]["enableFencing"] is True
    assert policy["primaryBackup"]["primaryTargets"] == {"externalEndpoints": B_VALUES}


def test_changes_in_one_zone_are_one_change_and_zones_are_apart(emulator: CloudDnsEmulator) -> None:
    emulator.create_zone(PROJECT, "api", "api.example.")
    adapter, _unused = make_adapter(emulator)
    bindings = [binding(rec_mode, record=f"{rec_mode.replace('_', '-')}.shop.example.") for rec_mode in
                ("simple", "primary_backup", "weighted")] + [binding(record="www.api.example.", zone="api")]
    for b in bindings:
        switch(adapter, b, "use1")
    emulator.requests.clear()

    current = adapter.read(bindings)
    assert len(emulator.calls("GET", "/rrsets")) == 4  # one filtered read per record set
    changes = [Change(k, current[k], v) for b in bindings for k, v in adapter.desired(b, {"usw2": 100}).items()]
    receipt = adapter.apply(changes)

    posts = change_posts(emulator)
    assert sorted((p.path.split("/")[-2], len(p.body["additions"])) for p in posts) == [("api", 1), ("shop", 3)]
    assert len(receipt.batches) == 2
    assert all(adapter.active_of(b, adapter.read([b])) == {"usw2": 100} for b in bindings)


def test_many_record_sets_of_a_zone_are_read_with_one_paged_listing(emulator: CloudDnsEmulator,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "PAGE_SIZE", 3)
    adapter, _unused = make_adapter(emulator)
    bindings = [binding(record=f"r{i}.shop.example.") for i in range(6)]
    emulator.apply_change(PROJECT, ZONE, additions=[{"name": f"r{i}.shop.example.", "type": "A", "ttl": 30,
                                                     "rrdatas": B_VALUES} for i in range(6)])
    state = adapter.read(bindings)
    lists = emulator.calls("GET", "/rrsets")
    assert len(lists) == 3 and all("name" not in r.query for r in lists)  # 8 record sets (with SOA, NS), 3 pages
    assert all(adapter.active_of(b, state) == {"usw2": 100} for b in bindings)


def test_the_waiter_polls_until_the_change_is_done(emulator: CloudDnsEmulator) -> None:
    emulator.pending_gets = 2
    adapter, sleeps = make_adapter(emulator)
    _unused, receipt = switch(adapter, binding(), "usw2")
    assert len(emulator.calls("GET", "/changes/")) == 3 and sleeps == [0.5, 1.0]
    assert receipt.calls == 4


def test_a_change_that_stays_pending_times_out(emulator: CloudDnsEmulator) -> None:
    emulator.pending_gets = 1000
    adapter, sleeps = make_adapter(emulator, propagation_timeout=3)
    with pytest.raises(CloudDnsError, match="still pending") as exc:
        switch(adapter, binding(), "usw2")
    assert exc.value.code == "Timeout" and sum(sleeps) <= 3
    assert held(emulator)["rrdatas"] == B_VALUES  # the change itself was made


# --------------------------------------------------------------------------- errors
def test_an_unknown_zone_is_a_404_naming_the_zone_and_project(emulator: CloudDnsEmulator) -> None:
    adapter, sleeps = make_adapter(emulator)
    with pytest.raises(CloudDnsError) as exc:
        adapter.read([binding(zone="no-such-zone")])
    err = exc.value
    assert err.code == "404 notFound" and err.status == 404 and sleeps == []
    assert "managed zone 'no-such-zone' not found in project 'p'" in str(err)
    assert err.resource.startswith("no-such-zone/")


def test_a_record_outside_its_zone_is_named_by_the_zone_lookup(emulator: CloudDnsEmulator) -> None:
    adapter, _unused = make_adapter(emulator)
    with pytest.raises(CloudDnsError, match=r"not inside managed zone 'shop' \(shop.example.\)"):
        adapter.read([binding(record="www.other.example.")])
    assert len(emulator.calls("GET", "/managedZones/shop")) >= 1


def test_a_record_edited_since_the_read_is_a_concurrent_edit_naming_both_values(emulator: CloudDnsEmulator,
                                                                                clouddns_sdk: Any) -> None:
    """The exact deletion is Cloud DNS's compare-and-swap: an operator edits the record set with
    the real SDK between our read and our change; the change fails whole (412), nothing of it is
    written, and the adapter says which record set and both values."""
    operator = clouddns_sdk  # google-api-python-client on the same emulator
    adapter, _unused = make_adapter(emulator)
    b = binding()
    other = binding(record="api.shop.example.")
    switch(adapter, b, "use1")
    switch(adapter, other, "use1")
    current = adapter.read([b, other])
    operator.put(ZONE, {"name": RECORD, "type": "A", "ttl": 300, "rrdatas": A_VALUES})  # their edit
    changes = [Change(k, current[k], v) for bb in (b, other) for k, v in adapter.desired(bb, {"usw2": 100}).items()]
    posts = len(change_posts(emulator))

    with pytest.raises(CloudDnsConcurrentEditError) as exc:
        adapter.apply(changes)

    err = exc.value
    assert isinstance(err, CloudDnsError) and isinstance(err, ConcurrentEditError) and err.code == "ConcurrentEdit"
    assert err.key == adapter.key(b) and err.expected == {"ttl": 30, "values": A_VALUES}
    assert err.found == {"ttl": 300, "values": A_VALUES} and err.written == () and err.unknown == ()
    assert str(adapter.key(b)) in str(err) and '"ttl": 300' in str(err) and '"ttl": 30,' in str(err)
    assert "412 conditionNotMet" in str(err) and "Nothing in this change was written" in str(err)
    assert len(change_posts(emulator)) == posts + 1  # one attempt, not retried
    assert operator.get(ZONE, RECORD) == {"name": RECORD, "type": "A", "ttl": 300, "rrdatas": A_VALUES}
    assert operator.get(ZONE, "api.shop.example.")["rrdatas"] == A_VALUES  # the other record set: untouched
    # re-planning from a fresh read takes the record set over explicitly
    switch(adapter, b, "usw2")
    assert held(emulator)["rrdatas"] == B_VALUES


def test_a_record_created_since_the_read_is_a_concurrent_edit(emulator: CloudDnsEmulator, clouddns_sdk: Any) -> None:
    adapter, _unused = make_adapter(emulator)
    b = binding()
    current = adapter.read([b])
    theirs = {"name": RECORD, "type": "A", "ttl": 5, "rrdatas": ["203.0.113.1"]}
    clouddns_sdk.put(ZONE, theirs)
    with pytest.raises(CloudDnsConcurrentEditError) as exc:
        adapter.apply([Change(k, current[k], v) for k, v in adapter.desired(b, {"usw2": 100}).items()])
    assert (exc.value.expected, exc.value.found) == (None, {"ttl": 5, "values": ["203.0.113.1"]})
    assert "409 alreadyExists" in str(exc.value) and "nothing (absent)" in str(exc.value)
    assert held(emulator)["rrdatas"] == ["203.0.113.1"]


def test_a_record_deleted_since_the_read_is_a_concurrent_edit(emulator: CloudDnsEmulator) -> None:
    adapter, _unused = make_adapter(emulator)
    b = binding()
    switch(adapter, b, "use1")
    current = adapter.read([b])
    emulator.apply_change(PROJECT, ZONE, deletions=[held(emulator)])
    with pytest.raises(CloudDnsConcurrentEditError) as exc:
        adapter.apply([Change(k, current[k], v) for k, v in adapter.desired(b, {"usw2": 100}).items()])
    assert (exc.value.expected, exc.value.found) == ({"ttl": 30, "values": A_VALUES}, None)
    assert held(emulator) is None


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_then_success_is_retried(emulator: CloudDnsEmulator, status: int) -> None:
    adapter, sleeps = make_adapter(emulator)
    emulator.fail_next(1, status, method="POST")
    _unused, receipt = switch(adapter, binding(), "usw2")
    assert len(change_posts(emulator)) == 2 and len(sleeps) == 1
    assert receipt.calls == 3  # POST (throttled), POST, GET change
    assert held(emulator)["rrdatas"] == B_VALUES


def test_a_persisting_500_fails_after_max_attempts_and_changes_nothing(emulator: CloudDnsEmulator) -> None:
    adapter, sleeps = make_adapter(emulator, max_attempts=3)
    b = binding()
    switch(adapter, b, "use1")
    emulator.requests.clear()
    emulator.fail_next(10, 500, method="POST")
    with pytest.raises(CloudDnsError) as exc:
        switch(adapter, b, "usw2")
    assert exc.value.code == "500 backendError" and "after 3 attempt(s)" in str(exc.value)
    assert len(change_posts(emulator)) == 3 and len(sleeps) == 2
    assert held(emulator)["rrdatas"] == A_VALUES
    # a 5xx may come after the change was made: the read shows it was not, but it may still land
    assert exc.value.written == () and exc.value.unknown == (adapter.key(b),)


def test_a_change_whose_answer_was_lost_is_confirmed_by_reading(emulator: CloudDnsEmulator) -> None:
    adapter, _unused = make_adapter(emulator)
    b = binding("weighted")
    switch(adapter, b, "use1")
    emulator.fail_next(1, 500, method="POST", applied=True)  # applied, then answered 500
    _unused, receipt = switch(adapter, b, "usw2")  # the retry fails its precondition (412): read, it holds
    assert receipt.batches[0]["change_id"] is None and receipt.batches[0]["confirmed_by_read"] is True
    assert adapter.active_of(b, adapter.read([b])) == {"usw2": 100}
    assert len(emulator.changes(PROJECT, ZONE)) == 3  # zone creation, use1, usw2: nothing twice


def test_an_unreachable_endpoint_is_a_typed_error(closed_port: int) -> None:
    conn = CloudDnsConnection(project=PROJECT, endpoint_url=f"http://127.0.0.1:{closed_port}", credentials="anonymous")
    with pytest.raises(CloudDnsError, match=f"cannot reach Cloud DNS at http://127.0.0.1:{closed_port}") as exc:
        CloudDnsAdapter(conn).read([binding()])
    assert exc.value.code == "unreachable"


# --------------------------------------------------------------------------- the emulator's faithfulness
def test_a_change_with_one_bad_deletion_changes_nothing(emulator: CloudDnsEmulator) -> None:
    first = {"name": "a.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.1"]}
    second = {"name": "b.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.2"]}
    emulator.apply_change(PROJECT, ZONE, additions=[first, second])
    before, changes = emulator.rrsets(PROJECT, ZONE), emulator.changes(PROJECT, ZONE)

    with pytest.raises(ApiError) as exc:  # the second deletion's ttl does not match
        emulator.apply_change(PROJECT, ZONE, deletions=[first, {**second, "ttl": 61}],
                              additions=[{**first, "rrdatas": ["203.0.113.1"]}, {**second, "rrdatas": ["203.0.113.2"]}])

    assert (exc.value.code, exc.value.reason) == (412, "conditionNotMet")
    assert exc.value.message == "Precondition not met for 'entity.change.deletions[1]'"
    assert emulator.rrsets(PROJECT, ZONE) == before and emulator.changes(PROJECT, ZONE) == changes


@pytest.mark.parametrize("deletions, additions, code, reason", [
    ([{"name": "x.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.1"]}], [], 404, "notFound"),
    ([], [{"name": "shop.example.", "type": "NS", "ttl": 60, "rrdatas": ["ns.example."]}], 409, "alreadyExists"),
    ([], [{"name": "x.other.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.1"]}], 400, "invalid"),
    ([], [{"name": "x.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["not-an-ip"]}], 400, "invalid"),
    ([], [{"name": "x.shop.example.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.1"],
           "routingPolicy": {"wrr": {"items": [{"weight": 1, "rrdatas": ["192.0.2.1"]}]}}}], 400, "invalid"),
    ([], [{"name": "x.shop.example.", "type": "A", "ttl": 60, "routingPolicy": {"primaryBackup": {
        "primaryTargets": {"externalEndpoints": ["192.0.2.1"]},
        "backupGeoTargets": {"items": [{"location": "us-east1", "rrdatas": ["192.0.2.2"]},
                                       {"location": "us-east1", "rrdatas": ["192.0.2.3"]}]}}}}], 400, "invalid"),
    ([], [], 400, "required"),
])
def test_the_emulator_refuses_what_the_api_refuses(emulator: CloudDnsEmulator, deletions, additions, code, reason):
    with pytest.raises(ApiError) as exc:
        emulator.apply_change(PROJECT, ZONE, additions=additions, deletions=deletions)
    assert (exc.value.code, exc.value.reason) == (code, reason)


def test_the_emulator_answers_the_sdks_in_googles_shapes(emulator: CloudDnsEmulator) -> None:
    client = dns.Client(project=PROJECT, credentials=AnonymousCredentials(),
                        client_options={"api_endpoint": emulator.url})
    zone = client.zone(ZONE)
    zone.reload()
    assert (zone.dns_name, len(zone.name_servers)) == (DNS_NAME, 4)
    assert sorted((r.name, r.record_type) for r in zone.list_resource_record_sets()) == [
        (DNS_NAME, "NS"), (DNS_NAME, "SOA")]
    change = zone.changes()
    change.add_record_set(zone.resource_record_set(RECORD, "A", 60, A_VALUES))  # ttl travels as a string
    change.create()
    assert change.status == "pending" and change.name == "1"
    change.reload()
    assert change.status == "done"
    with pytest.raises(core_exceptions.NotFound, match="'parameters.managedZone' resource named 'nope' does not exist"):
        client.zone("nope").reload()
    with pytest.raises(core_exceptions.Conflict):
        client.zone(ZONE, DNS_NAME).create()

    svc = CloudDnsAdapter(connection(emulator)).api.records
    listed = svc.resourceRecordSets().list(project=PROJECT, managedZone=ZONE, name=RECORD.upper(), type="A").execute()
    assert [r["rrdatas"] for r in listed["rrsets"]] == [A_VALUES]
    page = svc.resourceRecordSets().list(project=PROJECT, managedZone=ZONE, maxResults=2).execute()
    rest = svc.resourceRecordSets().list(project=PROJECT, managedZone=ZONE, pageToken=page["nextPageToken"]).execute()
    assert len(page["rrsets"]) == 2 and len(rest["rrsets"]) == 1 and "nextPageToken" not in rest
    from googleapiclient.errors import HttpError
    with pytest.raises(HttpError) as exc:  # a type filter needs a name
        svc.resourceRecordSets().list(project=PROJECT, managedZone=ZONE, type="A").execute()
    assert exc.value.resp.status == 400
    body = json.loads(exc.value.content)["error"]
    assert set(body) == {"code", "message", "status", "errors"} and body["errors"][0]["reason"] == "invalid"


def test_faults_through_the_admin_route_make_the_third_call_answer_500(emulator: CloudDnsEmulator) -> None:
    spec = json.dumps({"count": 1, "status": 500, "after": 2}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{emulator.url}/_emulator/faults", data=spec, method="POST"))
    url = f"{emulator.url}/dns/v1/projects/{PROJECT}/managedZones/{ZONE}"
    statuses = []
    for _i in range(4):
        try:
            with urllib.request.urlopen(url) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
            assert json.loads(exc.read())["error"]["errors"][0]["reason"] == "backendError"
    assert statuses == [200, 200, 500, 200]


def test_the_emulator_runs_on_its_own_from_the_command_line(free_port: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "failover_engine.lab.emulators.clouddns", "--port", str(free_port), "--project", "p",
                             "--zone", "shop:shop.example."], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{free_port}" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{free_port}/dns/v1/projects/p/managedZones") as resp:
            zones = json.loads(resp.read())["managedZones"]
        assert [(z["name"], z["dnsName"]) for z in zones] == [("shop", "shop.example.")]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


# --------------------------------------------------------------------------- the engine, end to end
def strategy(tmp_path: Path, em: CloudDnsEmulator, primary_url: str, standby_url: str,
             checks: list[dict[str, Any]] | None = None) -> Path:
    data = {
        "version": 1,
        "connections": {"gcp-local": {"type": "clouddns", "project": PROJECT, "endpoint_url": em.url,
                                      "credentials": "anonymous", "max_attempts": 2}},
        "services": {"shop": {
            "endpoints": [
                {"name": "use1", "role": "primary", "region": "us-east1",
                 "probe": {"type": "http", "url": f"{primary_url}/health"}},
                {"name": "usw2", "role": "standby", "region": "us-west1",
                 "probe": {"type": "http", "url": f"{standby_url}/health"}}],
            "routing": [{"adapter": "clouddns", "connection": "gcp-local", "managed_zone": ZONE, "record": RECORD,
                         "ttl": 30, "mode": "primary_backup", "trickle_ratio": 0.05, "endpoints": {
                             "use1": {"values": A_VALUES, "location": "us-east1"},
                             "usw2": {"values": B_VALUES, "location": "us-west1"}}}],
            "detection": {"interval": "200ms", "timeout": "200ms"},
            "policy": {"cooldown": 0},
            "validation": {"attempts": 1, "interval": "10ms", "checks": checks or []}}},
    }
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def primary_targets(em: CloudDnsEmulator) -> list[str]:
    return held(em)["routingPolicy"]["primaryBackup"]["primaryTargets"]["externalEndpoints"]


@pytest.fixture
def steady(emulator: CloudDnsEmulator) -> CloudDnsEmulator:
    """The record set as the primary region serves: use1 primary, usw2 the backup in us-west1."""
    emulator.apply_change(PROJECT, ZONE, additions=[{"name": RECORD, "type": "A", "ttl": 30, "routingPolicy": {
        "primaryBackup": {"primaryTargets": {"externalEndpoints": A_VALUES}, "trickleTraffic": 0.05,
                          "backupGeoTargets": {"items": [{"location": "us-west1", "rrdatas": B_VALUES}]}}}}])
    emulator.requests.clear()
    return emulator


def test_engine_fails_over_through_cloud_dns(steady: CloudDnsEmulator, local_http_server, tmp_path: Path) -> None:
    primary, standby = local_http_server(status=503, body="down"), local_http_server(body="ok")
    engine = FailoverEngine(load_strategy(strategy(tmp_path, steady, primary.url, standby.url),
                                          state_dir=tmp_path / "state"))

    dry = engine.run("shop", "failover")
    assert dry.status == "planned" and change_posts(steady) == []  # check mode: nothing written

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.errors) == ("succeeded", [])
    assert primary_targets(steady) == B_VALUES
    assert held(steady)["routingPolicy"]["primaryBackup"]["backupGeoTargets"]["items"] == [
        {"location": "us-east1", "rrdatas": A_VALUES}]
    assert len(change_posts(steady)) == 1
    assert out.validation.read_back[0]["ok"]

    again = engine.run("shop", "failover", apply=True)
    assert (again.status, again.changed) == ("noop", False) and len(change_posts(steady)) == 1


def test_engine_rolls_back_through_cloud_dns_when_validation_fails(steady: CloudDnsEmulator, local_http_server,
                                                                   tmp_path: Path) -> None:
    primary, standby, broken = (local_http_server(status=503), local_http_server(), local_http_server(status=500))
    path = strategy(tmp_path, steady, primary.url, standby.url, checks=[{"type": "http", "url": broken.url}])
    before = held(steady)
    engine = FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))

    out = engine.run("shop", "failover", apply=True)

    assert out.status == "rolled_back" and out.rollback["ok"], out.to_dict()
    assert held(steady) == before and primary_targets(steady) == A_VALUES
    assert len(change_posts(steady)) == 2  # the switch, then its inverse
