"""FailoverEngine end to end on the lab: moto plays Route 53 over HTTP, local servers play the regions.

Nothing of ours is mocked. Every test reads the records back from moto with boto3 (the lab's
client) and looks at what the run left on disk (event log, report, service state), each in a
fresh state directory so cooldowns and incidents do not leak between tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.outcome import Outcome
from failover_engine.core.errors import (
    LockHeld,
    Route53Error,
    StrategyError,
    UnknownEndpointError,
    UnknownServiceError,
)
from failover_engine.lab.lab import Lab, seed_route53
from failover_engine.config.loader import load_strategy
from failover_engine.engine.metrics import history
from failover_engine.engine.state import record_detection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ZONE = "drill.example."
RECORD = "shop.drill.example."
USE1, USW2 = "use1-primary", "usw2-standby"  # the lab's set identifiers
STEADY = {USE1: "PRIMARY", USW2: "SECONDARY"}
FAILED_OVER = {USE1: "SECONDARY", USW2: "PRIMARY"}
CHANGE_CALL = "before-call.route53.ChangeResourceRecordSets"


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def lab_aws_env(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The lab in its steady state, and this process's AWS SDK settings pointing at it (fake keys,
    the lab's empty config files), as a child process would get them from ``lab.env()``."""
    for key, value in lab.env().items():
        if key.startswith("AWS_") or key.lower() == "no_proxy":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return lab


def rrsets(lab: Lab, name: str = RECORD) -> dict[str, dict[str, Any]]:
    """The record sets named ``name`` in the lab's zone, read from moto, keyed by set identifier."""
    client = lab.route53_client()
    sets = client.list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r.get("SetIdentifier", ""): r for r in sets if r["Name"] == name}


def roles(lab: Lab) -> dict[str, str]:
    return {sid: r["Failover"] for sid, r in rrsets(lab).items()}


