"""The fault matrix of issue 11: every call position of a three-cloud failover x every fault.

The service ``shop`` of the lab is steered by a Route 53 failover record (moto, step 0), a Cloud
DNS primaryBackup record set (the Cloud DNS emulator, step 1) and a Traffic Manager Priority
profile (the Traffic Manager emulator over HTTPS, step 2), as in test_cross_cloud.py. Here the
strategy's connections point at a :class:`faultproxy.FaultProxy` in front of each provider, the
three sharing one :class:`faultproxy.CallLog`, so that a position is the plan's N-th call (or
N-th write) whichever cloud it goes to.

A clean failover makes 17 calls, 5 of them writes (:data:`PLAN`; :func:`test_a_clean_run_makes_the_calls_of_the_plan`
checks it, so the matrix cannot silently drift off the positions it names). Every write position
and every read position (the reads before, between and after the writes) gets each of the
faults "500", "429", "timeout" (held without an answer until the client gives up) and
"reset_after_apply" (forwarded, then the answer is lost), once. The run is
``engine.run("shop", "failover", apply=True)`` in-process, with connect/read timeouts of 1 s
and 2 attempts per call. Then, with the providers' own SDKs talking to moto and the emulators
directly (never through the proxies):

(a) every provider is all-old or all-new, and the three agree;
(b) the reported status matches that truth (succeeded/unverified: all new; rolled_back, refused,
    noop, error: all old; anything else fails the case: the fault is one-shot, the providers
    can be read, so nothing may end unknown);
(c) the event log has a step_applied or step_failed event for every step whose provider got a
    write, and a write that reached the provider is listed in it (applied, written or unknown);
(d) the report JSON says the same status, and the run's journal is closed.

The operator-edit race (issue 11, point 3) is at the end: an operator edits the Route 53 record
with plain boto3 between our read and our write; the run must refuse, name the record and both
values, and leave the operator's value, also with ``force=True``.

The helpers (:class:`ThreeClouds` and friends) are shared with test_kill.py.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from failover_engine.adapters import adapter_class
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.outcome import Outcome
from failover_engine.core.errors import FailoverError
from failover_engine.engine.journal import open_journals, read_journal
from failover_engine.lab.lab import Lab
from failover_engine.config.loader import load_strategy
from faultproxy import Call, CallLog, FaultProxy, emulator_tls
from test_cross_cloud import (CDNS_RECORD, CDNS_VALUES, CDNS_ZONE, KINDS, R53_RECORD, R53_ZONE, TM_NAMES, TM_PROFILE,
                              TM_RG, Providers)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ATTEMPTS = 2
TIMEOUT_S = 1.0  # connect_timeout and read_timeout of every connection
HOLD = 8.0  # a "timeout" fault holds the request this long, then drops it: a client that honours
# read_timeout has given up long before; one that does not gets the drop (and the case fails on time)
PROXY_STEP = {"aws": 0, "google": 1, "azure": 2}  # which routing step each proxy's provider is
STEP_PROXY = {v: k for k, v in PROXY_STEP.items()}
FAULTS = ("500", "429", "timeout", "reset_after_apply")
TO_OLD = ("rolled_back", "refused", "noop", "error")
TO_NEW = ("succeeded", "unverified")


# --------------------------------------------------------------------------- the plan's calls
@dataclass(frozen=True)
class Pos:
    """One call of a clean failover: its position among all calls (``n``) and among writes
    (``w``, None for a read), the proxy it goes through, its method and a path pattern."""

    n: int
    w: int | None
    proxy: str
    method: str
    path: str
    what: str

    @property
    def label(self) -> str:
        return f"write{self.w}-{self.what}" if self.w else f"call{self.n:02d}-{self.what}"

    def matches(self, call: Call) -> bool:
        return (call.proxy, call.method) == (self.proxy, self.method) and re.search(self.path, call.path) is not None


_R53, _CDNS = r"/2013-04-01/", r"/dns/v1/projects/p/managedZones/shop/"
_TM = r"/trafficmanagerprofiles/shop-tm"
PLAN = [
    Pos(1, None, "aws", "GET", _R53 + "hostedzonesbyname$", "r53-zone-lookup"),
    Pos(2, None, "aws", "GET", _R53 + r"hostedzone/[^/]+/rrset$", "r53-observe"),
    Pos(3, None, "google", "GET", _CDNS + "rrsets$", "cdns-observe"),
    Pos(4, None, "azure", "GET", _TM + "$", "tm-observe"),
    Pos(5, 1, "aws", "POST", _R53 + r"hostedzone/[^/]+/rrset/?$", "r53-change"),
    Pos(6, None, "aws", "GET", _R53 + r"change/", "r53-get-change"),
    Pos(7, 2, "google", "POST", _CDNS + "changes$", "cdns-change"),
    Pos(8, None, "google", "GET", _CDNS + "changes/", "cdns-get-change"),
    Pos(9, None, "azure", "GET", _TM + "$", "tm-read-before-patch"),
    Pos(10, 3, "azure", "PATCH", _TM + "/ExternalEndpoints/tm-use1$", "tm-park-old"),
    Pos(11, None, "azure", "GET", _TM + "$", "tm-reread-1"),
    Pos(12, 4, "azure", "PATCH", _TM + "/ExternalEndpoints/tm-usw2$", "tm-promote-new"),
    Pos(13, None, "azure", "GET", _TM + "$", "tm-reread-2"),
    Pos(14, 5, "azure", "PATCH", _TM + "/ExternalEndpoints/tm-use1$", "tm-old-behind"),
    Pos(15, None, "aws", "GET", _R53 + r"hostedzone/[^/]+/rrset$", "r53-read-back"),
    Pos(16, None, "google", "GET", _CDNS + "rrsets$", "cdns-read-back"),
    Pos(17, None, "azure", "GET", _TM + "$", "tm-read-back"),
]
WRITES = [p for p in PLAN if p.w]

NEW_CLOUDDNS = {"name": CDNS_RECORD, "type": "A", "ttl": 30, "routingPolicy": {"primaryBackup": {
    "primaryTargets": {"externalEndpoints": CDNS_VALUES["usw2"]},
    "backupGeoTargets": {"items": [{"location": "us-east1", "rrdatas": CDNS_VALUES["use1"]}]}}}}


# --------------------------------------------------------------------------- three clouds behind proxies
class ThreeClouds:
    """The three providers (seeded: use1 active), a fault proxy in front of each (one shared call
    log), and the truth as the providers' own SDKs read it, directly."""

    def __init__(self, lab: Lab, cdns: Any, tm: Any, fault_proxy: Callable[..., FaultProxy], workdir: Path):
        self.lab, self.cdns, self.tm = lab, cdns, tm
        self.providers = Providers(lab, cdns, tm)
        self.providers.seed()
        self.old = self.providers.snapshot()
        self.new = self._new_of(self.old)
        self.log = CallLog()
        self.aws = fault_proxy(lab.moto_url, "aws", name="aws", log=self.log)
        self.google = fault_proxy(cdns.emulator.url, "google", name="google", log=self.log)
        self.azure = fault_proxy(tm.emulator.url, "azure", tls=emulator_tls(tm.emulator.ca_file),
                                 upstream_ca=tm.emulator.ca_file, name="azure", log=self.log)
        self.proxies = {"aws": self.aws, "google": self.google, "azure": self.azure}
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.clock = time.time() - time.monotonic()  # wall = monotonic + clock (the calls' ``at``)

    @staticmethod
    def _new_of(old: dict[str, Any]) -> dict[str, Any]:
        swap = {"PRIMARY": "SECONDARY", "SECONDARY": "PRIMARY"}
        tm = {n: dict(e) for n, e in old["trafficmanager"].items()}
        tm[TM_NAMES["use1"]]["priority"], tm[TM_NAMES["usw2"]]["priority"] = (
            old["trafficmanager"][TM_NAMES["usw2"]]["priority"], old["trafficmanager"][TM_NAMES["use1"]]["priority"])
        return {"route53": [{**r, "Failover": swap[r["Failover"]]} for r in old["route53"]],
                "clouddns": NEW_CLOUDDNS, "trafficmanager": tm}

    # ------------------------------------------------------------------ strategy and engine
    def strategy_data(self, *, attempts: int = ATTEMPTS, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The lab's strategy with the Cloud DNS and Traffic Manager bindings of test_cross_cloud,
        every connection through its proxy, short timeouts, no cooldown, a quick validation."""
        data = yaml.safe_load(self.lab.strategy_path.read_text())
        conn = {"connect_timeout": f"{timeout:g}s", "read_timeout": f"{timeout:g}s", "max_attempts": attempts}
        data["state_dir"] = str(self.state_dir)
        data["connections"]["aws-local"].update(endpoint_url=self.aws.url, **conn)
        data["connections"]["gcp-local"] = {"type": "clouddns", "project": self.cdns.project,
                                            "endpoint_url": self.google.url, "credentials": "anonymous", **conn}
        data["connections"]["azure-local"] = {"type": "trafficmanager", "subscription_id": self.tm.subscription,
                                              "endpoint_url": self.azure.url, "ca_bundle": self.tm.emulator.ca_file,
                                              "credentials": "token_env", "token_env_var": self.tm.token_env_var,
                                              **conn}
        shop = data["services"]["shop"]
        shop["routing"] += [
            {"adapter": "clouddns", "connection": "gcp-local", "managed_zone": CDNS_ZONE, "record": CDNS_RECORD,
             "ttl": 30, "mode": "primary_backup",
             "endpoints": {n: {"values": v, "location": {"use1": "us-east1", "usw2": "us-west1"}[n]}
                           for n, v in CDNS_VALUES.items()}},
            {"adapter": "trafficmanager", "connection": "azure-local", "resource_group": TM_RG,
             "profile": TM_PROFILE, "mode": "priority", "endpoints": {n: {"endpoint": e} for n, e in TM_NAMES.items()}}]
        shop["policy"]["cooldown"] = 0
        shop["validation"] = {"attempts": 2, "interval": "50ms"}
        shop["detection"].pop("latency_limit", None)  # a slow answer on a busy machine is not what is tested
        return data

    def write_strategy(self, data: dict[str, Any] | None = None) -> Path:
        path = self.workdir / "strategy.yaml"
        path.write_text(yaml.safe_dump(data or self.strategy_data(), sort_keys=False))
        return path

    def engine(self, path: Path | None = None) -> FailoverEngine:
        """An in-process engine on the strategy (written now unless given); backoff sleeps skipped."""
        loaded = load_strategy(path or self.write_strategy())
        assert [b.adapter for b in loaded.strategy.services["shop"].routing] == KINDS
        return FailoverEngine(loaded, adapter_factory=lambda kind, conn: adapter_class(kind)(conn, sleep=lambda s: None))

    # ------------------------------------------------------------------ faults
    def inject(self, fault: str, pos: Pos, **kw: Any) -> list[Any]:
        """The fault at ``pos`` (a write position among writes, a read among all calls) on every
        proxy: with the shared log only the one that gets that position fires."""
        at, writes_only = (pos.w, True) if pos.w else (pos.n, False)
        return [p.inject(fault, at=at, writes_only=writes_only, **kw) for p in self.proxies.values()]

    def clear(self) -> None:
        for p in self.proxies.values():
            p.clear()

    # ------------------------------------------------------------------ the truth
    def sides(self) -> tuple[dict[str, str], dict[str, Any]]:
        """Per provider "old", "new" or "NEITHER" (half-applied, parked, edited), and the raw snapshot."""
        snap = self.providers.snapshot()
        return {k: "old" if snap[k] == self.old[k] else "new" if snap[k] == self.new[k] else "NEITHER"
                for k in KINDS}, snap

    def wall(self, call: Call) -> float:
        return call.at + self.clock


def consistent(sides: dict[str, str]) -> str | None:
    """"old" or "new" when the three providers agree on it; None otherwise."""
    values = set(sides.values())
    return values.pop() if len(values) == 1 and values <= {"old", "new"} else None


def run_events(state_dir: Path, run_id: str) -> list[dict[str, Any]]:
    from failover_engine.engine.events import EventLog

    return [e for e in EventLog(state_dir / "events.jsonl").read() if e.get("run_id") == run_id]


def brief_event(e: dict[str, Any]) -> str:
    keep = {k: e[k] for k in ("step", "group", "written", "unknown", "error", "errors", "reasons", "concurrent_edit",
                              "direction", "restored", "left_as_is") if e.get(k) not in (None, [], "")}
    return f"{e['event']} {json.dumps(keep, default=str)}" if keep else e["event"]


def brief_snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    pb = (snap["clouddns"] or {}).get("routingPolicy", {}).get("primaryBackup", {})
    return {"route53": {r["SetIdentifier"]: (r.get("Failover"), [v["Value"] for v in r.get("ResourceRecords", [])])
                        for r in snap["route53"]},
            "clouddns": {"primary": pb.get("primaryTargets", {}).get("externalEndpoints"),
                         "backup": pb.get("backupGeoTargets", {}).get("items")},
            "trafficmanager": {n: (e["priority"], e["status"]) for n, e in snap["trafficmanager"].items()}}


@pytest.fixture
def clouds(lab_aws: Lab, clouddns_sdk: Any, trafficmanager_sdk: Any, fault_proxy: Callable[..., FaultProxy],
           tmp_path: Path) -> Iterator[ThreeClouds]:
    c = ThreeClouds(lab_aws, clouddns_sdk, trafficmanager_sdk, fault_proxy, tmp_path)
    assert c.sides()[0] == {k: "old" for k in KINDS}
    yield c
    for region in lab_aws.regions.values():
        region.set_mode("up")


# --------------------------------------------------------------------------- one case
@dataclass
class Result:
    status: str
    report: dict[str, Any]
    run_id: str
    events: list[dict[str, Any]]
    sides: dict[str, str]
    snapshot: dict[str, Any]
    elapsed: float
    raised: BaseException | None

    def describe(self, clouds: ThreeClouds) -> str:
        calls = "\n    ".join(c.summary() for c in clouds.log.calls())
        events = "\n    ".join(brief_event(e) for e in self.events)
        return (f"status {self.status!r} in {self.elapsed:.2f}s (report says {self.report.get('status')!r}); "
                f"raised: {self.raised!r}\n  errors: {self.report.get('errors')}\n"
                f"  truth per provider: {self.sides}\n  records: {json.dumps(brief_snapshot(self.snapshot))}\n"
                f"  events:\n    {events or '(none)'}\n  calls:\n    {calls or '(none)'}")


def failover_once(clouds: ThreeClouds, engine: FailoverEngine, **kw: Any) -> Result:
    """``engine.run("shop", "failover", apply=True)``; what it said and what the providers hold."""
    t0 = time.monotonic()
    raised: BaseException | None = None
    out: Outcome | None = None
    try:
        out = engine.run("shop", "failover", apply=True, **kw)
    except FailoverError as exc:  # e.g. a provider unreadable before anything changed: report written, re-raised
        raised = exc
    elapsed = time.monotonic() - t0
    clouds.clear()
    if out is not None:
        assert out.report_path is not None, out.to_dict()
        report = json.loads(Path(out.report_path).read_text())
        status, run_id = out.status, out.run_id
    else:
        reports = sorted((engine.state_dir / "reports").glob("*.json"))
        assert len(reports) == 1, f"the run raised {raised!r} and left {len(reports)} report(s)"
        report = json.loads(reports[0].read_text())
        status, run_id = report["status"], report["run_id"]
    sides, snap = clouds.sides()
    return Result(status, report, run_id, run_events(engine.state_dir, run_id), sides, snap, elapsed, raised)


def forward_writes(clouds: ThreeClouds, state_dir: Path, run_id: str) -> list[Call]:
    """The run's writes before its rollback started (every write when there was no rollback)."""
    path = state_dir / "journal" / f"{run_id}.jsonl"
    boundary = float("inf")
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("rec") == "note" and rec.get("what") == "rollback_started":
                boundary = rec["t"]
    return [c for c in clouds.log.calls(writes_only=True) if clouds.wall(c) < boundary]


def check_events_list_writes(clouds: ThreeClouds, r: Result, state_dir: Path) -> list[str]:
    """(c): every step whose provider got a write has its step event; a write that reached the
    provider is applied, written or unknown there; no step claims applied without a write."""
    problems = []
    writes = forward_writes(clouds, state_dir, r.run_id)
    by_step: dict[int, list[dict[str, Any]]] = {}
    for e in r.events:
        if e["event"] in ("step_applied", "step_failed"):
            by_step.setdefault(e["step"], []).append(e)
    sent = {PROXY_STEP[c.proxy] for c in writes}
    landed = {PROXY_STEP[c.proxy] for c in writes if c.upstream_status is not None and 200 <= c.upstream_status < 300}
    for step in sorted(sent):
        evs = by_step.get(step, [])
        if not evs:
            problems.append(f"step {step} ({KINDS[step]}) got writes but has no step_applied/step_failed event")
            continue
        if step in landed and not any(e["event"] == "step_applied" or e.get("written") is None or e.get("written")
                                      or e.get("unknown") for e in evs):
            problems.append(f"a write of step {step} ({KINDS[step]}) reached the provider, but its step event "
                            f"lists nothing written or unknown: {[brief_event(e) for e in evs]}")
    for step, evs in by_step.items():
        if step not in sent and any(e["event"] == "step_applied" for e in evs):
            problems.append(f"step {step} ({KINDS[step]}) is reported applied, but its provider got no write")
    return problems


def check_case(clouds: ThreeClouds, r: Result, state_dir: Path) -> list[str]:
    """Every check of a case → the problems found (empty: the case passes)."""
    problems = []
    side = consistent(r.sides)
    if side is None:
        problems.append(f"the providers are not all-old or all-new: {r.sides}")
    if r.status in TO_NEW:
        if side != "new":
            problems.append(f"reported {r.status!r}, but the providers are not all new")
    elif r.status in TO_OLD:
        if side != "old":
            problems.append(f"reported {r.status!r}, but the providers are not all old")
    else:
        problems.append(f"reported {r.status!r}: a one-shot fault on readable providers must end "
                        f"succeeded/unverified (all new) or {'/'.join(TO_OLD)} (all old)")
    if r.report.get("status") != r.status:
        problems.append(f"the report says {r.report.get('status')!r}, the outcome {r.status!r}")
    final = [e["event"] for e in r.events if e["event"] in TO_NEW + TO_OLD + (
        "errored", "rollback_failed", "unknown", "failed", "validation_failed")]
    want_final = {"error": "errored"}.get(r.status, r.status)
    if not final or final[-1] != want_final:
        problems.append(f"the run's last outcome event is {final[-1:]} , the status {r.status!r}")
    problems += check_events_list_writes(clouds, r, state_dir)
    left_open = open_journals(state_dir)
    if left_open:
        problems.append(f"journal(s) left open: {[j.summary() for j in left_open]}")
    return problems


# --------------------------------------------------------------------------- the census
def test_a_clean_run_makes_the_calls_of_the_plan(clouds: ThreeClouds) -> None:
    """The positions the matrix names are those of a clean failover through the proxies."""
    clouds.lab.regions["use1"].set_mode("down")
    r = failover_once(clouds, clouds.engine())
    calls = clouds.log.calls()
    assert r.status == "succeeded" and consistent(r.sides) == "new", r.describe(clouds)
    assert len(calls) == len(PLAN) and all(p.matches(c) for p, c in zip(PLAN, calls)), (
        "the plan's calls changed: update PLAN\n" + r.describe(clouds))
    assert [c.write_n for c in calls] == [p.w for p in PLAN]
    assert check_case(clouds, r, clouds.state_dir) == []
    assert r.elapsed < 10, r.describe(clouds)


# --------------------------------------------------------------------------- the matrix
CASES = [pytest.param(pos, fault, ATTEMPTS, id=f"{pos.label}-{fault}") for pos in PLAN for fault in FAULTS]
# the same one-shot faults on the writes with no retry (max_attempts 1): every fault fails its call
# outright, a lost answer stays lost, and the engine must find out by reading what it did
CASES += [pytest.param(pos, fault, 1, id=f"{pos.label}-{fault}-no-retry") for pos in WRITES for fault in FAULTS]


@pytest.mark.parametrize(("pos", "fault", "attempts"), CASES)
def test_fault_at_every_position_ends_consistent_and_says_so(clouds: ThreeClouds, pos: Pos, fault: str,
                                                             attempts: int) -> None:
    clouds.lab.regions["use1"].set_mode("down")
    engine = clouds.engine(clouds.write_strategy(clouds.strategy_data(attempts=attempts)))
    rules = clouds.inject(fault, pos, hold=HOLD)

    r = failover_once(clouds, engine)
    print(f"CASE {pos.label}-{fault}{'' if attempts > 1 else '-no-retry'}: {r.status} in {r.elapsed:.2f}s; steps "
          f"{[(e['event'], e['step']) for e in r.events if e['event'].startswith('step_')]}")

    hits = [c for rule in rules for c in rule.hits]
    assert len(hits) == 1 and pos.matches(hits[0]), (
        f"the {fault} fault was meant for {pos} and hit {[c.summary() for c in hits]}\n" + r.describe(clouds))
    problems = check_case(clouds, r, engine.state_dir)
    if fault == "timeout" and r.elapsed >= HOLD:
        problems.append(f"the run took {r.elapsed:.1f}s: the {pos.proxy} client waited for the proxy to drop the "
                        f"held request ({HOLD:g}s) instead of giving up after its read_timeout ({TIMEOUT_S:g}s)")
    assert not problems, f"{pos.label} x {fault}:\n- " + "\n- ".join(problems) + "\n" + r.describe(clouds)


# --------------------------------------------------------------------------- the operator-edit race
OPERATOR_VALUE = "203.0.113.77"
OUR_VALUE = "192.0.2.10"  # the primary record's value as we read it (the lab's use1)


def operator_edit(clouds: ThreeClouds) -> Callable[[Call], None]:
    """on_hit: an operator changes the primary record's value with plain boto3, straight to moto."""
    def edit(call: Call) -> None:
        clouds.providers.route53.change_resource_record_sets(
            HostedZoneId=clouds.lab.zones[R53_ZONE], ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": R53_RECORD, "Type": "A", "SetIdentifier": "use1-primary", "Failover": "PRIMARY", "TTL": 30,
                "ResourceRecords": [{"Value": OPERATOR_VALUE}]}}]})
    return edit


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_an_operator_edit_between_our_read_and_our_write_is_refused_and_kept(clouds: ThreeClouds,
                                                                             force: bool) -> None:
    clouds.lab.regions["use1"].set_mode("down")
    engine = clouds.engine()
    # the first ChangeResourceRecordSets: after the plan's read and the adapter's check read, before it lands
    rule = clouds.aws.inject("hook", at=1, forward=False, on_hit=operator_edit(clouds), method="POST")

    r = failover_once(clouds, engine, force=force)

    assert [c.summary() for c in rule.hits] and rule.hits[0].hook_error is None, rule.hits
    info = r.describe(clouds)
    assert r.status == "refused", info
    records = {x["SetIdentifier"]: x for x in clouds.providers.route53_records()}
    assert records["use1-primary"]["ResourceRecords"] == [{"Value": OPERATOR_VALUE}], info  # the operator's value stays
    assert records["use1-primary"]["Failover"] == "PRIMARY" and records["usw2-standby"]["Failover"] == "SECONDARY", info
    assert r.sides["clouddns"] == r.sides["trafficmanager"] == "old", info  # the later steps never ran
    message = " ".join(r.report["errors"])
    assert "concurrent edit" in message and R53_RECORD in message and "use1-primary" in message, info
    assert OUR_VALUE in message and OPERATOR_VALUE in message, info  # both values named
    refused = [e for e in r.events if e["event"] == "refused"]
    assert refused, info
    edits = refused[-1].get("concurrent_edit") or []
    assert edits and R53_RECORD in edits[0]["resource"], info
    assert OUR_VALUE in json.dumps(edits[0]["expected"]) and OPERATOR_VALUE in json.dumps(
        edits[0]["found"]), info  # the event log records both values
    assert [e["event"] for e in r.events if e["event"].startswith("step_")] == ["step_failed"], info
    assert check_events_list_writes(clouds, r, engine.state_dir) == [], info
    assert open_journals(engine.state_dir) == [], info
    journal = read_journal(engine.state_dir / "journal" / f"{r.run_id}.jsonl")
    assert journal is not None and not journal.open, info


