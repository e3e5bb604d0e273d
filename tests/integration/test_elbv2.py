"""Zone failover on ELBv2 target groups: deregister a zone's targets, register them on failback.

A VPC with three subnets (one per zone), two EC2 instances per zone, an ALB and an instance
target group live in the lab's moto server; the adapter and the engine talk to it with the real
boto3 ``elbv2``/``ec2`` clients over HTTP, and every test reads what the target group holds with
clients of its own. Zone members are probed over HTTP (local servers).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
import yaml

from failover_engine.adapters.elbv2 import DrainWaiter, Elbv2Adapter, parked_key
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import Elbv2Error
from failover_engine.lab.lab import Lab
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import Elbv2Connection, Elbv2Routing
from failover_engine.core.plan import Change

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REGION = "us-east-1"
ZONES = {"a": "us-east-1a", "b": "us-east-1b", "c": "us-east-1c"}
PORT = 8080
SERVICE = "web"


# --------------------------------------------------------------------------- fixtures and helpers
class Aws:
    """What the tests built in moto, and clients to look at it."""

    def __init__(self, url: str):
        self.ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url)
        self.elbv2 = boto3.client("elbv2", region_name=REGION, endpoint_url=url)
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = {z: self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=z)
                        ["Subnet"]["SubnetId"] for i, z in enumerate(ZONES.values())}
        self.instances = {z: sorted(i["InstanceId"] for i in self.ec2.run_instances(
            ImageId="ami-12345678", MinCount=2, MaxCount=2, SubnetId=sn)["Instances"])
            for z, sn in self.subnets.items()}
        lb = self.elbv2.create_load_balancer(Name="web-alb", Subnets=list(self.subnets.values()))
        self.tg = self.elbv2.create_target_group(Name="web-tg", Protocol="HTTP", Port=PORT, VpcId=vpc,
                                                 TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.create_listener(LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"], Protocol="HTTP",
                                   Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": self.tg}])
        self.elbv2.register_targets(TargetGroupArn=self.tg,
                                    Targets=[{"Id": i} for ids in self.instances.values() for i in ids])

    def registered(self) -> list[str]:
        descs = self.elbv2.describe_target_health(TargetGroupArn=self.tg)["TargetHealthDescriptions"]
        return sorted(d["Target"]["Id"] for d in descs if d["TargetHealth"]["State"] != "draining")

    def tags(self) -> dict[str, str]:
        desc = self.elbv2.describe_tags(ResourceArns=[self.tg])["TagDescriptions"][0]
        return {t["Key"]: t["Value"] for t in desc["Tags"]}

    def all_instances(self, *zones: str) -> list[str]:
        return sorted(i for z in (zones or tuple(ZONES.values())) for i in self.instances[z])


@pytest.fixture
def aws(lab_aws: Lab) -> Aws:
    return Aws(lab_aws.moto_url)


@pytest.fixture
def adapter(lab_aws: Lab) -> Elbv2Adapter:
    return Elbv2Adapter(Elbv2Connection(endpoint_url=lab_aws.moto_url, max_attempts=2), sleep=lambda _unused: None)


@pytest.fixture
def binding(aws: Aws) -> Elbv2Routing:
    return Elbv2Routing(target_group_arns=[aws.tg], endpoints={n: {"zone": z} for n, z in ZONES.items()})


def calls_of(adapter: Elbv2Adapter) -> list[str]:
    """Every ELBv2 and EC2 operation the adapter's clients send from now on (botocore event hooks)."""
    seen: list[str] = []
    for client in (adapter.client, adapter.ec2):
        client.meta.events.register("before-call", lambda model, **_unused: seen.append(model.name))
    return seen


def switch(adapter: Elbv2Adapter, binding: Elbv2Routing, assignment: dict[str, int]) -> list[Change]:
    """Read, compute the changes for ``assignment`` and apply them: what the engine does per step."""
    current = adapter.read([binding])
    changes = [Change(k, current.get(k), v) for k, v in adapter.desired(binding, assignment).items()]
    adapter.apply(changes)
    return changes


WRITES = {"RegisterTargets", "DeregisterTargets", "AddTags", "RemoveTags"}


