"""Three `failover monitor` processes, one decision: DynamoDB leases with fencing on moto.

Real processes (this venv's console script), each with its own state directory and observer, as
observers in three "regions" (source addresses 127.0.0.1-3), watch the lab's service; the
coordination table and Route 53 are the lab's moto. Each monitor reaches Route 53 through its own
fault proxy (tests/faultproxy.py, one shared call log), which picks the moments (a monitor is
killed or paused inside its own Route 53 call) and counts what reached moto.

"No change made twice", precisely: across every monitor, the Route 53 ChangeResourceRecordSets
calls that moto applied (forwarded by a proxy and answered 200) number exactly one per needed
change — one failover, one write — whoever made it, and the records read back from moto with an
independent client show the standby PRIMARY.

The randomized rounds run in-process at the end of this module: several controllers (leader
lease, service leases, the engine) in threads, with random kills, pauses and clocks, against the
same moto; see ``test_randomized_rounds``. They found that moto checks a conditional write and
applies it without a lock (two monitors both took a free leader lease at epoch 1): the lab now
makes moto's DynamoDB item operations and Route 53 change batches atomic, as AWS's are
(failover_engine/lab/moto_dynamodb.py, moto_route53.py).
"""
from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from failover_engine.coordination.dynamodb import DynamoExchange
from failover_engine.lab.lab import Lab
from failover_engine.lab.monitors import OBSERVERS, FleetSettings, MonitorFleet, MonitorProcess, holder_pid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ZONE, RECORD = "drill.example.", "shop.drill.example."
USE1, USW2 = "use1-primary", "usw2-standby"
STEADY = {USE1: "PRIMARY", USW2: "SECONDARY"}
FAILED_OVER = {USE1: "SECONDARY", USW2: "PRIMARY"}
CHANGE = re.compile(r"/rrset/?$")
SETTINGS = FleetSettings(lease=3.0, interval=0.5, timeout=0.5, verdict_ttl=5.0)
DEADLINE = 45.0  # generous: two shared cores carry three monitors, moto and the lab


def roles(lab: Lab) -> dict[str, str]:
    """The records' failover roles, read from moto with the lab's own client (not a monitor's)."""
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Failover"] for r in sets if r["Name"] == RECORD}


class Fleet:
    """A started MonitorFleet, each monitor behind its own fault proxy (one shared call log)."""

    def __init__(self, lab: Lab, fleet: MonitorFleet, proxies: dict[str, Any], log: Any):
        self.lab, self.fleet, self.proxies, self.log = lab, fleet, proxies, log

    @property
    def monitors(self) -> dict[str, MonitorProcess]:
        return self.fleet.monitors

    def landed_changes(self) -> list[Any]:
        """Every ChangeResourceRecordSets that moto applied, through whichever monitor's proxy."""
        return [c for c in self.log.calls(writes_only=True) if CHANGE.search(c.path) and c.upstream_status == 200]

    def changes_by(self, name: str) -> list[Any]:
        return [c for c in self.proxies[name].writes if CHANGE.search(c.path)]

    def succeeded(self) -> list[tuple[MonitorProcess, dict[str, Any]]]:
        return self.fleet.events("succeeded", service="shop")

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
        return self.fleet.wait_for(predicate, timeout, what)

    def wait_event(self, monitor: MonitorProcess, event: str, timeout: float = DEADLINE,
                   **match: Any) -> dict[str, Any]:
        return self.wait(lambda: next(iter(monitor.events(event, **match)), None), f"{event} from {monitor.observer}",
                         timeout)

    def kill_primary(self) -> float:
        self.lab.regions["use1"].set_mode("down")
        return time.time()


@pytest.fixture
def fleet(lab_aws: Lab, tmp_path: Path, fault_proxy: Callable[..., Any]) -> Iterator[Callable[..., Fleet]]:
    """Factory: ``fleet(first="obs-a")`` starts the three monitors (``first`` first: it leads)."""
    from faultproxy import CallLog

    started: list[MonitorFleet] = []

    def start(first: str = "obs-a", settings: FleetSettings = SETTINGS) -> Fleet:
        log = CallLog()
        proxies = {name: fault_proxy(lab_aws.moto_url, name=name, log=log) for name, _unused in OBSERVERS}
        fl = MonitorFleet(lab_aws, tmp_path / "fleet", settings, route53_urls={n: p.url for n, p in proxies.items()})
        started.append(fl)
        fl.start(order=[first], timeout=DEADLINE)
        fl.wait_steady(DEADLINE)  # the standby's quorum verdict known: a failover is not refused for that
        assert roles(lab_aws) == STEADY
        return Fleet(lab_aws, fl, proxies, log)

    yield start
    for fl in started:
        fl.stop()
        for m, e in fl.events():  # shown when the test fails
            if e["event"] not in ("verdict", "monitor_started", "monitor_stopped"):
                detail = {k: v for k, v in e.items() if k in ("epoch", "previous", "active", "stage", "status",
                                                              "healthy", "holder", "error", "rto_s")}
                print(f"{e['t']:.3f} {m.observer} {e['event']} {detail}")