def test_after_the_refusal_the_hand_edit_is_taken_over_only_when_asked(clouds: ThreeClouds) -> None:
    """The refused run leaves the operator's value; the next runs, plain and forced, must not
    overwrite it either (issue 11, point 3: "--force never overrides a concurrent edit. Taking over
    a hand-edited record is its own explicit option, and the event records both values")."""
    clouds.lab.regions["use1"].set_mode("down")
    clouds.aws.inject("hook", at=1, forward=False, on_hit=operator_edit(clouds), method="POST")
    assert failover_once(clouds, clouds.engine()).status == "refused"

    def primary_value() -> list[dict[str, str]]:
        return {x["SetIdentifier"]: x for x in clouds.providers.route53_records()}["use1-primary"]["ResourceRecords"]

    for force in (False, True):
        clouds.log.reset()
        engine = clouds.engine()
        again = failover_once(clouds, engine, force=force)
        assert again.status == "refused" and primary_value() == [{"Value": OPERATOR_VALUE}], (
            f"the next {'forced ' if force else ''}apply after the refusal overwrote the operator's value "
            f"{OPERATOR_VALUE} (a hand edit: it matches no endpoint of the binding):\n" + again.describe(clouds))
        assert any("take" in e.lower() and "over" in e.lower() for e in again.report["errors"]), again.describe(clouds)
    clouds.log.reset()
    engine = clouds.engine()
    taken = failover_once(clouds, engine, take_over=True)
    assert taken.status == "succeeded" and consistent(taken.sides) == "new", taken.describe(clouds)
    event = [e for e in taken.events if e["event"] == "taken_over"]
    assert event and OPERATOR_VALUE in json.dumps(event[0]) and OUR_VALUE in json.dumps(event[0]), taken.describe(clouds)