def strategy_copy(lab: Lab, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the lab's strategy with ``edit`` applied to its parsed YAML."""
    data = yaml.safe_load(lab.strategy_path.read_text())
    edit(data)
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shop(data: dict[str, Any]) -> dict[str, Any]:
    return data["services"]["shop"]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_engine(lab: Lab, state_dir: Path) -> Callable[..., FailoverEngine]:
    def make(path: Path | None = None) -> FailoverEngine:
        return FailoverEngine(load_strategy(path or lab.strategy_path, state_dir=state_dir))

    return make


def count_change_calls(engine: FailoverEngine) -> list[dict[str, Any]]:
    """Observe (not replace) every ChangeResourceRecordSets the engine's Route 53 client sends."""
    calls: list[dict[str, Any]] = []
    built: list[dict[str, Any]] = []
    binding = engine.strategy.services["shop"].routing[0]
    hooks = engine.adapter(binding).client.meta.events
    # the API parameters as the engine gave them; then one entry per request really sent
    hooks.register("before-parameter-build.route53.ChangeResourceRecordSets",
                   lambda params, **_unused: built.append(dict(params)))
    hooks.register(CHANGE_CALL, lambda **_unused: calls.append(built[-1]))  # returns None: the call goes on
    return calls


def events(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_events(state_dir: Path, out: Outcome) -> list[str]:
    return [e["event"] for e in events(state_dir) if e.get("run_id") == out.run_id]


def report(out: Outcome) -> dict[str, Any]:
    assert out.report_path is not None
    return json.loads(Path(out.report_path).read_text())


# --------------------------------------------------------------------------- 1-3: failover, noop, dry run
def test_failover_flips_the_records_and_records_the_run(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    calls = count_change_calls(engine)

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.ok, out.changed, out.errors) == ("succeeded", True, True, [])
    recs = rrsets(lab)
    assert roles(lab) == FAILED_OVER
    assert recs[USE1]["ResourceRecords"] == [{"Value": "192.0.2.10"}]  # values untouched
    assert recs[USW2]["ResourceRecords"] == [{"Value": "198.51.100.10"}]
    assert {r["TTL"] for r in recs.values()} == {30}
    assert len(calls) == 1  # one atomic batch: each record's exact before-record deleted, its after created
    assert [c["Action"] for c in calls[0]["ChangeBatch"]["Changes"]] == ["DELETE", "DELETE", "CREATE", "CREATE"]

    rep = report(out)
    assert Path(out.report_path).parent == state_dir / "reports"
    assert (rep["status"], rep["run_id"], rep["plan"]["target"]) == ("succeeded", out.run_id, {"usw2": 100})
    stamps = rep["timeline"]["timestamps"]
    # propagated_at: the lab template's resolve step, which runs beside validation (not after it)
    assert set(stamps) == {"first_signal_at", "detected_at", "decided_at", "applied_at", "validated_at", "propagated_at"}
    assert all(stamps.values()), stamps
    serial = [v for k, v in stamps.items() if k != "propagated_at"]
    assert serial == sorted(serial) and stamps["propagated_at"] >= stamps["applied_at"]  # ISO UTC strings sort as times
    assert rep["timeline"]["signal"] == "manual" and rep["timeline"]["rto_s"] > 0
    assert rep["validation"]["ok"] and rep["validation"]["read_back"][0]["ok"]

    seen = run_events(state_dir, out)
    assert seen == ["run_started", "decided", "step_applied", "succeeded"]
    assert all(e["service"] == "shop" for e in events(state_dir))
    assert engine.store.load("shop").active == {"usw2": 100}


def test_second_failover_is_a_noop_without_writes(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    calls = count_change_calls(engine)
    assert engine.run("shop", "failover", apply=True).status == "succeeded"
    assert len(calls) == 1

    again = engine.run("shop", "failover", apply=True)

    assert (again.status, again.changed, again.ok) == ("noop", False, True)
    assert len(calls) == 1, "a noop must not call ChangeResourceRecordSets"
    assert roles(lab) == FAILED_OVER
    assert run_events(state_dir, again) == ["run_started", "decided", "noop"]
    assert "already failed over" in again.plan.reason


def test_dry_run_plans_both_changes_and_writes_nothing(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    calls = count_change_calls(engine)
    before = rrsets(lab)

    out = engine.run("shop", "failover")  # apply defaults to False

    assert (out.status, out.changed, out.report_path) == ("planned", False, None)
    assert rrsets(lab) == before and calls == []
    assert events(state_dir) == []
    changes = {c.key.set_identifier: c for c in out.plan.changes}
    assert set(changes) == {USE1, USW2}
    assert changes[USE1].before["failover"] == "PRIMARY" and changes[USE1].after["failover"] == "SECONDARY"
    assert changes[USW2].before["failover"] == "SECONDARY" and changes[USW2].after["failover"] == "PRIMARY"
    assert all(c.action == "update" for c in changes.values())
    diff = out.plan.diff()
    assert len(diff["before"]) == len(diff["after"]) == 2


def test_history_lists_runs_oldest_first(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    outs = [engine.run("shop", "failover", apply=True) for _i in range(8)]  # well within 1-2 s
    assert [o.status for o in outs] == ["succeeded"] + ["noop"] * 7
    assert roles(lab) == FAILED_OVER

    rows = history(state_dir / "reports", "shop")

    assert [Path(r["report"]).name for r in rows] == [Path(o.report_path).name for o in outs]
    assert [r["status"] for r in rows][0] == "succeeded"


# --------------------------------------------------------------------------- 4: failback
def test_failback_after_failover_restores_the_primary(lab: Lab, make_engine, tmp_path: Path,
                                                      state_dir: Path) -> None:
    path = strategy_copy(lab, tmp_path, lambda d: shop(d)["policy"].update(cooldown=0))
    engine = make_engine(path)
    calls = count_change_calls(engine)

    assert engine.run("shop", "failover", apply=True).status == "succeeded"
    assert roles(lab) == FAILED_OVER
    back = engine.run("shop", "failback", apply=True)

    assert (back.status, back.plan.action, back.plan.target) == ("succeeded", "failback", {"use1": 100})
    assert roles(lab) == STEADY
    assert len(calls) == 2
    assert engine.store.load("shop").last_action == "failback"
    assert [e["event"] for e in events(state_dir)].count("succeeded") == 2


# --------------------------------------------------------------------------- 5: unhealthy standby, force
def test_failover_to_a_down_standby_is_refused(lab: Lab, make_engine, state_dir: Path) -> None:
    lab.regions["usw2"].set_mode("down")
    engine = make_engine()
    calls = count_change_calls(engine)

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.changed, out.ok) == ("refused", False, False)
    assert len(out.errors) == 1
    assert "usw2" in out.errors[0] and "connection refused" in out.errors[0]
    assert roles(lab) == STEADY and calls == []
    assert run_events(state_dir, out) == ["run_started", "decided", "refused"]
    refused = [e for e in events(state_dir) if e["event"] == "refused"][0]
    assert refused["reasons"] == out.errors
    assert report(out)["status"] == "refused"


def test_force_overrides_the_refusal_and_validation_still_guards(lab: Lab, make_engine,
                                                                 state_dir: Path) -> None:
    """Forced onto a standby that is down: the records move, the probe of the new active endpoint
    fails, and the engine puts the records back."""
    lab.regions["usw2"].set_mode("down")
    engine = make_engine()
    calls = count_change_calls(engine)

    out = engine.run("shop", "failover", apply=True, force=True)

    assert out.status == "rolled_back" and out.rollback["ok"]
    assert len(calls) == 2  # the switch, then its rollback
    assert calls[0]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["Failover"] != \
        calls[1]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["Failover"]
    assert roles(lab) == STEADY
    assert run_events(state_dir, out) == ["run_started", "decided", "forced", "step_applied",
                                          "validation_failed", "rolled_back"]
    assert any("usw2" in r and "connection refused" in r for r in out.validation.reasons)


def test_force_without_active_probe_moves_traffic(lab: Lab, make_engine, tmp_path: Path,
                                                  state_dir: Path) -> None:
    path = strategy_copy(lab, tmp_path, lambda d: shop(d)["validation"].update(probe_active=False))
    lab.regions["usw2"].set_mode("down")
    engine = make_engine(path)

    assert engine.run("shop", "failover", apply=True).status == "refused"
    assert roles(lab) == STEADY
    out = engine.run("shop", "failover", apply=True, force=True)

    assert out.status == "succeeded"
    assert roles(lab) == FAILED_OVER
    forced = [e for e in events(state_dir) if e["event"] == "forced"]
    assert len(forced) == 1 and "usw2" in forced[0]["overridden"][0]


# --------------------------------------------------------------------------- 6: cooldown
def test_failback_inside_the_cooldown_is_refused(lab: Lab, make_engine, tmp_path: Path,
                                                 state_dir: Path) -> None:
    path = strategy_copy(lab, tmp_path, lambda d: shop(d)["policy"].update(cooldown="5m"))
    engine = make_engine(path)
    calls = count_change_calls(engine)
    assert engine.run("shop", "failover", apply=True).status == "succeeded"
    after_failover = rrsets(lab)

    back = engine.run("shop", "failback", apply=True)

    assert (back.status, back.changed) == ("refused", False)
    assert any(r.startswith("cooldown:") and "300s" in r for r in back.errors), back.errors
    assert rrsets(lab) == after_failover and roles(lab) == FAILED_OVER
    assert len(calls) == 1
    assert run_events(state_dir, back)[-1] == "refused"


# --------------------------------------------------------------------------- 7: lock
def test_run_while_the_service_lock_is_held(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    calls = count_change_calls(engine)

    with engine.lock.hold("shop", "held by the test"):
        with pytest.raises(LockHeld) as info:
            engine.run("shop", "failover", apply=True)

    assert "held by the test" in str(info.value) and "nothing was changed" in str(info.value)
    assert roles(lab) == STEADY and calls == []
    assert events(state_dir) == []
    # released: the next run goes through
    assert engine.run("shop", "failover", apply=True).status == "succeeded"
    assert roles(lab) == FAILED_OVER


HOLD_LOCK = (
    "import sys\n"
    "from failover_engine.coordination.locks import FileLock\n"
    "with FileLock(sys.argv[1]).hold('shop', 'drill in another process'):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def test_lock_held_by_another_process_until_it_dies(lab: Lab, make_engine, state_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(state_dir / "locks")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        engine = make_engine()
        with pytest.raises(LockHeld) as info:
            engine.run("shop", "failover", apply=True)
        assert f"pid {holder.pid}" in str(info.value) and "drill in another process" in str(info.value)
        assert roles(lab) == STEADY
    finally:
        holder.kill()  # dies holding the lock: the kernel releases it
        holder.wait(10)
        holder.stdin.close()
        holder.stdout.close()
    assert engine.run("shop", "failover", apply=True).status == "succeeded"
    assert roles(lab) == FAILED_OVER


# --------------------------------------------------------------------------- 8: validation failure
def test_failed_validation_check_rolls_back(lab: Lab, make_engine, tmp_path: Path, state_dir: Path,
                                            closed_port: int) -> None:
    def edit(d: dict[str, Any]) -> None:
        shop(d)["validation"] = {"attempts": 2, "interval": "50ms",
                                 "checks": [{"type": "http", "url": f"http://127.0.0.1:{closed_port}/health"}]}

    engine = make_engine(strategy_copy(lab, tmp_path, edit))
    calls = count_change_calls(engine)
    before = rrsets(lab)

    out = engine.run("shop", "failover", apply=True)

    assert out.status == "rolled_back" and out.ok is False
    assert out.rollback["ok"] is True and out.rollback["steps"][0]["problems"] == []
    assert rrsets(lab) == before
    assert len(calls) == 2
    assert any("check[0]" in r and "connection refused" in r for r in out.errors), out.errors
    seen = run_events(state_dir, out)
    assert seen[-2:] == ["validation_failed", "rolled_back"] and "step_applied" in seen
    assert engine.store.load("shop").last_switch_at is None  # a rolled-back run starts no cooldown
    assert report(out)["rollback"]["ok"] is True


# --------------------------------------------------------------------------- 9: incident → RTO
def test_recorded_incident_starts_the_rto(lab: Lab, make_engine, state_dir: Path) -> None:
    t0 = time.time() - 10.0
    t1 = t0 + 2.5
    record_detection(state_dir, "shop", "unhealthy", ["use1"], t0, t1, "x")
    engine = make_engine()
    assert engine.store.load("shop").incident is not None

    out = engine.run("shop", "failover", apply=True)

    assert out.status == "succeeded" and roles(lab) == FAILED_OVER
    tl = out.timeline
    assert (tl.signal, tl.first_signal_at, tl.detected_at) == ("failure", t0, t1)
    assert tl.rto == round(tl.validated_at - t0, 6) and tl.rto >= 10.0
    assert tl.phases()["detection"] == pytest.approx(2.5)
    rep = report(out)
    assert rep["timeline"]["signal"] == "failure" and rep["timeline"]["rto_s"] == tl.rto
    assert engine.store.load("shop").incident is None  # consumed by the successful failover
    assert [e["event"] for e in events(state_dir)][0] == "detected"
    started = [e for e in events(state_dir) if e["event"] == "run_started"][0]
    assert started["signal"] == "failure"


# --------------------------------------------------------------------------- 10: bad input
def test_unknown_service_and_endpoint(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    calls = count_change_calls(engine)

    with pytest.raises(UnknownServiceError) as svc_err:
        engine.run("nope", "failover", apply=True)
    assert "'nope'" in str(svc_err.value) and "shop" in str(svc_err.value)

    with pytest.raises(UnknownEndpointError) as ep_err:
        engine.run("shop", "switch", "euc1", apply=True)
    assert "'euc1'" in str(ep_err.value) and "use1" in str(ep_err.value) and "usw2" in str(ep_err.value)

    assert roles(lab) == STEADY and calls == []
    # the lock was released: the next run goes through
    assert engine.run("shop", "switch", "usw2", apply=True).status == "succeeded"


def test_missing_hosted_zone(lab: Lab, make_engine, tmp_path: Path) -> None:
    path = strategy_copy(lab, tmp_path, lambda d: shop(d)["routing"][0].update(hosted_zone="nope.example.",
                                                                               record="shop.nope.example."))
    before = rrsets(lab)

    with pytest.raises(Route53Error) as info:
        make_engine(path).run("shop", "failover", apply=True)

    assert "nope.example." in str(info.value) and info.value.code == "NoSuchHostedZone"
    assert rrsets(lab) == before
    zones = [z["Name"] for z in lab.route53_client().list_hosted_zones()["HostedZones"]]
    assert zones == [ZONE]


def test_route53_unreachable(lab: Lab, make_engine, tmp_path: Path, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    path = strategy_copy(lab, tmp_path, lambda d: d["connections"]["aws-local"].update(
        endpoint_url=url, max_attempts=1))
    before = rrsets(lab)

    started = time.monotonic()
    with pytest.raises(Route53Error) as info:
        make_engine(path).run("shop", "failover", apply=True)

    assert "cannot reach" in str(info.value) and url in str(info.value)
    assert time.monotonic() - started < 10  # max_attempts 1: no retry storm
    assert rrsets(lab) == before


# --------------------------------------------------------------------------- 11: secrets
TOKEN = "SECRET-TOKEN-123"
PASSWORD = "pa55-WORD-xyz"


def _files_text(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(directory.rglob("*")) if p.is_file())


def test_secrets_never_reach_the_event_log_reports_or_state(lab: Lab, make_engine, tmp_path: Path,
                                                            state_dir: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        svc = shop(d)
        for ep in svc["endpoints"]:
            ep["probe"]["headers"] = {"Authorization": f"Bearer {TOKEN}"}
        port = lab.regions["usw2"].port
        svc["validation"]["checks"] = [{"type": "http", "url": f"http://probe:{PASSWORD}@127.0.0.1:{port}/health"}]
        svc["policy"]["cooldown"] = "5m"

    engine = make_engine(strategy_copy(lab, tmp_path, edit))
    lab.regions["usw2"].set_mode("down")
    refused = engine.run("shop", "failover", apply=True)
    lab.regions["usw2"].set_mode("up")
    done = engine.run("shop", "failover", apply=True)
    cooled = engine.run("shop", "failback", apply=True)

    assert (refused.status, done.status, cooled.status) == ("refused", "succeeded", "refused")
    assert roles(lab) == FAILED_OVER
    assert done.validation.probes[-1]["target"] == "check[0]" and done.validation.probes[-1]["ok"]
    written = _files_text(state_dir)
    assert (state_dir / "events.jsonl").exists() and len(list((state_dir / "reports").glob("*.json"))) == 3
    assert (state_dir / "services" / "shop.json").exists()
    outcomes = json.dumps([o.to_dict() for o in (refused, done, cooled)], default=str)
    status = json.dumps(engine.status("shop"), default=str)
    for secret in (TOKEN, PASSWORD):
        assert secret not in written
        assert secret not in outcomes
        assert secret not in status


def test_probe_with_authorization_header_and_url_credentials(lab: Lab, make_engine, tmp_path: Path,
                                                             state_dir: Path) -> None:
    """aiohttp refuses an Authorization header together with URL credentials (ValueError): the probe
    must report that as a failure (or the loader reject it), never crash the run or leak a secret."""

    def edit(d: dict[str, Any]) -> None:
        probe = shop(d)["endpoints"][1]["probe"]
        probe["url"] = probe["url"].replace("http://", f"http://probe:{PASSWORD}@")
        probe["headers"] = {"Authorization": f"Bearer {TOKEN}"}

    path = strategy_copy(lab, tmp_path, edit)
    try:
        engine = make_engine(path)
    except StrategyError as exc:  # rejected when the strategy is validated: a fine fix too
        assert "headers" in str(exc) or "url" in str(exc)
        return
    out = engine.run("shop", "failover", apply=True)  # must not raise: a probe never raises
    assert out.status == "refused" and roles(lab) == STEADY
    assert TOKEN not in _files_text(state_dir) and PASSWORD not in _files_text(state_dir)


# --------------------------------------------------------------------------- 12: weighted and simple
@pytest.mark.parametrize("mode", ["weighted", "simple"])
def test_weighted_and_simple_modes(lab: Lab, make_engine, tmp_path: Path, state_dir: Path, mode: str) -> None:
    record = f"shop-{mode}.drill.example."

    def edit(d: dict[str, Any]) -> None:
        binding = shop(d)["routing"][0]
        binding.update(mode=mode, record=record)
        if mode == "weighted":
            binding.update(active_weight=10, inactive_weight=0)
        else:
            for eb in binding["endpoints"].values():
                eb.pop("set_identifier", None)

    path = strategy_copy(lab, tmp_path, edit)
    engine = make_engine(path)
    seed_route53(lab.route53_client(), engine.strategy)
    if mode == "weighted":
        assert {s: r["Weight"] for s, r in rrsets(lab, record).items()} == {USE1: 10, USW2: 0}
    else:
        assert rrsets(lab, record)[""]["ResourceRecords"] == [{"Value": "192.0.2.10"}]
    calls = count_change_calls(engine)

    out = engine.run("shop", "failover", apply=True)

    assert out.status == "succeeded", out.errors
    recs = rrsets(lab, record)
    if mode == "weighted":
        assert {s: r["Weight"] for s, r in recs.items()} == {USE1: 0, USW2: 10}
        assert recs[USW2]["ResourceRecords"] == [{"Value": "198.51.100.10"}]
    else:
        assert list(recs) == [""] and recs[""]["ResourceRecords"] == [{"Value": "198.51.100.10"}]
    assert roles(lab) == STEADY  # the lab's own failover records were not touched

    again = engine.run("shop", "failover", apply=True)
    assert (again.status, again.changed) == ("noop", False)
    assert len(calls) == 1 and rrsets(lab, record) == recs


# --------------------------------------------------------------------------- rollback never overwrites others
def test_rollback_leaves_a_record_someone_else_changed_meanwhile(lab: Lab, make_engine, tmp_path: Path,
                                                                 state_dir: Path, closed_port: int) -> None:
    """Validation fails (a check on a closed port, retried for over a second); meanwhile someone
    edits the standby's record. The rollback restores what this run wrote and leaves the foreign
    edit in place."""
    import threading

    def edit(d: dict[str, Any]) -> None:
        shop(d)["validation"] = {"attempts": 5, "interval": "300ms", "probe_active": False,
                                 "checks": [{"type": "http", "url": f"http://127.0.0.1:{closed_port}/health"}]}

    engine = make_engine(strategy_copy(lab, tmp_path, edit))
    client = lab.route53_client()
    edited = threading.Event()

    def foreign_edit() -> None:
        deadline = time.time() + 10
        while time.time() < deadline and "step_applied" not in [e["event"] for e in events(state_dir)]:
            time.sleep(0.01)
        r = rrsets(lab)[USW2]
        r = {k: r[k] for k in ("Name", "Type", "SetIdentifier", "Failover", "ResourceRecords")} | {"TTL": 999}
        client.change_resource_record_sets(HostedZoneId=lab.zones[ZONE], ChangeBatch={
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": r}]})
        edited.set()

    t = threading.Thread(target=foreign_edit)
    t.start()
    try:
        out = engine.run("shop", "failover", apply=True)
    finally:
        t.join()
    assert edited.is_set()
    assert out.status == "rolled_back", out.errors
    after = rrsets(lab)
    assert after[USE1]["Failover"] == "PRIMARY"  # what this run wrote was undone
    assert after[USW2]["TTL"] == 999  # the foreign edit survived
    left = out.rollback["steps"][0]["left_as_is"]
    assert len(left) == 1 and USW2 in left[0] and "left as is" in left[0]
    assert out.rollback["ok"] is True and out.rollback["complete"] is False


# --------------------------------------------------------------------------- confirmed plans (expect)
def test_confirmed_plan_runs_and_a_stale_one_is_refused_even_forced(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    confirmed = engine.plan("shop", "failover").fingerprint()
    stale = engine.run("shop", "failover", apply=True, force=True, expect="0" * 32)
    assert stale.status == "refused" and not stale.changed
    assert "stale plan" in stale.errors[0] and confirmed in stale.errors[0]
    assert roles(lab)[USE1] == "PRIMARY" and "refused" in run_events(state_dir, stale)
    out = engine.run("shop", "failover", apply=True, expect=confirmed)
    assert out.status == "succeeded" and roles(lab) == FAILED_OVER
    # the same confirmation once the state moved on: the plan now is a no-op, not the confirmed one
    again = engine.run("shop", "failover", apply=True, expect=confirmed)
    assert again.status == "refused" and "stale plan" in again.errors[0]


def test_region_run_refuses_services_outside_the_confirmed_plan(lab: Lab, make_engine, state_dir: Path) -> None:
    engine = make_engine()
    outs = engine.run_region("us-east-1", apply=True, expect={}).services
    assert [(o.service, o.status) for o in outs] == [("shop", "refused")]
    assert "was not in the confirmed region plan" in outs[0].errors[0]
    assert roles(lab)[USE1] == "PRIMARY"
    fp = engine.plan("shop", "switch", "usw2").fingerprint()
    outs = engine.run_region("us-east-1", apply=True, expect={"shop": fp}).services
    assert [(o.service, o.status) for o in outs] == [("shop", "succeeded")] and roles(lab) == FAILED_OVER


def test_region_run_refuses_a_confirmed_service_that_no_longer_needs_to_move(lab: Lab, make_engine,
                                                                             state_dir: Path) -> None:
    engine = make_engine()
    fp = engine.plan("shop", "switch", "usw2").fingerprint()
    assert engine.run("shop", "switch", "usw2", apply=True).status == "succeeded"
    outs = engine.run_region("us-east-1", apply=True, expect={"shop": fp}).services
    assert [(o.service, o.status) for o in outs] == [("shop", "refused")]
    assert "stale plan" in outs[0].errors[0] and "not in us-east-1" in outs[0].errors[0]
