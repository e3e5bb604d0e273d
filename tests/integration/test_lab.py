"""The lab with real servers: regions, the control API, moto seeding, `lab run`/`lab up`."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from failover_engine.adapters.route53 import Route53Adapter
from failover_engine.core.errors import StrategyError
from failover_engine.lab.lab import Lab, LabError
from failover_engine.lab.regions import RegionServer
from failover_engine.core.model import Route53Connection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LAB_CLI = (
    "import argparse, sys\n"
    "from failover_engine.lab.cli import add_lab_commands\n"
    "p = argparse.ArgumentParser(prog='failover'); s = p.add_subparsers(); add_lab_commands(s)\n"
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
)


def http(url: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of one request; HTTP errors are answers too."""
    try:
        with _HTTP.open(urllib.request.Request(url, method=method), timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def control(lab: Lab, path: str, method: str = "POST") -> tuple[int, dict[str, Any]]:
    status, body = http(lab.lab_url + path, method)
    return status, json.loads(body)


def refuses(url: str) -> bool:
    """True when nothing listens at the URL's port any more."""
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def records(lab: Lab) -> dict[str, dict[str, Any]]:
    """The lab's shop.drill.example. A records by set identifier, read with boto3 over HTTP."""
    client = lab.route53_client()
    zone_id = lab.zones["drill.example."]
    rrsets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {r.get("SetIdentifier", ""): r for r in rrsets if r["Name"] == "shop.drill.example."}


@pytest.fixture
def region() -> Iterator[RegionServer]:
    with RegionServer("use1") as server:
        yield server


# --------------------------------------------------------------------------- regions
def test_region_up_answers_health_and_root(region: RegionServer) -> None:
    assert http(region.url + "/health") == (200, "ok region=use1\n")
    assert http(region.url + "/") == (200, "hello from use1\n")
    assert region.port > 0 and region.url == f"http://127.0.0.1:{region.port}"


def test_region_down_refuses_and_up_rebinds_same_port(region: RegionServer) -> None:
    url = region.url
    region.set_mode("down")
    with pytest.raises(urllib.error.URLError) as exc:
        http(url + "/health")
    assert isinstance(exc.value.reason, ConnectionRefusedError)
    region.set_mode("up")
    assert region.url == url
    assert http(url + "/health") == (200, "ok region=use1\n")


def test_region_slow_delays_the_answer(region: RegionServer) -> None:
    region.set_mode("slow", delay_ms=300)
    started = time.monotonic()
    assert http(region.url + "/health")[0] == 200
    assert time.monotonic() - started >= 0.29
    assert region.status()["delay_ms"] == 300


def test_region_errors_answers_503(region: RegionServer) -> None:
    region.set_mode("errors")
    assert http(region.url + "/health") == (503, "error\n")


def test_region_hang_answers_nothing_until_the_mode_changes(region: RegionServer) -> None:
    region.set_mode("hang")
    with pytest.raises(TimeoutError):
        http(region.url + "/health", timeout=0.3)
    answers: list[tuple[int, str]] = []
    waiter = threading.Thread(target=lambda: answers.append(http(region.url + "/health")))
    waiter.start()
    time.sleep(0.2)
    assert not answers
    region.set_mode("up")
    waiter.join(5)
    assert answers == [(200, "ok region=use1\n")]


def test_region_stop_is_fast_idempotent_and_drops_hanging_clients() -> None:
    server = RegionServer("usw2").start()
    server.set_mode("hang")
    errors: list[BaseException] = []

    def client() -> None:
        try:
            http(server.url + "/health", timeout=10)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    waiter = threading.Thread(target=client)
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    server.stop()
    assert time.monotonic() - started < 1.0
    waiter.join(5)
    assert len(errors) == 1 and refuses(server.url)


def test_region_rejects_unknown_mode_and_options(region: RegionServer) -> None:
    with pytest.raises(ValueError, match="unknown region mode"):
        region.set_mode("flaky")
    with pytest.raises(ValueError, match="takes no option"):
        region.set_mode("errors", delay_ms=5)
    assert region.mode == "up"


# --------------------------------------------------------------------------- control API
def test_control_api_switches_modes(lab: Lab) -> None:
    use1 = lab.regions["use1"]
    assert control(lab, "/regions/use1/down") == (200, {"region": "use1", "url": use1.url, "port": use1.port,
                                                        "mode": "down", "delay_ms": None,
                                                        "blocked_sources": []})
    assert refuses(use1.url)
    status, body = control(lab, "/regions/use1/slow?ms=120")
    assert (status, body["mode"], body["delay_ms"]) == (200, "slow", 120)
    started = time.monotonic()
    assert http(use1.url + "/health")[0] == 200 and time.monotonic() - started >= 0.11
    assert control(lab, "/regions/usw2/errors")[1]["mode"] == "errors"
    status, body = control(lab, "/regions/usw2/partition?source=127.0.0.3&source=127.0.0.4")
    assert (status, body["blocked_sources"]) == (200, ["127.0.0.3", "127.0.0.4"])
    assert lab.regions["usw2"].blocked_sources == {"127.0.0.3", "127.0.0.4"}
    assert control(lab, "/regions/usw2/partition")[1]["blocked_sources"] == []
    assert http(lab.regions["usw2"].url + "/")[0] == 503
    status, body = control(lab, "/status", "GET")
    assert status == 200 and body["moto_url"] == lab.moto_url
    assert {n: r["mode"] for n, r in body["regions"].items()} == {"use1": "slow", "usw2": "errors"}
    assert body["regions"]["usw2"]["url"] == lab.regions["usw2"].url


def test_control_api_404s_unknown_region_and_action(lab: Lab) -> None:
    status, body = control(lab, "/regions/euw1/down")
    assert status == 404 and "unknown region 'euw1'" in body["error"]
    assert control(lab, "/regions/use1/explode")[0] == 404
    assert control(lab, "/regions/use1/slow?ms=fast")[0] == 400
    assert lab.regions["use1"].mode == "up"


def test_control_api_reset_restores_regions_and_records(lab: Lab) -> None:
    control(lab, "/regions/use1/hang")
    zone = lab.zones["drill.example."]
    lab.route53_client().change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {**records(lab)["use1-primary"], "Failover": "SECONDARY",
                                                   "SetIdentifier": "use1-primary"}}]})
    status, body = control(lab, "/reset")
    assert status == 200 and body["regions"]["use1"]["mode"] == "up"
    assert records(lab)["use1-primary"]["Failover"] == "PRIMARY"


