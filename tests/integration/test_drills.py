"""The drill on each cloud's local stand-in, and the lab that serves it.

``failover drill --cloud gcp|azure|multi`` runs as `make drill CLOUD=...` runs it: a subprocess
from the repo root, the venv's bin on PATH, its own run directory. The lab starts the Cloud DNS
and Traffic Manager emulators of failover_engine/lab/emulators/ when the template names them and seeds them
with the steady state; the real adapters (and their SDKs) then fail over and back against them.
The aws drill is tested by test_playbooks.py.

Which endpoint is active is read from the drill report's records with the strategy's bindings
(values, set identifiers, endpoint names), independently of the adapters' own logic.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from failover_engine.adapters import make_adapter
from failover_engine.cli.main import build_parser
from failover_engine.lab import emulators
from failover_engine.lab.lab import CLOUDS, Lab, LabError
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import Service

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
FAILOVER = BIN / "failover"
PROVIDERS = {"aws": {"route53"}, "gcp": {"clouddns"}, "azure": {"trafficmanager"},
             "multi": {"route53", "clouddns", "trafficmanager"}}
DRILL_BUDGET_S = 30.0

if not (BIN / "ansible-playbook").exists():  # pragma: no cover - environment problem, not a test failure
    pytest.skip(f"ansible-playbook not found next to {sys.executable}; install '.[dev]'", allow_module_level=True)


# --------------------------------------------------------------------------- reading a report
def _fqdn(name: str) -> str:
    return name.lower() if name.endswith(".") else name.lower() + "."


def active_per_provider(service: Service, records: dict[str, Any]) -> dict[str, str | None]:
    """Provider → the endpoint its records send traffic to, per the bindings (None: unclear).

    route53 failover: the endpoint whose record is PRIMARY; clouddns primary_backup: the endpoint
    whose values are the primary targets; trafficmanager priority: the enabled endpoint with the
    lowest priority.
    """
    out: dict[str, str | None] = {}
    for b in service.routing:
        if b.adapter == "route53":
            roles = {name: attrs.get("failover") for name, eb in b.endpoints.items()
                     for key, attrs in records.items() if key.startswith("route53:")
                     and key.endswith(f"/{_fqdn(b.record)}/{b.type}[{eb.set_identifier}]")}
            primary = [n for n, role in roles.items() if role == "PRIMARY"]
            out["route53"] = primary[0] if len(primary) == 1 and len(roles) == len(b.endpoints) else None
        elif b.adapter == "clouddns":
            attrs = records.get(f"clouddns:{b.managed_zone}/{_fqdn(b.record)}/{b.type}") or {}
            out["clouddns"] = next((n for n, eb in b.endpoints.items()
                                    if sorted(eb.values) == sorted(attrs.get("primary", []))), None)
        else:
            scope = f"trafficmanager:{b.resource_group}/{b.profile}"
            states = {n: records.get(f"{scope}/{eb.endpoint}/{eb.endpoint_type}") or {}
                      for n, eb in b.endpoints.items()}
            enabled = {n: s["priority"] for n, s in states.items() if s.get("endpoint_status") == "Enabled"}
            out["trafficmanager"] = min(enabled, key=enabled.__getitem__) if enabled else None
    return out


# --------------------------------------------------------------------------- the drills
def run_drill(cloud: str, run_dir: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOME": str(run_dir.parent / "ansible-home")}
    started = time.monotonic()
    proc = subprocess.run([str(FAILOVER), "drill", "--cloud", cloud, "--dir", str(run_dir)], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - started


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cloud", ["gcp", "azure", "multi"])
def test_drill_fails_over_and_back_on_the_emulators(cloud: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "drill"
    proc, took = run_drill(cloud, run_dir)

    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads((run_dir / "drill-report.json").read_text())
    assert report["result"] == "succeeded", report.get("error")
    for stage in ("failover", "failback"):
        outcome = report[stage]
        assert outcome["status"] == "succeeded", (stage, outcome["errors"])
        assert all(outcome["timeline"]["timestamps"].values()), (stage, outcome["timeline"]["timestamps"])
        assert outcome["timeline"]["rto_s"] > 0
        assert {s["adapter"] for s in outcome["plan"]["steps"]} == PROVIDERS[cloud]
        assert all(r["ok"] for r in outcome["validation"]["read_back"])

    service = load_strategy(run_dir / "strategy.yaml").service("shop")
    every = PROVIDERS[cloud]
    assert active_per_provider(service, report["records_before"]) == dict.fromkeys(every, "use1")
    assert active_per_provider(service, report["records_after_failover"]) == dict.fromkeys(every, "usw2")
    assert active_per_provider(service, report["records_after_failback"]) == dict.fromkeys(every, "use1")

    # the summary shows every provider's records and both RTOs
    assert "failover: succeeded, RTO" in proc.stdout and "failback: succeeded, RTO" in proc.stdout
    summary = proc.stdout.split("records after failover:", 1)[1]
    for key in report["records_after_failover"]:
        assert key in summary, key
    if "clouddns" in every:
        assert "primary 198.51.100." in summary.split("records after failback:")[0]
    if "trafficmanager" in every:
        assert "priority=1 Enabled" in summary
    assert took < DRILL_BUDGET_S, f"the {cloud} drill took {took:.1f}s"


def test_drill_cli_offers_every_lab_cloud() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    cloud = next(a for a in commands.choices["drill"]._actions if a.dest == "cloud")
    assert tuple(cloud.choices) == CLOUDS and cloud.default == "aws"


# --------------------------------------------------------------------------- the lab's emulators
@pytest.mark.timeout(60)
@pytest.mark.parametrize("cloud", [c for c in CLOUDS if c in PROVIDERS])  # zone: test_zone_drill.py
def test_lab_starts_only_the_emulators_its_template_names_and_seeds_the_primary(
        cloud: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Lab(tmp_path / "run", cloud=cloud) as lab:
        assert (lab.clouddns is not None) == ("clouddns" in PROVIDERS[cloud])
        assert (lab.trafficmanager is not None) == ("trafficmanager" in PROVIDERS[cloud])
        env = lab.env()
        assert ("AZURE_ACCESS_TOKEN" in env) == (lab.trafficmanager is not None)
        assert not any(v.startswith("https://") and "127.0.0.1" not in v for v in env.values())
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert lab.loaded is not None
        strategy = lab.loaded.strategy
        service = strategy.services["shop"]
        assert {b.adapter for b in service.routing} == PROVIDERS[cloud]

        def actives() -> dict[str, Any]:
            out = {}
            for b in service.routing:
                adapter = make_adapter(b.adapter, strategy.connections[b.connection or ""])  # the lab's env
                out[b.adapter] = adapter.active_of(b, adapter.read([b]))
            return out

        steady = dict.fromkeys(PROVIDERS[cloud], {"use1": 100})
        assert actives() == steady
        if lab.trafficmanager is not None:  # someone moves traffic by hand; reset puts it back
            lab.trafficmanager.put_profile("00000000-0000-0000-0000-00000000d711", "rg-drill", "shop-drill", {
                "location": "global", "properties": {"trafficRoutingMethod": "Priority",
                                                     "dnsConfig": {"relativeName": "x"}, "endpoints": []}})
        lab.reset()
        assert actives() == steady


MODES_TEMPLATE = """\
version: 1
connections:
  gcp: {{type: clouddns, project: p1, endpoint_url: "{{clouddns_url}}", credentials: anonymous}}
  azure: {{type: trafficmanager, subscription_id: sub-1, endpoint_url: "{{trafficmanager_url}}",
          ca_bundle: "{{trafficmanager_ca}}", credentials: token_env, token_env_var: LAB_TM_TOKEN}}
