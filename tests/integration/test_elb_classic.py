"""Zone failover on a Classic Load Balancer: disable and re-enable availability zones.

A Classic ELB in three zones lives in the lab's moto server; the adapter and the engine talk to
it with the real boto3 ``elb`` client over HTTP, and every test reads what the load balancer
holds with a boto3 client of its own. Zone members are probed over HTTP (local servers).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
import yaml

from failover_engine.adapters.elb import ClassicElbAdapter
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import ElbError
from failover_engine.lab.lab import Lab
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import ClassicElbConnection, ClassicElbRouting
from failover_engine.core.plan import Change

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LB = "web-classic"
REGION = "us-east-1"
ZONES = {"a": "us-east-1a", "b": "us-east-1b", "c": "us-east-1c"}
SERVICE = "web"


# --------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture
def elb(lab_aws: Lab) -> Any:
    """A boto3 Classic ELB client on the lab's moto, with a load balancer enabled in three zones."""
    client = boto3.client("elb", region_name=REGION, endpoint_url=lab_aws.moto_url)
    client.create_load_balancer(
        LoadBalancerName=LB, AvailabilityZones=sorted(ZONES.values()),
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 8080}])
    return client


def enabled_zones(client: Any) -> list[str]:
    desc = client.describe_load_balancers(LoadBalancerNames=[LB])["LoadBalancerDescriptions"][0]
    return sorted(desc["AvailabilityZones"])


@pytest.fixture
def adapter(lab_aws: Lab) -> ClassicElbAdapter:
    return ClassicElbAdapter(ClassicElbConnection(endpoint_url=lab_aws.moto_url, max_attempts=2))


@pytest.fixture
def binding() -> ClassicElbRouting:
    return ClassicElbRouting(load_balancer=LB, endpoints={n: {"zone": z} for n, z in ZONES.items()})


def calls_to_elb(adapter: ClassicElbAdapter) -> list[str]:
    """Every ELB operation the adapter's client sends from now on (a botocore event hook)."""
    seen: list[str] = []
    adapter.client.meta.events.register("before-call", lambda model, **_unused: seen.append(model.name))
    return seen


def switch(adapter: ClassicElbAdapter, binding: ClassicElbRouting, assignment: dict[str, int]) -> list[Change]:
    """Read, compute the changes for ``assignment`` and apply them: what the engine does per step."""
    current = adapter.read([binding])
    changes = [Change(k, current.get(k), v) for k, v in adapter.desired(binding, assignment).items()]
    adapter.apply(changes)
    return changes


# --------------------------------------------------------------------------- the adapter
def test_disable_one_zone_then_idempotent_then_reenable_on_failback(elb: Any, adapter: ClassicElbAdapter,
                                                                    binding: ClassicElbRouting):
    assert adapter.active_of(binding, adapter.read([binding])) == {"a": 100, "b": 100, "c": 100}
    ops = calls_to_elb(adapter)

    switch(adapter, binding, {"a": 100, "b": 100})
    assert enabled_zones(elb) == ["us-east-1a", "us-east-1b"]
    assert ops == ["DescribeLoadBalancers", "DisableAvailabilityZonesForLoadBalancer"]
    assert adapter.active_of(binding, adapter.read([binding])) == {"a": 100, "b": 100}

    ops.clear()
    changes = switch(adapter, binding, {"a": 100, "b": 100})  # the state that already holds
    assert all(c.action == "noop" for c in changes)
    assert ops == ["DescribeLoadBalancers"]  # the read only: no write call

    ops.clear()
    switch(adapter, binding, {"a": 100, "b": 100, "c": 100})  # failback
    assert enabled_zones(elb) == sorted(ZONES.values())
    assert ops == ["DescribeLoadBalancers", "EnableAvailabilityZonesForLoadBalancer"]


def test_moving_zones_enables_first_in_one_call_then_disables_in_one_call(elb: Any, adapter: ClassicElbAdapter,
                                                                          binding: ClassicElbRouting):
    switch(adapter, binding, {"a": 100})
    assert enabled_zones(elb) == ["us-east-1a"]
    ops = calls_to_elb(adapter)
    switch(adapter, binding, {"b": 100, "c": 100})
    assert ops == ["DescribeLoadBalancers", "EnableAvailabilityZonesForLoadBalancer",
                   "DisableAvailabilityZonesForLoadBalancer"]
    assert enabled_zones(elb) == ["us-east-1b", "us-east-1c"]


def test_disabling_every_zone_is_refused_before_any_call(elb: Any, adapter: ClassicElbAdapter,
                                                         binding: ClassicElbRouting):
    ops = calls_to_elb(adapter)
    for nobody in ({}, {"a": 0, "b": 0, "c": 0}, {"elsewhere": 100}):
        with pytest.raises(ElbError, match="every availability zone of web-classic") as err:
            adapter.desired(binding, nobody)
        assert err.value.code == "AllZonesDisabled"
    assert ops == []
    assert enabled_zones(elb) == sorted(ZONES.values())