# --------------------------------------------------------------------------- moto seeding
def test_seeding_yields_primary_and_secondary_records(lab: Lab) -> None:
    recs = records(lab)
    assert set(recs) == {"use1-primary", "usw2-standby"}
    assert recs["use1-primary"]["Failover"] == "PRIMARY"
    assert recs["usw2-standby"]["Failover"] == "SECONDARY"
    assert recs["use1-primary"]["ResourceRecords"] == [{"Value": "192.0.2.10"}]
    assert recs["usw2-standby"]["ResourceRecords"] == [{"Value": "198.51.100.10"}]
    assert {r["TTL"] for r in recs.values()} == {30} and {r["Type"] for r in recs.values()} == {"A"}


def test_route53_adapter_sees_the_primary_active(lab: Lab) -> None:
    assert lab.loaded is not None
    binding = lab.loaded.strategy.services["shop"].routing[0]
    adapter = Route53Adapter(Route53Connection(endpoint_url=lab.moto_url), client=lab.route53_client())
    assert adapter.active_of(binding, adapter.read([binding])) == {"use1": 100}


def test_strategy_env_and_lab_json(lab: Lab) -> None:
    text = lab.strategy_path.read_text()
    assert f"http://127.0.0.1:{lab.regions['usw2'].port}/health" in text and lab.moto_url in text
    assert json.loads(lab.lab_json.read_text())["lab_url"] == lab.lab_url
    env = lab.env()
    assert env["FAILOVER_STRATEGY"] == str(lab.strategy_path) and env["FAILOVER_LAB_URL"] == lab.lab_url
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert Path(env["AWS_CONFIG_FILE"]).read_text() == "" and Path(env["AWS_CONFIG_FILE"]).is_relative_to(lab.run_dir)
    child = lab.child_env({"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "x", "HOME": "/h"})
    assert "AWS_PROFILE" not in child and "AWS_SESSION_TOKEN" not in child and child["HOME"] == "/h"


TEMPLATE = """\
version: 1
connections:
  moto: {{type: route53, endpoint_url: "{{moto_url}}"}}
services:
{services}
"""
SERVICE = """\
  {name}:
    endpoints:
      - {{name: a, role: primary, region: r1, probe: {{type: http, url: "http://127.0.0.1:{{primary_port}}/health"}}}}
      - {{name: b, role: standby, region: r2, probe: {{type: http, url: "{{lab_url}}/status"}}}}
    routing:
      - {{adapter: route53, connection: moto, hosted_zone: other.example., record: {name}.other.example.,
          mode: {mode}, active_weight: 90, inactive_weight: 5,
          endpoints: {{a: {{values: [10.0.0.1]}}, b: {{values: [10.0.0.2]}}}}}}
"""


def test_custom_template_seeds_simple_and_weighted_records(tmp_path: Path) -> None:
    services = "".join(SERVICE.format(name=m, mode=m) for m in ("simple", "weighted"))
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE.format(services=services))
    with Lab(tmp_path / "run", strategy_template=template) as lab:
        assert lab.lab_url in lab.strategy_path.read_text()
        client = lab.route53_client()
        rrsets = client.list_resource_record_sets(HostedZoneId=lab.zones["other.example."])["ResourceRecordSets"]
        simple = [r for r in rrsets if r["Name"] == "simple.other.example."]
        weighted = {r["SetIdentifier"]: r["Weight"] for r in rrsets if r["Name"] == "weighted.other.example."}
    assert [r["ResourceRecords"] for r in simple] == [[{"Value": "10.0.0.1"}]]
    assert weighted == {"a": 90, "b": 5}


# --------------------------------------------------------------------------- start/stop
def test_close_stops_every_server_and_is_idempotent(tmp_path: Path) -> None:
    lab = Lab(tmp_path).start()
    urls = [url for _unused, url in lab.servers()]
    assert not any(refuses(u) for u in urls)
    lab.close()
    lab.close()
    assert all(refuses(u) for u in urls) and not lab.lab_json.exists()


@pytest.mark.parametrize("content, error", [("url: '{nowhere_port}'\n", LabError),
                                            ("services: {}\n", StrategyError)])
def test_failed_start_stops_what_was_started(tmp_path: Path, content: str, error: type) -> None:
    template = tmp_path / "bad.yaml"
    template.write_text(content)
    lab = Lab(tmp_path / "run", strategy_template=template)
    with pytest.raises(error):
        lab.start()
    assert lab.moto_url and all(refuses(url) for _unused, url in lab.servers())


# --------------------------------------------------------------------------- CLI
def lab_cli(run_dir: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", LAB_CLI, "lab", *args[:1], "--dir", str(run_dir), *args[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


CHILD = """\
import json, os, sys, urllib.request
status = json.load(urllib.request.urlopen(os.environ['FAILOVER_LAB_URL'] + '/status'))
assert status['moto_url'] == os.environ['FAILOVER_MOTO_URL'] == os.environ['AWS_ENDPOINT_URL']
assert os.environ['AWS_ACCESS_KEY_ID'] == 'testing' and 'AWS_PROFILE' not in os.environ
assert os.path.exists(os.environ['FAILOVER_STRATEGY'])
print(urllib.request.urlopen(status['regions']['use1']['url'] + '/health').read().decode(), end='')
sys.exit(7)
"""


def test_lab_run_passes_env_and_returns_the_exit_code(tmp_path: Path) -> None:
    proc = lab_cli(tmp_path, "run", "--", sys.executable, "-c", CHILD, env={**os.environ, "AWS_PROFILE": "prod"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err
    assert out == "ok region=use1\n"
    assert "region use1" in err and "moto" in err and "control" in err
    assert not (tmp_path / "lab.json").exists()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_lab_run_forwards_stop_signals_and_cleans_up(tmp_path: Path, signum: int, code: int) -> None:
    child = "import time; print('ready', flush=True); time.sleep(30)"
    proc = lab_cli(tmp_path, "run", "--", sys.executable, "-c", child)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    urls = list(json.loads((tmp_path / "lab.json").read_text())["regions"].values())
    started = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == code
    assert time.monotonic() - started < 4  # the child stopped on the forwarded signal, not by escalation
    assert all(refuses(r["url"]) for r in urls) and not (tmp_path / "lab.json").exists()
    proc.communicate()


def test_lab_up_prints_exports_and_stops_on_sigint(tmp_path: Path) -> None:
    proc = lab_cli(tmp_path, "up")
    assert proc.stdout is not None
    exports = dict(proc.stdout.readline().removeprefix("export ").strip().split("=", 1) for _i in range(3))
    assert http(exports["FAILOVER_LAB_URL"] + "/status", "GET")[0] == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert refuses(exports["FAILOVER_LAB_URL"])
    proc.communicate()


def test_a_partition_resets_only_the_blocked_sources(lab: Lab) -> None:
    import socket

    use1 = lab.regions["use1"]
    use1.partition({"127.0.0.3"})
    with pytest.raises((ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", use1.port), source_address=("127.0.0.3", 0), timeout=2) as s:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")  # the reset may already hit the send
            if not s.recv(100):
                raise ConnectionResetError("closed without an answer")
    assert http(use1.url + "/health")[0] == 200  # everyone else is still served
    use1.partition(())
    with socket.create_connection(("127.0.0.1", use1.port), source_address=("127.0.0.3", 0), timeout=2) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        assert b"200" in s.recv(100)
