"""The `failover` console script, run as a child process against the lab (moto + local regions).

Each command gets the lab's environment (fake AWS keys, the lab's moto, FAILOVER_STRATEGY) and a
fresh ``--state-dir``; what a command changed is read back from moto with boto3.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FAILOVER = Path(sys.executable).with_name("failover")  # the console script of this venv
ZONE = "drill.example."
RECORD = "shop.drill.example."
STEADY = {"use1-primary": "PRIMARY", "usw2-standby": "SECONDARY"}
FAILED_OVER = {"use1-primary": "SECONDARY", "usw2-standby": "PRIMARY"}

BAD_STRATEGY = """\
version: 1
services:
  shop:
    endpoints:
      - name: use1
        role: primary
        region: us-east-1
        probe: {type: http, url: "ftp://nope"}
      - name: usw2
        role: standby
        region: us-west-2
        colour: blue
    routing:
      - adapter: route53
        hosted_zone: drill.example.
        record: shop.drill.example.
        ttl: -5
        mode: failover
        endpoints:
          use1: {values: [192.0.2.10]}
          usw2: {values: [198.51.100.10]}
"""


def failover(lab: Lab, *args: str, state_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``failover ARGS [--state-dir STATE_DIR]`` with the lab's environment."""
    env = {**lab.child_env(), "FAILOVER_STRATEGY": str(lab.strategy_path)}
    argv = [str(FAILOVER), *args] + (["--state-dir", str(state_dir)] if state_dir is not None else [])
    return subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=45)


def roles(lab: Lab) -> dict[str, str]:
    """Failover role of each of the lab's shop records, read from moto."""
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Failover"] for r in sets if r["Name"] == RECORD}


def rrsets(lab: Lab) -> list[dict[str, Any]]:
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return [r for r in sets if r["Name"] == RECORD]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


# --------------------------------------------------------------------------- validate, schema
def test_validate_ok(lab: Lab) -> None:
    res = failover(lab, "validate", str(lab.strategy_path))
    assert res.returncode == 0, res.stderr
    assert f"{lab.strategy_path}: ok (1 service(s): shop)" in res.stdout


def test_validate_reports_every_problem_with_file_path_and_line(lab: Lab, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_STRATEGY)

    res = failover(lab, "validate", str(lab.strategy_path), str(bad))

    assert res.returncode == 1
    assert f"{lab.strategy_path}: ok" in res.stdout  # the good file is still checked and reported
    err = res.stderr
    assert f"{bad}: 3 problem(s) in strategy" in err
    assert f"{bad}: services.shop.endpoints[0].probe.url (line 8): invalid value 'ftp://nope'" in err
    assert f"{bad}: services.shop.endpoints[1].colour (line 12): unknown field" in err
    assert f"{bad}: services.shop.routing[0].ttl (line 17):" in err
    assert "Traceback" not in err


