"""Runs as transactions on the lab (moto over HTTP, local region servers): a region of many
services in one batch, a service refused by its rules among them, interrupted runs recovered from
their journal, take-over versus --force, and a read-back that cannot be read (unverified).

Truth is always read back with the lab's own boto3 client, never through the engine.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover_engine.engine.failover import FailoverEngine
from failover_engine.engine.journal import Journal, open_journals
from failover_engine.lab.lab import Lab, seed_route53
from failover_engine.config.loader import load_strategy
from failover_engine.engine.metrics import history

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ZONE = "drill.example."
CHANGE_CALL = "before-call.route53.ChangeResourceRecordSets"


@pytest.fixture(autouse=True)
def lab_aws_env(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    for key, value in lab.env().items():
        if key.startswith("AWS_") or key.lower() == "no_proxy":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return lab


def many_services(lab: Lab, tmp_path: Path, n: int, edit: Any = None) -> Path:
    """The lab's strategy with ``n`` copies of its service, each on its own record in the zone."""
    data = yaml.safe_load(lab.strategy_path.read_text())
    base = data["services"].pop("shop")
    base["validation"] = {"attempts": 2, "interval": "50ms"}
    for i in range(n):
        svc = copy.deepcopy(base)
        svc["routing"][0]["record"] = f"svc{i:03d}.drill.example."
        data["services"][f"svc{i:03d}"] = svc
    if edit:
        edit(data)
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def roles(lab: Lab, record: str) -> dict[str, str]:
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE], MaxItems="1000")
    return {r["SetIdentifier"]: r["Failover"] for r in sets["ResourceRecordSets"] if r["Name"] == record}


def active(lab: Lab, record: str) -> str:
    primary = [sid for sid, role in roles(lab, record).items() if role == "PRIMARY"]
    return primary[0] if len(primary) == 1 else f"inconsistent {roles(lab, record)}"


def engine_for(path: Path, state_dir: Path) -> FailoverEngine:
    return FailoverEngine(load_strategy(path, state_dir=state_dir))


def count_change_calls(engine: FailoverEngine, service: str) -> list[int]:
    calls: list[int] = []
    client = engine.adapter(engine.strategy.services[service].routing[0]).client
    client.meta.events.register(CHANGE_CALL, lambda **_: calls.append(1))
    return calls


def events(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


# --------------------------------------------------------------------------- a region in one transaction
def test_a_region_of_many_services_moves_in_one_batch_with_a_region_outcome(lab: Lab, tmp_path: Path) -> None:
    n = 30
    path = many_services(lab, tmp_path, n)
    engine = engine_for(path, tmp_path / "state")
    seed_route53(lab.route53_client(), engine.strategy)
    lab.regions["use1"].set_mode("down")  # the primary region refuses connections
    changes = count_change_calls(engine, "svc000")
    lines: list[str] = []
    engine.progress = lines.append

    result = engine.run_region("us-east-1", apply=True)

    assert result.status == "succeeded", [(o.service, o.status, o.errors) for o in result.services if not o.ok]
    assert result.counts == {"succeeded": n}
    assert len(changes) == 1  # 30 failover pairs: one ChangeResourceRecordSets
    for i in range(n):
        assert active(lab, f"svc{i:03d}.drill.example.") == "usw2-standby"
    assert result.rto is not None and result.rto > 0
    assert all(o.timeline and o.timeline.rto is not None for o in result.services)
    assert all(Path(o.report_path).exists() for o in result.services)  # type: ignore[arg-type]
    rep = json.loads(Path(result.report_path).read_text())  # type: ignore[arg-type]
    assert rep["status"] == "succeeded" and rep["summary"]["succeeded"] == n and len(rep["outcomes"]) == n
    assert not open_journals(tmp_path / "state")  # the journal was closed
    assert any("one round" in line for line in lines) and any("applied" in line for line in lines)
    ended = [e for e in events(tmp_path / "state") if e["event"] == "region_run_ended"]
    assert ended and ended[0]["status"] == "succeeded" and ended[0]["run_id"] == result.run_id
    compact = result.to_dict()
    assert len(json.dumps(compact)) < 400 * n  # a row per service, not every plan

    again = engine.run_region("us-east-1", apply=True)
    assert again.status == "noop" and len(changes) == 1


def test_a_service_refused_by_its_rules_does_not_stop_the_others(lab: Lab, tmp_path: Path,
                                                                 free_port: int) -> None:
    def edit(d: dict[str, Any]) -> None:  # svc001's standby probes a closed port: it fails its checks
        d["services"]["svc001"]["endpoints"][1]["probe"] = {"type": "http",
                                                            "url": f"http://127.0.0.1:{free_port}/health"}

    path = many_services(lab, tmp_path, 3, edit)
    engine = engine_for(path, tmp_path / "state")
    seed_route53(lab.route53_client(), engine.strategy)
    lab.regions["use1"].set_mode("down")

    result = engine.run_region("us-east-1", apply=True)

    by = {o.service: o for o in result.services}
    assert by["svc001"].status == "refused" and "fails its checks" in " ".join(by["svc001"].errors)
    assert by["svc000"].status == by["svc002"].status == "succeeded"
    assert result.status == "partial"
    assert active(lab, "svc001.drill.example.") == "use1-primary"
    assert active(lab, "svc000.drill.example.") == active(lab, "svc002.drill.example.") == "usw2-standby"


# --------------------------------------------------------------------------- interrupted runs
def half_applied_run(lab: Lab, engine: FailoverEngine, service: str) -> str:
    """What a process killed mid-write leaves: a journal opened and a write group started, and the
    records half-switched (the standby PRIMARY too, the primary still PRIMARY), no closing record."""
    plan = engine.plan(service, "failover")
    journal = Journal.open(engine.state_dir, "deadrun00001", "run", [plan])
    journal.group_started("0:route53:aws-local#1", [c.key for c in plan.changes])
    journal.abandon()
    record = plan.changes[0].key.name
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    standby = next(r for r in sets if r["Name"] == record and r["SetIdentifier"] == "usw2-standby")
    lab.route53_client().change_resource_record_sets(HostedZoneId=lab.zones[ZONE], ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {**standby, "Failover": "PRIMARY"}}]})
    return record