# --------------------------------------------------------------------------- the same race on the later steps
def cdns_edit(clouds: ThreeClouds) -> Callable[[Call], None]:
    """on_hit: an operator puts another primary value in the Cloud DNS record set (Google's client, direct)."""
    def edit(call: Call) -> None:
        rrset = clouds.cdns.get(CDNS_ZONE, CDNS_RECORD)
        rrset["routingPolicy"]["primaryBackup"]["primaryTargets"]["externalEndpoints"] = [OPERATOR_VALUE]
        clouds.cdns.put(CDNS_ZONE, rrset)
    return edit


def tm_edit(clouds: ThreeClouds) -> Callable[[Call], None]:
    """on_hit: an operator disables the standby's Traffic Manager endpoint (azure-mgmt-trafficmanager, direct)."""
    def edit(call: Call) -> None:
        clouds.tm.client.endpoints.update(TM_RG, TM_PROFILE, "ExternalEndpoints", TM_NAMES["usw2"],
                                          {"properties": {"endpointStatus": "Disabled"}})
    return edit


def _pos(label: str) -> Pos:
    return next(p for p in PLAN if p.label == label)


RACES = [
    # Cloud DNS: the edit lands just before our change, whose deletion (the exact record set we read) no longer matches
    pytest.param("clouddns", _pos("write2-cdns-change"), cdns_edit, id="clouddns-before-the-change"),
    # Traffic Manager: the edit lands before the read that precedes the PATCHes ...
    pytest.param("trafficmanager", _pos("call09-tm-read-before-patch"), tm_edit, id="trafficmanager-before-its-read"),
    # ... and between two PATCHes (the old primary already parked), before the read that checks the profile
    pytest.param("trafficmanager", _pos("call11-tm-reread-1"), tm_edit, id="trafficmanager-between-two-patches"),
]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize(("kind", "pos", "make_edit"), RACES)
def test_an_operator_edit_in_a_later_step_is_kept_and_the_earlier_steps_restored(
        clouds: ThreeClouds, kind: str, pos: Pos, make_edit: Callable[[ThreeClouds], Callable[[Call], None]],
        force: bool) -> None:
    """The edit lands when ``pos`` arrives at its proxy, before it is forwarded."""
    clouds.lab.regions["use1"].set_mode("down")
    engine = clouds.engine()
    rules = clouds.inject("hook", pos, forward=False, on_hit=make_edit(clouds))

    r = failover_once(clouds, engine, force=force)

    info = r.describe(clouds)
    print(f"RACE {kind} at {pos.label} (force={force}): {r.status}")
    hits = [c for rule in rules for c in rule.hits]
    assert len(hits) == 1 and pos.matches(hits[0]) and hits[0].hook_error is None, f"{hits}\n{info}"
    assert r.status in ("refused", "rolled_back"), info
    others = [k for k in KINDS if k != kind]
    assert all(r.sides[k] == "old" for k in others), info  # the steps before it restored, those after never run
    snap = r.snapshot[kind]
    if kind == "clouddns":
        assert snap["routingPolicy"]["primaryBackup"]["primaryTargets"]["externalEndpoints"] == [OPERATOR_VALUE], info
    else:
        assert snap[TM_NAMES["usw2"]]["status"] == "Disabled", info  # the operator's edit stays
        assert snap[TM_NAMES["use1"]] == clouds.old["trafficmanager"][TM_NAMES["use1"]], info  # not left parked
    edits = [e for e in r.events if e["event"] == r.status][-1].get("concurrent_edit") or []
    assert edits and any(kind in x["resource"] for x in edits), info
    shown = json.dumps(edits)
    expected_value, found_value = (CDNS_VALUES["use1"][0], OPERATOR_VALUE) if kind == "clouddns" else (
        "Enabled", "Disabled")
    assert expected_value in shown and found_value in shown, info  # the event log records both values
    message = " ".join(r.report["errors"])
    assert "concurrent edit" in message and expected_value in message and found_value in message, info
    assert check_events_list_writes(clouds, r, engine.state_dir) == [], info
    assert open_journals(engine.state_dir) == [], info