def test_validate_missing_file(lab: Lab, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    res = failover(lab, "validate", str(missing))
    assert res.returncode == 1 and str(missing) in res.stderr and "cannot read file" in res.stderr
    assert "Traceback" not in res.stderr


def test_schema_is_json_schema(lab: Lab) -> None:
    res = failover(lab, "schema")
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "services" in schema["properties"] and "Route53Routing" in schema["$defs"]


# --------------------------------------------------------------------------- status, plan, dry run
def test_status_json_shows_the_primary_active(lab: Lab, state: Path) -> None:
    res = failover(lab, "status", "shop", "--json", state_dir=state)
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert (st["service"], st["active"], st["primary"], st["failed_over"]) == ("shop", {"use1": 100}, "use1", False)
    assert {n: v["health"] for n, v in st["verdicts"].items()} == {"use1": "healthy", "usw2": "healthy"}
    assert roles(lab) == STEADY


def test_plan_prints_the_changes_and_changes_nothing(lab: Lab, state: Path) -> None:
    before = rrsets(lab)
    res = failover(lab, "plan", "shop", state_dir=state)

    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Plan for service 'shop': failover use1 -> usw2" in out
    assert re.search(r"~ route53:\S+/shop\.drill\.example\./A\[use1-primary\]\n\s+failover: \"PRIMARY\" -> \"SECONDARY\"",
                     out), out
    assert re.search(r"~ route53:\S+/shop\.drill\.example\./A\[usw2-standby\]\n\s+failover: \"SECONDARY\" -> \"PRIMARY\"",
                     out), out
    assert "2 change(s) in 1 step(s)" in out
    assert rrsets(lab) == before
    assert not (state / "events.jsonl").exists()


def test_apply_without_yes_is_a_dry_run(lab: Lab, state: Path) -> None:
    before = rrsets(lab)
    res = failover(lab, "apply", "shop", state_dir=state)

    assert res.returncode == 0, res.stderr
    assert "Dry run: nothing was changed" in res.stdout and "status: planned" in res.stdout
    assert rrsets(lab) == before and roles(lab) == STEADY
    assert not (state / "reports").exists()


# --------------------------------------------------------------------------- apply, events, history
def test_apply_yes_then_again_then_events_and_history(lab: Lab, state: Path) -> None:
    res = failover(lab, "apply", "shop", "--yes", state_dir=state)

    assert res.returncode == 0, res.stderr
    assert "status: succeeded" in res.stdout
    assert re.search(r"^\s+RTO\s+\d+ ms$", res.stdout, re.M), res.stdout
    assert roles(lab) == FAILED_OVER
    run_id = re.search(r"status: succeeded \(run ([0-9a-f]+)\)", res.stdout).group(1)

    again = failover(lab, "apply", "shop", "--yes", state_dir=state)
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout and "status: noop" in again.stdout
    assert roles(lab) == FAILED_OVER

    ev = failover(lab, "events", "shop", state_dir=state)
    assert ev.returncode == 0, ev.stderr
    ours = [line.split()[2] for line in ev.stdout.splitlines() if line.rstrip().endswith(run_id)]
    assert ours == ["run_started", "decided", "step_applied", "succeeded"]

    ev_json = failover(lab, "events", "shop", "--json", state_dir=state)
    assert [json.loads(line)["event"] for line in ev_json.stdout.splitlines()][-1] == "noop"

    hist = failover(lab, "history", "shop", "--json", state_dir=state)
    assert hist.returncode == 0, hist.stderr
    rows = json.loads(hist.stdout)
    # (order left out: runs in the same second are not listed oldest first, see test_engine_route53)
    by_status = {r["status"]: r for r in rows if r["action"] == "failover"}
    assert len(rows) == 2 and set(by_status) == {"succeeded", "noop"}
    assert run_id in by_status["succeeded"]["report"] and by_status["succeeded"]["rto_s"] > 0
    text = failover(lab, "history", "shop", state_dir=state)
    assert re.search(r"shop\s+failover\s+succeeded\s+RTO \d+ ms", text.stdout), text.stdout

    st = json.loads(failover(lab, "status", "shop", "--json", "--no-probe", state_dir=state).stdout)
    assert (st["active"], st["failed_over"]) == ({"usw2": 100}, True)


def test_apply_with_the_standby_down_is_refused(lab: Lab, state: Path) -> None:
    lab.regions["usw2"].set_mode("down")
    before = rrsets(lab)

    res = failover(lab, "apply", "shop", "--yes", state_dir=state)

    assert res.returncode == 3, (res.stdout, res.stderr)
    assert "status: refused" in res.stdout
    assert "REFUSED unless forced: target 'usw2' fails its checks: connection refused" in res.stdout
    assert rrsets(lab) == before and roles(lab) == STEADY


def test_plan_with_the_standby_down_exits_3(lab: Lab, state: Path) -> None:
    lab.regions["usw2"].set_mode("down")
    res = failover(lab, "plan", "shop", state_dir=state)
    assert res.returncode == 3, (res.stdout, res.stderr)
    assert "REFUSED unless forced: target 'usw2' fails its checks: connection refused" in res.stdout
    assert roles(lab) == STEADY


def test_unknown_service_is_a_clear_error(lab: Lab, state: Path) -> None:
    res = failover(lab, "apply", "nope", "--yes", state_dir=state)

    assert res.returncode == 1
    assert f"failover: error: unknown service 'nope' in {lab.strategy_path}; known services: shop" in res.stderr
    assert "Traceback" not in res.stderr
    assert roles(lab) == STEADY


# --------------------------------------------------------------------------- probe → incident → RTO
def test_recorded_incident_feeds_the_next_failover_timeline(lab: Lab, state: Path) -> None:
    lab.regions["use1"].set_mode("down")

    probe = failover(lab, "probe", "shop", "--wait-for", "unhealthy", "--timeout", "10",
                     "--record-incident", state_dir=state)

    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith("reached: use1 unhealthy")
    incident = json.loads((state / "services" / "shop.json").read_text())["incident"]
    assert incident["signal"] == "failure" and incident["endpoints"] == ["use1"]
    assert incident["first_signal_at"] < incident["detected_at"]

    res = failover(lab, "apply", "shop", "--yes", "--json", state_dir=state)

    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "succeeded"
    tl = out["timeline"]
    assert tl["signal"] == "failure"
    assert tl["phases_s"]["detection"] == pytest.approx(incident["detected_at"] - incident["first_signal_at"],
                                                        abs=1e-5)
    assert tl["rto_s"] >= tl["phases_s"]["detection"]
    assert roles(lab) == FAILED_OVER
    assert json.loads((state / "services" / "shop.json").read_text())["incident"] is None