# --------------------------------------------------------------------------- the adapter
def test_zone_out_parks_its_targets_then_idempotent_then_back_on_failback(aws: Aws, adapter: Elbv2Adapter,
                                                                          binding: Elbv2Routing):
    assert adapter.active_of(binding, adapter.read([binding])) == {"a": 100, "b": 100, "c": 100}
    ops = calls_of(adapter)

    switch(adapter, binding, {"a": 100, "b": 100})
    assert aws.registered() == aws.all_instances("us-east-1a", "us-east-1b")  # other zones untouched
    parked = aws.tags()[parked_key("us-east-1c")]
    assert sorted(parked.split()) == [f"{i}:{PORT}" for i in aws.instances["us-east-1c"]]
    assert [o for o in ops if o in WRITES] == ["AddTags", "DeregisterTargets"]  # the list first, then the targets
    assert "DescribeTargetGroupAttributes" in ops  # the deregistration delay bounds the drain waiter
    assert adapter.active_of(binding, adapter.read([binding])) == {"a": 100, "b": 100}

    ops.clear()
    changes = switch(adapter, binding, {"a": 100, "b": 100})  # the state that already holds
    assert all(c.action == "noop" for c in changes)
    assert not WRITES & set(ops)

    ops.clear()
    switch(adapter, binding, {"a": 100, "b": 100, "c": 100})  # failback
    assert aws.registered() == aws.all_instances()
    assert parked_key("us-east-1c") not in aws.tags()
    assert [o for o in ops if o in WRITES] == ["RegisterTargets", "RemoveTags"]


def test_moving_zones_registers_first_then_deregisters(aws: Aws, adapter: Elbv2Adapter, binding: Elbv2Routing):
    switch(adapter, binding, {"a": 100})
    assert aws.registered() == aws.all_instances("us-east-1a")
    ops = calls_of(adapter)
    switch(adapter, binding, {"b": 100, "c": 100})
    assert [o for o in ops if o in WRITES] == ["RegisterTargets", "RemoveTags", "AddTags", "DeregisterTargets"]
    assert aws.registered() == aws.all_instances("us-east-1b", "us-east-1c")
    assert list(aws.tags()) == [parked_key("us-east-1a")]


def test_taking_every_zone_out_is_refused_before_any_call(aws: Aws, adapter: Elbv2Adapter, binding: Elbv2Routing):
    ops = calls_of(adapter)
    for nobody in ({}, {"a": 0, "b": 0, "c": 0}, {"elsewhere": 100}):
        with pytest.raises(Elbv2Error, match="every availability zone") as err:
            adapter.desired(binding, nobody)
        assert err.value.code == "AllZonesDisabled"
    assert ops == []
    assert aws.registered() == aws.all_instances()


def test_targets_that_do_not_fit_in_a_tag_are_refused_before_any_change(aws: Aws, adapter: Elbv2Adapter,
                                                                        binding: Elbv2Routing):
    # 12 instances in one zone: 12 x "i-<17 hex>:8080" and separators exceed 256 characters
    more = aws.ec2.run_instances(ImageId="ami-12345678", MinCount=10, MaxCount=10, SubnetId=aws.subnets["us-east-1c"])
    aws.elbv2.register_targets(TargetGroupArn=aws.tg, Targets=[{"Id": i["InstanceId"]} for i in more["Instances"]])
    before = aws.registered()
    ops = calls_of(adapter)
    with pytest.raises(Elbv2Error, match="do not fit in one tag value") as err:
        switch(adapter, binding, {"a": 100, "b": 100})
    assert err.value.code == "TooManyTargets" and err.value.written == ()
    assert not WRITES & set(ops)
    assert aws.registered() == before and aws.tags() == {}


def test_an_api_error_names_the_target_group_and_what_was_written(lab_aws: Lab, adapter: Elbv2Adapter):
    missing = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/no-such-tg/0123456789abcdef"
    gone = Elbv2Routing(target_group_arns=[missing], endpoints={n: {"zone": z} for n, z in ZONES.items()})
    with pytest.raises(Elbv2Error, match="no-such-tg") as err:
        adapter.read([gone])
    assert err.value.code
    keys = list(adapter.desired(gone, {"a": 100}))
    with pytest.raises(Elbv2Error, match="no-such-tg") as err:
        adapter.apply([Change(k, {"in_service": True}, {"in_service": k.name == ZONES["a"]}) for k in keys])
    assert err.value.written == ()


def test_binding_problems_need_two_distinct_zones_and_distinct_target_groups():
    tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1"
    one = Elbv2Routing(target_group_arns=[tg], endpoints={"a": {"zone": "us-east-1a"}})
    same = Elbv2Routing(target_group_arns=[tg, tg],
                        endpoints={"a": {"zone": "us-east-1a"}, "b": {"zone": "us-east-1a"}})
    assert [f for f, _unused in Elbv2Adapter.binding_problems(one)] == ["endpoints"]
    assert [f for f, _unused in Elbv2Adapter.binding_problems(same)] == ["endpoints", "target_group_arns"]
    ok = Elbv2Routing(target_group_arns=[tg], endpoints={n: {"zone": z} for n, z in ZONES.items()})
    assert Elbv2Adapter.binding_problems(ok) == []


