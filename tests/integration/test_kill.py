"""The kill test of issue 11: a real ``failover apply`` process SIGKILLed mid-run, then finished.

The three-cloud service ``shop`` of test_fault_matrix.py (Route 53 on moto, Cloud DNS and Traffic
Manager emulators, each behind a fault proxy with one shared call log) is failed over by a child
process, ``failover apply shop -f strategy.yaml --yes`` (this venv's console script, the lab's
environment), and the child is killed with SIGKILL:

* at the call positions of the plan (:data:`test_fault_matrix.PLAN`), by the proxy's "hook"
  fault: every write with ``forward=True`` (it reaches the provider, the child dies before the
  answer) and ``forward=False`` (the child dies before it lands), and every read from the last
  one before the journal opens on (``forward=True``);
* after a random delay (seeded RNG) of 0-1.5 s from the child's start (a clean child makes its
  first call after about 0.5 s and ends after about 1.5 s: these land in start-up and planning,
  or after the end, and are checked all the same), and of 0-80 ms from the call just before the
  first write (the writes and the validation take a few tens of milliseconds).

After each kill, the run is finished by ``failover recover shop --yes`` (half of the kills) or a
plain next ``failover apply shop --yes`` (the other half), both child processes too, and:

(a) the run's journal was written before any write reached a provider (write-ahead), and
    ``engine.interrupted()`` (every fourth kill also ``failover status shop --json``) shows the
    interrupted run exactly when a journal was left open;
(b) both commands succeed, and afterwards every provider is all-old or all-new, the three alike
    (never half-applied, no Traffic Manager endpoint on a parked priority), as the recovery said
    (forward: all new; the target passes its probes, so forward it is, unless a probe fails on a
    very busy machine) and as the next apply said;
(c) ``history`` (every fourth kill ``failover history --json``) lists the interrupted run with
    status ``interrupted`` exactly when a journal was left open, and the event log says
    ``run_interrupted`` and ``recovered`` for it;
(d) no journal is left open.

Also: a ``failover recover`` killed mid-way too (then finished by the next recover or apply), the
Traffic Manager temporary priority (killed with an endpoint parked, it is put back), and two
services in one Route 53 zone failed over by ``failover region`` and killed around their one batch.
The kills add up to :data:`KILLS` (at least 50); the module takes about 3 minutes on 2 cores.
"""
from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover_engine.engine.events import EventLog
from failover_engine.engine.journal import JournalState, journals, open_journals
from failover_engine.engine.metrics import history
from faultproxy import Call
from test_cross_cloud import KINDS, R53_RECORD, R53_ZONE, TM_NAMES
from test_fault_matrix import (PLAN, WRITES, Pos, ThreeClouds, brief_event, brief_snapshot, clouds,  # noqa: F401  # pylint: disable=unused-import  # clouds: a fixture
                               consistent)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FAILOVER = Path(sys.executable).with_name("failover")  # the console script of this venv
CHILD_DEADLINE = 60.0  # generous: a busy 2-core machine
RANDOM_KILLS = 5  # after a random delay from the child's start ...
RANDOM_SPAN = 1.5  # ... of up to this many seconds
RANDOM_APPLY_KILLS = 5  # after a random delay from the call just before the first write ...
APPLY_CALL, APPLY_SPAN = 5, 0.08  # ... (the journal is open by then) of up to 80 ms: inside the writes
SEED = 11
TM_PARKING_WRITES = (3, 4)  # the Traffic Manager PATCHes after which an endpoint sits on a parked priority


# --------------------------------------------------------------------------- child processes
class Child:
    """``failover ARGS`` as a child process with the lab's environment; output to a file."""

    def __init__(self, clouds: ThreeClouds, args: list[str], name: str):
        self.log = clouds.workdir / f"{name}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen([str(FAILOVER), *args], env=clouds.lab.child_env(), stdout=self._out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    def kill(self) -> bool:
        """SIGKILL, and wait until it is gone (its sockets and lock closed). False when it had
        already exited by itself."""
        if self.proc.poll() is not None:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return self.proc.returncode == -signal.SIGKILL

    def wait(self, timeout: float = CHILD_DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the child did not end within {timeout}s:\n{self.output()}") from None
        finally:
            self._out.close()

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text()[-4000:]


def cli(clouds: ThreeClouds, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FAILOVER), *args], check=False, env=clouds.lab.child_env(), capture_output=True, text=True,
                          timeout=CHILD_DEADLINE)


