"""Services from Terraform outputs: the contract's shape checks (every problem at once), null
dropping, whole strategies, and how the loader merges a ``from_terraform`` service (no Terraform
here: the runner is replaced by one that returns fixed outputs)."""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from failover_engine.config import terraform
from failover_engine.core.errors import Problem, StrategyError
from failover_engine.config.loader import json_schema, load_strategy, parse_strategy
from failover_engine.core.model import FromTerraform, HttpProbe, Route53Connection, TcpProbe
from failover_engine.config.terraform import TerraformError
from failover_engine.config.tfoutputs import drop_nulls, service_from_outputs, strategy_from_outputs

FILE = "strategy.yaml"


def contract_service(name: str | None = "shop") -> dict[str, Any]:
    """A ``failover_service`` value as ``terraform output -json`` gives it: keys sorted, unset
    optional attributes null."""
    svc = {
        "connections": {"aws": {"endpoint_url": None, "region": "us-east-1", "type": "route53"}},
        "endpoints": [
            {"capacity": None, "name": "use1", "probe": None, "region": "us-east-1", "role": "primary",
             "weight": None, "zone": None},
            {"capacity": None, "name": "usw2", "probe": {"type": "http", "url": "http://127.0.0.1:8082/health"},
             "region": "us-west-2", "role": "standby", "weight": None, "zone": None},
        ],
        "routing": [{
            "adapter": "route53", "connection": "aws", "hosted_zone": "drill.example.", "hosted_zone_id": None,
            "mode": "failover", "record": "shop.drill.example.", "ttl": 30, "type": "A",
            "endpoints": {
                "use1": {"health_check_id": None, "set_identifier": "use1-primary", "values": ["192.0.2.10"]},
                "usw2": {"health_check_id": None, "set_identifier": "usw2-standby", "values": ["198.51.100.10"]},
            },
        }],
        "scope": "region",
        "strategy": "active_passive",
    }
    if name is not None:
        svc["name"] = name
    return svc


def problems_of(outputs: dict[str, Any], **kw: Any) -> list[Problem]:
    with pytest.raises(StrategyError) as exc:
        service_from_outputs(outputs, **kw)
    return exc.value.problems


def pairs(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.path, p.message) for p in problems}


# --------------------------------------------------------------------------- nulls
def test_drop_nulls_drops_null_attributes_at_every_depth_and_keeps_list_items():
    value = {"a": None, "b": {"c": None, "d": [{"e": None, "f": 1}, None]}, "g": [None]}
    assert drop_nulls(value) == {"b": {"d": [{"f": 1}, None]}, "g": [None]}
    assert drop_nulls([{"x": None}]) == [{}]
    assert drop_nulls("text") == "text"


# --------------------------------------------------------------------------- one service
def test_a_contract_output_gives_name_service_and_connections_without_nulls():
    name, svc, conns = service_from_outputs({"failover_service": contract_service(), "other": 1})
    assert name == "shop"
    assert conns == {"aws": {"type": "route53", "region": "us-east-1"}}
    assert "name" not in svc and "connections" not in svc
    assert svc["endpoints"][0] == {"name": "use1", "role": "primary", "region": "us-east-1"}
    assert svc["endpoints"][1]["probe"] == {"type": "http", "url": "http://127.0.0.1:8082/health"}
    binding = svc["routing"][0]
    assert "hosted_zone_id" not in binding
    assert binding["endpoints"]["use1"] == {"values": ["192.0.2.10"], "set_identifier": "use1-primary"}
    # keys in the strategy model's order, as a person writes them (Terraform sorts them)
    assert list(svc) == ["strategy", "scope", "endpoints", "routing"]
    assert list(binding)[:2] == ["adapter", "connection"] and list(binding)[-1] == "endpoints"
    assert list(svc["endpoints"][1]) == ["name", "role", "region", "probe"]
    assert list(conns["aws"])[0] == "type"