@pytest.mark.parametrize("target_up", [True, False], ids=["forward", "back"])
def test_an_interrupted_run_is_shown_and_recovered(lab: Lab, tmp_path: Path, target_up: bool) -> None:
    path = many_services(lab, tmp_path, 1)
    state = tmp_path / "state"
    engine = engine_for(path, state)
    seed_route53(lab.route53_client(), engine.strategy)
    lab.regions["use1"].set_mode("down")
    record = half_applied_run(lab, engine, "svc000")
    if not target_up:
        lab.regions["usw2"].set_mode("down")
    assert set(roles(lab, record).values()) == {"PRIMARY"}  # half-switched: both PRIMARY

    found = engine.interrupted("svc000")
    assert [j["run_id"] for j in found] == ["deadrun00001"]
    assert engine.status("svc000", probe=False)["interrupted"][0]["run_id"] == "deadrun00001"
    planned = engine.recover(["svc000"])  # dry run
    assert planned[0]["status"] == "planned" and set(roles(lab, record).values()) == {"PRIMARY"}

    done = engine.recover(["svc000"], apply=True)

    direction = "forward" if target_up else "back"
    assert done[0]["status"] == f"recovered_{direction}", done
    assert active(lab, record) == ("usw2-standby" if target_up else "use1-primary")
    assert not engine.interrupted() and not open_journals(state)
    rows = history(state / "reports", "svc000")
    assert [r["status"] for r in rows] == ["interrupted"]
    names = [e["event"] for e in events(state)]
    assert "run_interrupted" in names and "recovered" in names


def test_the_next_apply_recovers_an_interrupted_run_first(lab: Lab, tmp_path: Path) -> None:
    path = many_services(lab, tmp_path, 1)
    state = tmp_path / "state"
    engine = engine_for(path, state)
    seed_route53(lab.route53_client(), engine.strategy)
    lab.regions["use1"].set_mode("down")
    record = half_applied_run(lab, engine, "svc000")

    out = engine.run("svc000", "failover", apply=True)

    # recovery finished the dead run forward (the standby is healthy): this run has nothing left to do
    assert out.status == "noop", out.to_dict()
    assert active(lab, record) == "usw2-standby"
    names = [e["event"] for e in events(state)]
    assert names.index("recovered") < names.index("run_started")
    assert not open_journals(state)


