"""Pilot-light promotion with real Terraform: `terraform apply` before traffic moves (its own RTO
phase), scale back after a failback, and a failed promotion that leaves traffic where it was.

The Terraform configuration is the lab's stand-in (terraform_data only: nothing to download),
copied per test; the runner is the embedded one always and the terraform binary when one is on
PATH (FAILOVER_TERRAFORM selects it)."""
from __future__ import annotations

import json
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover_engine.engine.failover import FailoverEngine
from failover_engine.lab.lab import Lab
from failover_engine.config.loader import load_strategy
from failover_engine.config.terraform import runner

pytestmark = pytest.mark.integration

USE1, USW2 = "use1-primary", "usw2-standby"
RUNNERS = ["embedded", pytest.param("binary", marks=pytest.mark.skipif(
    shutil.which("terraform") is None, reason="no terraform binary on PATH: the embedded runner is tested alone"))]


@pytest.fixture(autouse=True)
def _aws_settings(lab_aws: Lab) -> Lab:
    """This process's AWS SDK settings point at the lab's moto (the engine runs in-process)."""
    return lab_aws


@pytest.fixture(params=RUNNERS)
def tf_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAILOVER_TERRAFORM", request.param)
    return request.param


@pytest.fixture
def standby_dir(tmp_path: Path, tf_kind: str) -> Path:
    """The lab's Terraform stand-in for a pilot-light standby, applied at capacity 0."""
    d = tmp_path / "standby"
    d.mkdir()
    src = resources.files("failover_engine.lab").joinpath("terraform", "standby", "main.tf")
    (d / "main.tf").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    runner().apply(d, {"standby_capacity": 0})
    return d


def capacity(d: Path) -> int:
    return runner().state_resources(d)["terraform_data.standby_region"]["input"]["capacity"]


def roles(lab: Lab) -> dict[str, str]:
    zone = lab.zones["drill.example."]
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Failover"] for r in sets if r.get("SetIdentifier")}


def engine_with(lab: Lab, tmp_path: Path, promotion: dict[str, Any]) -> FailoverEngine:
    data = yaml.safe_load(lab.strategy_path.read_text())
    data["services"]["shop"]["promotion"] = promotion
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))