def test_the_output_is_not_changed():
    outputs = {"failover_service": contract_service()}
    before = copy.deepcopy(outputs)
    service_from_outputs(outputs)
    assert outputs == before


def test_every_shape_problem_is_reported_at_once_with_its_place_in_the_output():
    svc = contract_service()
    svc["colour"] = "blue"
    svc["connections"]["gcp"] = {"type": "clouddns"}                       # no project
    svc["connections"]["odd"] = {"type": "carrier-pigeon"}
    svc["endpoints"] = [
        {"role": "primary", "region": "us-east-1"},                         # no name
        "usw2",                                                              # not an object
        {"name": 7, "role": "standby", "probe": {"type": "http"}},          # name not a string, no url
        {"name": "euw1", "role": "standby", "probe": {"type": "smoke"}},
    ]
    svc["routing"] = [
        {"adapter": "route53", "hosted_zone": "drill.example.", "endpoints": {"use1": {"set_identifier": "a"}}},
        {"adapter": "clouddns", "record": "shop.example.", "endpoints": "use1"},
        {"adapter": "carrier-pigeon"},
        "route53",
    ]
    problems = problems_of({"failover_service": svc}, file="tf/standby")
    assert all(p.file == "tf/standby" for p in problems)
    base = "output failover_service"
    assert pairs(problems) == {
        (f"{base}.colour", "unknown attribute (the contract has: name, strategy, scope, connections, "
                           "endpoints, routing)"),
        (f"{base}.connections.gcp.project", "missing"),
        (f"{base}.connections.odd.type", "unknown connection type 'carrier-pigeon'; one of route53, clouddns, "
                                         "trafficmanager, zonalshift, elb, elbv2"),
        (f"{base}.endpoints[0].name", "missing"),
        (f"{base}.endpoints[1]", "must be an endpoint object, not a string"),
        (f"{base}.endpoints[2].name", "must be a string, not a number"),
        (f"{base}.endpoints[2].probe.url", "missing"),
        (f"{base}.endpoints[3].probe.type", "unknown probe type 'smoke'; one of http, tcp, dns, command, python"),
        (f"{base}.routing[0].record", "missing"),
        (f"{base}.routing[0].endpoints.use1.values", "missing"),
        (f"{base}.routing[1].managed_zone", "missing"),
        (f"{base}.routing[1].endpoints", "must be an object (endpoint name -> binding), not a string"),
        (f"{base}.routing[2].adapter", "unknown adapter 'carrier-pigeon'; one of route53, clouddns, "
                                       "trafficmanager, zonalshift, elb, elbv2"),
        (f"{base}.routing[3]", "must be a routing binding object, not a string"),
    }


@pytest.mark.parametrize("change, path, message", [
    (lambda s: s.update(endpoints="use1,usw2"), "endpoints", "must be a list of objects, not a string"),
    (lambda s: s.update(endpoints={"use1": {}}), "endpoints", "must be a list of objects, not an object"),
    (lambda s: s.update(routing={"adapter": "route53"}), "routing", "must be a list of objects, not an object"),
    (lambda s: s.update(connections=["aws"]), "connections", "must be an object of connection objects"),
    (lambda s: s.pop("endpoints"), "endpoints", "missing"),
    (lambda s: s.pop("routing"), "routing", "missing"),
    (lambda s: s.pop("name"), "name", "missing"),
    (lambda s: s.update(scope=["region"]), "scope", "must be a string, not a list"),
    (lambda s: s["endpoints"].append(dict(s["endpoints"][0])), "endpoints", "'use1' appears more than once"),
    (lambda s: s["endpoints"][0].pop("role"), "endpoints[0].role", "missing"),
])
def test_shape_problems(change, path, message):
    svc = contract_service()
    change(svc)
    problems = problems_of({"failover_service": svc})
    assert any(p.path == f"output failover_service.{path}" and message in p.message for p in problems), problems