# --------------------------------------------------------------------------- one kill, then finish the run
@dataclass(frozen=True)
class KillPoint:
    """Where the child dies: at a plan position (``pos``, through the proxy's hook, ``forward``
    or not), or ``delay`` seconds after its start."""

    pos: Pos | None = None
    forward: bool = True
    delay: float | None = None
    after_call: int = 0  # the delay counts from the arrival of this call of the plan (0: the child's start)

    @property
    def label(self) -> str:
        if self.pos is not None:
            return f"{self.pos.label}-{'landed' if self.forward else 'not-sent'}"
        return f"call{self.after_call:02d}+{self.delay:.3f}s" if self.after_call else f"start+{self.delay:.3f}s"


@dataclass
class Killed:
    """What a kill left: whether it hit a live run, the journals it left open, the writes sent."""

    point: KillPoint
    killed: bool
    open: list[JournalState]
    writes: list[Call]
    child_output: str


def kill_apply(clouds: ThreeClouds, strategy: Path, point: KillPoint, name: str = "apply") -> Killed:
    """Start ``failover apply shop --yes`` and kill it at ``point``."""
    clouds.clear()
    clouds.log.reset()
    holder: dict[str, Child] = {}

    def die(call: Call) -> None:
        holder["child"].kill()

    rules = []
    if point.pos is not None:
        at, writes_only = (point.pos.w, True) if point.pos.w else (point.pos.n, False)
        rules = [p.inject("hook", at=at, writes_only=writes_only, forward=point.forward, on_hit=die)
                 for p in clouds.proxies.values()]
    child = holder["child"] = Child(clouds, ["apply", "shop", "-f", str(strategy), "--yes"], name)
    if point.delay is not None:
        since = child.started
        if point.after_call:
            since = clouds.log.wait_for_calls(point.after_call, CHILD_DEADLINE)[-1].at
        try:
            child.proc.wait(timeout=max(0.0, point.delay - (time.monotonic() - since)))
        except subprocess.TimeoutExpired:
            child.kill()
    rc = child.wait()
    clouds.clear()
    output = child.output()
    if point.pos is not None:
        hits = [c for r in rules for c in r.hits]
        assert len(hits) == 1 and point.pos.matches(hits[0]), (
            f"kill point {point.label} not reached as planned (rc {rc}): hits {[c.summary() for c in hits]}\n"
            f"calls: {[c.summary() for c in clouds.log.calls()]}\n{output}")
        assert rc == -signal.SIGKILL, f"the child was not killed at {point.label} (rc {rc}):\n{output}"
    killed = rc == -signal.SIGKILL
    return Killed(point, killed, open_journals(clouds.state_dir), clouds.log.calls(writes_only=True), output)


def check_write_ahead(k: Killed, state_dir: Path) -> list[str]:
    """Every write that reached a proxy was announced first: the run's journal (left open when the
    kill hit the run, closed when the run had ended) has a started group of that provider's adapter."""
    if not k.writes:
        return []
    every = list(journals(state_dir))
    if len(every) != 1:
        return [f"{len(k.writes)} write(s) were sent but there are {len(every)} journal(s)"]
    if k.killed and every[0].open != bool(k.open):
        return ["the journal's state and open_journals() disagree"]
    started = {key.adapter for keys in every[0].started_groups.values() for key in keys}
    proxy_kind = {"aws": "route53", "google": "clouddns", "azure": "trafficmanager"}
    missing = sorted({proxy_kind[c.proxy] for c in k.writes} - started)
    return [f"writes to {missing} with no group_started in the journal"] if missing else []


def describe(clouds: ThreeClouds, k: Killed, extra: str = "") -> str:
    sides, snap = clouds.sides()
    events = [brief_event(e) for e in EventLog(clouds.state_dir / "events.jsonl").read()]
    calls = "\n    ".join(c.summary() for c in clouds.log.calls())
    return (f"kill {k.point.label}: killed={k.killed}, journals open after the kill: "
            f"{[j.run_id for j in k.open]}, writes sent: {[c.summary() for c in k.writes]}\n"
            f"  truth now: {sides} {json.dumps(brief_snapshot(snap))}\n  events:\n    " + "\n    ".join(events)
            + f"\n  calls since the kill (recovery etc.):\n    {calls}\n  killed child's output:\n{k.child_output}\n"
            + extra)