def events(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "state" / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


def test_failover_promotes_first_and_failback_scales_back(lab: Lab, tmp_path: Path, standby_dir: Path,
                                                          tf_kind: str) -> None:
    engine = engine_with(lab, tmp_path, {"dir": "standby", "vars": {"standby_capacity": 2},
                                         "failback_vars": {"standby_capacity": 0}})
    plan = engine.plan("shop", "failover")
    assert plan.promotion == {"when": "before_traffic", "dir": str(standby_dir), "runner": "auto",
                              "vars": {"standby_capacity": 2}, "on_failure": "abort"}
    assert "step 0: pilot-light promotion: terraform apply in" in plan.render()
    assert capacity(standby_dir) == 0  # planning changes nothing

    out = engine.run("shop", "failover", apply=True)
    assert out.status == "succeeded", out.errors
    assert capacity(standby_dir) == 2 and roles(lab) == {USE1: "SECONDARY", USW2: "PRIMARY"}
    phases = out.timeline.phases()
    # propagation: the lab template's resolve step, beside validation
    assert list(phases) == ["detection", "decision", "promotion", "apply", "validation", "propagation"]
    serial = sum(v for k, v in phases.items() if k != "propagation")
    assert phases["promotion"] > 0 and out.timeline.rto == pytest.approx(serial, abs=1e-5)
    assert out.promotion["status"] == "applied" and out.promotion["runner"] == tf_kind
    report = json.loads(Path(out.report_path).read_text())
    assert report["timeline"]["phases_s"]["promotion"] == phases["promotion"]
    assert report["promotion"]["vars"] == {"standby_capacity": 2}
    ev = events(tmp_path)
    assert ev.index("promotion_applied") < ev.index("step_applied") < ev.index("succeeded")

    time.sleep(1.1)  # the drill strategy's cooldown
    back = engine.run("shop", "failback", apply=True)
    assert back.status == "succeeded", back.errors
    assert roles(lab) == {USE1: "PRIMARY", USW2: "SECONDARY"} and capacity(standby_dir) == 0
    assert "promotion" not in back.timeline.phases()  # scaling back is after the RTO, not in it
    assert back.promotion["phase"] == "scale_back" and back.promotion["status"] == "applied"
    assert events(tmp_path).index("succeeded", ev.index("succeeded") + 1) < events(tmp_path).index("scale_back_applied")


def test_a_failed_promotion_moves_no_traffic(lab: Lab, tmp_path: Path, standby_dir: Path) -> None:
    engine = engine_with(lab, tmp_path, {"dir": str(standby_dir), "vars": {"standby_capacity": 500}})
    out = engine.run("shop", "failover", apply=True)
    assert out.status == "failed" and not out.changed
    assert roles(lab) == {USE1: "PRIMARY", USW2: "SECONDARY"} and capacity(standby_dir) == 0
    assert "pilot-light promotion failed, traffic not moved" in out.errors[0]
    assert str(standby_dir) in out.errors[0] and "standby_capacity must be between 0 and 100" in out.errors[0]
    assert "promotion_failed" in events(tmp_path) and "step_applied" not in events(tmp_path)


def test_on_failure_continue_moves_traffic_and_says_so(lab: Lab, tmp_path: Path, standby_dir: Path) -> None:
    engine = engine_with(lab, tmp_path, {"dir": str(tmp_path / "missing"), "vars": {"standby_capacity": 2},
                                         "on_failure": "continue"})
    out = engine.run("shop", "failover", apply=True)
    assert out.status == "succeeded"
    assert roles(lab) == {USE1: "SECONDARY", USW2: "PRIMARY"}
    assert "traffic moved anyway" in out.errors[0] and "no such directory" in out.errors[0]


def test_no_promotion_when_traffic_goes_to_an_endpoint_that_needs_none(lab: Lab, tmp_path: Path,
                                                                       standby_dir: Path) -> None:
    engine = engine_with(lab, tmp_path, {"dir": str(standby_dir), "vars": {"standby_capacity": 2},
                                         "endpoints": ["use1"]})
    plan = engine.plan("shop", "failover")
    assert plan.promotion is None and not plan.is_noop
    other = engine_with(lab, tmp_path, {"dir": str(standby_dir), "vars": {"standby_capacity": 3}})
    fp2, fp3 = (engine_with(lab, tmp_path, {"dir": str(standby_dir), "vars": {"standby_capacity": 2}})
                .plan("shop", "failover").fingerprint(), other.plan("shop", "failover").fingerprint())
    assert fp2 != fp3  # a confirmed plan covers its promotion too


def test_a_failed_scale_back_is_reported_and_the_failback_stands(lab: Lab, tmp_path: Path, standby_dir: Path) -> None:
    engine = engine_with(lab, tmp_path, {"dir": str(standby_dir), "vars": {"standby_capacity": 2},
                                         "failback_vars": {"standby_capacity": 500}})
    assert engine.run("shop", "failover", apply=True).status == "succeeded"
    time.sleep(1.1)  # the drill strategy's cooldown
    back = engine.run("shop", "failback", apply=True)
    assert back.status == "succeeded" and roles(lab) == {USE1: "PRIMARY", USW2: "SECONDARY"}
    assert back.promotion["phase"] == "scale_back" and back.promotion["status"] == "failed"
    assert "standby_capacity must be between 0 and 100" in back.promotion["error"]
    assert capacity(standby_dir) == 2  # left promoted, and the report says so
    assert "scale_back_failed" in events(tmp_path)


def test_unknown_promotion_endpoints_are_a_strategy_problem(lab: Lab, tmp_path: Path, standby_dir: Path) -> None:
    from failover_engine.core.errors import StrategyError

    with pytest.raises(StrategyError, match=r"services\.shop\.promotion\.endpoints.*unknown endpoint\(s\) nope"):
        engine_with(lab, tmp_path, {"dir": str(standby_dir), "vars": {"standby_capacity": 2}, "endpoints": ["nope"]})