def test_a_malformed_output_reports_both_problems_of_the_fixture():
    """What tests/fixtures/terraform/malformed outputs: endpoints a string, a binding without record."""
    svc = {"name": "shop", "endpoints": "use1,usw2",
           "routing": [{"adapter": "route53", "hosted_zone": "drill.example.",
                        "endpoints": {"use1": {"values": ["192.0.2.10"]}, "usw2": {"values": ["198.51.100.10"]}}}]}
    assert pairs(problems_of({"failover_service": svc})) == {
        ("output failover_service.endpoints", "must be a list of objects, not a string"),
        ("output failover_service.routing[0].record", "missing"),
    }


def test_unknown_output_lists_the_outputs_of_the_directory():
    [p] = problems_of({"standby_ip": "x", "zone": "y"})
    assert (p.path, p.message) == ("output failover_service", "unknown output; the directory has outputs: standby_ip, zone")
    [p] = problems_of({"failover_services": {"shop": contract_service(None)}})
    assert p.message.endswith("(set output: failover_services)")
    [p] = problems_of({})
    assert "the directory has no outputs" in p.message and "terraform apply" in p.message


def test_a_null_output_is_a_problem():
    [p] = problems_of({"failover_service": None})
    assert (p.path, p.message) == ("output failover_service", "is null")


def test_where_maps_every_problem_path():
    svc = contract_service()
    svc["endpoints"] = "x"
    [p] = problems_of({"failover_service": svc}, where=lambda path: f"from_terraform: {path}")
    assert p.path == "from_terraform: output failover_service.endpoints"


# --------------------------------------------------------------------------- a map of services
def test_failover_services_entry_by_key_with_the_key_as_name():
    outputs = {"failover_services": {"shop": contract_service(None), "api": contract_service("api-svc")}}
    name, svc, _unused = service_from_outputs(outputs, output="failover_services", key="shop")
    assert name == "shop" and svc["routing"][0]["record"] == "shop.drill.example."
    assert service_from_outputs(outputs, output="failover_services", key="api")[0] == "api-svc"


def test_failover_services_problems_name_the_entry():
    outputs = {"failover_services": {"shop": contract_service(None), "api": {"endpoints": []}}}
    [p] = problems_of(outputs, output="failover_services", key="web")
    assert (p.path, p.message) == ("output failover_services", "has no service 'web'; it has: api, shop")
    [p] = problems_of(outputs, output="failover_services")
    assert "several services (api, shop): say which with key" in p.message
    [p] = problems_of(outputs, output="failover_services", key="api")
    assert (p.path, p.message) == ("output failover_services.api.routing", "missing")
    # one entry: no key needed
    one = {"failover_services": {"shop": contract_service(None)}}
    assert service_from_outputs(one, output="failover_services")[0] == "shop"
    [p] = problems_of({"failover_services": "shop"}, output="failover_services")
    assert p.message == "must be an object (service name -> service), not a string"


# --------------------------------------------------------------------------- whole strategies
def test_strategy_from_outputs_is_a_valid_strategy_document():
    doc = strategy_from_outputs({"failover_service": contract_service()})
    assert list(doc) == ["version", "connections", "services"]
    assert doc["connections"] == {"aws": {"type": "route53", "region": "us-east-1"}}
    strategy, _unused = parse_strategy(json.dumps(doc))
    assert strategy.services["shop"].routing[0].endpoints["usw2"].values == ["198.51.100.10"]
    # --service renames a single service
    assert list(strategy_from_outputs({"failover_service": contract_service()}, service="web")["services"]) == ["web"]