class DrainingElbv2:
    """A stand-in for the provider (not our code): targets stay draining for ``polls`` answers."""

    def __init__(self, polls: int, delay: int = 10):
        self.polls, self.delay = polls, delay

    def describe_target_group_attributes(self, **_unused: Any) -> dict[str, Any]:
        return {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": str(self.delay)}]}

    def describe_target_health(self, **_unused: Any) -> dict[str, Any]:
        self.polls -= 1
        state = "draining" if self.polls >= 0 else "unused"
        return {"TargetHealthDescriptions": [{"Target": {"Id": "i-1", "Port": 80}, "TargetHealth": {"State": state}}]}


@pytest.mark.parametrize("polls, delay, ok, sleeps", [(2, 10, True, [5.0, 5.0]), (0, 10, True, []),
                                                      (99, 10, False, [5.0] * 3)])
def test_the_drain_waiter_is_bounded_by_the_deregistration_delay(polls: int, delay: int, ok: bool,
                                                                 sleeps: list[float]):
    slept: list[float] = []
    adapter = Elbv2Adapter(client=DrainingElbv2(polls, delay), sleep=slept.append,
                           waiter=DrainWaiter(interval=5.0, margin=10.0))  # (10 + 10) / 5 = 4 polls at most
    if ok:
        adapter._wait_drained("tg", [("i-1", 80)])
    else:
        with pytest.raises(Elbv2Error, match="still draining after the deregistration delay") as err:
            adapter._wait_drained("tg", [("i-1", 80)])
        assert err.value.code == "Timeout"
    assert slept == sleeps


# --------------------------------------------------------------------------- the engine
@pytest.fixture
def zone_servers(local_http_server: Callable[..., Any]) -> dict[str, Any]:
    """One local HTTP server per zone member; a test fails a zone with ``status = 503``."""
    return {n: local_http_server() for n in ZONES}


def engine_for(lab: Lab, aws: Aws, servers: dict[str, Any], tmp_path: Path) -> FailoverEngine:
    svc: dict[str, Any] = {
        "strategy": "active_active", "scope": "zone",
        "endpoints": [{"name": n, "role": "active", "region": REGION, "zone": z,
                       "probe": {"type": "http", "url": f"{servers[n].url}/health"}} for n, z in ZONES.items()],
        "routing": [{"adapter": "elbv2", "connection": "aws-local", "target_group_arns": [aws.tg],
                     "endpoints": {n: {"zone": z} for n, z in ZONES.items()}}],
        "detection": {"interval": "200ms", "timeout": "200ms"},
        "policy": {"cooldown": 0},
        "validation": {"attempts": 2, "interval": "50ms"},
    }
    data = {"version": 1, "connections": {"aws-local": {"type": "elbv2", "endpoint_url": lab.moto_url,
                                                        "max_attempts": 2}},
            "services": {SERVICE: svc}}
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))


def test_engine_deregisters_the_failing_zone_and_registers_it_on_failback(lab_aws: Lab, aws: Aws, zone_servers,
                                                                          tmp_path: Path):
    engine = engine_for(lab_aws, aws, zone_servers, tmp_path)
    assert engine.run(SERVICE, "rebalance", apply=True).status == "noop"

    zone_servers["c"].status = 503
    out = engine.run(SERVICE, "rebalance", apply=True)
    assert (out.status, out.errors, out.plan.target) == ("succeeded", [], {"a": 100, "b": 100})
    assert aws.registered() == aws.all_instances("us-east-1a", "us-east-1b")
    assert list(aws.tags()) == [parked_key("us-east-1c")]

    ops = calls_of(engine.adapter(engine.loaded.service(SERVICE).routing[0]))  # type: ignore[arg-type]
    again = engine.run(SERVICE, "rebalance", apply=True)  # the zone is out already: nothing to write
    assert again.status == "noop" and not WRITES & set(ops)

    zone_servers["c"].status = 200
    back = engine.run(SERVICE, "rebalance", apply=True)
    assert (back.status, back.errors) == ("succeeded", [])
    assert aws.registered() == aws.all_instances() and aws.tags() == {}


def test_engine_refuses_when_every_zone_fails_and_changes_nothing(lab_aws: Lab, aws: Aws, zone_servers,
                                                                  tmp_path: Path):
    engine = engine_for(lab_aws, aws, zone_servers, tmp_path)
    for server in zone_servers.values():
        server.status = 503
    out = engine.run(SERVICE, "rebalance", apply=True)
    assert (out.status, out.changed, out.plan.steps) == ("refused", False, ())
    assert any("zero healthy members" in e for e in out.errors), out.errors
    assert aws.registered() == aws.all_instances() and aws.tags() == {}


def test_strategy_with_unequal_weights_on_elbv2_is_invalid(lab_aws: Lab, aws: Aws, zone_servers, tmp_path: Path):
    from failover_engine.core.errors import StrategyError

    engine_for(lab_aws, aws, zone_servers, tmp_path)  # writes a valid strategy.yaml
    path = tmp_path / "strategy.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["services"][SERVICE]["endpoints"][0]["weight"] = 50
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(StrategyError, match="cannot weight them"):
        load_strategy(path, state_dir=tmp_path / "state")
