"""DynamoDB coordination on moto over HTTP: the table, leases with fencing epochs, the engine fenced
mid-run, the monitors' leader lease and the shared verdicts.

Nothing of ours is mocked. A second holder whose clock runs ahead plays the process that took a
lapsed lease over (the lease is judged by the reader's clock); the SDK's own event hooks pick the
moment (a read of the records, the answer to the write), and the records are read back from moto
with an independent client."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover_engine.config.loader import load_strategy
from failover_engine.coordination.dynamodb import (
    DynamoExchange,
    DynamoLock,
    DynamoTable,
    Leadership,
    Leases,
)
from failover_engine.core.errors import CoordinationError, LeaseLost, LockHeld
from failover_engine.core.model import DynamoDbCoordination
from failover_engine.core.selection import SimpleVerdict
from failover_engine.detection.quorum import ObserverReport
from failover_engine.engine.failover import FailoverEngine
from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

USE1, USW2 = "use1-primary", "usw2-standby"
ZONE, RECORD = "drill.example.", "shop.drill.example."


class Clock:
    """A clock this test moves (the lease is judged by the reader's clock)."""

    def __init__(self, offset: float = 0.0):
        import time

        self._time = time.time
        self.offset = offset

    def __call__(self) -> float:
        return self._time() + self.offset


@pytest.fixture
def config(lab_aws: Lab, request: pytest.FixtureRequest) -> DynamoDbCoordination:
    name = "coord-" + request.node.name.replace("[", "-").replace("]", "")[:40].replace("_", "-")
    cfg = DynamoDbCoordination(table=name, endpoint_url=lab_aws.moto_url, lease=10.0)
    DynamoTable(cfg).create()
    return cfg


def leases(cfg: DynamoDbCoordination, offset: float = 0.0, holder: str | None = None) -> Leases:
    return Leases(DynamoTable(cfg), cfg.lease, group=cfg.group, clock=Clock(offset), holder=holder)


def roles(lab: Lab) -> dict[str, str]:
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r.get("SetIdentifier", ""): r["Failover"] for r in sets if r["Name"] == RECORD}


