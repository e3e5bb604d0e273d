"""A whole region at once: every service active in a region moves out in ONE transaction.

:func:`run_region` takes the locks of every service with an endpoint in the region (sorted, all
or none), finishes interrupted runs of them, reads their routing in one batched read, probes the
candidate targets (the endpoints outside the region) of the services that must move in one
concurrent round, picks each one's target (:func:`decide`, pure), and hands the moves to one
:class:`~failover_engine.engine.transaction.Transaction`: one batch per provider scope, one wait, one
read-back, per-service outcomes and a region-level outcome with its own RTO.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failover_engine.core.timeline import iso
from failover_engine.engine.files import private_dir
from failover_engine.engine.transaction import Request, Transaction

if TYPE_CHECKING:
    from failover_engine.engine.failover import FailoverEngine
    from failover_engine.core.outcome import Observation, Outcome
    from failover_engine.core.selection import Verdict

MOVED = ("succeeded", "planned", "unverified")


@dataclass
class RegionOutcome:
    """The region-level result: every service's outcome, and the run's own timeline and RTO
    (from the first signal of any moving service, or the command, to the last validation)."""

    region: str
    run_id: str
    started: float
    apply: bool
    services: list["Outcome"] = field(default_factory=list)
    first_signal_at: float | None = None
    decided_at: float | None = None
    first_write_at: float | None = None
    validated_at: float | None = None
    report_path: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.status for o in self.services).items()))

    @property
    def moving(self) -> list["Outcome"]:
        return [o for o in self.services if o.plan is not None and not o.plan.is_noop and o.status != "noop"]

    @property
    def status(self) -> str:
        moving = self.moving
        if not self.apply:
            return "planned" if any(o.status == "planned" for o in moving) else "noop"
        if not moving and all(o.ok for o in self.services):
            return "noop"
        if all(o.ok for o in self.services):
            return "succeeded"
        return "partial" if any(o.status in MOVED for o in self.services) else "failed"

    @property
    def rto(self) -> float | None:
        if self.first_signal_at is None or self.validated_at is None:
            return None
        return round(self.validated_at - self.first_signal_at, 6)

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """Compact by default (readable at 1,000 services): per service its status, target, RTO,
        reason, errors and report; ``full`` adds every service's whole outcome."""
        phases = {"decision": _span(self.first_signal_at, self.decided_at),
                  "apply": _span(self.decided_at, self.first_write_at and max(
                      [o.timeline.applied_at for o in self.services if o.timeline and o.timeline.applied_at] or [0])
                      or None),
                  "validation": None}
        applied = [o.timeline.applied_at for o in self.services if o.timeline and o.timeline.applied_at]
        if applied and self.validated_at:
            phases["validation"] = _span(max(applied), self.validated_at)
        rows = []
        for o in self.services:
            rows.append({"service": o.service, "status": o.status, "target": sorted(o.plan.target) if o.plan else None,
                         "rto_s": o.timeline.rto if o.timeline else None,
                         "reason": o.reason or (o.plan.reason if o.plan else ""), "errors": o.errors[:5],
                         "report": o.report_path})
        out = {"region": self.region, "run_id": self.run_id, "status": self.status, "started": iso(self.started),
               "summary": {"services": len(self.services), "moving": len(self.moving), **self.counts},
               "rto_s": self.rto, "phases_s": phases,
               "first_write_after_s": _span(self.started, self.first_write_at),
               "report_path": self.report_path, "services": rows}
        if full:
            out["outcomes"] = [o.to_dict() for o in self.services]
        return out

    def write_report(self, state_dir: Any) -> None:
        private_dir(state_dir)
        private_dir(os.path.join(str(state_dir), "reports"))
        d = str(private_dir(os.path.join(str(state_dir), "reports", "regions")))
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.started))
        path = os.path.join(d, f"{stamp}-{self.region}-{self.run_id}.json")
        self.report_path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(self.to_dict(full=True), default=str))


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 6)


def decide(engine: "FailoverEngine", region: str, name: str, obs: "Observation",
           verdicts: dict[str, "Verdict"] | None) -> tuple[str | None, str]:
    """(target endpoint or None, why) for one service: pure given its observation and verdicts.

    A service must leave when its active endpoint is in the region (or its routing state is
    unknown); its target is the first healthy standby (then primary) outside the region, or the
    first outside when none was found healthy (the plan then refuses it as unhealthy)."""
    svc = engine.loaded.service(name)
    active = obs.active
    if not any(ep.region == region for ep in svc.endpoints):
        return None, f"no endpoint in {region}"
    in_region = [ep for ep in (active or {}) if svc.endpoint(ep).region == region]
    if active is not None and not in_region:
        return None, f"active endpoint(s) {', '.join(active)} not in {region}"
    outside = [ep.name for ep in svc.standbys + [svc.primary] if ep.region != region]
    healthy = [n for n in outside if getattr((verdicts or {}).get(n), "health", "") == "healthy"]
    target = (healthy or outside or [None])[0]
    why = f"active in {region}" if active else "routing state unknown"
    return target, why if target else f"{why}; no endpoint outside {region}"


def _candidates(engine: "FailoverEngine", region: str, names: list[str],
                observed: dict[str, "Observation"]) -> list[tuple[str, Any, list[str]]]:
    """What the decision round probes: the endpoints outside the region of services that must move."""
    out = []
    for n in names:
        svc = engine.loaded.service(n)
        active = observed[n].active
        if active is not None and not any(svc.endpoint(ep).region == region for ep in active):
            continue
        outside = [ep.name for ep in svc.standbys + [svc.primary] if ep.region != region]
        if outside:
            out.append((n, svc, outside))
    return out