def finish_and_check(clouds: ThreeClouds, strategy: Path, k: Killed, mode: str, *, use_cli: bool) -> None:
    """(a)-(d) of the module docstring, after finishing the run with ``mode`` ("recover"/"apply")."""
    problems = check_write_ahead(k, clouds.state_dir)
    engine = clouds.engine(strategy)
    interrupted = engine.interrupted("shop")
    open_ids = sorted(j.run_id for j in k.open)
    if sorted(i["run_id"] for i in interrupted) != open_ids:
        problems.append(f"engine.interrupted() shows {[i['run_id'] for i in interrupted]}, journals open: {open_ids}")
    if use_cli:
        st = cli(clouds, "status", "shop", "-f", str(strategy), "--json", "--no-probe")
        shown = sorted(i["run_id"] for i in json.loads(st.stdout).get("interrupted", [])) if st.returncode == 0 else None
        if shown != open_ids:
            problems.append(f"`failover status --json` (rc {st.returncode}) shows interrupted {shown}, "
                            f"journals open: {open_ids}; stderr: {st.stderr[-500:]}")
    clouds.log.reset()
    args = ["recover", "shop"] if mode == "recover" else ["apply", "shop"]
    done = cli(clouds, *args, "-f", str(strategy), "--yes")
    extra = f"  `failover {' '.join(args)} --yes`: rc {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    if done.returncode != 0:
        problems.append(f"`failover {' '.join(args)} --yes` failed (rc {done.returncode})")
    sides, _unused = clouds.sides()
    side = consistent(sides)
    events = EventLog(clouds.state_dir / "events.jsonl").read("shop")
    directions = [e.get("direction") for e in events if e["event"] == "recovered" and e.get("run_id") in open_ids]
    said = {"forward": "new", "back": "old"}.get(directions[-1] if directions else "", "")
    reports = sorted((clouds.state_dir / "reports").glob("*.json"))
    last = json.loads(reports[-1].read_text())["status"] if reports else None
    if side is None:
        problems.append(f"left half-applied after `failover {mode}`: {sides}")
    elif k.open and said != side:
        problems.append(f"the interrupted run was recovered {directions}, but the providers are all {side}")
    elif mode == "apply" and {"succeeded": "new", "noop": "new", "refused": "old"}.get(last or "") != side:
        problems.append(f"the next apply ended {last!r}, but the providers are all {side}")
    if directions and directions[-1] != "forward" or mode == "apply" and last == "refused":
        print(f"NOTE kill {k.point.label}: recovered {directions}, the next apply {last}: "
              "a probe of usw2 failed on a busy machine?")
    still = open_journals(clouds.state_dir)
    if still:
        problems.append(f"journal(s) still open: {[j.summary() for j in still]}")
    rows = history(clouds.state_dir / "reports", "shop")
    if use_cli:
        h = cli(clouds, "history", "shop", "-f", str(strategy), "--json")
        rows = json.loads(h.stdout) if h.returncode == 0 else []
        if h.returncode != 0:
            problems.append(f"`failover history --json` failed: {h.stderr[-500:]}")
    shown = sorted(Path(r["report"]).stem.rsplit("-", 1)[-1] for r in rows if r["status"] == "interrupted")
    if shown != open_ids:
        problems.append(f"history lists interrupted runs {shown}, journals left open by the kill: {open_ids}; "
                        f"history: {[(r['status'], Path(r['report']).name) for r in rows]}")
    for run_id in open_ids:
        said = [e["event"] for e in events if e.get("run_id") == run_id and e["event"] in ("run_interrupted",
                                                                                           "recovered")]
        # each recovery attempt says run_interrupted (one that died says nothing more); one says recovered
        if not said or said[0] != "run_interrupted" or said[-1] != "recovered" or said.count("recovered") != 1:
            problems.append(f"events of the interrupted run {run_id}: {said}, not run_interrupted ... recovered")
    assert not problems, "\n- ".join([""] + problems) + "\n" + describe(clouds, k, extra)


