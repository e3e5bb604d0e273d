"""Client-side validation (``validation.resolve``) on the lab: real failovers by the engine, real DNS.

The lab's DNS server answers from the providers' live state; a second :class:`LabDns`, frozen
before the switch, plays a resolver that keeps serving the stale answer. Outcomes, reports and
events are read as a user reads them; the records' state is read back through DNS and boto3.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import dns.message
import dns.query
import pytest
import yaml

from failover_engine.cli.reporting import render_outcome
from failover_engine.config.loader import load_strategy
from failover_engine.core.outcome import Outcome
from failover_engine.detection.resolve import authoritative_nameservers, query
from failover_engine.engine.failover import FailoverEngine
from failover_engine.lab.dns import LabDns
from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TIMEOUT = 5.0
# the name and the answer of each cloud's template when use1 / usw2 takes the traffic
NAMES = {"aws": "shop.drill.example.", "gcp": "shop.drill.example.", "azure": "shop-drill.trafficmanager.net."}
VALUES = {"aws": {"use1": "192.0.2.10", "usw2": "198.51.100.10"},
          "gcp": {"use1": "192.0.2.10", "usw2": "198.51.100.10"},
          "azure": {"use1": "shop-use1.shop-drill.lab.invalid.", "usw2": "shop-usw2.shop-drill.lab.invalid."}}


@pytest.fixture(scope="module")
def cloud_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab per cloud (indirect parameter), one at a time: moto's state is process-wide."""
    with Lab(tmp_path_factory.mktemp(f"resolve-{request.param}"), cloud=request.param) as lab:
        yield lab


@pytest.fixture
def lab(cloud_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The lab in its steady state, this process's SDK settings pointing at it."""
    cloud_lab.reset()
    for key, value in cloud_lab.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return cloud_lab


@pytest.fixture
def stale(lab: Lab) -> Iterator[LabDns]:
    """A second server on the lab's providers, frozen now: the resolver that keeps the old answer."""
    with LabDns(lab.dns_sources()) as server:
        server.freeze()
        yield server


def resolve_step(lab: Lab, nameservers: list[str], **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"nameservers": nameservers, "deadline": "10s", "interval": "100ms", **extra}
    if lab.cloud == "azure":  # a Traffic Manager profile is no record: its name and answers are given
        step.update(name=NAMES["azure"], expect={ep: [v] for ep, v in VALUES["azure"].items()})
    return step


def engine_with(lab: Lab, tmp_path: Path, resolve: dict[str, Any] | None, **validation: Any) -> FailoverEngine:
    """The engine on a copy of the lab's strategy with this resolve step (and no cooldown)."""
    data = yaml.safe_load(lab.strategy_path.read_text())
    shop = data["services"]["shop"]
    shop["policy"]["cooldown"] = 0
    shop["validation"].update(validation)
    if resolve is not None:
        shop["validation"]["resolve"] = resolve
    else:  # the drill templates have one (the lab's DNS server): none at all here
        shop["validation"].pop("resolve", None)
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))


def dns_answer(lab: Lab) -> list[str]:
    """What the lab's live server answers for the service's name now."""
    host, port = lab.dns.address
    resp = dns.query.udp(dns.message.make_query(NAMES[lab.cloud], "A"), host, timeout=TIMEOUT, port=port)
    return [rd.to_text() for rr in resp.answer for rd in rr]


def report(out: Outcome) -> dict[str, Any]:
    assert out.report_path is not None
    return json.loads(Path(out.report_path).read_text())


def events(engine: FailoverEngine, out: Outcome) -> dict[str, dict[str, Any]]:
    return {e["event"]: e for e in engine.events.read("shop") if e.get("run_id") == out.run_id}


# --------------------------------------------------------------------------- the step passes
@pytest.mark.parametrize("cloud_lab", ["aws", "gcp", "azure"], indirect=True)
def test_the_resolve_step_passes_and_gives_propagation_and_client_rto(lab: Lab, tmp_path: Path) -> None:
    engine = engine_with(lab, tmp_path, resolve_step(lab, [lab.dns_address]))
    out = engine.run("shop", "failover", apply=True)

    assert out.status == "succeeded", out.errors
    tl = out.timeline
    assert tl is not None and tl.client_ttl == 30.0  # the record's (or profile's) TTL: no old answer was seen
    assert tl.applied_at <= tl.propagated_at  # type: ignore[operator]
    assert tl.client_rto == pytest.approx(tl.propagated_at - tl.first_signal_at + 30.0, abs=1e-5)  # type: ignore[operator]
    assert tl.rto == pytest.approx(tl.validated_at - tl.first_signal_at, abs=1e-5)  # type: ignore[operator]  # as before
    shown = tl.to_dict()
    assert list(shown["phases_s"])[-2:] == ["validation", "propagation"] and shown["phases_s"]["propagation"] >= 0
    assert shown["timestamps"]["propagated_at"] and shown["client_rto_s"] == tl.client_rto

    resolve = report(out)["validation"]["resolve"]  # the report on disk carries every nameserver's answers
    assert resolve["ok"] and resolve["name"] == NAMES[lab.cloud]
    [ns] = resolve["nameservers"]
    assert ns["nameserver"] == lab.dns_address and ns["propagated"] and ns["first_new_at"] and ns["queries"] >= 1
    assert events(engine, out)["succeeded"]["client_rto_s"] == tl.client_rto
    text = render_outcome(out)
    assert "propagation" in text and "client RTO" in text
    assert dns_answer(lab) == [VALUES[lab.cloud]["usw2"]]

    back = engine.run("shop", "failback", apply=True)  # the other way: the expected answer follows the target
    assert back.status == "succeeded", back.errors
    assert back.timeline.propagated_at is not None and dns_answer(lab) == [VALUES[lab.cloud]["use1"]]  # type: ignore[union-attr]