def test_an_api_error_names_the_load_balancer_and_what_was_written(lab_aws: Lab):
    adapter = ClassicElbAdapter(ClassicElbConnection(endpoint_url=lab_aws.moto_url, max_attempts=2),
                                sleep=lambda _unused: None)
    missing = ClassicElbRouting(load_balancer="no-such-lb", endpoints={n: {"zone": z} for n, z in ZONES.items()})
    with pytest.raises(ElbError, match="no-such-lb") as err:
        adapter.read([missing])
    assert err.value.code
    keys = list(adapter.desired(missing, {"a": 100}))
    with pytest.raises(ElbError, match="no-such-lb") as err:
        adapter.apply([Change(k, {"enabled": True}, {"enabled": k.name == ZONES["a"]}) for k in keys])
    assert err.value.written == ()


def test_binding_problems_need_two_distinct_zones():
    one = ClassicElbRouting(load_balancer=LB, endpoints={"a": {"zone": "us-east-1a"}})
    same = ClassicElbRouting(load_balancer=LB, endpoints={"a": {"zone": "us-east-1a"}, "b": {"zone": "us-east-1a"}})
    assert [f for f, _unused in ClassicElbAdapter.binding_problems(one)] == ["endpoints"]
    assert "us-east-1a" in ClassicElbAdapter.binding_problems(same)[0][1]
    ok = ClassicElbRouting(load_balancer=LB, endpoints={n: {"zone": z} for n, z in ZONES.items()})
    assert ClassicElbAdapter.binding_problems(ok) == []


# --------------------------------------------------------------------------- the engine
@pytest.fixture
def zone_servers(local_http_server: Callable[..., Any]) -> dict[str, Any]:
    """One local HTTP server per zone member; a test fails a zone with ``status = 503``."""
    return {n: local_http_server() for n in ZONES}


def engine_for(lab: Lab, servers: dict[str, Any], tmp_path: Path, capacity: int | None = None,
               **overrides: Any) -> FailoverEngine:
    svc: dict[str, Any] = {
        "strategy": "active_active", "scope": "zone",
        "endpoints": [{"name": n, "role": "active", "region": REGION, "zone": z,
                       "probe": {"type": "http", "url": f"{servers[n].url}/health"},
                       **({"capacity": capacity} if capacity is not None else {})} for n, z in ZONES.items()],
        "routing": [{"adapter": "elb", "connection": "aws-local", "load_balancer": LB,
                     "endpoints": {n: {"zone": z} for n, z in ZONES.items()}}],
        "detection": {"interval": "200ms", "timeout": "200ms"},
        "policy": {"cooldown": 0},
        "validation": {"attempts": 2, "interval": "50ms"},
        **overrides,
    }
    data = {"version": 1, "connections": {"aws-local": {"type": "elb", "endpoint_url": lab.moto_url,
                                                        "max_attempts": 2}},
            "services": {SERVICE: svc}}
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))


def test_engine_disables_the_failing_zone_and_enables_it_on_failback(lab_aws: Lab, elb: Any, zone_servers,
                                                                     tmp_path: Path):
    engine = engine_for(lab_aws, zone_servers, tmp_path)
    assert engine.run(SERVICE, "rebalance", apply=True).status == "noop"

    zone_servers["c"].status = 503
    out = engine.run(SERVICE, "rebalance", apply=True)
    assert (out.status, out.errors, out.plan.target) == ("succeeded", [], {"a": 100, "b": 100})
    assert enabled_zones(elb) == ["us-east-1a", "us-east-1b"]

    ops = calls_to_elb(engine.adapter(engine.loaded.service(SERVICE).routing[0]))  # type: ignore[arg-type]
    again = engine.run(SERVICE, "rebalance", apply=True)  # the zone is out already: nothing to write
    assert again.status == "noop" and "DisableAvailabilityZonesForLoadBalancer" not in ops
    assert set(ops) == {"DescribeLoadBalancers"}

    zone_servers["c"].status = 200
    back = engine.run(SERVICE, "rebalance", apply=True)
    assert (back.status, back.errors) == ("succeeded", [])
    assert enabled_zones(elb) == sorted(ZONES.values())


def test_engine_refuses_when_every_zone_fails_and_changes_nothing(lab_aws: Lab, elb: Any, zone_servers,
                                                                  tmp_path: Path):
    engine = engine_for(lab_aws, zone_servers, tmp_path)
    for server in zone_servers.values():
        server.status = 503
    out = engine.run(SERVICE, "rebalance", apply=True)
    assert (out.status, out.changed, out.plan.steps) == ("refused", False, ())
    assert any("zero healthy members" in e for e in out.errors), out.errors
    assert enabled_zones(elb) == sorted(ZONES.values())


def test_engine_refuses_when_the_remaining_zones_lack_the_declared_capacity(lab_aws: Lab, elb: Any, zone_servers,
                                                                            tmp_path: Path):
    # 10 per zone: two zones (20) fall short of the 25 required
    engine = engine_for(lab_aws, zone_servers, tmp_path, capacity=10,
                        rules=[{"rule": "min_capacity", "capacity": 25}])
    zone_servers["c"].status = 503
    out = engine.run(SERVICE, "rebalance", apply=True)
    assert (out.status, out.changed) == ("refused", False)
    assert out.errors == ["rule 1 (min_capacity 25): the endpoints left in rotation declare a capacity "
                          "of 20 (a, b)"]
    assert enabled_zones(elb) == sorted(ZONES.values())

    forced = engine.run(SERVICE, "rebalance", apply=True, force=True)
    assert forced.status == "succeeded"
    assert enabled_zones(elb) == ["us-east-1a", "us-east-1b"]