# --------------------------------------------------------------------------- force never takes over
def test_force_does_not_overwrite_hand_edited_routing_but_take_over_does(lab: Lab, tmp_path: Path) -> None:
    path = many_services(lab, tmp_path, 1)
    state = tmp_path / "state"
    engine = engine_for(path, state)
    seed_route53(lab.route53_client(), engine.strategy)
    record = "svc000.drill.example."
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    primary = next(r for r in sets if r["Name"] == record and r["SetIdentifier"] == "use1-primary")
    lab.route53_client().change_resource_record_sets(HostedZoneId=lab.zones[ZONE], ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {**primary, "Failover": "SECONDARY", "TTL": 77}}]})
    edited = roles(lab, record)

    forced = engine.run("svc000", "switch", "usw2", apply=True, force=True)
    assert forced.status == "refused" and "take them over explicitly" in " ".join(forced.errors)
    assert roles(lab, record) == edited

    taken = engine.run("svc000", "switch", "usw2", apply=True, take_over=True)
    assert taken.status == "succeeded", taken.to_dict()
    assert active(lab, record) == "usw2-standby"
    ev = [e for e in events(state) if e["event"] == "taken_over"]
    assert len(ev) == 1 and any(r["before"] and r["before"].get("ttl") == 77 for r in ev[0]["resources"])


# --------------------------------------------------------------------------- read-back cannot be read
def test_a_read_back_that_cannot_be_read_ends_unverified_with_the_cooldown_armed(lab: Lab, tmp_path: Path,
                                                                                 fault_proxy: Any) -> None:
    proxy = fault_proxy(lab.moto_url, flavor="aws")

    def edit(d: dict[str, Any]) -> None:
        d["connections"]["aws-local"].update(endpoint_url=proxy.url, max_attempts=2)

    path = many_services(lab, tmp_path, 1, edit)
    state = tmp_path / "state"
    engine = engine_for(path, state)
    seed_route53(lab.route53_client(), engine.strategy)

    def break_reads(call: Any) -> None:  # once the change is in, every zone read answers 500
        proxy.inject("500", at=call.n + 1, writes_only=False, times=None, method="GET", path=r"/rrset$")

    proxy.inject("hook", at=1, forward=True, on_hit=break_reads)

    out = engine.run("svc000", "switch", "usw2", apply=True)

    assert out.status == "unverified", out.to_dict()
    assert "read-back failed" in " ".join(out.errors)
    assert active(lab, "svc000.drill.example.") == "usw2-standby"  # traffic did move
    assert engine.store.load("svc000").last_switch_at is not None  # the cooldown holds
    assert [e for e in events(state) if e["event"] == "unverified"]
    assert not open_journals(state)


# --------------------------------------------------------------------------- the monitor
def test_the_monitor_moves_services_decided_in_one_tick_as_one_transaction(lab: Lab, tmp_path: Path) -> None:
    """Two services decided in the same tick (a region going down) go to the engine together: one
    run id, one ChangeResourceRecordSets for both."""
    import asyncio

    from failover_engine.engine.monitor import Monitor

    path = many_services(lab, tmp_path, 2)
    monitor = Monitor(path, state_dir=tmp_path / "state")
    seed_route53(lab.route53_client(), monitor.loaded.strategy)
    lab.regions["use1"].set_mode("down")
    changes = count_change_calls(monitor.engine, "svc000")

    async def tick() -> dict[str, Any]:
        monitor._batching = True
        for name in ("svc000", "svc001"):
            monitor._submit(name, "switch", "usw2")
        monitor._batching = False
        monitor._flush_submissions()
        futures = {n: monitor.watches[n].running for n in ("svc000", "svc001")}
        outs = {n: await asyncio.wrap_future(f) for n, f in futures.items()}  # type: ignore[arg-type]
        await asyncio.sleep(0)  # let the done callbacks run
        return outs

    try:
        outs = asyncio.run(tick())
    finally:
        monitor.pool.shutdown(wait=True)
    assert [o.status for o in outs.values()] == ["succeeded", "succeeded"], [o.errors for o in outs.values()]
    assert outs["svc000"].run_id == outs["svc001"].run_id
    assert len(changes) == 1
    assert active(lab, "svc000.drill.example.") == active(lab, "svc001.drill.example.") == "usw2-standby"


def test_the_monitor_recovers_an_interrupted_run_when_it_starts(lab: Lab, tmp_path: Path, run_monitor: Any) -> None:
    path = many_services(lab, tmp_path, 1, lambda d: d["services"]["svc000"].update(
        policy={"failover": "manual", "failback": "manual", "cooldown": 0}))
    state = tmp_path / "state"
    engine = engine_for(path, state)
    seed_route53(lab.route53_client(), engine.strategy)
    record = half_applied_run(lab, engine, "svc000")

    mon = run_monitor(path, state_dir=state)
    mon.events.wait_for("recovered", timeout=30)
    mon.stop()

    assert active(lab, record) == "usw2-standby"  # the standby passes its probes: forward
    assert not open_journals(state)
