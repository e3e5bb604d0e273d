"""Active-active services end to end: members on weighted routing, safety rules, the monitor.

Three real region servers (:class:`RegionServer`) play the members ``a``/``b``/``c`` (zones
z1/z2/z3, weights 50/30/20) and are probed over HTTP. The weights live in Route 53 weighted
records (moto over HTTP), a Cloud DNS weighted-round-robin record set (the Cloud DNS emulator) or
a Weighted Traffic Manager profile (the ARM emulator over HTTPS). Nothing of ours is mocked, and
every test reads what the provider holds with that provider's SDK (boto3,
google-api-python-client, azure-mgmt-trafficmanager), plus the run's events on disk.
"""
from __future__ import annotations

import functools
import json
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.outcome import Outcome
from failover_engine.lab.lab import Lab
from failover_engine.lab.regions import RegionServer
from failover_engine.config.loader import load_strategy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SERVICE = "web"
ZONE, RECORD = "aa.example.", "web.aa.example."
MEMBERS = {"a": ("z1", 50, "192.0.2.1"), "b": ("z2", 30, "192.0.2.2"), "c": ("z3", 20, "192.0.2.3")}
ALL = {n: w for n, (_unused, w, _unused) in MEMBERS.items()}
ENGINE_DETECTION = {"interval": "200ms", "timeout": "200ms"}
MONITOR_DETECTION = {"interval": "200ms", "timeout": "200ms", "failure_threshold": 2, "recovery_threshold": 2}
CHANGE_CALL = "before-call.route53.ChangeResourceRecordSets"
ZERO_MEMBERS = "a plan may never leave zero healthy members in rotation"


# --------------------------------------------------------------------------- members and strategy files
@pytest.fixture
def members(spare_region: Callable[..., RegionServer]) -> dict[str, RegionServer]:
    """One running region server per member; a test takes a member down with ``set_mode("down")``."""
    return {name: spare_region(f"member-{name}") for name in MEMBERS}


def service(members: dict[str, RegionServer], routing: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An active_active service over ``routing``: members a/b/c in zones z1/z2/z3, weights 50/30/20."""
    svc: dict[str, Any] = {
        "strategy": "active_active", "scope": "zone",
        "endpoints": [{"name": n, "role": "active", "region": "r1", "zone": zone, "weight": weight,
                       "probe": {"type": "http", "url": f"{members[n].url}/health", "body_contains": "ok"}}
                      for n, (zone, weight, _unused) in MEMBERS.items()],
        "routing": [routing],
        "detection": dict(ENGINE_DETECTION),
        "policy": {"cooldown": 0},
        "validation": {"attempts": 2, "interval": "50ms"},
    }
    svc.update(overrides)
    return svc


def write_strategy(tmp_path: Path, connections: dict[str, Any], svc: dict[str, Any], **top: Any) -> Path:
    path = tmp_path / "strategy.yaml"
    data = {"version": 1, "connections": connections, **top, "services": {SERVICE: svc}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def engine_for(path: Path, tmp_path: Path) -> FailoverEngine:
    return FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))


def run_events(engine: FailoverEngine, out: Outcome) -> list[dict[str, Any]]:
    path = engine.state_dir / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e.get("run_id") == out.run_id]


def take_down(members: dict[str, RegionServer], *names: str) -> None:
    for name in names:
        members[name].set_mode("down")


def bring_up(members: dict[str, RegionServer], *names: str) -> None:
    for name in names:
        members[name].set_mode("up")


# --------------------------------------------------------------------------- Route 53 (moto)
class Route53Weights:
    """The weighted records of the service in moto, written and read with boto3."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.client = lab.route53_client()
        zone = self.client.create_hosted_zone(Name=ZONE, CallerReference=f"aa-{uuid.uuid4()}")
        self.zone_id = zone["HostedZone"]["Id"].split("/")[-1]

    def seed(self, weights: dict[str, int]) -> None:
        self.client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [
            {"Action": "UPSERT", "ResourceRecordSet": {
                "Name": RECORD, "Type": "A", "TTL": 30, "SetIdentifier": n, "Weight": w,
                "ResourceRecords": [{"Value": MEMBERS[n][2]}]}} for n, w in weights.items()]})

    def records(self) -> dict[str, dict[str, Any]]:
        sets = self.client.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]
        return {r["SetIdentifier"]: r for r in sets if r["Name"] == RECORD}

    def weights(self) -> dict[str, int]:
        return {sid: r["Weight"] for sid, r in self.records().items()}

    def shares(self) -> dict[str, float]:
        """The fraction of the answers each member gets (Route 53: weight / sum of weights)."""
        w = self.weights()
        return {n: round(v / sum(w.values()), 4) for n, v in w.items()}

    def routing(self, **kw: Any) -> dict[str, Any]:
        return {"adapter": "route53", "connection": "aws-local", "hosted_zone_id": self.zone_id, "record": RECORD,
                "ttl": 30, "mode": "weighted", "endpoints": {n: {"values": [ip]} for n, (_unused, _unused, ip) in MEMBERS.items()},
                **kw}

    def connections(self) -> dict[str, Any]:
        return {"aws-local": {"type": "route53", "endpoint_url": self.lab.moto_url, "max_attempts": 2}}