def one_shot_hook(action: Callable[[Any], None]) -> Callable[[Any], None]:
    """A proxy hook that runs ``action(call)`` for the first call it sees and lets the rest through."""
    fired = threading.Event()

    def on_hit(call: Any) -> None:
        if not fired.is_set():
            fired.set()
            action(call)

    return on_hit


# --------------------------------------------------------------------------- 1. one failover
def test_three_monitors_fail_over_exactly_once(fleet: Callable[..., Fleet]) -> None:
    f = fleet()
    leader = f.fleet.leader()
    assert leader is f.monitors["obs-a"]
    f.kill_primary()
    f.wait(f.succeeded, "a succeeded failover")
    # the followers saw the same outage and stood by; give them time to do anything they would
    for name in ("obs-b", "obs-c"):
        f.wait_event(f.monitors[name], "standing_by", action="failover")
    time.sleep(2 * SETTINGS.interval + 1.0)
    assert [(m.observer, e["active"]) for m, e in f.succeeded()] == [("obs-a", {"usw2": 100})]
    assert len(f.landed_changes()) == 1 and f.changes_by("obs-b") == f.changes_by("obs-c") == []
    assert roles(f.lab) == FAILED_OVER
    assert not f.fleet.events("fenced") and not f.fleet.events("monitor_run_error") and not f.fleet.events("refused")


# --------------------------------------------------------------------------- 2. the leader killed mid-run
@pytest.mark.parametrize("landed", [False, True], ids=["before-its-write", "after-its-write-landed"])
def test_a_leader_killed_mid_run_is_replaced_and_no_change_is_made_twice(fleet: Callable[..., Fleet],
                                                                         landed: bool) -> None:
    """SIGKILL inside the leader's Route 53 write: before it reaches moto (the successor makes it), or
    after moto applied it and before the answer (the successor finds it made and adopts it)."""
    f = fleet()
    dead = f.monitors["obs-a"]
    f.proxies["obs-a"].inject("hook", at=1, writes_only=True, times=None, forward=landed, path=CHANGE.pattern,
                              on_hit=one_shot_hook(lambda call: dead.kill()))
    f.kill_primary()
    heir = f.fleet.wait_leader(DEADLINE, other_than=dead)
    assert not dead.alive
    elected = heir.events("leader_elected")[-1]
    assert holder_pid(elected["previous"]["holder"]) == dead.pid, elected
    assert elected["previous"]["purpose"] == "leader obs-a"
    f.wait(lambda: roles(f.lab) == FAILED_OVER and (heir.events("succeeded") or heir.events("adopted")),
           "the records switched and the run finished by the successor")
    time.sleep(2 * SETTINGS.interval + 1.0)
    landed_calls = f.landed_changes()
    assert len(landed_calls) == 1, [c.summary() for c in f.log.calls()]
    assert landed_calls[0].proxy == ("obs-a" if landed else heir.observer)
    assert roles(f.lab) == FAILED_OVER
    taken = heir.events("lease_taken_over", service="shop")
    assert taken and holder_pid(taken[0]["previous"]["holder"]) == dead.pid, taken
    if landed:
        adopted = heir.events("adopted", service="shop")
        assert adopted and adopted[0]["active"] == {"usw2": 100} and adopted[0]["healthy"] is True, adopted
        assert not heir.events("succeeded")
    else:
        assert [e["active"] for e in heir.events("succeeded")] == [{"usw2": 100}]
    others = [m for m in f.monitors.values() if m is not heir and m is not dead]
    assert not [e for m in others for e in m.events("succeeded")]