def steady(clouds: ThreeClouds) -> None:
    """The steady state the fixture seeded (use1 active everywhere), and use1 down."""
    assert clouds.sides()[0] == {k: "old" for k in KINDS}
    clouds.lab.regions["use1"].set_mode("down")


def fresh_strategy(clouds: ThreeClouds, name: str) -> Path:
    """A strategy with its own state directory (no journal, lock, report or event of earlier kills)."""
    clouds.state_dir = clouds.workdir / name / "state"
    clouds.state_dir.parent.mkdir(parents=True)
    path = clouds.workdir / name / "strategy.yaml"
    path.write_text(yaml.safe_dump(clouds.strategy_data(), sort_keys=False))
    return path


# --------------------------------------------------------------------------- the kill schedule
def _schedule() -> list[Any]:
    rng = random.Random(SEED)
    points: list[tuple[KillPoint, str]] = []
    for pos in PLAN:
        if pos.w:  # a write: landed or not, finished by recover and by apply
            points += [(KillPoint(pos, forward), mode) for forward in (True, False) for mode in ("recover", "apply")
                       if not (forward and pos.w in TM_PARKING_WRITES)]  # those: the Traffic Manager test below
        elif pos.n >= 4:  # a read (the first three, like the fourth, come before the journal: one is enough)
            points.append((KillPoint(pos, True), ("recover", "apply")[pos.n % 2]))
    for i in range(RANDOM_KILLS):
        points.append((KillPoint(delay=round(rng.uniform(0.0, RANDOM_SPAN), 3)), ("recover", "apply")[i % 2]))
    for i in range(RANDOM_APPLY_KILLS):
        points.append((KillPoint(delay=round(rng.uniform(0.0, APPLY_SPAN), 3), after_call=APPLY_CALL),
                       ("apply", "recover")[i % 2]))
    return [pytest.param(p, mode, i % 4 == 0, id=f"{p.label}-then-{mode}{'-cli' if i % 4 == 0 else ''}")
            for i, (p, mode) in enumerate(points)]


SCHEDULE = _schedule()


@pytest.mark.parametrize(("point", "mode", "use_cli"), SCHEDULE)
def test_a_killed_apply_is_finished_by_recover_or_the_next_apply(clouds: ThreeClouds, point: KillPoint, mode: str,
                                                                 use_cli: bool) -> None:
    steady(clouds)
    strategy = fresh_strategy(clouds, "run")
    k = kill_apply(clouds, strategy, point)
    print(f"KILL {point.label}: killed={k.killed} open={bool(k.open)} writes={len(k.writes)}")
    finish_and_check(clouds, strategy, k, mode, use_cli=use_cli)


# --------------------------------------------------------------------------- a recovery killed too
@pytest.mark.parametrize(("write", "forward", "mode"), [(1, True, "recover"), (2, True, "apply"), (3, False, "recover")],
                         ids=["its-write1-landed-then-recover", "its-write2-landed-then-apply",
                              "its-write3-not-sent-then-recover"])
def test_a_recovery_killed_mid_way_is_finished_by_the_next_one(clouds: ThreeClouds, write: int, forward: bool,
                                                               mode: str) -> None:
    """The apply dies after its Route 53 batch landed; the ``failover recover`` that rolls it forward
    (Traffic Manager first, newest step first, then Cloud DNS) dies at its own ``write``-th write."""
    steady(clouds)
    strategy = fresh_strategy(clouds, "run")
    k = kill_apply(clouds, strategy, KillPoint(next(p for p in WRITES if p.w == 1), forward=True))
    assert k.open, describe(clouds, k)

    clouds.log.reset()
    holder: dict[str, Child] = {}
    rules = [p.inject("hook", at=write, forward=forward, on_hit=lambda call: holder["child"].kill())
             for p in clouds.proxies.values()]
    holder["child"] = child = Child(clouds, ["recover", "shop", "-f", str(strategy), "--yes"], "recover-killed")
    rc = child.wait()
    clouds.clear()
    hits = [c for r in rules for c in r.hits]
    assert rc == -signal.SIGKILL and len(hits) == 1, f"{[c.summary() for c in clouds.log.calls()]}\n{child.output()}"
    print(f"KILL recovery at its write {write} ({hits[0].summary()}): open={bool(open_journals(clouds.state_dir))}")
    assert [j.run_id for j in open_journals(clouds.state_dir)] == [j.run_id for j in k.open], describe(clouds, k)

    finish_and_check(clouds, strategy, k, mode, use_cli=True)


