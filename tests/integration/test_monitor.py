"""`failover monitor` end to end on the lab: detection, quorum, safety guards, reload, shutdown.

The Monitor runs for real - in a background thread of this process (``run_monitor``) or as a
``failover monitor`` subprocess - against the lab's region servers over real sockets and moto
playing Route 53. Tests drive the regions (down, errors, slow, partitioned from an observer's
source address) and read what happened from the event log, the records in moto, the observers'
reports and the Prometheus endpoint. Every test has a fresh state directory.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from failover_engine.lab.lab import Lab
from failover_engine.lab.regions import RegionServer
from failover_engine.detection.quorum import InMemoryExchange, ObserverReport, aggregate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ZONE = "drill.example."
RECORD = "shop.drill.example."
USE1, USW2 = "use1-primary", "usw2-standby"  # the lab's set identifiers
STEADY = {USE1: "PRIMARY", USW2: "SECONDARY"}
FAILED_OVER = {USE1: "SECONDARY", USW2: "PRIMARY"}
FAST = {"interval": "100ms", "timeout": "100ms", "failure_threshold": 2, "recovery_threshold": 2}
QUORUM = {**FAST, "interval": "150ms", "timeout": "150ms"}  # 3 observers: 3x the probes
SLOWER = {**FAST, "interval": "250ms", "timeout": "250ms"}
OBSERVERS = [{"name": "obs1", "source_address": "127.0.0.1"},
             {"name": "obs2", "source_address": "127.0.0.2"},
             {"name": "obs3", "source_address": "127.0.0.3"}]
CHANGE_CALL = "before-call.route53.ChangeResourceRecordSets"


# --------------------------------------------------------------------------- helpers
def roles(lab: Lab) -> dict[str, str]:
    """Failover role of each record set of the lab's record, read from moto."""
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Failover"] for r in sets if r["Name"] == RECORD}


