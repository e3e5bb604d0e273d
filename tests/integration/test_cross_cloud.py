"""One service steered in three clouds fails over as one plan, and a fault mid-plan is compensated.

The service ``shop`` of the lab (regions use1 primary, usw2 standby, played by the lab's region
servers) is steered by three routing bindings, applied in this order: a Route 53 failover record
on the lab's moto (step 0), a Cloud DNS primaryBackup record set on the Cloud DNS emulator (step 1)
and a Traffic Manager Priority profile on the Traffic Manager emulator (step 2). Every provider
is seeded and read back with its own SDK (boto3, Google's clients, azure-mgmt-trafficmanager),
never through the adapters; faults are injected by the emulators (``fail_next``), and the calls
are counted in their request logs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from failover_engine.adapters import adapter_class
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.outcome import Outcome
from failover_engine.lab.lab import Lab
from failover_engine.config.loader import load_strategy
from failover_engine.cli.reporting import render_outcome

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

R53_ZONE, R53_RECORD = "drill.example.", "shop.drill.example."  # the lab's own binding, seeded by the lab
R53_IDS = {"use1-primary": "use1", "usw2-standby": "usw2"}
CDNS_ZONE, CDNS_DNS_NAME, CDNS_RECORD = "shop", "shop.example.", "www.shop.example."
CDNS_VALUES = {"use1": ["192.0.2.10"], "usw2": ["198.51.100.10"]}
TM_RG, TM_PROFILE = "rg-shop", "shop-tm"
TM_NAMES = {"use1": "tm-use1", "usw2": "tm-usw2"}
MAX_ATTEMPTS = 2
KINDS = ["route53", "clouddns", "trafficmanager"]  # the declared order of the steps


class Providers:
    """The three providers as their own SDKs see them."""

    def __init__(self, lab: Lab, cdns: Any, tm: Any):
        self.lab, self.cdns, self.tm = lab, cdns, tm
        self.route53 = lab.route53_client()

    def seed(self) -> None:
        """Steady state, use1 active everywhere (Route 53: the lab seeded it on reset)."""
        self.cdns.create_zone(CDNS_ZONE, CDNS_DNS_NAME)
        self.cdns.put(CDNS_ZONE, {"name": CDNS_RECORD, "type": "A", "ttl": 30, "routingPolicy": {"primaryBackup": {
            "primaryTargets": {"externalEndpoints": CDNS_VALUES["use1"]},
            "backupGeoTargets": {"items": [{"location": "us-west1", "rrdatas": CDNS_VALUES["usw2"]}]}}}})
        self.tm.put_profile(TM_RG, TM_PROFILE, "Priority",
                            {TM_NAMES["use1"]: {"priority": 1}, TM_NAMES["usw2"]: {"priority": 2}})
        self.cdns.emulator.requests.clear()
        self.tm.emulator.requests.clear()

    def route53_records(self) -> list[dict[str, Any]]:
        sets = self.route53.list_resource_record_sets(HostedZoneId=self.lab.zones[R53_ZONE], StartRecordName=R53_RECORD,
                                                      StartRecordType="A")["ResourceRecordSets"]
        return sorted((r for r in sets if r["Name"] == R53_RECORD), key=lambda r: r["SetIdentifier"])

    def snapshot(self, *kinds: str) -> dict[str, Any]:
        """The raw state of each provider's steered resources."""
        read = {"route53": self.route53_records, "clouddns": lambda: self.cdns.get(CDNS_ZONE, CDNS_RECORD),
                "trafficmanager": lambda: self.tm.endpoints(TM_RG, TM_PROFILE)}
        return {k: read[k]() for k in kinds or KINDS}

    def active(self) -> dict[str, str | None]:
        """Who takes the traffic, per provider."""
        primaries = [R53_IDS[r["SetIdentifier"]] for r in self.route53_records() if r["Failover"] == "PRIMARY"]
        pb = self.cdns.get(CDNS_ZONE, CDNS_RECORD)["routingPolicy"]["primaryBackup"]
        by_values = {tuple(v): n for n, v in CDNS_VALUES.items()}
        tm = self.tm.serving(TM_RG, TM_PROFILE, "Priority")
        return {"route53": primaries[0] if len(primaries) == 1 else None,
                "clouddns": by_values.get(tuple(pb["primaryTargets"]["externalEndpoints"])),
                "trafficmanager": {v: k for k, v in TM_NAMES.items()}.get(tm or "")}


def everywhere(endpoint: str) -> dict[str, str]:
    return {k: endpoint for k in KINDS}


