"""The drill client's pure parts: which names each drill's clients resolve and how an answer maps to
the local server playing its endpoint (lab.client.client_targets), and the load balancer names of
the zonal shift lab (lab.dns_zonal)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from failover_engine.config.loader import load_strategy
from failover_engine.core.model import Strategy
from failover_engine.lab.client import client_targets
from failover_engine.lab.dns_zonal import load_balancer_name, zonal_records, zone_address
from failover_engine.lab.lab import TEMPLATES

PORTS = {"primary": 8001, "standby": 8002, "use1": 8001, "usw2": 8002, "euw1": 8003, "az1": 8011, "az2": 8012,
         "az3": 8013}
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop-drill/50dc6c495c0c9188"


def template(cloud: str, tmp_path: Path) -> Strategy:
    """An embedded drill template with made-up placeholder values, loaded."""
    text = resources.files("failover_engine.lab").joinpath(TEMPLATES[cloud]).read_text(encoding="utf-8")
    values = {"moto_url": "http://127.0.0.1:5000", "lab_url": "http://127.0.0.1:5001", "lab_dns": "127.0.0.1:5353",
              "clouddns_url": "http://127.0.0.1:5002", "trafficmanager_url": "https://127.0.0.1:5003",
              "trafficmanager_ca": str(tmp_path / "ca.pem"), "zonalshift_url": "http://127.0.0.1:5004",
              "record_ttl": "1", **{f"{k}_port": str(v) for k, v in PORTS.items()}}
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    path = tmp_path / "strategy.yaml"
    path.write_text(text)
    return load_strategy(path).strategy


@pytest.mark.parametrize("cloud, expected", [
    ("aws", [("shop.drill.example.", {"192.0.2.10": "use1", "198.51.100.10": "usw2"})]),
    ("gcp", [("shop.drill.example.", {"192.0.2.10": "use1", "198.51.100.10": "usw2"})]),
    ("azure", [("shop-drill.trafficmanager.net.", {"shop-use1.shop-drill.lab.invalid": "use1",
                                                   "shop-usw2.shop-drill.lab.invalid": "usw2"})]),
    ("multi", [("shop.drill.example.", {"192.0.2.10": "use1", "198.51.100.10": "usw2"}),
               ("shop.gcp.drill.example.", {"192.0.2.20": "use1", "198.51.100.20": "usw2"}),
               ("shop-drill.trafficmanager.net.", {"shop-eastus.shop-drill.lab.invalid": "use1",
                                                   "shop-westus2.shop-drill.lab.invalid": "usw2"})]),
    ("weighted", [("shop.drill.example.", {"192.0.2.10": "use1", "198.51.100.10": "usw2", "203.0.113.10": "euw1"})]),
    ("zone", [("shop-drill-50dc6c495c0c9188.us-east-1.elb.amazonaws.com.",
               {"10.0.1.10": "az1", "10.0.2.10": "az2", "10.0.3.10": "az3"})]),
])
def test_every_drill_has_a_client_per_name_mapped_to_its_local_servers(
        cloud: str, expected: list[tuple[str, dict]], tmp_path: Path) -> None:
    strategy = template(cloud, tmp_path)
    targets = client_targets(strategy, "shop")
    assert [(t.name, t.endpoints) for t in targets] == expected
    endpoints = {ep.name for ep in strategy.services["shop"].endpoints}
    for t in targets:  # by default a server is the endpoint's probe URL's host and port
        assert t.urls == {ep: f"http://127.0.0.1:{PORTS[ep]}" for ep in endpoints}
        assert t.rdtype == "A"
    lab = client_targets(strategy, "shop", {ep: f"http://127.0.0.1:{9000 + i}" for i, ep in enumerate(sorted(endpoints))})
    assert lab[0].urls == {ep: f"http://127.0.0.1:{9000 + i}" for i, ep in enumerate(sorted(endpoints))}


def test_every_drill_template_validates_with_a_resolve_step_at_the_lab_dns(tmp_path: Path) -> None:
    for cloud in ("aws", "gcp", "azure", "multi", "weighted", "zone"):
        service = template(cloud, tmp_path).services["shop"]
        resolve = service.validation.resolve
        assert resolve is not None and resolve.nameservers == ["127.0.0.1:5353"], cloud
        assert all(b.ttl == 1 for b in service.routing if hasattr(b, "ttl")), cloud


def test_zonal_shift_resources_order_the_node_addresses(tmp_path: Path) -> None:
    strategy = template("zone", tmp_path)
    [target] = client_targets(strategy, "shop", zonal_resources={ALB: ["use1-az3", "use1-az1", "use1-az2"]})
    assert target.endpoints == {"10.0.1.10": "az3", "10.0.2.10": "az1", "10.0.3.10": "az2"}


def test_load_balancer_names_from_arns() -> None:
    assert load_balancer_name(ALB) == "shop-drill-50dc6c495c0c9188.us-east-1.elb.amazonaws.com."
    assert load_balancer_name("arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/Classic/abc") == \
        "classic-abc.eu-west-1.elb.amazonaws.com."
    assert load_balancer_name("arn:aws:ec2:us-east-1:1:instance/i-1") is None
    assert load_balancer_name("not an arn") is None


def test_a_zone_shifted_away_leaves_the_answer() -> None:
    zones = {ALB: ["use1-az1", "use1-az2", "use1-az3"], "arn:aws:ec2:x:1:y/z": ["a"]}
    name = load_balancer_name(ALB)
    assert zonal_records(zones, {}, 1) == {(name, "A"): (1, ["10.0.1.10", "10.0.2.10", "10.0.3.10"])}
    assert zonal_records(zones, {ALB: {"use1-az2"}}, 60) == {(name, "A"): (60, ["10.0.1.10", "10.0.3.10"])}
    every = {ALB: {"use1-az1", "use1-az2", "use1-az3"}}
    assert zonal_records(zones, every, 1)[(name, "A")][1] == [zone_address(i) for i in range(3)]