services:
{services}
"""
MODE_SERVICE = """\
  {name}:
    endpoints:
      - {{name: a, role: standby, region: r1, probe: {{type: http, url: "{{lab_url}}/status"}}}}
      - {{name: b, role: primary, region: r2, probe: {{type: http, url: "{{lab_url}}/status"}}}}
      - {{name: c, role: standby, region: r3, probe: {{type: http, url: "{{lab_url}}/status"}}}}
    routing: [{binding}]
"""
MODE_BINDINGS = {
    "dns-simple": "{adapter: clouddns, connection: gcp, managed_zone: modes, record: simple.modes.example., "
                  "endpoints: {a: {values: [10.0.0.1]}, b: {values: [10.0.0.2]}, c: {values: [10.0.0.3]}}}",
    "dns-backup": "{adapter: clouddns, connection: gcp, managed_zone: modes, record: backup.modes.example., "
                  "mode: primary_backup, trickle_ratio: 0.1, endpoints: {a: {values: [10.0.1.1], location: r1}, "
                  "b: {values: [10.0.1.2], location: r2}, c: {values: [10.0.1.3], location: r3}}}",
    "dns-wrr": "{adapter: clouddns, connection: gcp, managed_zone: modes, record: wrr.sub.modes.example., "
               "mode: weighted, endpoints: {a: {values: [10.0.2.1]}, b: {values: [10.0.2.2]}, "
               "c: {values: [10.0.2.3]}}}",
    "tm-priority": "{adapter: trafficmanager, connection: azure, resource_group: rg, profile: p-priority, "
                   "mode: priority, endpoints: {a: {endpoint: ea}, b: {endpoint: eb}, c: {endpoint: ec}}}",
    "tm-status": "{adapter: trafficmanager, connection: azure, resource_group: rg, profile: p-status, mode: status, "
                 "endpoints: {a: {endpoint: ea, endpoint_type: AzureEndpoints}, b: {endpoint: eb}, c: {endpoint: ec}}}",
    "tm-weighted": "{adapter: trafficmanager, connection: azure, resource_group: rg, profile: p-weighted, "
                   "mode: weighted, endpoints: {a: {endpoint: ea}, b: {endpoint: eb}, c: {endpoint: ec}}}",
}


@pytest.mark.timeout(60)
def test_seeding_puts_the_primary_first_in_every_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A primary that is not the first endpoint, three endpoints, every Cloud DNS and Traffic
    Manager mode: the real adapters read back the primary as the one active endpoint."""
    services = "".join(MODE_SERVICE.format(name=n, binding=b) for n, b in MODE_BINDINGS.items())
    template = tmp_path / "modes.yaml"
    template.write_text(MODES_TEMPLATE.format(services=services))
    with Lab(tmp_path / "run", strategy_template=template) as lab:
        assert lab.env()["LAB_TM_TOKEN"] == emulators.LAB_TOKEN
        monkeypatch.setenv("LAB_TM_TOKEN", lab.env()["LAB_TM_TOKEN"])
        assert lab.clouddns_zones == {"p1/modes": "modes.example."}  # the records' common parent
        assert lab.loaded is not None
        strategy = lab.loaded.strategy
        for name, service in strategy.services.items():
            binding = service.routing[0]
            adapter = make_adapter(binding.adapter, strategy.connections[binding.connection or ""])
            assert adapter.active_of(binding, adapter.read([binding])) == {"b": 100}, name