def write_strategy(lab: Lab, tmp_path: Path, *, detection: dict[str, Any] | None = None,
                   policy: dict[str, Any] | None = None,
                   edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A copy of the lab's strategy with the shop service's detection / policy replaced."""
    data = yaml.safe_load(lab.strategy_path.read_text())
    shop = data["services"]["shop"]
    shop["detection"] = dict(detection or FAST)
    shop["policy"] = dict(policy or {"failover": "automatic", "cooldown": 0, "failback": "manual"})
    if edit is not None:
        edit(data)
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def save(path: Path, data: dict[str, Any]) -> None:
    """Replace the strategy file at once (as editors and config tools do), so that the monitor never
    reads a half-written file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def partition(region: RegionServer, sources: set[str]) -> None:
    region.partition(sources)


def three_observers(data: dict[str, Any], **monitoring: Any) -> None:
    data["monitoring"] = {"observers": OBSERVERS, "quorum": 2, **monitoring}


def wait_report(exchange: InMemoryExchange, observer: str, predicate: Callable[[ObserverReport], bool],
                timeout: float = 5.0) -> ObserverReport:
    """The current report of ``observer`` once it satisfies ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        report = next((r for r in exchange.collect(time.time()) if r.observer == observer), None)
        if report is not None and predicate(report):
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"{observer}: no such report within {timeout}s; last: {report}")
        time.sleep(0.02)


def quorum_of(exchange: InMemoryExchange, endpoint: str) -> Any:
    now = time.time()
    return aggregate(exchange.collect(now), f"shop/{endpoint}", 2, now, 30.0, observers=["obs1", "obs2", "obs3"])


def hold(seconds: float) -> None:
    """Let the monitor run for a few detection periods (to show that something does NOT happen)."""
    time.sleep(seconds)


def count_change_calls(monitor: Any) -> list[str]:
    """Observe (not replace) every ChangeResourceRecordSets request of the monitor's engine."""
    calls: list[str] = []
    binding = monitor.engine.strategy.services["shop"].routing[0]
    monitor.engine.adapter(binding).client.meta.events.register(CHANGE_CALL, lambda **_unused: calls.append("change"))
    return calls


def slow_validation(check_url: str) -> Callable[[dict[str, Any]], None]:
    """An edit: validation checks ``check_url`` 3 times, 0.5 s apart (with a check region that answers
    after the 250 ms timeout, a failover stays in flight for about 1.75 s, then rolls back)."""

    def edit(data: dict[str, Any]) -> None:
        data["services"]["shop"]["validation"] = {
            "attempts": 3, "interval": "0.5s", "checks": [{"type": "http", "url": f"{check_url}/health"}]}

    return edit


def metric(sample: dict[Any, float], name: str, **labels: str) -> float | None:
    return sample.get((name, frozenset(labels.items())))


def wait_metric(scrape: Callable[[int], dict[Any, float]], port: int, value: float, name: str,
                timeout: float = 5.0, **labels: str) -> None:
    """Scrape until the sample ``name{labels}`` has ``value`` (gauges follow the verdicts tick by tick)."""
    deadline = time.monotonic() + timeout
    while (seen := metric(scrape(port), name, **labels)) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {seen}, not {value}, after {timeout}s")
        time.sleep(0.05)


# --------------------------------------------------------------------------- failover and failback
def test_fails_over_and_back_per_policy_with_rto_and_metrics(lab_aws: Lab, tmp_path: Path, run_monitor,
                                                             free_port: int, scrape_metrics) -> None:
    lab = lab_aws
    path = write_strategy(lab, tmp_path, policy={"failover": "automatic", "cooldown": "0.5s",
                                                 "failback": "automatic", "failback_stable_period": "1s"})
    mon = run_monitor(path, metrics_port=free_port)
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")
    mon.events.wait_for("verdict", endpoint="usw2", health="healthy")
    assert roles(lab) == STEADY

    lab.regions["use1"].set_mode("down")
    over = mon.events.wait_for("succeeded", where=lambda e: e["active"] == {"usw2": 100})
    assert roles(lab) == FAILED_OVER
    started = mon.events.wait_for("run_started", run_id=over["run_id"])
    assert (started["action"], started["target"], started["signal"]) == ("failover", "usw2", "failure")
    detected = mon.events.all("detected")[0]
    assert detected["signal"] == "failure" and detected["endpoints"] == ["use1"]
    assert "connection refused" in detected["reason"]
    # RTO runs from the first failed probe: detection (2 probes, 100 ms apart) is part of it
    assert 0.05 < over["phases_s"]["detection"] < over["rto_s"] < 5.0
    sample = scrape_metrics(free_port)
    assert metric(sample, "failover_runs_total", service="shop", action="failover", outcome="succeeded") == 1.0
    assert metric(sample, "failover_rto_seconds_count", service="shop", action="failover") == 1.0
    wait_metric(scrape_metrics, free_port, 0.0, "failover_endpoint_health", service="shop", endpoint="use1")
    wait_metric(scrape_metrics, free_port, 1.0, "failover_endpoint_health", service="shop", endpoint="usw2")

    lab.regions["use1"].set_mode("up")
    recovered = mon.events.wait_for("verdict", endpoint="use1", health="healthy", count=2)
    back = mon.events.wait_for("succeeded", where=lambda e: e["active"] == {"use1": 100})
    assert roles(lab) == STEADY
    back_started = mon.events.wait_for("run_started", run_id=back["run_id"])
    assert (back_started["action"], back_started["signal"]) == ("failback", "recovery")
    assert back_started["t"] - recovered["t"] >= 1.0  # failback_stable_period
    assert back["rto_s"] >= 1.0  # from the first good probe of the primary, through the stable period
    sample = scrape_metrics(free_port)
    assert metric(sample, "failover_runs_total", service="shop", action="failback", outcome="succeeded") == 1.0
    wait_metric(scrape_metrics, free_port, 1.0, "failover_endpoint_health", service="shop", endpoint="use1")
    assert [e["event"] for e in mon.events.all() if e["event"] in ("succeeded", "refused", "rolled_back")] == \
        ["succeeded", "succeeded"]

    mon.stop()
    assert mon.events.names()[-1] == "monitor_stopped"
    with pytest.raises(OSError):  # the metrics endpoint was closed with the monitor
        socket.create_connection(("127.0.0.1", free_port), timeout=1).close()


def test_manual_policy_only_alerts_once_per_outage(lab_aws: Lab, tmp_path: Path, run_monitor) -> None:
    lab = lab_aws
    path = write_strategy(lab, tmp_path, policy={"failover": "manual"})
    mon = run_monitor(path)
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")

    lab.regions["use1"].set_mode("down")
    alert = mon.events.wait_for("alert")
    assert alert["reason"].startswith("'use1' unhealthy (") and alert["reason"].endswith(
        "policy is manual: alert only")
    hold(1.0)  # ten more detection periods, the primary still down
    assert len(mon.events.all("alert")) == 1, "one alert per outage, not one per probe"

    lab.regions["use1"].set_mode("up")
    mon.events.wait_for("verdict", endpoint="use1", health="healthy", count=2)
    lab.regions["use1"].set_mode("down")
    mon.events.wait_for("alert", count=2)  # a new outage alerts again

    mon.stop()
    names = mon.events.names()
    assert "run_started" not in names and "detected" not in names
    assert roles(lab) == STEADY


# --------------------------------------------------------------------------- flapping
def test_flapping_primary_fails_over_at_most_once_per_cooldown(lab_aws: Lab, tmp_path: Path, run_monitor) -> None:
    """The primary goes down for 0.5 s and up for 1 s, four times. The first outage fails over; the
    cooldown (3 s) refuses the failback, and the flap guard then holds automation, so no switch
    follows - even though the monitor retries refused decisions every 0.3 s here. (Without the flap
    guard, the failback would go through in the third up phase; without the cooldown, in the first.)"""
    lab = lab_aws
    cooldown = 3.0
    path = write_strategy(lab, tmp_path, detection={**FAST, "flap": {"max_transitions": 2, "window": "20s"}},
                          policy={"failover": "automatic", "cooldown": cooldown, "failback": "automatic",
                                  "failback_stable_period": "0.2s"})
    mon = run_monitor(path, retry_after=0.3)
    changes = count_change_calls(mon.monitor)
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")

    stop = threading.Event()

    def flap() -> None:
        for _i in range(4):
            for mode, lasting in (("down", 0.5), ("up", 1.0)):
                lab.regions["use1"].set_mode(mode)
                if stop.wait(lasting):
                    return

    flapper = threading.Thread(target=flap, name="flapper", daemon=True)
    began = time.time()
    flapper.start()
    try:
        flapping = mon.events.wait_for("flapping", timeout=8)
        flapper.join(10)
    finally:
        stop.set()
    hold(0.5)  # primary up and healthy again; automation must still hold
    mon.stop()
    lasted = time.time() - began

    assert flapping["endpoints"] == ["use1"] and flapping["action"] == "automation held"
    switches = [e["t"] for e in mon.events.all("succeeded")]
    assert 1 <= len(switches) <= 1 + int(lasted // cooldown)
    assert all(b - a >= cooldown for a, b in zip(switches, switches[1:])), switches
    assert len(switches) == 1 and len(changes) == 1  # the flap guard held after the first failover
    assert not [e for e in mon.events.all("run_started") if e["t"] > flapping["t"]], "automation was not held"
    assert any(r.startswith("cooldown:") for e in mon.events.all("refused") for r in e["reasons"])
    assert roles(lab) == FAILED_OVER


# --------------------------------------------------------------------------- quorum and partitions
def test_one_partitioned_observer_causes_no_failover_two_do(lab_aws: Lab, tmp_path: Path, run_monitor) -> None:
    lab = lab_aws
    path = write_strategy(lab, tmp_path, detection=QUORUM, edit=three_observers)
    exchange = InMemoryExchange()
    mon = run_monitor(path, exchange=exchange, retry_after=1.0)
    use1 = lab.regions["use1"]
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")

    partition(use1, {"127.0.0.3"})
    seen = wait_report(exchange, "obs3", lambda r: r.verdicts["shop/use1"]["health"] == "unhealthy")
    assert not seen.partitioned  # obs3 still reaches usw2: it votes, it does not abstain
    hold(1.0)  # several detection periods with obs3 voting "down"
    q = quorum_of(exchange, "use1")
    assert (q.health.value, q.down_votes, q.up_votes) == ("healthy", 1, 2), q.reason
    assert [e["health"] for e in mon.events.all("verdict", endpoint="use1")] == ["unknown", "healthy"]
    assert not mon.events.all("run_started") and roles(lab) == STEADY

    partition(use1, {"127.0.0.2", "127.0.0.3"})
    done = mon.events.wait_for("succeeded")
    assert done["active"] == {"usw2": 100} and roles(lab) == FAILED_OVER
    down = mon.events.all("verdict", endpoint="use1", health="unhealthy")[0]
    assert down["reason"].startswith("2 of 3 observers report down (quorum 2): obs2: ")
    assert down["reason"].endswith("; 1 report up")


def test_observer_cut_off_from_everything_abstains(lab_aws: Lab, tmp_path: Path, run_monitor, spare_region) -> None:
    """With a control target, an observer that loses both regions and the control target concludes
    it is the one partitioned and abstains; with one of the two others down-voting, there is no
    quorum and nothing happens. Once it sees again (except the primary), 2 of 3 vote down: failover."""
    lab = lab_aws
    control = spare_region("ctl")
    path = write_strategy(lab, tmp_path, detection=QUORUM, edit=lambda d: three_observers(
        d, control_targets=[{"type": "http", "url": f"{control.url}/health"}]))
    exchange = InMemoryExchange()
    mon = run_monitor(path, exchange=exchange, retry_after=1.0)
    use1, usw2 = lab.regions["use1"], lab.regions["usw2"]
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")
    wait_report(exchange, "obs3", lambda r: r.control_ok is True)

    for server in (use1, usw2, control):
        partition(server, {"127.0.0.3"})
    cut = wait_report(exchange, "obs3", lambda r: r.partitioned and all(
        v["health"] == "unhealthy" for v in r.verdicts.values()))
    assert cut.control_ok is False and set(cut.verdicts) == {"shop/use1", "shop/usw2"}

    partition(use1, {"127.0.0.2", "127.0.0.3"})  # obs2 loses the primary too; obs1 still sees it
    split = mon.events.wait_for("verdict", endpoint="use1", health="unknown",
                                where=lambda e: "abstains (partitioned)" in e["reason"])
    assert split["reason"].startswith("no quorum: 1 of 2 required observers report down, 1 up")
    assert "obs3 abstains (partitioned)" in split["reason"]
    hold(1.0)
    assert not mon.events.all("run_started") and roles(lab) == STEADY
    assert mon.events.all("verdict", endpoint="usw2", health="unhealthy") == []  # obs3's view never counted

    partition(usw2, set())
    partition(control, set())
    wait_report(exchange, "obs3", lambda r: not r.partitioned)
    done = mon.events.wait_for("succeeded")
    assert done["active"] == {"usw2": 100} and roles(lab) == FAILED_OVER


# --------------------------------------------------------------------------- consistency gate
def test_consistency_gate_blocks_the_promotion_until_it_passes(lab_aws: Lab, tmp_path: Path, run_monitor,
                                                               spare_region) -> None:
    lab = lab_aws
    replica = spare_region("replica", mode="errors")  # e.g. a replication-lag check failing

    def gate(data: dict[str, Any]) -> None:
        data["services"]["shop"]["endpoints"][1]["gate"] = {"type": "http", "url": f"{replica.url}/health"}

    path = write_strategy(lab, tmp_path, detection=SLOWER, edit=gate)  # the gate probe's timeout: 250 ms
    mon = run_monitor(path, retry_after=0.5)
    mon.events.wait_for("verdict", endpoint="usw2", health="healthy")

    lab.regions["use1"].set_mode("down")
    refused = mon.events.wait_for("refused")
    assert refused["reasons"] == ["consistency gate of 'usw2' failed: status 503 not in [200]"]
    hold(0.3)
    assert roles(lab) == STEADY and not mon.events.all("step_applied")

    replica.set_mode("up")
    done = mon.events.wait_for("succeeded")
    assert done["active"] == {"usw2": 100} and roles(lab) == FAILED_OVER


# --------------------------------------------------------------------------- reload
def test_a_broken_strategy_edit_is_rejected_and_monitoring_goes_on(lab_aws: Lab, tmp_path: Path,
                                                                   run_monitor) -> None:
    lab = lab_aws
    path = write_strategy(lab, tmp_path)
    good = yaml.safe_load(path.read_text())
    mon = run_monitor(path)
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")

    broken = yaml.safe_load(path.read_text())
    broken["services"]["shop"]["detection"]["failure_threshold"] = 0
    broken["services"]["shop"]["policy"]["failover"] = "manual"  # would stop automation, if it were taken
    save(path, broken)
    rejected = mon.events.wait_for("reload_rejected")
    assert rejected["file"] == str(path)
    assert len(rejected["problems"]) == 1
    assert "services.shop.detection.failure_threshold" in rejected["problems"][0]
    assert "greater than or equal to 1" in rejected["problems"][0]

    lab.regions["use1"].set_mode("down")  # the previous strategy still rules: automatic failover
    done = mon.events.wait_for("succeeded")
    assert done["active"] == {"usw2": 100} and roles(lab) == FAILED_OVER
    assert not mon.events.all("alert")

    good["services"]["shop"]["policy"].update(failback="automatic", failback_stable_period="0.3s")
    save(path, good)
    reloaded = mon.events.wait_for("reloaded")
    assert reloaded["services"] == ["shop"]
    lab.regions["use1"].set_mode("up")  # the new policy fails back
    back = mon.events.wait_for("succeeded", count=2)
    assert back["active"] == {"use1": 100} and roles(lab) == STEADY


BAD_RELOADS = [
    # (what the new file is, how to make its bytes from the good text, what the rejection says)
    ("not UTF-8", lambda good: good.replace(b"shop", b"sh\xffop", 1), "not UTF-8 at byte"),
    ("not YAML", lambda good: b"services: [unclosed\n", "not valid YAML"),
    ("invalid", lambda good: good.replace(b"failure_threshold: 2", b"failure_threshold: true"),
     "not the boolean true"),
    ("duplicate key", lambda good: good.replace(b"services:\n", b"services:\n  shop: {}\n", 1), "duplicate key 'shop'"),
    ("too deep", lambda good: good + b"x: " + b"[" * 200 + b"]" * 200 + b"\n", "nested deeper than 64"),
    ("too big", lambda good: good + b"#" * (1 << 20) + b"\n", "over the limit of 1048576 bytes"),
    ("not a mapping", lambda good: b"- a\n- b\n", "YAML mapping"),
]


def test_every_kind_of_failed_reload_keeps_the_old_strategy(lab_aws: Lab, tmp_path: Path, run_monitor) -> None:
    """Bad bytes, bad YAML, an invalid strategy, a file too big or too deep: each is "reload
    rejected, old strategy kept: <why>" in the log and the event log, never an error in a tick, and
    the monitor goes on watching with the strategy it had."""
    lab = lab_aws
    path = write_strategy(lab, tmp_path)
    good = path.read_bytes()
    lines: list[str] = []
    mon = run_monitor(path, log=lines.append)
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")
    for i, (kind, make, why) in enumerate(BAD_RELOADS, start=1):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(make(good))
        os.replace(tmp, path)
        rejected = mon.events.wait_for("reload_rejected", count=i)
        assert rejected["message"].startswith("reload rejected, old strategy kept: "), kind
        assert why in rejected["message"] and str(path) in rejected["message"], (kind, rejected["message"])
        assert any(line.startswith("strategy reload rejected, old strategy kept: ") and why in line
                   for line in lines), (kind, lines[-3:])
    assert mon.alive and not mon.events.all("monitor_error")
    assert not [line for line in lines if "error in a tick" in line]

    lab.regions["use1"].set_mode("down")  # the old strategy still rules: automatic failover
    done = mon.events.wait_for("succeeded")
    assert done["active"] == {"usw2": 100} and roles(lab) == FAILED_OVER
    data = yaml.safe_load(good)
    data["services"]["shop"]["description"] = "edited"
    save(path, data)
    assert mon.events.wait_for("reloaded")["services"] == ["shop"]
    assert mon.monitor.loaded.strategy.services["shop"].description == "edited"


def test_a_service_removed_while_its_failover_runs(lab_aws: Lab, tmp_path: Path, run_monitor,
                                                   spare_region) -> None:
    """A reload drops (renames) a service whose failover is in flight: the run still ends, the
    monitor forgets the old service and goes on watching the new one."""
    lab = lab_aws
    check = spare_region("check", mode="slow", delay_ms=300)
    path = write_strategy(lab, tmp_path, detection=SLOWER, edit=slow_validation(check.url))
    mon = run_monitor(path)
    mon.events.wait_for("verdict", endpoint="use1", health="healthy")
    lab.regions["use1"].set_mode("down")
    started = mon.events.wait_for("run_started")

    renamed = yaml.safe_load(path.read_text())
    renamed["services"]["shop2"] = renamed["services"].pop("shop")
    renamed["services"]["shop2"]["routing"][0]["record"] = "shop2.drill.example."
    save(path, renamed)
    mon.events.wait_for("reloaded")
    mon.events.wait_for("rolled_back", run_id=started["run_id"])
    mon.events.wait_for("verdict", service="shop2", endpoint="usw2", health="healthy")
    hold(0.5)
    assert mon.alive, "the monitor died"
    mon.stop()  # re-raises what the monitor's loop raised, if anything
    assert roles(lab) == STEADY
    assert not mon.events.all("monitor_read_error")
    assert [e["run_id"] for e in mon.events.all("run_started")] == [started["run_id"]]


# --------------------------------------------------------------------------- shutdown
def start_cli_monitor(lab: Lab, path: Path, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "failover_engine.cli.main", "monitor", "-f", str(path),
                             "--state-dir", str(state)], env=lab.child_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_cli_monitor(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, float]:
    """SIGTERM; (exit code, stderr, seconds to exit). Killed (and the test failed) if it hangs."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _unused, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _unused, err = proc.communicate()
        pytest.fail(f"the monitor did not exit within {timeout}s of SIGTERM; stderr:\n{err}")
    return proc.returncode, err, time.monotonic() - sent


def test_sigterm_stops_the_cli_monitor_cleanly(lab: Lab, tmp_path: Path, event_tail) -> None:
    path = write_strategy(lab, tmp_path)
    state = tmp_path / "state"
    events = event_tail(state)
    proc = start_cli_monitor(lab, path, state)
    try:
        events.wait_for("monitor_started", timeout=20)
        events.wait_for("verdict", endpoint="use1", health="healthy")
    finally:
        rc, err, took = stop_cli_monitor(proc, timeout=10)
    assert rc == 0, err
    assert took < 5
    assert "monitoring shop with observer(s) local" in err
    stopped = events.all()[-1]
    assert stopped["event"] == "monitor_stopped" and stopped["pid"] == proc.pid


def test_sigterm_during_a_failover_lets_the_run_finish(lab: Lab, tmp_path: Path, event_tail,
                                                       spare_region) -> None:
    """Validation is slow (a check whose answers come just after the timeout, 3 attempts 0.5 s
    apart): SIGTERM arrives while the failover runs, and the monitor exits only once it ended."""
    check = spare_region("check", mode="slow", delay_ms=300)
    path = write_strategy(lab, tmp_path, detection=SLOWER, edit=slow_validation(check.url))
    state = tmp_path / "state"
    events = event_tail(state)
    proc = start_cli_monitor(lab, path, state)
    try:
        events.wait_for("monitor_started", timeout=20)
        events.wait_for("verdict", endpoint="use1", health="healthy")
        lab.regions["use1"].set_mode("down")
        started = events.wait_for("run_started", timeout=10)
    finally:
        terminated_at = time.time()
        rc, err, took = stop_cli_monitor(proc, timeout=15)
    assert rc == 0, err
    run = [e for e in events.all() if e.get("run_id") == started["run_id"]]
    assert [e["event"] for e in run][-2:] == ["validation_failed", "rolled_back"]
    assert run[-1]["t"] > terminated_at  # the run was in flight when SIGTERM came, and it finished
    assert roles(lab) == STEADY  # rolled back: never half-applied
    assert events.all()[-1]["event"] == "monitor_stopped" and events.all()[-1]["t"] >= run[-1]["t"]
    ends = {e["run_id"] for e in events.all() if e["event"] in ("succeeded", "rolled_back", "rollback_failed",
                                                                "refused", "noop", "errored", "failed")}
    assert {e["run_id"] for e in events.all("run_started")} <= ends  # no run started without an end
    assert "waiting for 1 running failover(s) to finish" in err


# --------------------------------------------------------------------------- reconcile
def test_a_change_made_elsewhere_is_seen_by_the_periodic_reconcile(lab_aws: Lab, tmp_path: Path,
                                                                   run_monitor) -> None:
    """Someone flips the records by hand while the monitor runs: the next reconcile reads the new
    state ("drift" event) instead of acting on a stale cache."""
    lab = lab_aws
    path = write_strategy(lab, tmp_path, policy={"failover": "manual"})
    mon = run_monitor(path, reconcile_interval=0.3)
    mon.events.wait_for("verdict", endpoint="usw2", health="healthy")

    client = lab.route53_client()
    sets = client.list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    flipped = [{"Action": "UPSERT", "ResourceRecordSet": {
        **{k: r[k] for k in ("Name", "Type", "TTL", "SetIdentifier", "ResourceRecords")},
        "Failover": "SECONDARY" if r["Failover"] == "PRIMARY" else "PRIMARY"}}
        for r in sets if r["Name"] == RECORD]
    client.change_resource_record_sets(HostedZoneId=lab.zones[ZONE], ChangeBatch={"Changes": flipped})

    drift = mon.events.wait_for("drift")
    assert drift["cached"] == {"use1": 100} and drift["provider"] == {"usw2": 100}
    mon.stop()
    assert "run_started" not in mon.events.names()  # manual policy: seen, not acted on
