"""The zone drill: an active-active service over three zones, ARC zonal shift, end to end.

``failover drill --cloud zone`` runs as `make zone-drill` runs it: a subprocess from the repo root,
the venv's bin on PATH, its own run directory. The lab starts the ARC zonal shift emulator of
failover_engine/lab/emulators/ (the template names ``{zonalshift_url}``), registers the template's load balancer
with its three zones, and three local servers play the zones az1/az2/az3; playbooks/zone_drill.yml
takes az2 out and back with ``service_failover action=rebalance``.

The module-level test runs ``service_failover`` with ``action: rebalance`` in check mode against a
lab of its own and reads what the emulator holds: a plan, and no shift and no write request.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from failover_engine.config.collection import link_collection
from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
FAILOVER = BIN / "failover"
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
ZONES = {"az1": "use1-az1", "az2": "use1-az2", "az3": "use1-az3"}
DRILL_BUDGET_S = 30.0

if not ANSIBLE_PLAYBOOK.exists():  # pragma: no cover - environment problem, not a test failure
    pytest.skip(f"ansible-playbook not found next to {sys.executable}; install '.[dev]'", allow_module_level=True)


def shifted_away_from(records: dict[str, Any]) -> list[str]:
    """The zones the report's zonal shift records shift traffic away from (sorted; [] when none)."""
    away: list[str] = []
    for key, attrs in records.items():
        assert key.startswith("zonalshift:") and key.endswith("/shift"), key
        value = (attrs or {}).get("away_from")
        away.extend(value if isinstance(value, list) else [value] if value else [])
    return sorted(away)


# --------------------------------------------------------------------------- the drill
@pytest.mark.timeout(180)
def test_zone_drill_takes_a_zone_out_and_back_reporting_both_rtos(tmp_path: Path) -> None:
    run_dir = tmp_path / "zone"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    started = time.monotonic()
    proc = subprocess.run([str(FAILOVER), "drill", "--cloud", "zone", "--dir", str(run_dir)], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started

    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads((run_dir / "drill-report.json").read_text())
    assert report["service"] == "shop" and report["zone"] == "az2"
    assert report["result"] == "succeeded", report.get("error")
    for stage in ("failover", "failback"):
        outcome = report[stage]
        assert outcome["status"] == "succeeded", (stage, outcome["errors"])
        assert outcome["action"] == "rebalance"
        assert all(outcome["timeline"]["timestamps"].values()), (stage, outcome["timeline"]["timestamps"])
        assert outcome["timeline"]["rto_s"] > 0
        assert {s["adapter"] for s in outcome["plan"]["steps"]} == {"zonalshift"}
        assert all(r["ok"] for r in outcome["validation"]["read_back"])
    assert report["failover"]["plan"]["target"] == {"az1": 100, "az3": 100}
    assert report["failback"]["plan"]["target"] == dict.fromkeys(ZONES, 100)
    assert report["out_of_rotation_after_failover"] == ["az2"]
    assert report["out_of_rotation_after_failback"] == []

    assert shifted_away_from(report["records_before"]) == []
    assert shifted_away_from(report["records_after_failover"]) == ["use1-az2"]
    assert shifted_away_from(report["records_after_failback"]) == []

    # the summary shows both RTOs and the shift
    assert "failover: succeeded, RTO" in proc.stdout and "failback: succeeded, RTO" in proc.stdout
    after_out = proc.stdout.split("records after failover:", 1)[1].split("records after failback:")[0]
    assert "shifted away from use1-az2" in after_out
    assert "no zonal shift" in proc.stdout.split("records after failback:", 1)[1]
    assert took < DRILL_BUDGET_S, f"the zone drill took {took:.1f}s"


# --------------------------------------------------------------------------- the lab
@pytest.fixture(scope="module")
def zone_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("zone-lab"), cloud="zone") as lab:
        yield lab


@pytest.fixture
def lab(zone_lab: Lab) -> Iterator[Lab]:
    zone_lab.reset()
    yield zone_lab
    zone_lab.reset()


def test_the_zone_lab_serves_three_zones_and_registers_the_load_balancer(lab: Lab) -> None:
    assert list(lab.regions) == list(ZONES)
    assert lab.zonalshift is not None and lab.clouddns is None and lab.trafficmanager is None
    assert lab.loaded is not None
    binding = lab.loaded.strategy.services["shop"].routing[0]
    assert lab.zonalshift.resources == {binding.resource_identifier: list(ZONES.values())}
    assert lab.zonalshift.shifts() == []
    assert lab.env()["FAILOVER_ZONALSHIFT_URL"] == lab.zonalshift.url
    lab.zonalshift.start_shift(binding.resource_identifier, "use1-az1")
    lab.reset()
    assert lab.zonalshift.shifts() == []  # reset: the steady state, no shift