def test_strategy_from_a_map_takes_every_service_or_the_one_asked_for():
    api = contract_service(None)
    api["routing"][0]["record"] = "api.drill.example."
    outputs = {"failover_services": {"shop": contract_service(None), "api": api}}
    assert list(strategy_from_outputs(outputs)["services"]) == ["shop", "api"]  # chosen: only that exists
    assert list(strategy_from_outputs(outputs, service="api")["services"]) == ["api"]
    api["connections"]["aws"]["region"] = "eu-west-1"
    with pytest.raises(StrategyError) as exc:
        strategy_from_outputs(outputs, source="infra")
    [p] = exc.value.problems
    assert (p.path, p.file) == ("output failover_services.api.connections.aws", "infra")
    assert "differs from the connection 'aws' of service 'shop'" in p.message


def test_strategy_from_outputs_collects_the_problems_of_every_service():
    outputs = {"failover_services": {"a": {"endpoints": "x", "routing": []}, "b": {"routing": []}}}
    with pytest.raises(StrategyError) as exc:
        strategy_from_outputs(outputs)
    assert {p.path for p in exc.value.problems} == {"output failover_services.a.endpoints",
                                                    "output failover_services.b.endpoints"}


# --------------------------------------------------------------------------- the loader: from_terraform
class FakeRunner:
    """Stands in for a Terraform runner: fixed outputs per directory, or an error."""

    def __init__(self, outputs: dict[str, dict[str, Any]]):
        self.by_dir = outputs
        self.calls: list[tuple[str, Path]] = []
        self.kind = ""

    def outputs(self, directory: str | Path) -> dict[str, Any]:
        d = Path(directory)
        self.calls.append((self.kind, d))
        if d.name not in self.by_dir:
            raise TerraformError(d, "output", "no such directory")
        return copy.deepcopy(self.by_dir[d.name])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    runner = FakeRunner({"standby": {"failover_service": contract_service()}})

    def pick(kind: str = "auto") -> FakeRunner:
        runner.kind = kind
        return runner

    monkeypatch.setattr(terraform, "runner", pick)
    return runner


def strategy(service: str) -> str:
    return "version: 1\nservices:\n  shop:\n" + "\n".join("    " + ln for ln in service.strip().splitlines()) + "\n"


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln)


def load_problems(text: str, file: str | None = FILE) -> list[Problem]:
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text, file=file)
    return exc.value.problems


def test_a_from_terraform_service_gets_endpoints_routing_and_connections(fake, tmp_path):
    path = tmp_path / "conf" / "strategy.yaml"
    path.parent.mkdir()
    path.write_text(strategy("from_terraform: {dir: ../infra/standby, runner: embedded}"))
    loaded = load_strategy(path)
    svc = loaded.service("shop")
    assert svc.endpoint_names == ["use1", "usw2"] and svc.primary.region == "us-east-1"
    assert svc.routing[0].record == "shop.drill.example." and svc.routing[0].mode == "failover"
    assert svc.routing[0].endpoints["use1"].set_identifier == "use1-primary"
    assert isinstance(loaded.strategy.connections["aws"], Route53Connection)
    # the block stays (status and plan know where the service came from)
    assert svc.from_terraform == FromTerraform(dir="../infra/standby", runner="embedded")
    # relative to the file's directory, with the runner asked for
    assert fake.calls == [("embedded", tmp_path / "infra" / "standby")]