@pytest.fixture
def r53(lab_aws: Lab) -> Route53Weights:
    """The lab's moto (reset) with this module's zone; the SDK settings point at moto."""
    return Route53Weights(lab_aws)


def route53_strategy(r53: Route53Weights, members: dict[str, RegionServer], tmp_path: Path,
                     routing: dict[str, Any] | None = None, monitoring: dict[str, Any] | None = None,
                     **overrides: Any) -> Path:
    svc = service(members, r53.routing(**(routing or {})), **overrides)
    return write_strategy(tmp_path, r53.connections(), svc, **({"monitoring": monitoring} if monitoring else {}))


def change_calls(engine: FailoverEngine) -> list[dict[str, Any]]:
    """Observe (not replace) every ChangeResourceRecordSets request the engine's client sends:
    the API parameters of each one."""
    built: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    hooks = engine.adapter(engine.strategy.services[SERVICE].routing[0]).client.meta.events
    hooks.register("before-parameter-build.route53.ChangeResourceRecordSets",
                   lambda params, **_unused: built.append(dict(params)))
    hooks.register(CHANGE_CALL, lambda **_unused: sent.append(built[-1]))
    return sent


def changed_weights(call: dict[str, Any]) -> dict[str, int]:
    return {c["ResourceRecordSet"]["SetIdentifier"]: c["ResourceRecordSet"]["Weight"]
            for c in call["ChangeBatch"]["Changes"]}


# --------------------------------------------------------------------------- 1. Route 53 weighted
def test_route53_member_out_and_back_keeps_the_others_in_proportion(r53: Route53Weights, members, tmp_path: Path):
    r53.seed(ALL)
    engine = engine_for(route53_strategy(r53, members, tmp_path), tmp_path)
    calls = change_calls(engine)

    steady = engine.run(SERVICE, "rebalance", apply=True)
    assert (steady.status, steady.changed, calls) == ("noop", False, [])

    take_down(members, "c")
    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.errors) == ("succeeded", [])
    assert r53.weights() == {"a": 50, "b": 30, "c": 0}
    assert r53.shares() == {"a": 0.625, "b": 0.375, "c": 0.0}  # c's 20 % spread 50:30
    assert len(calls) == 1 and changed_weights(calls[0]) == {"c": 0}  # a and b already hold their weights
    assert {r["ResourceRecords"][0]["Value"] for r in r53.records().values()} == {"192.0.2.1", "192.0.2.2",
                                                                                  "192.0.2.3"}
    assert out.plan.target == {"a": 50, "b": 30} and "out: c" in out.plan.reason
    assert [e["event"] for e in run_events(engine, out)] == ["run_started", "decided", "step_applied", "succeeded"]
    status = engine.status(SERVICE, probe=False)
    assert (status["active"], status["out_of_rotation"], status["failed_over"]) == ({"a": 50, "b": 30}, ["c"], None)
    assert engine.store.load(SERVICE).active == {"a": 50, "b": 30}

    bring_up(members, "c")
    back = engine.run(SERVICE, "rebalance", apply=True)

    assert (back.status, back.plan.target) == ("succeeded", ALL)
    assert r53.weights() == ALL
    assert len(calls) == 2 and changed_weights(calls[1]) == {"c": 20}

    take_down(members, "b", "c")  # two at once: both weights move in the same single call
    both = engine.run(SERVICE, "rebalance", apply=True)

    assert both.status == "succeeded"
    assert r53.weights() == {"a": 50, "b": 0, "c": 0}
    assert len(calls) == 3 and changed_weights(calls[2]) == {"b": 0, "c": 0}