# --------------------------------------------------------------------------- 3. the leader paused past its lease
def test_a_paused_leader_is_fenced_when_it_resumes(fleet: Callable[..., Fleet]) -> None:
    """SIGSTOP the leader right after its run read the records (primary still PRIMARY), keep it stopped
    past its lease while another monitor takes over and fails over, then SIGCONT it: it plans from
    what it read, and its fence refuses the write; nothing it does reaches moto."""
    f = fleet()
    paused = f.monitors["obs-a"]
    stopped, release = threading.Event(), threading.Event()
    armed = threading.Event()
    held: list[Any] = []

    def pause(call: Any) -> None:
        held.append(call)
        paused.pause()
        stopped.set()
        release.wait(120)

    hook = one_shot_hook(pause)

    def in_its_run(call: Any) -> None:  # a read of its run: it holds the service's lease (a reconcile does not)
        if armed.is_set() and holder_pid(f.fleet.leases.read(f.fleet.leases.key("service", "shop"))
                                         .get("holder", {}).get("S")) == paused.pid:
            hook(call)

    f.proxies["obs-a"].inject("hook", at=1, writes_only=False, times=None, method="GET", forward=True,
                              on_hit=in_its_run)
    armed.set()
    f.kill_primary()
    f.wait(stopped.is_set, "the leader stopped inside its run's read")
    lease = f.fleet.leases.read(f.fleet.leases.key("service", "shop"))
    assert holder_pid(lease["holder"]["S"]) == paused.pid  # stopped mid-run, holding the service's lease
    heir = f.fleet.wait_leader(DEADLINE, other_than=paused)
    f.wait(lambda: heir.events("succeeded"), f"a failover by {heir.observer}")
    assert roles(f.lab) == FAILED_OVER
    release.set()
    f.wait(lambda: held[0].done, "the held read answered")
    assert held[0].status == 200
    paused.resume()
    fenced = f.wait_event(paused, "fenced", service="shop")
    assert fenced["stage"] == "before a provider write" and fenced["status"] == "refused", fenced
    f.wait_event(paused, "leader_lost")
    time.sleep(2 * SETTINGS.interval + 1.0)
    assert f.changes_by("obs-a") == []  # the fence stopped it: not one write left its process
    assert len(f.landed_changes()) == 1
    assert roles(f.lab) == FAILED_OVER
    assert [m.observer for m, _unused in f.succeeded()] == [heir.observer]
    assert paused.alive


# --------------------------------------------------------------------------- 4. one observer cut off
def test_one_observer_cut_off_causes_no_failover(fleet: Callable[..., Fleet]) -> None:
    f = fleet()
    exchange = DynamoExchange(f.fleet.table, [n for n, _unused in OBSERVERS], SETTINGS.verdict_ttl,
                              group=SETTINGS.group)

    def report_of(observer: str) -> dict[str, Any] | None:
        r = next((r for r in exchange.collect(time.time()) if r.observer == observer), None)
        return r.verdicts.get("shop/use1") if r else None

    f.lab.regions["use1"].partition({"127.0.0.3"})  # obs-c loses the primary; obs-a and obs-b still see it
    f.wait(lambda: (report_of("obs-c") or {}).get("health") == "unhealthy", "obs-c reporting use1 down")
    time.sleep(SETTINGS.lease)  # several ticks of every monitor with obs-c voting down
    assert (report_of("obs-a") or {}).get("health") == "healthy"
    assert not f.fleet.events("detected") and not f.fleet.events("run_started")
    assert not f.fleet.events("standing_by") and not f.log.calls(writes_only=True)
    assert roles(f.lab) == STEADY
    f.lab.regions["use1"].partition({"127.0.0.2", "127.0.0.3"})  # a second observer: a quorum
    f.wait(f.succeeded, "a failover once two observers lose the primary")
    assert len(f.landed_changes()) == 1 and roles(f.lab) == FAILED_OVER