def test_without_a_file_a_relative_dir_is_relative_to_the_cwd(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse_strategy(strategy("from_terraform: {dir: standby}"))
    assert fake.calls == [("auto", tmp_path / "standby")]


def test_the_file_wins_endpoints_merge_by_name_routing_replaces_connections_are_added(fake):
    text = """\
version: 1
connections:
  aws: {type: route53, endpoint_url: "http://127.0.0.1:5000"}
services:
  shop:
    from_terraform: {dir: standby}
    scope: region
    description: from terraform
    endpoints:
      - name: use1
        probe: {type: tcp, host: 127.0.0.1, port: 8081}
        capacity: 10
      - name: usw2
        region: us-west-1
      - name: euw1
        role: standby
        region: eu-west-1
    routing:
      - adapter: route53
        connection: aws
        hosted_zone_id: Z1
        record: www.example.com.
        endpoints:
          use1: {values: [192.0.2.1]}
          usw2: {values: [192.0.2.2]}
          euw1: {values: [192.0.2.3]}
"""
    fake.by_dir["standby"]["failover_service"]["connections"]["gcp"] = {"type": "clouddns", "project": "p"}
    strategy_, data = parse_strategy(text, file=FILE)
    svc = strategy_.services["shop"]
    assert svc.description == "from terraform"
    # endpoints: Terraform's, the file's fields merged in by name; new ones appended
    use1, usw2, euw1 = svc.endpoints
    assert (use1.name, use1.role.value, use1.region, use1.capacity) == ("use1", "primary", "us-east-1", 10)
    assert isinstance(use1.probe, TcpProbe) and use1.probe.port == 8081
    assert (usw2.region, usw2.role.value) == ("us-west-1", "standby")
    assert isinstance(usw2.probe, HttpProbe) and usw2.probe.url == "http://127.0.0.1:8082/health"
    assert (euw1.name, euw1.region) == ("euw1", "eu-west-1")
    # routing: the file's replaces the output's
    assert [b.record for b in svc.routing] == ["www.example.com."]
    # connections: the file's own aws stays; Terraform's gcp is added
    assert strategy_.connections["aws"].endpoint_url == "http://127.0.0.1:5000"
    assert strategy_.connections["gcp"].project == "p"
    assert data["services"]["shop"]["from_terraform"] == {"dir": "standby"}


def test_file_endpoints_that_cannot_merge_are_appended_and_reported_by_the_model(fake):
    text = strategy("from_terraform: {dir: standby}\nendpoints:\n  - name: [use1]\n  - just-a-string")
    problems = load_problems(text)
    paths = {p.path.split(" (line")[0] for p in problems}
    assert {"services.shop.endpoints[2].name", "services.shop.endpoints[3]"} <= paths
    assert not any("from terraform" in p.message for p in problems if "endpoints[2]" in p.path)


def test_terraform_errors_are_problems_at_from_terraform_naming_dir_and_output(fake, tmp_path):
    text = strategy("from_terraform: {dir: nowhere}")
    [p] = load_problems(text, file=str(tmp_path / "s.yaml"))
    assert p.path == f"services.shop.from_terraform (line {line_of(text, 'from_terraform')})"
    assert p.file == str(tmp_path / "s.yaml")
    assert p.message == f"cannot read output failover_service: terraform output in {tmp_path / 'nowhere'}: no such directory"


def test_a_malformed_output_gives_every_problem_at_from_terraform_and_nothing_about_missing_fields(fake, tmp_path):
    fake.by_dir["bad"] = {"failover_service": {"name": "shop", "endpoints": "use1,usw2",
                                               "routing": [{"adapter": "route53", "endpoints": {}}]}}
    text = strategy("from_terraform: {dir: bad}\npolicy: {failover: sometimes}")
    problems = load_problems(text, file=str(tmp_path / "s.yaml"))
    at = f"services.shop.from_terraform (line {line_of(text, 'from_terraform')})"
    d = tmp_path / "bad"
    assert pairs(problems) == {
        (at, f"output failover_service.endpoints: must be a list of objects, not a string (terraform directory {d})"),
        (at, f"output failover_service.routing[0].record: missing (terraform directory {d})"),
        # the file's own problems too, at once; no "endpoints: Field required" noise
        (f"services.shop.policy.failover (line {line_of(text, 'sometimes')})", "Input should be 'automatic' or 'manual'"),
    }


def test_missing_output_and_other_service_problems_come_together(fake):
    text = """\
version: 1
services:
  shop:
    from_terraform: {dir: standby, output: failover_services}
  api:
    from_terraform: {dir: standby, output: failover_services, key: api, runner: docker}
"""
    problems = load_problems(text)
    assert [p.path.split(" (line")[0] for p in problems] == ["services.shop.from_terraform",
                                                             "services.api.from_terraform.runner"]
    assert "unknown output; the directory has outputs: failover_service (set output: failover_service)" \
        in problems[0].message


def test_value_problems_from_terraform_say_so_and_point_at_from_terraform(fake):
    out = fake.by_dir["standby"]["failover_service"]
    out["endpoints"][1]["probe"]["url"] = "ftp://standby/health"
    out["routing"][0]["ttl"] = -1
    text = strategy("""\
from_terraform: {dir: standby}
endpoints:
  - name: use1
    probe: {type: http, url: "gopher://use1"}""")
    problems = load_problems(text)
    ft_line = line_of(text, "from_terraform")
    note = f"(from terraform output failover_service in {Path.cwd() / 'standby'})"
    by_path = {p.path: p.message for p in problems}
    # Terraform's values: the note, the from_terraform line
    assert by_path[f"services.shop.endpoints[1].probe.url (line {ft_line})"].endswith(note)
    assert by_path[f"services.shop.routing[0].ttl (line {ft_line})"].endswith(note)
    # the file's own value: its line, no note
    msg = by_path[f"services.shop.endpoints[0].probe.url (line {line_of(text, 'gopher')})"]
    assert "from terraform" not in msg


def test_semantic_problems_of_terraform_values_carry_the_note(fake):
    text = "version: 1\nconnections:\n  aws: {type: clouddns, project: p}\n" + strategy(
        "from_terraform: {dir: standby}").removeprefix("version: 1\n")
    [p] = load_problems(text)
    assert p.path == f"services.shop.routing[0].connection (line {line_of(text, 'from_terraform')})"
    assert re.fullmatch(r"connection 'aws' is of type clouddns, not route53 \(from terraform output "
                        r"failover_service in .+/standby\)", p.message)


def test_without_from_terraform_no_terraform_runs(fake):
    out = contract_service()
    svc = {k: drop_nulls(v) for k, v in out.items() if k not in ("name", "connections")}
    parse_strategy(json.dumps({"connections": drop_nulls(out["connections"]), "services": {"shop": svc}}))
    assert fake.calls == []


def test_json_schema_allows_a_from_terraform_service_without_endpoints():
    service = json.loads(json_schema())["$defs"]["Service"]
    assert "from_terraform" in service["properties"]
    assert {"required": ["from_terraform"]} in service["anyOf"]
    assert "endpoints" not in service.get("required", [])


def test_bindings_follow_the_declared_endpoint_order_not_terraforms_sorted_keys():
    out = {"failover_service": {
        "name": "web",
        "endpoints": [{"name": "zz-primary", "role": "primary", "region": "r1"},
                      {"name": "bb-standby", "role": "standby", "region": "r2"},
                      {"name": "aa-standby", "role": "standby", "region": "r3"}],
        "routing": [{"adapter": "trafficmanager", "resource_group": "rg", "profile": "p", "mode": "priority",
                     "endpoints": {"aa-standby": {"endpoint": "a"}, "bb-standby": {"endpoint": "b"},
                                   "zz-primary": {"endpoint": "z"}}}]}}
    _unused, svc, _unused = service_from_outputs(out)
    assert list(svc["routing"][0]["endpoints"]) == ["zz-primary", "bb-standby", "aa-standby"]


def test_terraform_child_settings_do_not_outlive_the_call(monkeypatch):
    from failover_engine.config.terraform import _child_env

    monkeypatch.delenv("TF_IN_AUTOMATION", raising=False)
    monkeypatch.setenv("CHECKPOINT_DISABLE", "mine")
    with _child_env({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}):
        assert os.environ["TF_IN_AUTOMATION"] == "1" and os.environ["CHECKPOINT_DISABLE"] == "mine"
    assert "TF_IN_AUTOMATION" not in os.environ and os.environ["CHECKPOINT_DISABLE"] == "mine"