@pytest.mark.parametrize("active_weight", [100, 10])
def test_route53_equal_redistribution_moves_every_weight_in_one_call(r53: Route53Weights, members, tmp_path: Path,
                                                                     active_weight: int):
    r53.seed(ALL)  # as a proportional strategy left them
    path = route53_strategy(r53, members, tmp_path, {"active_weight": active_weight}, redistribution="equal")
    engine = engine_for(path, tmp_path)
    calls = change_calls(engine)
    take_down(members, "c")

    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.plan.target) == ("succeeded", {"a": 100, "b": 100})
    assert r53.weights() == {"a": active_weight, "b": active_weight, "c": 0}
    assert r53.shares() == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert len(calls) == 1 and changed_weights(calls[0]) == {"a": active_weight, "b": active_weight, "c": 0}

    bring_up(members, "c")
    back = engine.run(SERVICE, "rebalance", apply=True)

    assert back.status == "succeeded"
    assert r53.weights() == {"a": active_weight, "b": active_weight, "c": active_weight}
    assert len(calls) == 2


def test_route53_all_members_down_is_refused_and_changes_nothing(r53: Route53Weights, members, tmp_path: Path):
    r53.seed(ALL)
    engine = engine_for(route53_strategy(r53, members, tmp_path), tmp_path)
    calls = change_calls(engine)
    before = r53.records()
    take_down(members, "a", "b", "c")

    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.ok, out.changed) == ("refused", False, False)
    assert out.errors == [ZERO_MEMBERS] and "zero healthy members" in out.errors[0]
    assert "no healthy member (a: " in out.plan.reason and "connection refused" in out.plan.reason
    assert out.plan.target == ALL and out.plan.steps == ()
    assert r53.records() == before and calls == []
    events = run_events(engine, out)
    assert [e["event"] for e in events] == ["run_started", "decided", "refused"]
    assert events[-1]["reasons"] == [ZERO_MEMBERS]
    assert json.loads(Path(out.report_path).read_text())["status"] == "refused"
    assert engine.store.load(SERVICE).active is None  # no switch recorded

    forced = engine.run(SERVICE, "rebalance", apply=True, force=True)  # force cannot empty the rotation

    assert (forced.status, forced.changed) == ("noop", False)
    assert r53.records() == before and calls == []


# --------------------------------------------------------------------------- 2. Cloud DNS and Traffic Manager
PROJECT, GZONE, GRECORD = "p", "aa", "web.aa.example."