@pytest.fixture
def providers(lab_aws: Lab, clouddns_sdk: Any, trafficmanager_sdk: Any) -> Providers:
    p = Providers(lab_aws, clouddns_sdk, trafficmanager_sdk)
    p.seed()
    assert p.active() == everywhere("use1")
    return p


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_engine(providers: Providers, tmp_path: Path, sleeps: list[float]) -> Callable[..., FailoverEngine]:
    """Factory: the engine on the lab's strategy with a Cloud DNS and a Traffic Manager binding added
    after the Route 53 one. Adapters are built by the registry as usual; their backoff sleeps are
    recorded, not slept."""

    def make(cdns_attempts: int = MAX_ATTEMPTS) -> FailoverEngine:
        data = yaml.safe_load(providers.lab.strategy_path.read_text())
        data["connections"]["gcp-local"] = {"type": "clouddns", "project": providers.cdns.project,
                                            "endpoint_url": providers.cdns.emulator.url, "credentials": "anonymous",
                                            "max_attempts": cdns_attempts}
        data["connections"]["azure-local"] = {"type": "trafficmanager", "subscription_id": providers.tm.subscription,
                                              "endpoint_url": providers.tm.emulator.url,
                                              "ca_bundle": providers.tm.emulator.ca_file, "credentials": "token_env",
                                              "token_env_var": providers.tm.token_env_var,
                                              "max_attempts": MAX_ATTEMPTS}
        data["connections"]["aws-local"]["max_attempts"] = MAX_ATTEMPTS
        shop = data["services"]["shop"]
        shop["routing"] += [
            {"adapter": "clouddns", "connection": "gcp-local", "managed_zone": CDNS_ZONE, "record": CDNS_RECORD,
             "ttl": 30, "mode": "primary_backup",
             "endpoints": {n: {"values": v, "location": {"use1": "us-east1", "usw2": "us-west1"}[n]}
                           for n, v in CDNS_VALUES.items()}},
            {"adapter": "trafficmanager", "connection": "azure-local", "resource_group": TM_RG, "profile": TM_PROFILE,
             "mode": "priority", "endpoints": {n: {"endpoint": e} for n, e in TM_NAMES.items()}}]
        shop["policy"]["cooldown"] = 0
        shop["validation"] = {"attempts": 2, "interval": "50ms"}
        path = tmp_path / "strategy.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        loaded = load_strategy(path, state_dir=tmp_path / "state")
        assert [b.adapter for b in loaded.strategy.services["shop"].routing] == KINDS
        return FailoverEngine(loaded, adapter_factory=lambda kind, conn: adapter_class(kind)(conn, sleep=sleeps.append))

    return make


@pytest.fixture
def engine(make_engine: Callable[..., FailoverEngine]) -> FailoverEngine:
    return make_engine()


def run_events(engine: FailoverEngine, out: Outcome) -> list[tuple[str, Any]]:
    """(event, step) of the run, in the order written."""
    return [(e["event"], e.get("step")) for e in engine.events.read("shop") if e.get("run_id") == out.run_id]


def report(out: Outcome) -> dict[str, Any]:
    assert out.report_path is not None
    return json.loads(Path(out.report_path).read_text())


def planning_calls(engine: FailoverEngine, emulator: Any) -> int:
    """How many requests a provider gets while the engine observes and plans (a dry run)."""
    since = len(emulator.requests)
    assert engine.run("shop", "failover").status == "planned"
    count = len(emulator.requests) - since
    emulator.requests.clear()
    return count


# --------------------------------------------------------------------------- (a) one plan, three clouds
def test_failover_and_failback_move_all_three_clouds_as_one_plan(providers: Providers, engine: FailoverEngine) -> None:
    before = providers.snapshot()
    providers.lab.regions["use1"].set_mode("down")

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.errors) == ("succeeded", []), out.to_dict()
    assert [s.adapter for s in out.plan.steps] == KINDS and all(s.effective for s in out.plan.steps)
    assert run_events(engine, out) == [("run_started", None), ("decided", None), ("step_applied", 0),
                                       ("step_applied", 1), ("step_applied", 2), ("succeeded", None)]
    assert providers.active() == everywhere("usw2")
    assert [r["ok"] for r in out.validation.read_back] == [True, True, True]
    assert out.timeline.rto is not None and out.timeline.rto > 0
    rep = report(out)
    assert rep["status"] == "succeeded" and rep["timeline"]["rto_s"] == pytest.approx(out.timeline.rto)
    assert [s["adapter"] for s in rep["plan"]["steps"]] == KINDS
    succeeded = engine.events.read("shop")[-1]
    assert succeeded["event"] == "succeeded" and succeeded["rto_s"] > 0

    providers.lab.regions["use1"].set_mode("up")
    back = engine.run("shop", "failback", apply=True)

    assert back.status == "succeeded", back.to_dict()
    assert [e for e in run_events(engine, back) if e[0].startswith("step")] == [
        ("step_applied", 0), ("step_applied", 1), ("step_applied", 2)]
    assert providers.active() == everywhere("use1")
    assert providers.snapshot() == before  # every provider exactly as it was