@pytest.mark.parametrize("cloud_lab", ["aws"], indirect=True)
def test_over_tcp_every_nameserver_must_answer_new(lab: Lab, tmp_path: Path) -> None:
    with LabDns(lab.dns_sources()) as other:  # a second live server: both answer the switch
        second = "{}:{}".format(*other.address)
        out = engine_with(lab, tmp_path, resolve_step(lab, [lab.dns_address, second], protocol="tcp")).run(
            "shop", "failover", apply=True)
        assert other.queries >= 1
    assert out.status == "succeeded", out.errors
    got = {ns["nameserver"]: ns for ns in out.to_dict()["validation"]["resolve"]["nameservers"]}
    assert set(got) == {lab.dns_address, second} and all(ns["propagated"] for ns in got.values())


@pytest.mark.parametrize("cloud_lab", ["aws"], indirect=True)
def test_without_a_resolve_step_nothing_changes(lab: Lab, tmp_path: Path) -> None:
    out = engine_with(lab, tmp_path, None).run("shop", "failover", apply=True)
    assert out.status == "succeeded", out.errors
    shown = out.to_dict()
    assert "propagated_at" not in shown["timeline"]["timestamps"] and "propagation" not in shown["timeline"]["phases_s"]
    assert shown["timeline"]["client_rto_s"] is None and "resolve" not in shown["validation"]
    assert "client RTO" not in render_outcome(out)


# --------------------------------------------------------------------------- a stale resolver
@pytest.mark.parametrize("cloud_lab", ["aws", "gcp", "azure"], indirect=True)
def test_a_resolver_keeping_the_stale_answer_misses_the_deadline_and_the_run_rolls_back(
        lab: Lab, stale: LabDns, tmp_path: Path) -> None:
    stale_at = "{}:{}".format(*stale.address)
    engine = engine_with(lab, tmp_path, resolve_step(lab, [lab.dns_address, stale_at], deadline="1500ms"))
    out = engine.run("shop", "failover", apply=True)

    assert out.status == "rolled_back", out.errors
    old, new = VALUES[lab.cloud]["use1"], VALUES[lab.cloud]["usw2"]
    [reason] = [e for e in out.errors if e.startswith("resolve:")]
    assert f"{stale_at} still answers {old}" in reason and lab.dns_address not in reason and "1.5 s" in reason
    got = {ns["nameserver"]: ns for ns in report(out)["validation"]["resolve"]["nameservers"]}
    assert got[lab.dns_address]["propagated"] and got[lab.dns_address]["first_new_at"]
    assert not got[stale_at]["propagated"] and got[stale_at]["last_old"] == [old]
    assert got[stale_at]["last_old_at"] and got[stale_at]["queries"] >= 2 and got[stale_at]["last_old_ttl"] == 30
    assert out.timeline.propagated_at is None and out.timeline.client_rto is None  # type: ignore[union-attr]
    assert out.to_dict()["timeline"]["phases_s"]["propagation"] is None
    assert {"validation_failed", "rolled_back"} <= set(events(engine, out))
    assert dns_answer(lab) == [old] and new not in dns_answer(lab)  # the records are back


@pytest.mark.parametrize("cloud_lab", ["aws"], indirect=True)
def test_with_rollback_off_a_missed_deadline_fails_and_the_switch_stays(lab: Lab, stale: LabDns,
                                                                        tmp_path: Path) -> None:
    stale_at = "{}:{}".format(*stale.address)
    engine = engine_with(lab, tmp_path, resolve_step(lab, [stale_at], deadline="1s"), rollback_on_failure=False)
    out = engine.run("shop", "failover", apply=True)
    assert out.status == "failed" and out.rollback is None
    assert any(f"{stale_at} still answers 192.0.2.10" in e for e in out.errors)
    assert dns_answer(lab) == ["198.51.100.10"]


# --------------------------------------------------------------------------- real providers' way
@pytest.mark.parametrize("cloud_lab", ["aws"], indirect=True)
def test_authoritative_servers_are_found_by_the_zones_ns_records_and_asked_directly(lab: Lab) -> None:
    host, port = lab.dns.address

    async def go() -> tuple[list[tuple[str, int]], Any]:
        servers = await authoritative_nameservers("shop.drill.example.", timeout=TIMEOUT, bootstrap=[(host, port)],
                                                  port=port)
        return servers, await query(*servers[0], "shop.drill.example.", "A", timeout=TIMEOUT, recursion=False)

    servers, answer = asyncio.run(go())
    assert servers == [("127.0.0.1", port)]  # ns1.drill.example., the lab server's own NS
    assert answer.rcode == "NOERROR" and answer.values == ["192.0.2.10"] and answer.ttl == 30


# --------------------------------------------------------------------------- the documented example
def test_the_example_in_docs_validation_runs_as_documented(tmp_path: Path) -> None:
    """docs/validation.md's lab example: the failover passes its resolve step, the failback against
    the frozen server misses its deadline and is rolled back (exit code 4)."""
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "validation.md").read_text()
    block = re.search(r"## Try it on the lab.*?```sh\n(.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]
    assert "--dir .drill/resolve " in block
    script = block.replace("--dir .drill/resolve ", f"--dir {tmp_path / 'resolve'} ")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["sh", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=90,
                          check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-3000:]
    assert "status: succeeded" in out and re.search(r"client RTO +\d+ ms", out), out[-3000:]
    assert "status: rolled_back" in out and "still answers 198.51.100.10 (ttl 30)" in out, out[-3000:]