@pytest.fixture
def gdns(clouddns_emulator: Any) -> Iterator[Any]:
    """The emulator with the managed zone created by google-cloud-dns, as an operator would."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import dns

    client = dns.Client(project=PROJECT, credentials=AnonymousCredentials(),
                        client_options={"api_endpoint": clouddns_emulator.url})
    client.zone(GZONE, ZONE, description="active-active").create()
    yield clouddns_emulator


def dns_v1(em: Any) -> Any:
    """google-api-python-client's dns v1 service on the emulator (anonymous, as a local run)."""
    import google_auth_httplib2
    import httplib2
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    http = google_auth_httplib2.AuthorizedHttp(AnonymousCredentials(), http=httplib2.Http(timeout=10))
    return build("dns", "v1", http=http, static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": em.url + "/"})


def wrr_weights(em: Any) -> dict[str, float]:
    """Member -> weight of the WRR record set, read with the SDK (a weight of 0 is left out)."""
    sets = dns_v1(em).resourceRecordSets().list(project=PROJECT, managedZone=GZONE, name=GRECORD,
                                                type="A").execute()["rrsets"]
    (rrset,) = sets
    by_ip = {ip: n for n, (_unused, _unused, ip) in MEMBERS.items()}
    return {by_ip[i["rrdatas"][0]]: float(i.get("weight", 0.0)) for i in rrset["routingPolicy"]["wrr"]["items"]}


def test_clouddns_weighted_round_robin_member_out_and_back(gdns: Any, members, tmp_path: Path):
    items = [{"weight": float(w), "rrdatas": [ip]} for _unused, w, ip in MEMBERS.values()]
    dns_v1(gdns).changes().create(project=PROJECT, managedZone=GZONE, body={"additions": [
        {"name": GRECORD, "type": "A", "ttl": 30, "routingPolicy": {"wrr": {"items": items}}}]}).execute()
    routing = {"adapter": "clouddns", "connection": "gcp-local", "managed_zone": GZONE, "record": GRECORD, "ttl": 30,
               "mode": "weighted", "endpoints": {n: {"values": [ip]} for n, (_unused, _unused, ip) in MEMBERS.items()}}
    conns = {"gcp-local": {"type": "clouddns", "project": PROJECT, "endpoint_url": gdns.url,
                           "credentials": "anonymous", "max_attempts": 2}}
    engine = engine_for(write_strategy(tmp_path, conns, service(members, routing)), tmp_path)
    posts = functools.partial(gdns.calls, "POST", "/changes")
    gdns.requests.clear()

    assert engine.run(SERVICE, "rebalance", apply=True).status == "noop" and posts() == []

    take_down(members, "c")
    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.errors, out.plan.target) == ("succeeded", [], {"a": 50, "b": 30})
    assert wrr_weights(gdns) == {"a": 50.0, "b": 30.0, "c": 0.0}
    (post,) = posts()  # the whole record set replaced in one atomic change
    assert [len(post.body["deletions"]), len(post.body["additions"])] == [1, 1]

    bring_up(members, "c")
    back = engine.run(SERVICE, "rebalance", apply=True)

    assert (back.status, back.plan.target) == ("succeeded", ALL)
    assert wrr_weights(gdns) == {"a": 50.0, "b": 30.0, "c": 20.0}
    assert len(posts()) == 2


SUB, RG, PROFILE = "00000000-0000-0000-0000-0000000000aa", "rg-web", "web-tm"
TOKEN_VAR, TOKEN = "AA_TM_TOKEN", "token-for-the-emulator"
EXT = "Microsoft.Network/trafficManagerProfiles/externalEndpoints"