# --------------------------------------------------------------------------- the table and leases
def test_create_is_idempotent_and_switches_ttl_on(config: DynamoDbCoordination) -> None:
    table = DynamoTable(config)
    assert table.create() is False  # made by the fixture already
    client = table.client
    desc = client.describe_table(TableName=config.table)["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    ttl = client.describe_time_to_live(TableName=config.table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "ttl"


def test_a_missing_table_is_a_clear_error(lab_aws: Lab) -> None:
    cfg = DynamoDbCoordination(table="no-such-table", endpoint_url=lab_aws.moto_url)
    with pytest.raises(CoordinationError, match="does not exist.*failover coordination create"):
        leases(cfg).acquire("lease#default#service#shop", "test")


def test_every_acquisition_increments_the_epoch_and_one_holder_at_a_time(config: DynamoDbCoordination) -> None:
    a, b = leases(config, holder="a"), leases(config, holder="b")
    key = a.key("service", "shop")
    first = a.acquire(key, "run 1")
    assert first.epoch == 1 and first.previous is None
    with pytest.raises(LockHeld) as held:
        b.acquire(key, "run 2")
    assert "a at epoch 1 (run 1, lease ends in" in held.value.holder
    assert a.release(first) is True
    second = b.acquire(key, "run 2")
    assert second.epoch == 2 and second.previous is None  # released, not lapsed: a clean hand-over
    assert a.release(first) is False  # not a's any more: nothing happens
    assert a.is_held(key) is True


def test_a_lapsed_lease_is_taken_over_and_its_holder_is_fenced(config: DynamoDbCoordination) -> None:
    a, later = leases(config, holder="a"), leases(config, offset=config.lease + 1, holder="b")
    key = a.key("service", "shop")
    mine = a.acquire(key, "run 1")
    theirs = later.acquire(key, "run 2")  # b's clock is past a's lease: a is paused or cut off
    assert theirs.epoch == mine.epoch + 1
    assert theirs.previous is not None and theirs.previous["holder"] == "a"
    assert theirs.previous["epoch"] == mine.epoch and theirs.previous["purpose"] == "run 1"
    with pytest.raises(LeaseLost, match="epoch 1 is no longer ours.*b at epoch 2"):
        a.renew(mine)
    with pytest.raises(LeaseLost):  # and it stays lost
        a.renew(mine)
    later.renew(theirs)


def test_dynamo_lock_fences_and_reports_epochs(config: DynamoDbCoordination) -> None:
    lock = DynamoLock(leases(config, holder="a"))
    other = DynamoLock(leases(config, offset=config.lease + 1, holder="b"))
    with lock.hold("shop", "run 1"):
        assert lock.is_held("shop")
        lock.fence(["shop"])
        epoch = lock.epochs(["shop"])["shop"]
        with other.hold("shop", "run 2"):
            assert other.epochs(["shop"])["shop"] == epoch + 1
            assert other.taken_over(["shop"])["shop"]["holder"] == "a"
            with pytest.raises(LeaseLost):
                lock.fence(["shop"])
    with pytest.raises(LeaseLost, match="not held by this process"):
        lock.fence(["shop"])


# --------------------------------------------------------------------------- the engine, fenced
def dynamo_strategy(lab: Lab, tmp_path: Path, cfg: DynamoDbCoordination) -> Path:
    data = yaml.safe_load(lab.strategy_path.read_text())
    data["coordination"] = {"type": "dynamodb", "table": cfg.table, "endpoint_url": lab.moto_url,
                            "lease": cfg.lease}
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def take_over_when(engine: FailoverEngine, event: str, cfg: DynamoDbCoordination) -> list[int]:
    """When the engine's Route 53 client reaches ``event`` (an SDK event), a holder whose clock is
    past the lease takes the service's lease over (once). Returns the epochs it took."""
    taken: list[int] = []
    usurper = leases(cfg, offset=cfg.lease + 1, holder="usurper")

    def hook(**_: Any) -> None:
        if not taken:
            taken.append(usurper.acquire(usurper.key("service", "shop"), "usurper").epoch)

    binding = engine.strategy.services["shop"].routing[0]
    engine.adapter(binding).client.meta.events.register(event, hook)
    return taken


def test_the_engine_uses_dynamodb_leases_and_journals_the_epoch(lab_aws: Lab, tmp_path: Path,
                                                                config: DynamoDbCoordination) -> None:
    engine = FailoverEngine(load_strategy(dynamo_strategy(lab_aws, tmp_path, config), state_dir=tmp_path / "s"))
    assert isinstance(engine.lock, DynamoLock)
    out = engine.run("shop", "failover", apply=True)
    assert out.status == "succeeded", out.errors
    assert roles(lab_aws) == {USE1: "SECONDARY", USW2: "PRIMARY"}
    journal = next((tmp_path / "s" / "journal").glob("*.jsonl"))
    opened = json.loads(journal.read_text().splitlines()[0])
    assert opened["epochs"] == {"shop": 1}
    assert not engine.lock.is_held("shop")  # released at the end


def test_a_holder_fenced_before_its_write_writes_nothing(lab_aws: Lab, tmp_path: Path,
                                                         config: DynamoDbCoordination) -> None:
    engine = FailoverEngine(load_strategy(dynamo_strategy(lab_aws, tmp_path, config), state_dir=tmp_path / "s"))
    taken = take_over_when(engine, "before-call.route53.ListResourceRecordSets", config)
    out = engine.run("shop", "failover", apply=True)
    assert taken == [2]
    assert out.status == "refused"
    assert any("lease lost before a provider write" in e for e in out.errors)
    assert roles(lab_aws) == {USE1: "PRIMARY", USW2: "SECONDARY"}  # nothing written
    evs = [json.loads(x) for x in (tmp_path / "s" / "events.jsonl").read_text().splitlines()]
    assert [e["stage"] for e in evs if e["event"] == "fenced"] == ["before a provider write"]


def test_a_holder_fenced_after_its_write_says_unknown_not_succeeded(lab_aws: Lab, tmp_path: Path,
                                                                    config: DynamoDbCoordination) -> None:
    engine = FailoverEngine(load_strategy(dynamo_strategy(lab_aws, tmp_path, config), state_dir=tmp_path / "s"))
    taken = take_over_when(engine, "after-call.route53.ChangeResourceRecordSets", config)
    out = engine.run("shop", "failover", apply=True)
    assert taken == [2]
    assert out.status == "unknown"  # it wrote, but another holder may act now: it cannot tell
    assert any("lease lost before recording the outcome" in e for e in out.errors)
    assert roles(lab_aws) == {USE1: "SECONDARY", USW2: "PRIMARY"}  # the write itself landed
    assert json.loads(Path(out.report_path or "").read_text())["status"] == "unknown"


# --------------------------------------------------------------------------- leader and verdicts
def test_one_leader_and_a_successor_after_the_lease_lapses(config: DynamoDbCoordination) -> None:
    one = Leadership(leases(config, holder="m1"), "m1")
    two = Leadership(leases(config, holder="m2"), "m2")
    assert one.leading() is True and two.leading() is False
    assert one.leading() is True  # renewed
    late = Leadership(leases(config, offset=config.lease + 1, holder="m3"), "m3")
    assert late.leading() is True  # m1 stopped renewing as far as m3's clock says
    assert late.changes[0]["previous"]["holder"] == "m1"
    assert one.leading() is False and one.changes[-1]["event"] == "leader_lost"
    assert late.current()["holder"] == "m3" and late.current()["epoch"] == 2


def test_verdicts_are_shared_between_exchanges(config: DynamoDbCoordination) -> None:
    import time

    now = time.time()
    ex1 = DynamoExchange(DynamoTable(config), ["east", "west", "north"], ttl=30)
    ex2 = DynamoExchange(DynamoTable(config), ["east", "west", "north"], ttl=30)
    ex1.publish(ObserverReport.from_verdicts("east", now, {"shop/use1": SimpleVerdict("unhealthy", "x")}))
    ex2.publish(ObserverReport.from_verdicts("west", now - 60, {"shop/use1": SimpleVerdict("healthy")}))  # stale
    got = {r.observer: r for r in ex2.collect(now)}
    assert set(got) == {"east"}
    assert got["east"].to_dict() == ex1.collect(now)[0].to_dict()


def test_a_region_run_takes_the_region_lease_and_the_service_leases(lab_aws: Lab, tmp_path: Path,
                                                                    config: DynamoDbCoordination) -> None:
    engine = FailoverEngine(load_strategy(dynamo_strategy(lab_aws, tmp_path, config), state_dir=tmp_path / "s"))
    other = DynamoLock(leases(config, holder="other-controller"))
    with other.hold("region:us-east-1", "region us-east-1 run elsewhere"):
        with pytest.raises(LockHeld, match="other-controller"):
            engine.run_region("us-east-1", apply=True)
    assert roles(lab_aws) == {USE1: "PRIMARY", USW2: "SECONDARY"}
    result = engine.run_region("us-east-1", apply=True)
    assert result.status == "succeeded", result.to_dict()
    assert roles(lab_aws) == {USE1: "SECONDARY", USW2: "PRIMARY"}
    probe = leases(config, holder="reader")
    assert probe.read(probe.key("region", "us-east-1"))["epoch"]["N"] == "2"
    assert not probe.is_held(probe.key("service", "shop"))


def test_recovery_leaves_a_dead_run_alone_once_another_holder_ran_the_service(
        lab_aws: Lab, tmp_path: Path, config: DynamoDbCoordination) -> None:
    """A run that died at lease epoch 1 (its journal open) while another controller held the lease
    since (epochs 2 and 3) is superseded, not replayed: replaying its plan could undo their work."""
    from failover_engine.engine.journal import Journal, open_journals

    engine = FailoverEngine(load_strategy(dynamo_strategy(lab_aws, tmp_path, config), state_dir=tmp_path / "s"))
    plan = engine.plan("shop", "failover")
    Journal.open(engine.state_dir, "dead-run", "run", [plan], extra={"epochs": {"shop": 1}})  # left open
    other = leases(config, holder="successor")
    for _i in range(3):  # epochs 1 (the dead run's), 2, 3: the successor's runs
        other.release(other.acquire(other.key("service", "shop"), "successor run"))
    assert [j["pending"] for j in engine.interrupted()] == [["shop"]]
    planned = engine.recover(["shop"], apply=False)
    assert planned[0]["status"] == "superseded" and "epoch 1 (this run) to 4" in planned[0]["why"]
    results = engine.recover(["shop"], apply=True)
    assert [r["status"] for r in results] == ["superseded"]
    assert roles(lab_aws) == {USE1: "PRIMARY", USW2: "SECONDARY"}  # nothing written
    assert not list(open_journals(engine.state_dir))
    assert json.loads(Path(results[0]["report"]).read_text())["status"] == "interrupted"


def test_recovery_finishes_a_dead_run_when_nobody_held_the_lease_since(
        lab_aws: Lab, tmp_path: Path, config: DynamoDbCoordination) -> None:
    from failover_engine.engine.journal import Journal

    engine = FailoverEngine(load_strategy(dynamo_strategy(lab_aws, tmp_path, config), state_dir=tmp_path / "s"))
    plan = engine.plan("shop", "failover")
    other = leases(config, holder="dead-controller")
    other.acquire(other.key("service", "shop"), "the dead run")  # epoch 1, never released: it lapses
    journal = Journal.open(engine.state_dir, "dead-run", "run", [plan], extra={"epochs": {"shop": 1}})
    journal.group_started("0:route53:-#1", [c.key for c in plan.changes])
    engine.lock.leases.clock = Clock(config.lease + 1)  # later: the dead run's lease has lapsed
    results = engine.recover(["shop"], apply=True)
    assert [r["status"] for r in results] == ["recovered_forward"], results
    assert roles(lab_aws) == {USE1: "SECONDARY", USW2: "PRIMARY"}


def test_a_monitor_keeps_observing_and_alerting_while_the_table_hangs(lab_aws: Lab, tmp_path: Path,
                                                                      run_monitor: Any, free_port: int,
                                                                      scrape_metrics: Any) -> None:
    """The table's endpoint accepts connections and never answers: the coordination rounds time
    out in their own thread, the probes keep their cadence on the event loop, the primary's
    failure is seen and alerted (standing_by: it would fail over), and nothing is changed."""
    import socket
    import threading
    import time

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        hang.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(hang.accept()[0])  # never answered
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        data = yaml.safe_load(lab_aws.strategy_path.read_text())
        data["coordination"] = {"type": "dynamodb", "table": "never-answers", "lease": "5s",
                                "endpoint_url": f"http://127.0.0.1:{hang.getsockname()[1]}",
                                "connect_timeout": "1s", "read_timeout": "2s"}
        path = tmp_path / "strategy.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        mon = run_monitor(path, metrics_port=free_port)
        mon.events.wait_for("coordination_unreachable", timeout=60)
        lab_aws.regions["use1"].set_mode("down")
        mon.events.wait_for("verdict", timeout=60, endpoint="use1", health="unhealthy")
        mon.events.wait_for("standing_by", timeout=60, action="failover")

        def failures() -> float:
            return sum(v for (name, labels), v in scrape_metrics(free_port).items()
                       if name == "failover_probe_failures_total" and ("endpoint", "use1") in labels)

        first, t0 = failures(), time.monotonic()
        time.sleep(4.0)  # a window to count probes in (the assertion is on the count, not the time)
        rate = (failures() - first) / (time.monotonic() - t0)
        assert rate >= 1.0, f"{rate:.2f} failed probes/s of use1 (interval 250 ms): the probes stalled"
        assert mon.events.all("run_started") == []
        assert roles(lab_aws) == {USE1: "PRIMARY", USW2: "SECONDARY"}
        mon.stop(timeout=60)
    finally:
        stop.set()
        hang.close()
        for s in held:
            s.close()