# --------------------------------------------------------------------------- Traffic Manager: the parked priority
@pytest.mark.parametrize("mode", ["recover", "apply"])
@pytest.mark.parametrize("write", TM_PARKING_WRITES, ids=["old-primary-parked", "new-primary-promoted-old-still-parked"])
def test_a_kill_inside_the_traffic_manager_step_leaves_no_endpoint_on_a_parked_priority(
        clouds: ThreeClouds, write: int, mode: str) -> None:
    steady(clouds)
    strategy = fresh_strategy(clouds, "run")
    pos = next(p for p in WRITES if p.w == write)
    assert pos.proxy == "azure"

    k = kill_apply(clouds, strategy, KillPoint(pos, forward=True))

    priorities = {n: e["priority"] for n, e in clouds.providers.snapshot("trafficmanager")["trafficmanager"].items()}
    assert k.open and set(priorities.values()) - {1, 2}, (  # the precondition: killed with an endpoint parked
        f"no parked priority after the kill: {priorities}\n" + describe(clouds, k))
    finish_and_check(clouds, strategy, k, mode, use_cli=False)
    after = dict(clouds.providers.snapshot("trafficmanager")["trafficmanager"])
    assert {n: (e["priority"], e["status"]) for n, e in after.items()} == {
        TM_NAMES["usw2"]: (1, "Enabled"), TM_NAMES["use1"]: (2, "Enabled")}, describe(clouds, k)


# --------------------------------------------------------------------------- two services, one zone, `failover region`
CART_RECORD = "cart.drill.example."
SERVICES = {"shop": R53_RECORD, "cart": CART_RECORD}


def region_strategy(clouds: ThreeClouds, name: str) -> Path:
    """``shop`` and ``cart``: each a Route 53 failover record pair in drill.example. (only), through
    the Route 53 proxy; cart's records are seeded here as copies of shop's."""
    data = yaml.safe_load(clouds.lab.strategy_path.read_text())
    clouds.state_dir = clouds.workdir / name / "state"
    clouds.state_dir.parent.mkdir(parents=True)
    data["state_dir"] = str(clouds.state_dir)
    data["connections"]["aws-local"].update(endpoint_url=clouds.aws.url, connect_timeout="1s", read_timeout="1s",
                                            max_attempts=2)
    shop = data["services"]["shop"]
    shop["policy"]["cooldown"] = 0
    shop["validation"] = {"attempts": 2, "interval": "50ms"}
    shop["detection"].pop("latency_limit", None)
    cart = data["services"]["cart"] = copy.deepcopy(shop)
    cart["description"] = "a second service in the same hosted zone"
    cart["routing"][0]["record"] = CART_RECORD
    r53 = clouds.providers.route53
    sets = list(clouds.providers.route53_records())
    r53.change_resource_record_sets(HostedZoneId=clouds.lab.zones[R53_ZONE], ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {**r, "Name": CART_RECORD}} for r in sets]})
    path = clouds.workdir / name / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def region_sides(clouds: ThreeClouds) -> dict[str, str]:
    """Per service: "old" (use1 PRIMARY), "new" (usw2 PRIMARY) or "NEITHER"."""
    sets = clouds.providers.route53.list_resource_record_sets(HostedZoneId=clouds.lab.zones[R53_ZONE])[
        "ResourceRecordSets"]
    out = {}
    for svc, name in SERVICES.items():
        roles = {r["SetIdentifier"]: r.get("Failover") for r in sets if r["Name"] == name and r["Type"] == "A"}
        out[svc] = {"use1-primary": "old", "usw2-standby": "new"}.get(
            next((s for s, f in roles.items() if f == "PRIMARY"), ""), "NEITHER") if len(roles) == 2 and sorted(
            roles.values()) == ["PRIMARY", "SECONDARY"] else f"NEITHER {roles}"
    return out