def region_inputs(engine: "FailoverEngine", region: str) -> tuple[list[str], dict[str, "Observation"],
                                                                  dict[str, dict[str, "Verdict"]]]:
    """(services with an endpoint in the region, their observations, verdicts of their candidates)."""
    from failover_engine.detection.rounds import probe_round
    from failover_engine.core.selection import verdicts_from_probes

    names = [n for n, s in engine.strategy.services.items() if any(ep.region == region for ep in s.endpoints)]
    engine.progress(f"region {region}: reading the routing of {len(names)} service(s)")
    observed = engine.observe_many(names) if names else {}
    wanted = _candidates(engine, region, names, observed)
    engine.progress(f"region {region}: probing {sum(len(w[2]) for w in wanted)} candidate target(s) "
                    f"of {len(wanted)} service(s) in one round")
    verdicts = {n: verdicts_from_probes(r) for n, r in probe_round(wanted).items()}
    return names, observed, verdicts


def region_plans(engine: "FailoverEngine", region: str) -> tuple[list[tuple[str, str | None, str]], list[Any]]:
    """The dry run: (service, target, why) of every service, and the plans of those that move."""
    names, observed, verdicts = region_inputs(engine, region)
    decisions = [(n, *decide(engine, region, n, observed[n], verdicts.get(n))) for n in names]
    tx = Transaction(engine, uuid.uuid4().hex[:12], kind="region")
    reqs = [Request(n, "switch", t, verdicts=verdicts.get(n, {})) for n, t, _unused in decisions if t]
    tx.plan_all(reqs, observed, {})
    return decisions, [tx.plans[r.service] for r in reqs if r.service in tx.plans]


def run_region(engine: "FailoverEngine", region: str, *, apply: bool = False, force: bool = False,
               expect: dict[str, str] | None = None, take_over: bool = False) -> RegionOutcome:
    from failover_engine.core.outcome import Outcome

    started = time.time()
    tx = Transaction(engine, uuid.uuid4().hex[:12], force=force, take_over=take_over, kind="region", started=started)
    result = RegionOutcome(region, tx.run_id, started, apply)
    involved = [n for n, s in engine.strategy.services.items() if any(ep.region == region for ep in s.endpoints)]
    locks = engine.hold_locks(involved, f"region {region} run {tx.run_id}", region=region) if apply else contextlib.nullcontext()
    with locks:
        if apply:
            engine._recover_first(involved)
        names, observed, verdicts = region_inputs(engine, region)
        requests: list[Request] = []
        others: list[Outcome] = []
        for n in engine.strategy.services:
            if n not in names:
                others.append(Outcome(n, "switch", "noop", tx.run_id, started=started, reason=f"no endpoint in {region}"))
                continue
            target, why = decide(engine, region, n, observed[n], verdicts.get(n))
            stale = _stale(region, n, target, why, expect)
            if target is None or stale:
                refused = bool(stale) or "no endpoint outside" in why
                out = Outcome(n, "switch", "refused" if refused else "noop", tx.run_id, started=started, reason=why)
                out.errors = [stale or why] if refused else []
                if stale:
                    tx.ev("refused", n, reasons=out.errors, stale=True)
                others.append(out)
                continue
            requests.append(Request(n, "switch", target, verdicts=verdicts.get(n, {}),
                                    expect=None if expect is None else expect[n]))
        engine.progress(f"region {region}: {len(requests)} service(s) to move, {len(others)} left alone")
        if apply:
            outs = tx.execute(requests, observed, {})
        else:
            tx.plan_all(requests, observed, {})
            outs = [tx.outcomes[r.service] for r in requests]
            for o in outs:
                if o.plan is not None:
                    o.status = "noop" if o.plan.is_noop else "planned"
        tx.flush()
    result.services = sorted(outs + others, key=lambda o: o.service)
    _close(engine, result, tx, apply)
    return result


def _stale(region: str, name: str, target: str | None, why: str, expect: dict[str, str] | None) -> str:
    if expect is None:
        return ""
    if target is None and name in expect:
        return f"stale plan: {name} was confirmed to leave {region}, but now: {why}; plan again"
    if target is not None and name not in expect:
        return (f"stale plan: {name} must now leave {region} (to {target}) but was not in the confirmed region "
                "plan: plan again")
    return ""


def _close(engine: "FailoverEngine", result: RegionOutcome, tx: Transaction, apply: bool) -> None:
    moving = [o for o in result.services if o.timeline is not None]
    if moving:
        result.first_signal_at = min(o.timeline.first_signal_at or result.started for o in moving)  # type: ignore[union-attr]
        decided = [o.timeline.decided_at for o in moving if o.timeline and o.timeline.decided_at]
        result.decided_at = max(decided) if decided else None
    else:
        result.first_signal_at = result.started
    result.first_write_at = tx.first_write_at
    validated = [o.timeline.validated_at for o in result.services if o.timeline and o.timeline.validated_at]
    if validated and all(o.ok for o in result.services):
        result.validated_at = max(validated)
    api_calls = engine.api_calls()
    for o in result.services:
        o.api_calls = api_calls
        if apply and o.timeline is not None:
            engine._write_report(o)
    if apply:
        result.write_report(engine.state_dir)
        engine.events.append("region_run_ended", None, run_id=result.run_id, region=result.region,
                             status=result.status, counts=result.counts, rto_s=result.rto,
                             report=result.report_path)
    counts = ", ".join(f"{n} {status}" for status, n in result.counts.items()) or "no service"
    engine.progress(f"region {result.region}: {result.status}: {counts}"
                    + (f"; region RTO {result.rto:.2f} s" if result.rto is not None else ""))