# --------------------------------------------------------------------------- (b) Traffic Manager fails: step 2 of 3
def arm_traffic_manager(providers: Providers, engine: FailoverEngine, count: int) -> int:
    """From the first write of the Traffic Manager step on, ``count`` requests answer 500: the
    planning reads and the step's own fresh read of the profile pass. Returns the requests let through."""
    through = planning_calls(engine, providers.tm.emulator) + 1  # + the step's read before its PATCHes
    providers.tm.emulator.fail_next(count, 500, after=through)
    return through


def assert_compensated_up_to(providers: Providers, engine: FailoverEngine, out: Outcome, before: dict[str, Any],
                             failed: int) -> None:
    """Steps before ``failed`` applied, ``failed`` failed, every provider the step touched restored."""
    events = run_events(engine, out)
    assert events[:2 + failed + 1] == [("run_started", None), ("decided", None)] + [
        ("step_applied", i) for i in range(failed)] + [("step_failed", failed)]
    assert events[-1][0] in ("rolled_back", "rollback_failed") and len(events) == failed + 4
    step_failed = [e for e in engine.events.read("shop") if e.get("run_id") == out.run_id][2 + failed]
    assert KINDS[failed] in step_failed["error"]
    assert [s["step"] for s in out.rollback["steps"]] == list(range(failed, -1, -1))  # newest first
    assert all(s["ok"] and not s["left_as_is"] for s in out.rollback["steps"] if s["step"] < failed)
    applied = KINDS[:failed]
    assert providers.snapshot(*applied) == {k: before[k] for k in applied}


def test_traffic_manager_failing_mid_plan_rolls_back_the_two_applied_steps(providers: Providers,
                                                                           engine: FailoverEngine) -> None:
    before = providers.snapshot()
    through = arm_traffic_manager(providers, engine, MAX_ATTEMPTS)  # every attempt of the first PATCH fails

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.rollback["ok"]) == ("rolled_back", True), out.to_dict()
    assert_compensated_up_to(providers, engine, out, before, failed=2)
    assert providers.snapshot() == before and providers.active() == everywhere("use1")
    tm = providers.tm.emulator.requests
    assert [r["method"] for r in tm[:through + MAX_ATTEMPTS]] == ["GET"] * through + ["PATCH"] * MAX_ATTEMPTS
    assert providers.tm.emulator.writes() == tm[through:through + MAX_ATTEMPTS]  # only the refused PATCHes
    assert run_events(engine, out)[-1] == ("rolled_back", None)

    rep = report(out)
    assert (rep["status"], rep["ok"], rep["changed"]) == ("rolled_back", False, True)
    assert [s["adapter"] for s in rep["plan"]["steps"]] == KINDS
    assert [(s["step"], s["ok"], s["problems"]) for s in rep["rollback"]["steps"]] == [
        (2, True, []), (1, True, []), (0, True, [])]
    assert len(rep["errors"]) == 1 and rep["errors"][0].startswith(f"trafficmanager [{TM_RG}/{TM_PROFILE}/")
    assert "500" in rep["errors"][0] or "InternalServerError" in rep["errors"][0]
    assert "rollback: ok" in render_outcome(out)
    rolled_back = [e for e in engine.events.read("shop") if e.get("run_id") == out.run_id][-1]
    assert rolled_back["event"] == "rolled_back" and rolled_back["steps"] == rep["rollback"]["steps"]


def test_traffic_manager_failing_for_good_still_restores_the_applied_steps(providers: Providers,
                                                                           engine: FailoverEngine) -> None:
    before = providers.snapshot("route53", "clouddns")
    arm_traffic_manager(providers, engine, 1000)  # and every request after, the rollback's read included

    out = engine.run("shop", "failover", apply=True)

    # the PATCHes were answered 500 (sent: maybe carried out) and Traffic Manager cannot be read any
    # more: nobody can tell what it holds, so the run says unknown, never rolled_back; the steps it
    # could read are restored all the same
    assert out.status == "unknown", out.to_dict()
    assert any("cannot be read" in e for e in out.rollback["unknown"])
    events = run_events(engine, out)
    assert events[-1] == ("unknown", None) and ("step_failed", 2) in events
    assert providers.snapshot("route53", "clouddns") == before
    tm = providers.tm.emulator.profile(providers.tm.subscription, TM_RG, TM_PROFILE)  # in process: the API fails
    assert {e["name"]: e["properties"]["priority"] for e in tm["properties"]["endpoints"]} == {
        TM_NAMES["use1"]: 1, TM_NAMES["usw2"]: 2}  # no write ever got through