# a region run of two services makes 7 calls, all to Route 53: the zone lookup, two targeted
# reads (one per record name), the batch, its GetChange and two read-back reads; it lasts a few
# tens of milliseconds, so the kills are hooks
_REGION_BATCH = Pos(4, 1, "aws", "POST", r"/rrset/?$", "r53-batch-of-both")
_REGION_WAIT = Pos(5, None, "aws", "GET", r"/change/", "r53-get-change")
REGION_POINTS = [(KillPoint(_REGION_BATCH, False), "recover"), (KillPoint(_REGION_BATCH, True), "recover"),
                 (KillPoint(_REGION_BATCH, True), "region"), (KillPoint(_REGION_BATCH, False), "region"),
                 (KillPoint(_REGION_WAIT), "recover"), (KillPoint(_REGION_WAIT), "region"),
                 (KillPoint(Pos(7, None, "aws", "GET", r"/rrset$", "r53-read-back")), "region")]


@pytest.mark.parametrize(("point", "mode"), [pytest.param(p, m, id=f"{p.label}-then-{m}") for p, m in REGION_POINTS])
def test_a_killed_region_run_over_two_services_in_one_zone_is_finished(clouds: ThreeClouds, point: KillPoint,
                                                                       mode: str) -> None:
    clouds.lab.regions["use1"].set_mode("down")
    strategy = region_strategy(clouds, "region")
    assert region_sides(clouds) == {"shop": "old", "cart": "old"}
    clouds.clear()
    clouds.log.reset()
    holder: dict[str, Child] = {}
    assert point.pos is not None
    at, writes_only = (point.pos.w, True) if point.pos.w else (point.pos.n, False)
    rule = clouds.aws.inject("hook", at=at, writes_only=writes_only, forward=point.forward,
                             on_hit=lambda call: holder["child"].kill())
    child = holder["child"] = Child(clouds, ["region", "us-east-1", "-f", str(strategy), "--yes"], "region-run")
    rc = child.wait()
    clouds.clear()
    writes = clouds.log.calls(writes_only=True)
    left_open = open_journals(clouds.state_dir)
    info = (f"kill {point.label} (rc {rc}); writes {[c.summary() for c in writes]}; open journals "
            f"{[j.summary() for j in left_open]}\n{child.output()}")
    assert rc == -signal.SIGKILL and len(rule.hits) == 1 and point.pos.matches(rule.hits[0]), (
        f"{[c.summary() for c in clouds.log.calls()]}\n{info}")
    assert left_open, info  # every kill point is after the journal was opened
    if writes:  # one batch carried both services' records: one journal announced both
        every = list(journals(clouds.state_dir))
        assert len(every) == 1 and sorted(every[0].plans) == ["cart", "shop"], info
        assert every[0].started_groups, info
    print(f"KILL region {point.label}: killed={rc == -signal.SIGKILL} open={bool(left_open)} writes={len(writes)}")
    expected_open = sorted(j.run_id for j in left_open)

    args = ["recover", "--all"] if mode == "recover" else ["region", "us-east-1"]
    done = cli(clouds, *args, "-f", str(strategy), "--yes")
    info += f"\n`failover {' '.join(args)} --yes`: rc {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert done.returncode == 0, info
    sides = region_sides(clouds)
    assert len(set(sides.values())) == 1 and set(sides.values()) <= {"old", "new"}, f"{sides}\n{info}"
    if left_open or mode == "region":
        assert set(sides.values()) == {"new"}, f"{sides}\n{info}"
    assert open_journals(clouds.state_dir) == [], info
    rows = history(clouds.state_dir / "reports")
    interrupted = sorted((r["service"], Path(r["report"]).stem.rsplit("-", 1)[-1]) for r in rows
                         if r["status"] == "interrupted")
    assert interrupted == sorted((s, run_id) for run_id in expected_open for s in SERVICES), f"{rows}\n{info}"
    events = EventLog(clouds.state_dir / "events.jsonl").read()
    for run_id in expected_open:
        for svc in SERVICES:
            said = [e["event"] for e in events if e.get("run_id") == run_id and e.get("service") == svc
                    and e["event"] in ("run_interrupted", "recovered")]
            assert said == ["run_interrupted", "recovered"], f"{svc}: {said}\n{info}"


KILLS = len(SCHEDULE) + 3 * 2 + 2 * 2 + len(REGION_POINTS)  # the parametrized tests' kills
assert KILLS >= 50, KILLS