class _Token:
    """A TokenCredential handing the emulator its fixed bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, int(time.time()) + 300)


def tm_endpoints(em: Any) -> dict[str, tuple[int, str]]:
    """Member -> (weight, endpoint status), read with azure-mgmt-trafficmanager over HTTPS."""
    from azure.mgmt.trafficmanager import TrafficManagerManagementClient

    client = TrafficManagerManagementClient(_Token(), SUB, base_url=em.url, connection_verify=em.ca_file,
                                            retry_total=0)
    profile = client.profiles.get(RG, PROFILE)
    assert str(getattr(profile.traffic_routing_method, "value", profile.traffic_routing_method)) == "Weighted"
    return {ep.name: (ep.weight, str(getattr(ep.endpoint_status, "value", ep.endpoint_status)))
            for ep in profile.endpoints}


def test_traffic_manager_weighted_member_out_and_back(trafficmanager_emulator: Any, members, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    em = trafficmanager_emulator
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    em.token = TOKEN
    em.put_profile(SUB, RG, PROFILE, {"location": "global", "properties": {
        "trafficRoutingMethod": "Weighted", "dnsConfig": {"relativeName": PROFILE, "ttl": 30},
        "monitorConfig": {"protocol": "HTTPS", "port": 443, "path": "/health"},
        "endpoints": [{"name": f"tm-{n}", "type": EXT, "properties": {
            "target": f"{n}.example.net", "weight": w * 10, "endpointStatus": "Enabled"}} for n, w in ALL.items()]}})
    routing = {"adapter": "trafficmanager", "connection": "azure-local", "resource_group": RG, "profile": PROFILE,
               "mode": "weighted", "endpoints": {n: {"endpoint": f"tm-{n}"} for n in MEMBERS}}
    conns = {"azure-local": {"type": "trafficmanager", "subscription_id": SUB, "endpoint_url": em.url,
                             "ca_bundle": em.ca_file, "credentials": "token_env", "token_env_var": TOKEN_VAR,
                             "max_attempts": 2}}
    engine = engine_for(write_strategy(tmp_path, conns, service(members, routing)), tmp_path)
    steady = {"tm-a": (500, "Enabled"), "tm-b": (300, "Enabled"), "tm-c": (200, "Enabled")}
    assert tm_endpoints(em) == steady

    assert engine.run(SERVICE, "rebalance", apply=True).status == "noop" and em.writes() == []

    take_down(members, "c")
    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.errors, out.plan.target) == ("succeeded", [], {"a": 50, "b": 30})
    # weights are 1-1000 in Traffic Manager: the member out keeps the inactive weight and is Disabled
    assert tm_endpoints(em) == {"tm-a": (500, "Enabled"), "tm-b": (300, "Enabled"), "tm-c": (1, "Disabled")}
    assert [r["path"].rsplit("/", 1)[-1] for r in em.writes()] == ["tm-c"]  # a and b are left alone

    bring_up(members, "c")
    back = engine.run(SERVICE, "rebalance", apply=True)

    assert (back.status, back.plan.target) == ("succeeded", ALL)
    assert tm_endpoints(em) == steady


# --------------------------------------------------------------------------- 3. safety rules (Route 53)
def test_min_active_refuses_naming_the_rule_and_force_proceeds(r53: Route53Weights, members, tmp_path: Path):
    r53.seed(ALL)
    engine = engine_for(route53_strategy(r53, members, tmp_path, rules=[{"rule": "min_active", "count": 3}]),
                        tmp_path)
    calls = change_calls(engine)
    before = r53.records()
    take_down(members, "c")

    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.changed) == ("refused", False)
    assert out.errors == ["rule 1 (min_active 3): the plan leaves 2 endpoint(s) in rotation (a, b)"]
    assert r53.records() == before and calls == []
    assert [e["event"] for e in run_events(engine, out)] == ["run_started", "decided", "refused"]

    forced = engine.run(SERVICE, "rebalance", apply=True, force=True)

    assert forced.status == "succeeded"
    assert r53.weights() == {"a": 50, "b": 30, "c": 0}
    forced_event = next(e for e in run_events(engine, forced) if e["event"] == "forced")
    assert forced_event["overridden"] == out.errors


def test_min_active_does_not_block_a_member_coming_back(r53: Route53Weights, members, tmp_path: Path):
    """Below the minimum already (forced), bringing one member back must not be refused by it."""
    r53.seed(ALL)
    engine = engine_for(route53_strategy(r53, members, tmp_path, rules=[{"rule": "min_active", "count": 3}]),
                        tmp_path)
    take_down(members, "b", "c")
    assert engine.run(SERVICE, "rebalance", apply=True, force=True).status == "succeeded"
    assert r53.weights() == {"a": 50, "b": 0, "c": 0}

    bring_up(members, "b")
    out = engine.run(SERVICE, "rebalance", apply=True)

    assert (out.status, out.errors) == ("succeeded", [])
    assert r53.weights() == {"a": 50, "b": 30, "c": 0}


def test_max_out_refuses_two_zones_out_naming_them(r53: Route53Weights, members, tmp_path: Path):
    r53.seed(ALL)
    rules = [{"rule": "max_out", "count": 1, "of": "zones"}]
    engine = engine_for(route53_strategy(r53, members, tmp_path, rules=rules), tmp_path)
    calls = change_calls(engine)
    before = r53.records()
    take_down(members, "a", "b")

    out = engine.run(SERVICE, "rebalance", apply=True)

    assert out.status == "refused"
    assert out.errors == ["rule 1 (max_out 1 zones): the plan takes 2 zones out (z1, z2)"]
    assert r53.records() == before and calls == []
    assert [e["event"] for e in run_events(engine, out)][-1] == "refused"

    bring_up(members, "a")  # one zone out at a time is allowed
    one = engine.run(SERVICE, "rebalance", apply=True)

    assert (one.status, one.errors) == ("succeeded", [])
    assert r53.weights() == {"a": 50, "b": 0, "c": 20}


def test_a_closed_gate_refuses_naming_it_and_an_open_one_lets_the_plan_through(
        r53: Route53Weights, members, spare_region, tmp_path: Path):
    gate = spare_region("change-window", mode="errors")  # answers 503: the gate is closed
    rules = [{"rule": "gate", "name": "change-window",
              "probe": {"type": "http", "url": f"{gate.url}/health", "body_contains": "ok"}}]
    r53.seed(ALL)
    engine = engine_for(route53_strategy(r53, members, tmp_path, rules=rules), tmp_path)
    calls = change_calls(engine)
    before = r53.records()
    take_down(members, "c")

    out = engine.run(SERVICE, "rebalance", apply=True)

    assert out.status == "refused"
    (error,) = out.errors
    assert error.startswith("rule 1 (gate 'change-window'): the gate is closed: ") and "503" in error
    assert r53.records() == before and calls == []

    gate.set_mode("up")
    opened = engine.run(SERVICE, "rebalance", apply=True)

    assert (opened.status, opened.errors) == ("succeeded", [])
    assert r53.weights() == {"a": 50, "b": 30, "c": 0} and len(calls) == 1


# --------------------------------------------------------------------------- 4. the monitor
def monitor_strategy(r53: Route53Weights, members: dict[str, RegionServer], tmp_path: Path,
                     policy: dict[str, Any], control: RegionServer | None = None) -> Path:
    """The service under the monitor; with ``control``, a control target that stays up, so that
    the observer does not take every member down at once for its own partition (and abstain)."""
    monitoring = {"control_targets": [{"type": "http", "url": f"{control.url}/health"}]} if control else None
    return route53_strategy(r53, members, tmp_path, monitoring=monitoring, detection=dict(MONITOR_DETECTION),
                            policy={"cooldown": 0, **policy})


def wait_healthy(mon: Any, *names: str) -> None:
    for name in names:
        mon.events.wait_for("verdict", endpoint=name, health="healthy")


def test_monitor_rebalances_out_and_back_after_the_stable_period_and_never_to_zero(
        r53: Route53Weights, members, spare_region, tmp_path: Path, run_monitor):
    r53.seed(ALL)
    path = monitor_strategy(r53, members, tmp_path, {"failover": "automatic", "failback": "automatic",
                                                     "failback_stable_period": "1s"},
                            control=spare_region("control"))
    mon = run_monitor(path)
    wait_healthy(mon, "a", "b", "c")
    assert mon.events.all("run_started") == []  # all in rotation already

    take_down(members, "c")
    out = mon.events.wait_for("succeeded", where=lambda e: e["active"] == {"a": 50, "b": 30})
    started = mon.events.wait_for("run_started", run_id=out["run_id"])
    assert (started["action"], started["signal"]) == ("rebalance", "failure")
    assert r53.weights() == {"a": 50, "b": 30, "c": 0}

    bring_up(members, "c")
    recovered = mon.events.wait_for("verdict", endpoint="c", health="healthy", count=2)
    back = mon.events.wait_for("succeeded", where=lambda e: e["active"] == ALL)
    back_started = mon.events.wait_for("run_started", run_id=back["run_id"])
    assert (back_started["action"], back_started["signal"]) == ("rebalance", "recovery")
    assert back_started["t"] - recovered["t"] >= 1.0  # the failback stable period
    assert r53.weights() == ALL

    take_down(members, "a", "b", "c")
    for name in ("a", "b", "c"):  # judged down (the control target answers: no self-partition)
        mon.events.wait_for("verdict", endpoint=name, health="unhealthy")
    time.sleep(1.2)  # six detection periods with every member down

    weights = r53.weights()
    assert any(weights.values()), f"zero members in rotation: {weights}"
    assert weights == ALL  # a run begun as the members fell one by one was refused or rolled back
    assert len(mon.events.all("succeeded")) == 2
    mon.stop()


def test_monitor_with_manual_failback_does_not_bring_a_member_back_in_another_rebalance(
        r53: Route53Weights, members, tmp_path: Path, run_monitor):
    """failback: manual keeps a recovered member out, also when another member fails later."""
    r53.seed(ALL)
    path = monitor_strategy(r53, members, tmp_path, {"failover": "automatic", "failback": "manual"})
    mon = run_monitor(path)
    wait_healthy(mon, "a", "b", "c")

    take_down(members, "c")
    mon.events.wait_for("succeeded", where=lambda e: e["active"] == {"a": 50, "b": 30})
    bring_up(members, "c")
    mon.events.wait_for("verdict", endpoint="c", health="healthy", count=2)
    time.sleep(0.6)
    assert r53.weights() == {"a": 50, "b": 30, "c": 0} and len(mon.events.all("run_started")) == 1

    take_down(members, "b")
    second = mon.events.wait_for("succeeded", count=2)

    assert second["active"] == {"a": 50}
    assert r53.weights() == {"a": 50, "b": 0, "c": 0}
    mon.stop()


def test_monitor_with_manual_failover_alerts_and_changes_nothing(r53: Route53Weights, members, tmp_path: Path,
                                                                 run_monitor):
    r53.seed(ALL)
    path = monitor_strategy(r53, members, tmp_path, {"failover": "manual", "failback": "automatic",
                                                     "failback_stable_period": "0s"})
    mon = run_monitor(path)
    wait_healthy(mon, "a", "b", "c")

    take_down(members, "c")
    alert = mon.events.wait_for("alert")
    assert "'c'" in alert["reason"] and alert["reason"].endswith("policy is manual: alert only")
    time.sleep(0.8)

    assert len(mon.events.all("alert")) == 1
    assert mon.events.all("run_started") == []
    assert r53.weights() == ALL
    mon.stop()


def test_min_capacity_refuses_when_the_remaining_members_lack_capacity(r53: Route53Weights, members,
                                                                       tmp_path: Path):
    """Members declare capacity 6/4/2; the rule needs 9: losing b (4) leaves 8 -> refused, nothing
    changed; losing c (2) leaves 10 -> allowed."""
    r53.seed(ALL)
    path = route53_strategy(r53, members, tmp_path, rules=[{"rule": "min_capacity", "capacity": 9}])
    data = yaml.safe_load(path.read_text())
    for ep, cap in zip(data["services"][SERVICE]["endpoints"], (6, 4, 2)):
        ep["capacity"] = cap
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    engine = engine_for(path, tmp_path)
    calls = change_calls(engine)
    before = r53.records()

    take_down(members, "b")
    out = engine.run(SERVICE, "rebalance", apply=True)
    assert (out.status, out.changed) == ("refused", False)
    assert out.errors == ["rule 1 (min_capacity 9): the endpoints left in rotation declare a capacity of 8 (a, c)"]
    assert r53.records() == before and calls == []

    bring_up(members, "b")
    take_down(members, "c")
    assert engine.run(SERVICE, "rebalance", apply=True).status == "succeeded"
    assert r53.weights() == {"a": 50, "b": 30, "c": 0}