def test_emulators_come_from_the_package_not_the_checkout() -> None:
    """The lab imports its emulators from failover_engine (what a wheel ships), never from tests/."""
    from failover_engine.lab.emulators import clouddns, trafficmanager, zonalshift

    package = Path(emulators.__file__).parent
    for module in (clouddns, trafficmanager, zonalshift):
        assert Path(module.__file__).parent == package, module.__file__
    assert not (REPO / "tests" / "emulators").exists()


def test_an_emulator_that_does_not_start_stops_what_was_started(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from failover_engine.lab import lab as lab_module

    def refuse() -> None:
        raise LabError("the Cloud DNS emulator cannot listen")

    monkeypatch.setattr(lab_module, "start_clouddns", refuse)
    lab = Lab(tmp_path / "run", cloud="gcp")
    with pytest.raises(LabError, match="Cloud DNS emulator cannot listen"):
        lab.start()
    assert not any(r.listening for r in lab.regions.values())  # what was started is stopped again


def test_unknown_cloud_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="aws, gcp, azure, multi"):
        Lab(tmp_path, cloud="oci")


@pytest.mark.timeout(180)
def test_terraform_drill_builds_the_service_from_outputs_and_promotes_the_standby(tmp_path: Path) -> None:
    """`failover drill --cloud terraform`: endpoints and routing from a Terraform directory's
    outputs, the standby promoted by terraform apply before traffic moves (its own RTO phase) and
    scaled back after the failback; real Terraform (the binary on PATH, else the embedded one)."""
    from failover_engine.config.terraform import runner

    run_dir = tmp_path / "drill"
    proc, took = run_drill("terraform", run_dir)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads((run_dir / "drill-report.json").read_text())
    assert report["result"] == "succeeded", report.get("error")
    over, back = report["failover"], report["failback"]
    phases = {"detection", "decision", "promotion", "apply", "validation", "propagation"}
    assert set(over["timeline"]["phases_s"]) == phases
    assert over["timeline"]["phases_s"]["promotion"] > 0
    assert over["promotion"] == {**over["promotion"], "phase": "promotion", "status": "applied",
                                 "vars": {"standby_capacity": 2}}
    assert "promotion" not in back["timeline"]["phases_s"]
    assert back["promotion"]["phase"] == "scale_back" and back["promotion"]["status"] == "applied"
    # the service came from the outputs; the standby is back at its pilot light in the state
    tf_dir = run_dir / "terraform" / "standby"
    service = load_strategy(run_dir / "strategy.yaml").service("shop")
    assert service.from_terraform is not None and service.routing[0].record == "shop.drill.example."
    assert runner().outputs(tf_dir)["standby_capacity"] == 0
    assert "promotion" in proc.stdout and "scale back: terraform apply (standby_capacity=0) applied" in proc.stdout
    assert took < DRILL_BUDGET_S, f"the terraform drill took {took:.1f}s"


def test_terraform_lab_applies_the_pilot_light_and_reset_returns_to_it(tmp_path: Path) -> None:
    from failover_engine.config.terraform import runner

    with Lab(tmp_path / "lab", cloud="terraform") as lab:
        assert lab.terraform_dir is not None and lab.terraform_dir.is_relative_to(tmp_path)
        assert runner().outputs(lab.terraform_dir)["standby_capacity"] == 0
        assert lab.loaded.service("shop").routing[0].record == "shop.drill.example."  # from the outputs
        assert any(name == "terraform" for name, _unused in lab.servers())
        runner().apply(lab.terraform_dir, {"standby_capacity": 2})  # as a promotion would
        lab.reset()
        assert runner().outputs(lab.terraform_dir)["standby_capacity"] == 0
