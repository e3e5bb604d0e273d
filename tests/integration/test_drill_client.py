"""What clients saw during drills: the load client (lab.client) on the lab, and real drills.

``failover drill`` runs as `make drill` runs it: a subprocess from the repo root, the venv's bin on
PATH, its own run directory. Its report's ``client`` is read as a user reads it; the drill whose
client keeps the old answer (``--client-min-ttl``: a resolver that clamps TTLs) must fail although
the engine's failover succeeded. Waits are the drill's own (event-driven); deadlines are generous.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from failover_engine.lab.client import LoadClient, client_targets, drill_clients
from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
FAILOVER = BIN / "failover"
NAMES = {"aws": "shop.drill.example.", "gcp": "shop.drill.example.", "azure": "shop-drill.trafficmanager.net."}

if not (BIN / "ansible-playbook").exists():  # pragma: no cover - environment problem, not a test failure
    pytest.skip(f"ansible-playbook not found next to {sys.executable}; install '.[dev]'", allow_module_level=True)


def drill(tmp_path: Path, cloud: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    run_dir = tmp_path / cloud
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    proc = subprocess.run([str(FAILOVER), "drill", "--cloud", cloud, "--dir", str(run_dir), *extra], check=False,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    path = run_dir / "drill-report.json"
    assert path.exists(), f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc, json.loads(path.read_text())


# --------------------------------------------------------------------------- the client on a lab
@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("client-lab"), record_ttl=1) as running:
        yield running


def run_for(client: LoadClient, requests: int) -> None:
    client.start()
    try:
        deadline = time.monotonic() + 60
        while len(client.requests) < requests and time.monotonic() < deadline:
            client.wait_for_request(len(client.requests), 5.0)
    finally:
        client.stop()


@pytest.mark.timeout(120)
def test_the_client_keeps_an_answer_for_its_ttl_like_a_caching_stub(lab: Lab) -> None:
    lab.reset()
    [target] = client_targets(lab.loaded.strategy, "shop", {n: r.url for n, r in lab.regions.items()})
    client = LoadClient(target, lab.dns.address)
    run_for(client, 40)  # 2 s of requests, 50 ms apart
    took = client.requests[-1].at - client.requests[0].at
    assert all(r.ok and r.endpoint == "use1" and r.answer == ("192.0.2.10",) for r in client.requests)
    assert all(r.status == 200 and r.ttl == 1.0 for r in client.requests)
    # one query per TTL (1 s), not one per request
    assert len(client.resolutions) <= took + 2, (len(client.resolutions), took)
    assert {tuple(q["answer"]) for q in client.resolutions} == {("192.0.2.10",)}

    clamped = LoadClient(target, lab.dns.address, min_ttl=3600)
    run_for(clamped, 30)
    assert len(clamped.resolutions) == 1  # a resolver that clamps TTLs: asked once


@pytest.mark.timeout(120)
def test_the_drill_clients_wait_until_they_use_the_new_answer(lab: Lab) -> None:
    lab.reset()
    with drill_clients(lab) as clients:
        assert clients.wait_caught_up(10)["caught_up"]
        lab.regions["use1"].set_mode("down")
        moved = lab.route53_client().change_resource_record_sets(HostedZoneId=lab.zones["drill.example."], ChangeBatch={
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": "shop.drill.example.", "Type": "A", "TTL": 1, "SetIdentifier": sid, "Failover": role,
                "ResourceRecords": [{"Value": value}]}} for sid, role, value in (
                    ("use1-primary", "SECONDARY", "192.0.2.10"), ("usw2-standby", "PRIMARY", "198.51.100.10"))]})
        assert moved["ChangeInfo"]
        waited = clients.wait_caught_up(10)
    lab.reset()
    assert waited["caught_up"] and waited["waited_s"] < 5, waited
    [client] = clients.to_dict()["clients"]
    last = client["requests"][-1]
    assert last["ok"] and last["endpoint"] == "usw2" and last["answer"] == ["198.51.100.10"]
    assert any(not r["ok"] and r["error"] == "connection refused" for r in client["requests"])


# --------------------------------------------------------------------------- real drills
def over_first_failure(stage: dict[str, Any]) -> float:
    return datetime.fromisoformat(stage["first_failure_at"].replace("Z", "+00:00")).timestamp()


def back_signal(report: dict[str, Any]) -> float:
    stamp = report["failback"]["timeline"]["timestamps"]["first_signal_at"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_a_drill_reports_what_its_client_saw(cloud: str, tmp_path: Path) -> None:
    proc, report = drill(tmp_path, cloud)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert report["result"] == "succeeded" and "engine_result" not in report
    client = report["client"]
    assert client["ok"] and client["interval_s"] == 0.05 and client["slack_s"] == 0.5
    [c] = client["clients"]
    assert c["name"] == NAMES[cloud] and len(c["requests"]) > 100
    over, back = c["stages"]["failover"], c["stages"]["failback"]
    timeline = report["failover"]["timeline"]
    # the primary was stopped: the client's requests failed until its cache let it see the standby
    assert over["failed"] > 0 and over["failed_endpoints"] == ["use1"] and over["reached"] and over["within"]
    assert 0 < over["outage_s"] < 30 and over["client_rto_s"] <= over["expected_client_rto_s"]
    assert over["expected_client_rto_s"] == pytest.approx(timeline["client_rto_s"] + 0.05 + 0.5, abs=1e-5)
    assert timeline["client_ttl_s"] == 1.0 and timeline["phases_s"]["propagation"] is not None
    phases = {p["phase"]: p for p in over["failed_per_phase"]}
    assert list(phases)[:3] == ["before signal", "detection", "decision"] and "propagation" in phases
    assert phases["detection"]["failed"] == phases["detection"]["requests"] > 0  # use1 was down all along
    # validation and propagation overlap (both start when applied); the phases cover the whole window
    apart = sum(p["failed"] for name, p in phases.items() if name not in ("validation", "propagation"))
    assert apart <= over["failed"] <= sum(p["failed"] for p in phases.values())
    assert over["served"]["usw2"] > 0
    # the failback: no request failed (both regions up), the client back on the primary
    assert back["failed"] == 0 and back["outage_s"] == 0.0 and back["reached"] and back["served"]["use1"] > 0
    assert c["requests"][-1]["endpoint"] == "use1" and c["requests"][-1]["ok"]
    down, up = report["lab_actions"]  # the failure the drill injected, and its end
    assert (down["region"], down["mode"], up["region"], up["mode"]) == ("use1", "down", "use1", "up")
    # a request already in flight when the region went down fails too, stamped with its start:
    # the first failure may precede the injection by up to one request (50 ms apart, 1 s timeout)
    assert down["at"] <= over_first_failure(over) + 1.05 and up["at"] < back_signal(report)
    out = proc.stdout
    assert f"client {NAMES[cloud]}: outage " in out and "reached the new routing" in out and "client RTO" in out
    page = (tmp_path / cloud / "drill-report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and 'class="request fail"' in page

    # `failover report RUN_ID --html` renders the failover run, with the client in its window
    run_id = report["failover"]["run_id"]
    out_file = tmp_path / "run.html"
    rendered = subprocess.run([str(FAILOVER), "report", run_id, "--state-dir", str(tmp_path / cloud / "state"),
                               "--html", "-o", str(out_file)], check=False, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    run_page = out_file.read_text()
    assert f"Run {run_id} of service shop: failover" in run_page and 'data-stage="failover"' in run_page
    assert 'data-stage="failback"' not in run_page and 'class="request fail"' in run_page


@pytest.mark.timeout(300)
def test_a_drill_whose_client_never_reaches_the_standby_fails(tmp_path: Path) -> None:
    # the client's resolver keeps every answer an hour: it stays on the primary through the drill
    proc, report = drill(tmp_path, "aws", "--client-min-ttl", "3600")
    assert proc.returncode != 0
    assert report["engine_result"] == "succeeded" and report["failover"]["status"] == "succeeded"
    assert report["result"] == "failed" and not report["client"]["ok"]
    assert report["error"] == ("client: route53 shop.drill.example.: the client never reached the new routing "
                               "(its requests to use1 failed)")
    over = report["client"]["clients"][0]["stages"]["failover"]
    assert not over["reached"] and over["outage_s"] is None and over["failed"] > 0
    assert {r["endpoint"] for r in report["client"]["clients"][0]["requests"]} == {"use1"}
    assert "Drill of service 'shop': FAILED" in proc.stdout and "NEVER reached the new routing" in proc.stdout
    page = (tmp_path / "aws" / "drill-report.html").read_text()
    assert 'class="result failed"' in page and "never reached the new routing" in page