def test_traffic_manager_failing_for_good_before_any_write_is_a_clean_rollback(providers: Providers,
                                                                               engine: FailoverEngine) -> None:
    before = providers.snapshot("route53", "clouddns")
    arm_traffic_manager(providers, engine, 1000)
    out = engine.run("shop", "failover", apply=True)
    # its first PATCH was answered 500 and the profile cannot be read back: unknown, not rolled_back
    assert (out.status, out.rollback["ok"]) == ("unknown", False), out.rollback
    assert providers.snapshot("route53", "clouddns") == before


def test_traffic_manager_failing_half_way_through_its_step_is_rolled_back_too(providers: Providers,
                                                                              engine: FailoverEngine) -> None:
    before = providers.snapshot()
    through = planning_calls(engine, providers.tm.emulator) + 2  # the step's read and its first PATCH pass
    providers.tm.emulator.fail_next(MAX_ATTEMPTS, 500, after=through)

    out = engine.run("shop", "failover", apply=True)

    assert_compensated_up_to(providers, engine, out, before, failed=2)
    assert providers.active()["trafficmanager"] == "use1"
    assert providers.snapshot() == before
    assert (out.status, out.rollback["ok"]) == ("rolled_back", True)


def test_the_report_says_which_steps_were_applied_and_which_failed(providers: Providers,
                                                                   engine: FailoverEngine) -> None:
    arm_traffic_manager(providers, engine, MAX_ATTEMPTS)
    out = engine.run("shop", "failover", apply=True)
    rep = report(out)
    assert [(s["step"], s["status"]) for s in rep["steps"]] == [(0, "applied"), (1, "applied"), (2, "failed")]


# --------------------------------------------------------------------------- (c) Cloud DNS: 500 on its third call
@pytest.mark.parametrize("attempts", [1, MAX_ATTEMPTS], ids=["no-retry", "every-attempt"])
def test_cloud_dns_answering_500_on_its_third_call_rolls_back(providers: Providers, make_engine: Callable[..., Any],
                                                              attempts: int) -> None:
    engine = make_engine(cdns_attempts=attempts)  # 1: the words literally, one 500 and no retry
    before = providers.snapshot()
    cdns = providers.cdns.emulator
    assert planning_calls(engine, cdns) == 1  # the filtered read of the record set
    cdns.fail_next(attempts, 500, after=2)  # the 3rd call (and its retries) answer 500

    out = engine.run("shop", "failover", apply=True)

    calls = [(r.method, r.path.rsplit("/", 2)[-2] if "/changes/" in r.path else r.path.rsplit("/", 1)[-1])
             for r in cdns.requests]
    # 1: observe, 2: the change (written), 3: the waiter's poll: 500 -> the step fails after the write
    assert calls[:3] == [("GET", "rrsets"), ("POST", "changes"), ("GET", "changes")]
    assert calls[2:2 + attempts] == [("GET", "changes")] * attempts
    assert (out.status, out.rollback["ok"]) == ("rolled_back", True), out.to_dict()
    assert_compensated_up_to(providers, engine, out, before, failed=1)
    assert providers.snapshot() == before and providers.active() == everywhere("use1")
    assert providers.tm.emulator.writes() == []  # step 2 never ran
    assert [c["additions"][0]["routingPolicy"]["primaryBackup"]["primaryTargets"]["externalEndpoints"]
            for c in cdns.changes(providers.cdns.project, CDNS_ZONE)[2:]] == [["198.51.100.10"], ["192.0.2.10"]]
    rep = report(out)
    assert [(s["step"], s["ok"]) for s in rep["rollback"]["steps"]] == [(1, True), (0, True)]
    assert rep["errors"][0].startswith(f"clouddns [{CDNS_ZONE}]") and "get change" in rep["errors"][0]


def test_cloud_dns_failing_for_good_after_its_write_is_reported_as_a_failed_rollback(
        providers: Providers, engine: FailoverEngine) -> None:
    before = providers.snapshot("route53")
    cdns = providers.cdns.emulator
    planning_calls(engine, cdns)
    cdns.fail_next(1000, 500, after=2)  # the change goes through, then Cloud DNS answers 500 to everything

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.rollback["ok"]) == ("rollback_failed", False)
    assert_compensated_up_to(providers, engine, out, before, failed=1)
    assert run_events(engine, out)[-1] == ("rollback_failed", None)
    step1 = out.rollback["steps"][0]
    assert step1["step"] == 1 and not step1["ok"] and "clouddns" in step1["problems"][0]
    held = cdns.rrset(providers.cdns.project, CDNS_ZONE, CDNS_RECORD, "A")  # in process: the API fails
    assert held["routingPolicy"]["primaryBackup"]["primaryTargets"]["externalEndpoints"] == ["198.51.100.10"]
    assert "rollback: FAILED" in render_outcome(out) and "step 2" in render_outcome(out)