# --------------------------------------------------------------------------- the drill: failover drill --monitors 3
def test_monitors_drill_kills_the_leader_mid_failover_and_reports_the_hand_over(tmp_path: Path) -> None:
    """`failover drill --monitors 3`, as `make monitors-drill` runs it (its own lab, in its own process)."""
    import json
    import subprocess

    from failover_engine.lab.monitors import failover_command

    run_dir = tmp_path / "drill"
    done = subprocess.run([*failover_command(), "drill", "--monitors", "3", "--dir", str(run_dir)],
                          capture_output=True, text=True, timeout=150, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((run_dir / "monitors-drill-report.json").read_text())
    assert report["result"] == "succeeded"
    hand = report["hand_over"]
    assert hand["from"] == "obs-a" and hand["to"] in ("obs-b", "obs-c")
    assert hand["leader_epoch"] == hand["previous_epoch"] + 1
    assert report["killed"]["observer"] == "obs-a" and report["killed"]["journaled"] is True
    roles_ = {m["observer"]: m["role"] for m in report["monitors"]}
    assert sorted(roles_.values()) == ["follower", "killed leader", "successor leader"]
    finished = report["finished_by"]
    assert finished["observer"] == hand["to"] and finished["how"] in ("succeeded", "adopted")
    # the RTO runs from the first failed probe to the successor's validation: the hand-over is in it
    assert report["settings"]["lease"] < finished["rto_s"] < 60, finished
    assert report["timeline_ms"]["leader killed"] < report["timeline_ms"]["successor elected"] \
        < report["timeline_ms"]["validated"]
    assert report["records"]["after"] == FAILED_OVER and report["records"]["before"] == STEADY
    assert "hand-over: obs-a SIGKILLed" in done.stdout and "hand-over included" in done.stdout


# --------------------------------------------------------------------------- 5. randomized rounds, in-process
# Three controllers play three monitors: each has the leader lease, a DynamoLock and a FailoverEngine of
# its own (own clients, state directory and Route 53 proxy), and loops as the monitor does: lead, adopt
# what a lapsed holder left when newly elected, read the records, fail over when the primary is active.
# A round injects one fault into whichever controller reaches a random point of its run:
#
#   read       its run read the records (stale once another acts)    kill   it never makes another call
#   write      its Route 53 write is about to be sent (after fence)  pause  every call of it blocks (as
#   landed     moto applied its write; the answer not yet read              under SIGSTOP) while time
#   validate   its read-back after the write                                passes its lease, until
#   fence-1    its fence before the write                                   another controller finished;
#   fence-2    its fence before recording the outcome                       then it goes on
#                                                                    stall  a pause shorter than the lease
#
# Time is a virtual clock shared by the controllers (each with a skew well inside the lease): a pause
# advances it past the lease at once instead of waiting. Invariants of every round: exactly one
# ChangeResourceRecordSets applied by moto (counted by the proxies: no double failover, no write by a
# fenced holder), the records read back FAILED_OVER, and the run accounted for (one `succeeded`, or the
# successor's healthy `adopted` when its writer died after the write landed).
ROUND_POINTS = ("read", "write", "landed", "validate", "fence-1", "fence-2")
ROUND_FAULTS = ("kill", "pause", "stall", "none")
ROUND_LEASE = 10.0  # virtual seconds; a pause advances the clock past it


class VirtualClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def view(self, skew: float) -> Callable[[], float]:
        return lambda: time.time() + self.offset + skew


class Round:
    """One round: whether the primary is down, which observer is cut off, the fault, what became of it."""

    def __init__(self, number: int, point: str, fault: str, clock: VirtualClock, *, outage: bool = True,
                 cut: str | None = None):
        self.number, self.point, self.fault, self.clock = number, point, fault, clock
        self.outage, self.cut = outage, cut
        self.victim: "Controller | None" = None
        self.stuck = ""  # a pause that nobody took over within its deadline: what the others were doing
        self.controllers: list["Controller"] = []
        self._lock = threading.Lock()
        self.fired = threading.Event()

    def report(self, observer: str, now: float) -> Any:
        """What ``observer`` sees: the primary down in an outage; cut off, it sees nothing (and says it
        is partitioned) in an outage, and loses only the primary otherwise (the case a quorum is for)."""
        from failover_engine.core.selection import SimpleVerdict
        from failover_engine.detection.quorum import ObserverReport

        use1 = "unhealthy" if self.outage or observer == self.cut else "healthy"
        usw2 = "unhealthy" if self.outage and observer == self.cut else "healthy"
        return ObserverReport.from_verdicts(observer, now, {"shop/use1": SimpleVerdict(use1, use1),
                                                            "shop/usw2": SimpleVerdict(usw2, usw2)},
                                            partitioned=self.outage and observer == self.cut)

    def at(self, c: "Controller", point: str) -> None:
        """Called by controller ``c`` at ``point``: inject the round's fault if this is its place."""
        with self._lock:
            if self.fault == "none" or point != self.point or self.victim is not None:
                return
            self.victim = c
        self.fired.set()
        if self.fault == "kill":
            c.dead = True
            self.clock.advance(ROUND_LEASE + 2)  # its leases lapse, for every skew
            c.raise_dead()
        elif self.fault == "stall":
            time.sleep(0.3)  # well inside the lease: nobody takes over
        else:  # pause: every call of c blocks while the others go on, past its lease (for every skew)
            c.paused.clear()
            self.clock.advance(ROUND_LEASE + 2)
            others = [o for o in self.controllers if o is not c]
            deadline = time.monotonic() + 30
            while not any(o.done for o in others) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not any(o.done for o in others):
                self.stuck = "; ".join(f"{o.name}: lead {o.leadership.lease is not None}, outcomes {o.outcomes}, "
                                       f"errors {o.errors[-3:]}" for o in others)
            c.paused.set()


class Host:
    """What outlives a round for one controller: its SDK clients (made once: they cost ~70 ms each)
    and their hooks, which call the round's controller of this host."""

    def __init__(self, index: int, strategy: Path, cfg: Any):
        from failover_engine.coordination.dynamodb import DynamoTable
        from failover_engine.config.loader import load_strategy
        from failover_engine.engine.failover import FailoverEngine

        self.index, self.strategy, self.cfg, self.name = index, strategy, cfg, f"c{index}"
        self.current: "Controller | None" = None
        probe = FailoverEngine(load_strategy(strategy, state_dir=strategy.parent / f"probe-c{index}"))
        self.r53 = probe.adapter(probe.strategy.services["shop"].routing[0]).client
        self.dynamodb = [DynamoTable(cfg).client, DynamoTable(cfg).client]  # leader lease, service leases
        for client in (self.r53, *self.dynamodb):
            client.meta.events.register("before-call", self._to("gate"))
        self.r53.meta.events.register("after-call.route53.ListResourceRecordSets", self._to("after_read"))
        self.r53.meta.events.register("before-call.route53.ChangeResourceRecordSets", self._to("before_write"))
        self.r53.meta.events.register("after-call.route53.ChangeResourceRecordSets", self._to("after_write"))

    def _to(self, method: str) -> Callable[..., None]:
        def hook(**_unused: Any) -> None:
            if self.current is not None:
                getattr(self.current, method)()
        return hook


class Controller:
    """One simulated monitor (see above), for one round, on its host's clients."""

    def __init__(self, host: Host, rnd: Round, state_dir: Path, clock: VirtualClock, skew: float):
        from failover_engine.config.loader import load_strategy
        from failover_engine.coordination.dynamodb import DynamoLock, DynamoTable, Leadership, Leases
        from failover_engine.engine.failover import FailoverEngine

        self.name, self.round = f"c{host.index}", rnd
        view = clock.view(skew)
        group = f"round{rnd.number}"
        self.leadership = Leadership(Leases(DynamoTable(host.cfg, client=host.dynamodb[0]), ROUND_LEASE, group=group,
                                            clock=view, holder=f"{self.name}:leader"), self.name)
        self.lock = DynamoLock(Leases(DynamoTable(host.cfg, client=host.dynamodb[1]), ROUND_LEASE, group=group,
                                      clock=view, holder=f"{self.name}:engine"))
        self.exchange = DynamoExchange(DynamoTable(host.cfg, client=host.dynamodb[0]), ["c0", "c1", "c2"],
                                       ttl=30.0, group=group)
        self.evaluations = 0  # quorum verdicts the leader worked out from all three reports
        self.engine = FailoverEngine(load_strategy(host.strategy, state_dir=state_dir), lock=self.lock)
        self.engine.adapter(self.engine.strategy.services["shop"].routing[0])._client = host.r53
        self.dead, self.done, self.busy, self.adopt_due = False, False, False, False
        self.paused = threading.Event()
        self.paused.set()  # set: running
        self.stop = threading.Event()
        self.outcomes: list[str] = []
        self.adopted: list[Any] = []
        self.errors: list[str] = []
        self._in_run = self._sent = False
        self._fences = 0
        fence = self.lock.fence

        def fenced(names: Any) -> None:
            self._fences += 1
            if self._in_run and self._fences <= 2:
                self.round.at(self, f"fence-{self._fences}")
            self.gate()
            fence(names)

        self.lock.fence = fenced  # type: ignore[method-assign]
        host.current = self
        self.thread = threading.Thread(target=self._loop, name=f"controller-{self.name}", daemon=True)

    # ------------------------------------------------------------------ fault points
    def raise_dead(self) -> None:
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url=f"{self.name} is dead")

    def gate(self) -> None:
        """Before every call of this controller: blocked while paused, refused once dead."""
        self.paused.wait()
        if self.dead:
            self.raise_dead()

    def after_read(self) -> None:
        if self._in_run:
            self.round.at(self, "validate" if self._sent else "read")

    def before_write(self) -> None:
        if self._in_run:
            self._sent = True
            self.round.at(self, "write")

    def after_write(self) -> None:
        if self._in_run:
            self.round.at(self, "landed")

    # ------------------------------------------------------------------ the monitor's loop
    def _loop(self) -> None:
        while not self.stop.is_set() and not self.dead:
            self.busy = True
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - recorded; a dead controller's calls all fail
                if not self.dead:
                    self.errors.append(repr(exc))
            finally:
                self.busy = False
            self.stop.wait(0.03)

    def _step(self) -> None:
        from failover_engine.core.errors import LockHeld
        from failover_engine.detection.quorum import aggregate
        from failover_engine.engine.adoption import adopt

        now = time.time()
        self.exchange.publish(self.round.report(self.name, now))
        elected = self.leadership.lease is None
        if not self.leadership.leading():
            return
        self.adopt_due = self.adopt_due or elected
        if self.adopt_due:  # what a lapsed holder left, first (as Monitor._adopt_lapsed; again if it failed)
            for name in self.lock.lapsed(["shop"]):
                with contextlib.suppress(LockHeld):
                    self.adopted.append(adopt(self.engine, name, by=self.name))
            self.adopt_due = False
        reports = self.exchange.collect(now)
        verdicts = {ep: aggregate(reports, f"shop/{ep}", 2, now, 30.0, observers=["c0", "c1", "c2"])
                    for ep in ("use1", "usw2")}
        self.evaluations += len(reports) == 3
        active = self.engine.observe("shop").active
        if active == {"usw2": 100}:
            self.done = True
        elif active == {"use1": 100} and verdicts["use1"].health.value == "unhealthy":
            self._in_run, self._sent, self._fences = True, False, 0
            try:
                out = self.engine.run("shop", "failover", apply=True, verdicts=verdicts)
                self.outcomes.append(out.status)
            except LockHeld:
                pass
            finally:
                self._in_run = False