# --------------------------------------------------------------------------- the module
REBALANCE_CHECK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: What would a rebalance change?
      resilience.failover.service_failover:
        strategy_file: "{strategy}"
        service: shop
        action: rebalance
      check_mode: true
      diff: true
      register: rebalance
"""


def run_check(lab: Lab, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """service_failover action=rebalance in check mode → (process, the module's result)."""
    link_collection(REPO)
    data = yaml.safe_load(lab.strategy_path.read_text(encoding="utf-8"))
    data["state_dir"] = str(tmp_path / "state")
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    playbook = tmp_path / "rebalance-check.yml"
    playbook.write_text(REBALANCE_CHECK.format(strategy=strategy), encoding="utf-8")
    (tmp_path / "ansible-tmp").mkdir(exist_ok=True)
    env = {**lab.child_env(), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), str(playbook), "-v"], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    m = re.search(r"^(?:ok|changed|fatal): \[localhost\](?:: FAILED!)? => ", proc.stdout, re.M)
    assert m, f"no module result\n{proc.stdout}\n{proc.stderr}"
    return proc, json.JSONDecoder().raw_decode(proc.stdout, m.end())[0]


@pytest.mark.timeout(120)
def test_rebalance_in_check_mode_shows_the_plan_and_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    assert lab.zonalshift is not None
    lab.regions["az2"].set_mode("down")

    proc, result = run_check(lab, tmp_path)

    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert result["changed"] is True and result["status"] == "planned", result
    assert result["active"] == {"az1": 100, "az3": 100}
    assert result["out_of_rotation"] == ["az2"]
    assert result["plan"]["action"] == "rebalance"
    assert [s["adapter"] for s in result["plan"]["steps"]] == ["zonalshift"]
    changes = result["plan"]["steps"][0]["changes"]
    assert [(c["before"], c["after"]) for c in changes] == [({"away_from": None}, {"away_from": "use1-az2"})]
    assert "--- before" in proc.stdout and "+++ after" in proc.stdout  # the diff is shown
    assert re.search(r'^\+\s+"?away_from"?: "?use1-az2"?$', proc.stdout, re.M), proc.stdout
    assert lab.zonalshift.shifts() == []  # nothing was shifted
    assert lab.zonalshift.calls("POST") == lab.zonalshift.calls("DELETE") == lab.zonalshift.calls("PATCH") == []
    assert not (tmp_path / "state" / "reports").exists()  # check mode writes no report


@pytest.mark.timeout(120)
def test_rebalance_in_check_mode_with_every_zone_healthy_is_a_noop(lab: Lab, tmp_path: Path) -> None:
    assert lab.zonalshift is not None
    proc, result = run_check(lab, tmp_path)

    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert result["changed"] is False and result["status"] == "noop", result
    assert result["out_of_rotation"] == []
    assert lab.zonalshift.shifts() == []


# --------------------------------------------------------------------------- the active-active drill
def weights(records: dict[str, Any]) -> dict[str, int]:
    """SetIdentifier -> weight of the drill's weighted Route 53 records, from a report's records."""
    out = {}
    for resource, attrs in records.items():
        if resource.startswith("route53:") and attrs and "weight" in attrs:
            out[resource.rsplit("[", 1)[1].rstrip("]")] = attrs["weight"]
    return out


def test_active_active_drill_takes_a_member_out_and_back_on_route53_weights(tmp_path: Path) -> None:
    run_dir = tmp_path / "weighted"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    proc = subprocess.run([str(FAILOVER), "drill", "--cloud", "weighted", "--dir", str(run_dir)], check=False, cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads((run_dir / "drill-report.json").read_text())
    assert report["result"] == "succeeded", report.get("error")
    for stage in ("failover", "failback"):
        outcome = report[stage]
        assert outcome["status"] == "succeeded" and outcome["action"] == "rebalance", (stage, outcome["errors"])
        assert all(outcome["timeline"]["timestamps"].values()) and outcome["timeline"]["rto_s"] > 0
    # use1 out (the member the lab's DNS answers, so the drill's client is hit): its weight goes to 0,
    # the others keep 30/20 (their shares grow in proportion)
    assert weights(report["records_before"]) == {"use1": 50, "usw2": 30, "euw1": 20}
    assert weights(report["records_after_failover"]) == {"use1": 0, "usw2": 30, "euw1": 20}
    assert weights(report["records_after_failback"]) == {"use1": 50, "usw2": 30, "euw1": 20}
    assert "failover: succeeded, RTO" in proc.stdout and "failback: succeeded, RTO" in proc.stdout