@pytest.mark.timeout(900)  # 100 rounds take 90-120 s here; a slow machine gets room, a hang still ends
def test_randomized_rounds(lab_aws: Lab, tmp_path: Path, fault_proxy: Callable[..., Any]) -> None:
    """Point 5: ``FAILOVER_ROUNDS`` (default 100) rounds of random faults; ``FAILOVER_ROUNDS_SEED``
    replays a run (the seed is printed, and named in every failure)."""
    import os
    import random

    import yaml
    from faultproxy import CallLog

    from failover_engine.coordination.dynamodb import DynamoTable
    from failover_engine.core.model import DynamoDbCoordination
    from failover_engine.lab.lab import seed_route53

    rounds = int(os.environ.get("FAILOVER_ROUNDS", "100"))
    seed = int(os.environ.get("FAILOVER_ROUNDS_SEED", str(random.SystemRandom().randrange(2 ** 32))))
    print(f"randomized rounds: {rounds}, seed {seed} (FAILOVER_ROUNDS_SEED={seed} replays them)")
    rng = random.Random(seed)
    only_faults = [f for f in os.environ.get("FAILOVER_ROUNDS_FAULTS", "").split(",") if f]  # to chase one kind
    lab = lab_aws
    lab.regions["use1"].set_mode("down")
    cfg = DynamoDbCoordination(table="rounds", endpoint_url=lab.moto_url, lease=ROUND_LEASE)
    DynamoTable(cfg).create()
    log = CallLog()
    hosts = []
    for i in range(3):
        proxy = fault_proxy(lab.moto_url, name=f"c{i}", log=log)
        data = yaml.safe_load(lab.strategy_path.read_text())
        data["connections"]["aws-local"]["endpoint_url"] = proxy.url
        data["services"]["shop"]["policy"] = {"failover": "automatic", "cooldown": 0, "failback": "manual"}
        data["services"]["shop"]["validation"] = {"attempts": 3, "interval": "100ms"}
        path = tmp_path / f"strategy-c{i}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        hosts.append(Host(i, path, cfg))
    tally: dict[str, int] = {}
    slow: list[str] = []
    errors: dict[str, int] = {}  # what live controllers met (and went on from), by kind
    started = time.monotonic()
    for number in range(rounds):
        point, fault = rng.choice(ROUND_POINTS), rng.choice(only_faults or ROUND_FAULTS)
        outage = rng.random() < 0.8
        cut = rng.choice([None, "c0", "c1", "c2"]) if outage else rng.choice(["c0", "c1", "c2"])
        where = (f"round {number} ({'outage' if outage else 'no outage'}, cut off {cut or '-'}, {fault} at {point}, "
                 f"seed {seed})")
        lab.regions["use1"].set_mode("down" if outage else "up")
        seed_route53(lab.route53_client(), lab.loaded.strategy)  # back to the steady state
        log.reset()
        clock = VirtualClock()
        rnd = Round(number, point, fault, clock, outage=outage, cut=cut)
        rnd.controllers = [Controller(host, rnd, tmp_path / f"r{number}" / host.name, clock,
                                      rng.uniform(-0.05, 0.05) * ROUND_LEASE) for host in hosts]
        for c in rnd.controllers:
            c.thread.start()
        round_started = time.monotonic()
        deadline = round_started + 60
        while time.monotonic() < deadline:
            live = [c for c in rnd.controllers if not c.dead]
            if not outage and any(c.evaluations >= 6 for c in live):
                break  # the leader weighed all three reports six times: nothing happened, nothing will
            settled = any(c.done for c in live) and not any(c.busy for c in live) and \
                (rnd.victim is None or rnd.victim.dead or rnd.victim.paused.is_set())
            if settled and roles(lab) == FAILED_OVER:
                break
            time.sleep(0.02)
        for c in rnd.controllers:
            c.stop.set()
            c.paused.set()
        for c in rnd.controllers:
            c.thread.join(30)
            assert not c.thread.is_alive(), f"{where}: {c.name} did not stop"
        for c in rnd.controllers:
            for e in c.errors:
                errors[e[:160]] = errors.get(e[:160], 0) + 1
        if time.monotonic() - round_started > 5:
            slow.append(f"{where}: {time.monotonic() - round_started:.1f}s")
        landed = [x for x in log.calls(writes_only=True) if CHANGE.search(x.path) and x.upstream_status == 200]
        outcomes = {c.name: c.outcomes for c in rnd.controllers}
        adopted = [a for c in rnd.controllers for a in c.adopted if a.healthy and a.active == {"usw2": 100}]
        succeeded = [s for c in rnd.controllers for s in c.outcomes if s == "succeeded"]
        state = (f"{where}: victim {rnd.victim.name if rnd.victim else '-'}, landed {[x.summary() for x in landed]}, "
                 f"outcomes {outcomes}, adopted {[a.to_dict() for c in rnd.controllers for a in c.adopted]}, "
                 f"errors {[e for c in rnd.controllers for e in c.errors]}")
        if not outage:  # one observer cut off from the primary: no failover
            assert roles(lab) == STEADY and not landed and not any(outcomes.values()), f"false failover: {state}"
            tally["cut off, no outage"] = tally.get("cut off, no outage", 0) + 1
            continue
        assert roles(lab) == FAILED_OVER, f"lost run: {state}"
        assert len(landed) == 1, f"double (or no) write: {state}"
        assert len(succeeded) <= 1, f"double failover: {state}"
        assert succeeded or adopted, f"run not accounted for: {state}"
        assert fault == "none" or rnd.victim is not None, f"the fault never fired: {state}"
        assert not rnd.stuck, f"nobody took over from the paused holder: {rnd.stuck}; {state}"
        key = f"{fault}@{point}" if fault != "none" else "none"
        tally[key] = tally.get(key, 0) + 1
        if rnd.victim is not None and fault == "pause":  # what the paused holder's run became once resumed
            ended = f"paused holder's run: {'/'.join(rnd.victim.outcomes) or 'none'}"
            tally[ended] = tally.get(ended, 0) + 1
    took = time.monotonic() - started
    print(f"{rounds} rounds in {took:.1f}s: {dict(sorted(tally.items()))}" + (f"; slow: {slow}" if slow else "")
          + (f"; errors met: {errors}" if errors else ""))
