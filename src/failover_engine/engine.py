"""The failover engine: observe → check → select → plan → (safety) → apply → validate → rollback.

This is the one path every entry point uses (CLI, Ansible modules, the monitor, MCP): it owns
the lock, the cooldown, the event log, the incident → RTO timeline and the report.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .adapters import make_adapter
from .adapters.base import Adapter
from .errors import AdapterError, FailoverError, UnknownEndpointError
from .events import EventLog, iso, redact
from .loader import LoadedStrategy
from .locks import FileLock, LockProvider
from .metrics import Timeline
from .model import Service
from .plan import Assignment, Attrs, Change, Plan, PlanStep, ResourceKey
from .selection import Action, SimpleVerdict, Verdict, select_target
from .state import StateStore
from .validation import ValidationResult, expected_after, expected_before, probe_until_ok, read_back_mismatches

Progress = Callable[[str], None]


@dataclass
class Observation:
    """What the providers hold now for one service."""

    states: list[dict[ResourceKey, Attrs | None]]  # per routing binding
    per_binding: list[Assignment | None]
    active: Assignment | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "per_binding": self.per_binding, "warnings": self.warnings,
                "resources": [{str(k): v for k, v in s.items()} for s in self.states]}


@dataclass
class Outcome:
    """The result of one run. ``status`` is one of: planned, noop, refused, succeeded,
    rolled_back (validation or a step failed and every change was undone), rollback_failed,
    failed (validation failed, rollback disabled), error (raised before any change)."""

    service: str
    action: str
    status: str
    run_id: str
    plan: Plan | None = None
    timeline: Timeline | None = None
    validation: ValidationResult | None = None
    rollback: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    report_path: str | None = None
    started: float = field(default_factory=time.time)
    api_calls: int = 0
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)  # per plan step: applied/failed/not_run/noop
    promotion: dict[str, Any] | None = None  # the pilot-light terraform apply of this run, if any

    @property
    def changed(self) -> bool:
        return self.status in ("succeeded", "rolled_back", "rollback_failed")

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "noop", "succeeded")

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "action": self.action, "status": self.status, "ok": self.ok,
            "changed": self.changed, "run_id": self.run_id, "started": iso(self.started),
            "plan": self.plan.to_dict() if self.plan else None,
            "timeline": self.timeline.to_dict() if self.timeline else None,
            "validation": self.validation.to_dict() if self.validation else None,
            "steps": self.steps, "rollback": self.rollback, "errors": self.errors, "api_calls": self.api_calls,
            "report_path": self.report_path, "reason": self.reason or (self.plan.reason if self.plan else ""),
            "promotion": self.promotion,
        }


def _observation(states: list[dict[ResourceKey, Attrs | None]], per: list[Assignment | None]) -> Observation:
    """The service's active assignment when every binding agrees, with warnings when they do not."""
    warnings = []
    distinct = {json.dumps(p, sort_keys=True) for p in per}
    if len(distinct) > 1:
        warnings.append(f"routing bindings disagree on the active endpoint: {per}")
    if any(p is None for p in per):
        warnings.append("a routing binding matches no known endpoint assignment (records missing or edited by hand?)")
    return Observation(states, per, per[0] if len(distinct) == 1 else None, warnings)


def _out_of_rotation(svc: Service, in_rotation: list[str], of: str) -> list[str]:
    """Zones / regions with no endpoint in rotation (or the endpoints themselves)."""
    if of == "endpoints":
        return [n for n in svc.endpoint_names if n not in in_rotation]
    attr = "zone" if of == "zones" else "region"
    groups: dict[str, bool] = {}
    for ep in svc.endpoints:
        key = getattr(ep, attr) or f"({ep.name})"
        groups[key] = groups.get(key, False) or ep.name in in_rotation
    return sorted(k for k, live in groups.items() if not live)


def _ident(key: Any) -> tuple[str, ...]:
    """A resource's identity for comparing keys from a plan and from a provider (case-insensitive)."""
    return (key.adapter, key.scope.lower(), key.name.lower(), (key.type or "").lower(), key.set_identifier or "")


def _holds(current: Attrs | None, expected: Attrs | None) -> bool:
    """Whether a resource read now is in the expected state (only the expected attributes count)."""
    if expected is None or current is None:
        return expected is None and current is None
    return not read_back_mismatches({"_": expected}, {"_": current})


def verdicts_from_probes(results: dict[str, Any]) -> dict[str, Verdict]:
    return {n: SimpleVerdict("healthy" if r.ok else "unhealthy", r.reason) for n, r in results.items()}


class FailoverEngine:
    def __init__(self, loaded: LoadedStrategy, *, lock: LockProvider | None = None,
                 adapter_factory: Callable[[str, Any], Adapter] = make_adapter,
                 progress: Progress | None = None):
        self.loaded = loaded
        self.strategy = loaded.strategy
        self.state_dir = Path(loaded.state_dir)
        self.events = EventLog(self.state_dir / "events.jsonl")
        self.store = StateStore(self.state_dir)
        self.lock = lock or FileLock(self.state_dir / "locks")
        self._factory = adapter_factory
        self._adapters: dict[tuple[str, str | None], Adapter] = {}
        self.progress = progress or (lambda msg: None)

    # ------------------------------------------------------------------ building blocks
    def adapter(self, binding: Any) -> Adapter:
        key = (binding.adapter, binding.connection)
        if key not in self._adapters:
            conn = self.strategy.connections.get(binding.connection) if binding.connection else None
            self._adapters[key] = self._factory(binding.adapter, conn)
        return self._adapters[key]

    def api_calls(self) -> int:
        return sum(getattr(a, "calls", 0) for a in self._adapters.values())

    def observe(self, name: str) -> Observation:
        svc = self.loaded.service(name)
        states, per = [], []
        for binding in svc.routing:
            ad = self.adapter(binding)
            st = ad.read([binding])
            states.append(st)
            per.append(ad.active_of(binding, st))
        return _observation(states, per)

    def observe_many(self, names: list[str]) -> dict[str, Observation]:
        """Observe several services with one batched read per adapter (a zone listing, not N reads)."""
        services = {n: self.loaded.service(n) for n in names}
        by_adapter: dict[tuple[str, str | None], list[Any]] = {}
        for svc in services.values():
            for b in svc.routing:
                by_adapter.setdefault((b.adapter, b.connection), []).append(b)
        current: dict[ResourceKey, Attrs | None] = {}
        for bindings in by_adapter.values():
            current.update(self.adapter(bindings[0]).read(bindings))
        out = {}
        for n, svc in services.items():
            states, per = [], []
            for b in svc.routing:
                ad = self.adapter(b)
                st = {k: current.get(k) for k in ad.resource_keys(b)}
                states.append(st)
                per.append(ad.active_of(b, st))
            out[n] = _observation(states, per)
        return out

    def apply_batched(self, plans: list[Plan]) -> dict[str, Any]:
        """Apply the changes of several plans with one adapter call per adapter (batched per zone).

        Used for many services at once (benchmarks; region-wide failover builds on it). Safety
        checks, the lock and validation are the caller's: see :meth:`run` for one service.
        """
        by_adapter: dict[tuple[str, str | None], list[Change]] = {}
        for plan in plans:
            svc = self.loaded.service(plan.service)
            for step in plan.steps:
                b = svc.routing[step.index]
                by_adapter.setdefault((b.adapter, b.connection), []).extend(step.effective)
        receipts = {}
        for (kind, conn), changes in by_adapter.items():
            ad = self._adapters[(kind, conn)]
            receipts[f"{kind}:{conn}"] = ad.apply(changes)
        return receipts

    def check(self, name: str, endpoints: list[str] | None = None) -> dict[str, Verdict]:
        """Probe the service's endpoints → verdicts. An endpoint that fails is probed once more,
        one interval later, so a single lost probe does not refuse (or allow) a failover."""
        from .detection import probe_service

        svc = self.loaded.service(name)
        results = probe_service(svc, endpoints)
        failed = [n for n, r in results.items() if not r.ok]
        if failed:
            time.sleep(min(svc.detection.interval, 1.0))
            results.update(probe_service(svc, failed))
        return verdicts_from_probes(results)

    # ------------------------------------------------------------------ planning
    def plan(self, name: str, action: Action, target: str | None = None, *,
             verdicts: dict[str, Verdict] | None = None, observation: Observation | None = None,
             now: float | None = None, stable_for: dict[str, float] | None = None) -> Plan:
        """Compute the plan (pure given observation and verdicts; probes/reads when not given).

        ``stable_for`` (seconds each endpoint has been healthy) comes from automation (the
        monitor): an active_active service is then decided as automation decides it (the failover
        policy, members of unknown health kept, members back only after failback_stable_period)."""
        svc = self.loaded.service(name)
        if target is not None and target not in svc.endpoint_names:
            raise UnknownEndpointError(name, target, svc.endpoint_names)
        if action == "rebalance" and svc.strategy != "active_active":
            raise FailoverError(f"service {name!r} is {svc.strategy}: rebalance is for active_active services")
        obs = observation or self.observe(name)
        verdicts = verdicts if verdicts is not None else self.check(name)
        automatic = stable_for is not None and svc.strategy == "active_active"
        decision = select_target(svc, verdicts, obs.active, "auto" if automatic else action, target,
                                 stable_for_each=stable_for)
        refusals = list(decision.refusals)
        warnings = list(obs.warnings) + list(decision.warnings)
        steps: list[PlanStep] = []
        if decision.target is not None and decision.action != "none":
            try:
                steps = self._steps(svc, decision.target, obs)
            except AdapterError as exc:  # the provider cannot express that target (e.g. 2 zones out)
                refusals.append(str(exc))
            if obs.active is None:
                refusals.append("routing state is unknown or inconsistent; check the records first")
            cooldown = self._cooldown_refusal(name, svc, now or time.time())
            if cooldown:
                refusals.append(cooldown)
            refusals.extend(self._gate_refusals(svc, decision.target, obs.active))
            refusals.extend(self._rule_refusals(svc, decision.target, obs.active))
        kind = decision.action if decision.action != "none" else (
            "rebalance" if svc.strategy == "active_active" else {"auto": "failover"}.get(action, action))
        promotion = None
        if any(s.effective for s in steps) and decision.target is not None:
            promotion = self._promotion(svc, obs.active, decision.target)
        return Plan(name, kind, obs.active, decision.target or obs.active or {}, decision.reason,  # type: ignore[arg-type]
                    tuple(steps), tuple(warnings), tuple(refusals), promotion)

    def _promotion(self, svc: Service, current: Assignment | None, target: Assignment) -> dict[str, Any] | None:
        """The pilot-light step of a plan: promote before traffic reaches a standby that needs it,
        or scale back (``failback_vars``) once traffic is back on endpoints that do not."""
        p = svc.promotion
        if p is None:
            return None
        needs = set(p.endpoints or [ep.name for ep in svc.standbys])
        now_in = {n for n, w in (current or {}).items() if w > 0}
        new_in = {n for n, w in target.items() if w > 0}
        directory = Path(p.dir) if Path(p.dir).is_absolute() else Path(self.loaded.path).resolve().parent / p.dir
        base = {"dir": str(directory), "runner": p.runner}
        if (new_in - now_in) & needs:
            return {"when": "before_traffic", **base, "vars": dict(p.vars), "on_failure": p.on_failure}
        if p.failback_vars and now_in & needs and not new_in & needs:
            return {"when": "after_failback", **base, "vars": dict(p.failback_vars)}
        return None

    def _terraform_apply(self, plan: Plan, out: Outcome, ev: Callable[..., Any]) -> bool:
        """Run the plan's promotion (or scale back); record it in the outcome and the log."""
        from .terraform import runner

        promo = plan.promotion or {}
        what = "promotion" if promo.get("when") == "before_traffic" else "scale_back"
        rec: dict[str, Any] = {"phase": what, "dir": promo.get("dir"), "vars": redact(promo.get("vars")),
                               "status": "running"}
        out.promotion = rec
        self.progress(f"{plan.service}: {what.replace('_', ' ')}: terraform apply in {promo.get('dir')}")
        ev(f"{what}_started", dir=promo.get("dir"), vars=promo.get("vars"))
        t0 = time.time()
        try:
            tf = runner(promo.get("runner", "auto"))
            rec["runner"] = tf.kind
            tf.apply(promo["dir"], promo.get("vars"))
        except FailoverError as exc:
            rec.update(status="failed", error=str(exc), duration_s=round(time.time() - t0, 6))
            ev(f"{what}_failed", error=str(exc))
            return False
        rec.update(status="applied", duration_s=round(time.time() - t0, 6))
        ev(f"{what}_applied", duration_s=rec["duration_s"], runner=rec.get("runner"))
        return True

    def _steps(self, svc: Service, target: Assignment, obs: Observation) -> list[PlanStep]:
        steps = []
        for i, binding in enumerate(svc.routing):
            ad = self.adapter(binding)
            desired = ad.desired(binding, target)
            current = obs.states[i]
            changes = tuple(Change(k, current.get(k), v) for k, v in desired.items())
            steps.append(PlanStep(i, binding.adapter, binding.connection, ad.describe(binding), changes))
        return steps

    def _gate_refusals(self, svc: Service, target: Assignment, current: Assignment | None) -> list[str]:
        """Run the data-consistency gate of every endpoint about to be promoted (not of those
        already taking traffic: a member staying in rotation does not block removing another)."""
        from .probes import probe_once

        out = []
        for ep in [e for e in target if current is None or e not in current]:
            gate = svc.endpoint(ep).gate
            if gate is None:
                continue
            r = probe_once(gate, timeout=svc.detection.timeout, endpoint=f"{ep}:gate")
            if not r.ok:
                out.append(f"consistency gate of {ep!r} failed: {r.reason}")
        return out

    def _rule_refusals(self, svc: Service, target: Assignment, current: Assignment | None = None) -> list[str]:
        """Every safety rule of the service the plan's target would break, each named.

        A rule the current rotation already breaks refuses only a plan that makes it worse: a
        member coming back while the service is still short is let through, never blocked."""
        from .model import GateRule, MaxOutRule, MinActiveRule, MinCapacityRule
        from .probes import probe_once

        out = []
        in_rotation = [n for n, w in target.items() if w > 0]
        now_in = None if current is None else [n for n, w in current.items() if w > 0]
        for i, rule in enumerate(svc.rules):
            label = f"rule {i + 1} ({rule.rule}"
            if isinstance(rule, MinActiveRule) and len(in_rotation) < rule.count and (
                    now_in is None or len(in_rotation) < len(now_in)):
                out.append(f"{label} {rule.count}): the plan leaves {len(in_rotation)} endpoint(s) in rotation "
                           f"({', '.join(in_rotation) or 'none'})")
            elif isinstance(rule, MaxOutRule):
                gone = _out_of_rotation(svc, in_rotation, rule.of)
                gone_now = None if now_in is None else _out_of_rotation(svc, now_in, rule.of)
                if len(gone) > rule.count and (gone_now is None or len(gone) > len(gone_now)):
                    out.append(f"{label} {rule.count} {rule.of}): the plan takes {len(gone)} {rule.of} out "
                               f"({', '.join(gone)})")
            elif isinstance(rule, MinCapacityRule):
                have = sum(svc.endpoint(n).capacity or 0 for n in in_rotation)
                had = None if now_in is None else sum(svc.endpoint(n).capacity or 0 for n in now_in)
                if have < rule.capacity and (had is None or have < had):
                    out.append(f"{label} {rule.capacity}): the endpoints left in rotation declare a capacity "
                               f"of {have} ({', '.join(in_rotation) or 'none'})")
            elif isinstance(rule, GateRule):
                r = probe_once(rule.probe, timeout=svc.detection.timeout, endpoint=f"gate:{rule.name}")
                if not r.ok:
                    out.append(f"{label} {rule.name!r}): the gate is closed: {r.reason}")
        return out

    def _cooldown_refusal(self, name: str, svc: Service, now: float) -> str | None:
        last = self.store.load(name).last_switch_at
        if last is not None and now - last < svc.policy.cooldown:
            return (f"cooldown: last switch {now - last:.1f}s ago, cooldown is {svc.policy.cooldown:.0f}s "
                    "(guards against flapping)")
        return None

    # ------------------------------------------------------------------ running
    def run(self, name: str, action: Action, target: str | None = None, *, apply: bool = False,
            force: bool = False, verdicts: dict[str, Verdict] | None = None,
            stable_for: dict[str, float] | None = None, expect: str | None = None) -> Outcome:
        """Plan and, when ``apply`` is true, apply under the service lock. Dry run by default.

        ``verdicts`` (e.g. the monitor's quorum verdicts) replace the one-round probe check;
        ``stable_for`` makes an active_active plan an automatic one (see :meth:`plan`);
        ``expect`` is the fingerprint of a plan someone confirmed (:meth:`Plan.fingerprint`): the
        run is refused as stale, even when forced, unless the plan made under the lock has it."""
        svc = self.loaded.service(name)
        out = Outcome(name, action, "planned", uuid.uuid4().hex[:12])
        if not apply:
            out.plan = self.plan(name, action, target, verdicts=verdicts, stable_for=stable_for)
            out.status = "noop" if out.plan.is_noop else "planned"
            out.api_calls = self.api_calls()
            return out
        with self.lock.hold(name, f"{action} run {out.run_id}"):
            try:
                self._run_locked(svc, name, action, target, force, out, verdicts, stable_for, expect)
            except FailoverError as exc:
                # e.g. Route 53 unreachable before anything changed: close the run in the log
                out.status = "error"
                out.errors.append(str(exc))
                self.events.append("errored", name, run_id=out.run_id, error=str(exc))
                out.api_calls = self.api_calls()
                self._write_report(out)
                raise
        out.api_calls = self.api_calls()
        self._write_report(out)
        return out

    def _timeline(self, name: str, action: str, start: float) -> Timeline:
        inc = self.store.load(name).incident
        want = {"failback": ("recovery",), "rebalance": ("failure", "recovery")}.get(action, ("failure",))
        if inc is not None and inc.signal in want and inc.detected_at <= start:
            return Timeline(inc.signal, inc.first_signal_at, inc.detected_at)
        return Timeline("manual", start, start)

    def _run_locked(self, svc: Service, name: str, action: Action, target: str | None, force: bool,
                    out: Outcome, verdicts: dict[str, Verdict] | None = None,
                    stable_for: dict[str, float] | None = None, expect: str | None = None) -> None:
        ev = lambda event, **kw: self.events.append(event, name, run_id=out.run_id, **kw)  # noqa: E731
        out.timeline = self._timeline(name, action, out.started)
        ev("run_started", action=action, target=target, force=force, signal=out.timeline.signal)
        self.progress(f"{name}: reading routing state and probing endpoints")
        plan = out.plan = self.plan(name, action, target, verdicts=verdicts, stable_for=stable_for)
        out.timeline.decided_at = time.time()
        ev("decided", plan=plan.to_dict())
        if expect is not None and plan.fingerprint() != expect:
            out.status = "refused"
            out.errors = [f"stale plan: the confirmed plan was {expect}, the plan now is {plan.fingerprint()} "
                          f"({plan.action} {sorted(plan.current or {})} -> {sorted(plan.target)}, "
                          f"{len(plan.changes)} change(s)); the state changed since it was confirmed: plan again"]
            ev("refused", reasons=out.errors, stale=True)
            return
        if plan.refusals and not force:
            out.status = "refused"
            out.errors = list(plan.refusals)
            ev("refused", reasons=list(plan.refusals))
            return
        if plan.is_noop:
            out.status = "noop"
            ev("noop", reason=plan.reason)
            return
        if plan.refusals:
            ev("forced", overridden=list(plan.refusals))
        if plan.promotion and plan.promotion.get("when") == "before_traffic":
            if not self._terraform_apply(plan, out, ev):
                if plan.promotion.get("on_failure") != "continue":
                    out.status = "failed"
                    out.errors.append(f"pilot-light promotion failed, traffic not moved: {out.promotion['error']}")
                    return
                out.errors.append(f"pilot-light promotion failed, traffic moved anyway (on_failure: continue): "
                                  f"{out.promotion['error']}")
            out.timeline.promoted_at = time.time()
        applied = self._apply_steps(svc, plan, out, ev)
        if applied is None:
            return
        out.timeline.applied_at = time.time()
        self.progress(f"{name}: applied {len(plan.changes)} change(s); validating")
        out.validation = self._validate(svc, plan)
        if out.validation.ok:
            out.timeline.validated_at = time.time()
            out.status = "succeeded"
            self._record_success(name, plan)
            ev("succeeded", rto_s=out.timeline.rto, phases_s=out.timeline.phases(), active=plan.target)
            self.progress(f"{name}: {plan.action} succeeded; RTO {out.timeline.rto:.3f}s")
            if plan.promotion and plan.promotion.get("when") == "after_failback":
                self._terraform_apply(plan, out, ev)  # after the RTO: traffic is already back
            return
        ev("validation_failed", reasons=out.validation.reasons)
        out.errors.extend(out.validation.reasons)
        if not svc.validation.rollback_on_failure:
            out.status = "failed"
            return
        self._rollback(svc, applied, out, ev)

    def _apply_steps(self, svc: Service, plan: Plan, out: Outcome, ev: Callable[..., Any]) -> list[PlanStep] | None:
        """Apply the steps in order; on a failure, undo the applied ones and what the failed one wrote."""
        applied: list[PlanStep] = []
        out.steps = [{"step": s.index, "adapter": s.adapter, "description": s.description,
                      "status": "noop" if not s.effective else "not_run"} for s in plan.steps]
        for step in plan.steps:
            if not step.effective:
                continue
            binding = svc.routing[step.index]
            self.progress(f"{plan.service}: step {step.index + 1}: {step.description}")
            try:
                receipt = self.adapter(binding).apply(step.effective)
            except AdapterError as exc:
                out.errors.append(str(exc))
                written = exc.written
                out.steps[step.index].update(status="failed", error=str(exc),
                                             written=None if written is None else [str(k) for k in written])
                ev("step_failed", step=step.index, error=str(exc),
                   written=None if written is None else [str(k) for k in written])
                self._rollback(svc, applied, out, ev, failed=(step, written))
                return None
            applied.append(step)
            out.steps[step.index]["status"] = "applied"
            ev("step_applied", step=step.index, calls=receipt.calls, batches=receipt.batches,
               changes=[c.to_dict() for c in step.effective])
        return applied

    def _validate(self, svc: Service, plan: Plan) -> ValidationResult:
        res = ValidationResult(ok=True)
        if svc.validation.read_back:
            for step in plan.steps:
                if not step.effective:
                    continue
                binding = svc.routing[step.index]
                actual = self.adapter(binding).read([binding])
                bad = read_back_mismatches(expected_after(list(step.effective)), actual)
                res.read_back.append({"step": step.index, "ok": not bad, "mismatches": bad})
                res.reasons.extend(f"read-back: {m}" for m in bad)
        probes = self._validation_probes(svc, plan)
        for label, spec in probes:
            ok, results = self._probe_with_retries(svc, spec, label)
            res.probes.append({"target": label, "ok": ok, "attempts": [r.to_dict() for r in results]})
            if not ok:
                res.reasons.append(f"probe of {label} failed after {len(results)} attempt(s): {results[-1].reason}")
        res.ok = not res.reasons
        return res

    def _validation_probes(self, svc: Service, plan: Plan) -> list[tuple[str, Any]]:
        out = []
        if svc.validation.probe_active:
            for ep in plan.target:
                spec = svc.endpoint(ep).probe
                if spec is not None:
                    out.append((ep, spec))
        out.extend((f"check[{i}]", spec) for i, spec in enumerate(svc.validation.checks))
        return out

    def _probe_with_retries(self, svc: Service, spec: Any, label: str) -> tuple[bool, list[Any]]:
        from .probes import probe_once

        det, val = svc.detection, svc.validation
        return probe_until_ok(lambda: probe_once(spec, timeout=det.timeout, latency_limit=det.latency_limit,
                                                 endpoint=label), val.attempts, val.interval)

    def _rollback(self, svc: Service, steps: list[PlanStep], out: Outcome, ev: Callable[..., Any],
                  failed: tuple[PlanStep, tuple[Any, ...] | None] | None = None) -> None:
        """Undo what this run wrote, newest step first, then read back.

        Restored: resources that hold what this run wrote, and every resource a failed step reports
        as written (it may be in an intermediate state). A failed step that reports it wrote
        nothing needs nothing. A resource in neither its before- nor its after-state that this run
        did not write was changed by someone else since it was read: it is left as it is and
        reported, never overwritten (the rollback is then not ``complete``).
        """
        todo: list[tuple[PlanStep, set[tuple[str, ...]] | None]] = [(s, None) for s in steps]
        details: list[dict[str, Any]] = []
        if failed is not None:
            step, written = failed
            if written is not None and not written:
                details.append({"step": step.index, "ok": True, "problems": [], "left_as_is": [],
                                "nothing_written": True})
            else:
                todo.append((step, None if written is None else {_ident(k) for k in written}))
        self.progress(f"{out.service}: rolling back {len(todo)} step(s)")
        failures: list[str] = []
        left_all: list[str] = []
        for step, written in reversed(todo):
            detail = self._rollback_step(svc, step, written)
            details.append(detail)
            failures.extend(detail["problems"])
            left_all.extend(detail["left_as_is"])
        out.errors.extend(left_all)
        out.rollback = {"ok": not failures, "complete": not failures and not left_all, "steps": details}
        out.status = "rolled_back" if not failures else "rollback_failed"
        for d in details:
            if out.steps and d["step"] < len(out.steps):
                out.steps[d["step"]]["rolled_back"] = d["ok"] and not d["left_as_is"]
        ev(out.status, steps=details, errors=out.errors)

    def _rollback_step(self, svc: Service, step: PlanStep, written: set[tuple[str, ...]] | None) -> dict[str, Any]:
        binding = svc.routing[step.index]
        ad = self.adapter(binding)
        left: list[str] = []
        try:
            now = ad.read([binding])
            ours = [c for c in step.changes
                    if (written is not None and _ident(c.key) in written and not _holds(now.get(c.key), c.before))
                    or (c in step.effective and _holds(now.get(c.key), c.after))]
            left = [f"{c.key}: changed by someone else since it was read; left as is"
                    for c in step.effective if c not in ours and not _holds(now.get(c.key), c.before)]
            ad.apply([Change(c.key, now.get(c.key), c.before) for c in ours])
            bad = read_back_mismatches(expected_before(ours), ad.read([binding])) if ours else []
        except AdapterError as exc:
            bad = [str(exc)]
        return {"step": step.index, "ok": not bad, "problems": bad, "left_as_is": left}

    def _record_success(self, name: str, plan: Plan) -> None:
        st = self.store.load(name)
        st.last_switch_at = time.time()
        st.last_action = plan.action
        st.active = dict(plan.target)
        st.incident = None
        self.store.save(name, st)

    def _write_report(self, out: Outcome) -> None:
        d = self.state_dir / "reports"
        d.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(out.started)) + f".{int(out.started % 1 * 1e6):06d}"
        path = d / f"{stamp}-{out.service}-{out.action}-{out.run_id}.json"
        out.report_path = str(path)
        path.write_text(json.dumps(out.to_dict(), indent=2, default=str))

    # ------------------------------------------------------------------ a whole region
    def region_plan(self, region: str) -> list[tuple[str, str | None, str]]:
        """Which services must leave ``region``: (service, target endpoint or None, why).

        A service is affected when its active endpoint is in the region; its target is the first
        healthy standby (then primary) outside the region. Services active elsewhere are listed
        with target None and why they are left alone.
        """
        out = []
        names = list(self.strategy.services)
        observed = self.observe_many(names)
        for name in names:
            svc = self.strategy.services[name]
            active = observed[name].active
            in_region = [ep for ep in (active or {}) if svc.endpoint(ep).region == region]
            if active is not None and not in_region:
                out.append((name, None, f"active endpoint(s) {', '.join(active)} not in {region}"))
                continue
            if not any(ep.region == region for ep in svc.endpoints):
                out.append((name, None, f"no endpoint in {region}"))
                continue
            verdicts = self.check(name)
            outside = [ep for ep in svc.standbys + [svc.primary] if ep.region != region]
            healthy = [ep.name for ep in outside if getattr(verdicts.get(ep.name), "health", "") == "healthy"]
            target = (healthy or [ep.name for ep in outside] or [None])[0]
            why = f"active in {region}" if active else "routing state unknown"
            out.append((name, target, why if target else f"{why}; no endpoint outside {region}"))
        return out

    def run_region(self, region: str, *, apply: bool = False, force: bool = False,
                   expect: dict[str, str] | None = None) -> list[Outcome]:
        """Fail every service active in ``region`` over to another region, one service at a time,
        each through :meth:`run` (its lock, safety rules, validation and rollback).

        ``expect`` maps service -> confirmed plan fingerprint: a service whose plan changed, or
        that was not in the confirmed region plan, is refused as stale (see :meth:`run`)."""
        outcomes = []
        for name, target, why in self.region_plan(region):
            if target is None and expect is not None and name in expect:
                out = Outcome(name, "switch", "refused", uuid.uuid4().hex[:12], reason=why)
                out.errors = [f"stale plan: {name} was confirmed to leave {region}, but now: {why}; plan again"]
                self.events.append("refused", name, run_id=out.run_id, reasons=out.errors, stale=True)
                outcomes.append(out)
                continue
            if target is None:
                refused = "no endpoint outside" in why
                out = Outcome(name, "switch", "refused" if refused else "noop", uuid.uuid4().hex[:12], reason=why)
                out.errors = [why] if refused else []
                outcomes.append(out)
                continue
            if expect is not None and name not in expect:
                out = Outcome(name, "switch", "refused", uuid.uuid4().hex[:12], reason="not in the confirmed plan")
                out.errors = [f"stale plan: {name} must now leave {region} (to {target}) but was not in the "
                              "confirmed region plan: plan again"]
                self.events.append("refused", name, run_id=out.run_id, reasons=out.errors, stale=True)
                outcomes.append(out)
                continue
            self.progress(f"region {region}: {name} -> {target}")
            outcomes.append(self.run(name, "switch", target, apply=apply, force=force,
                                     expect=None if expect is None else expect[name]))
        return outcomes

    # ------------------------------------------------------------------ status
    def status(self, name: str, *, probe: bool = True, events: int = 10) -> dict[str, Any]:
        svc = self.loaded.service(name)
        obs = self.observe(name)
        verdicts = self.check(name) if probe else {}
        st = self.store.load(name)
        return {
            "service": name, "strategy": svc.strategy, "scope": svc.scope,
            "primary": svc.primary.name, "active": obs.active,
            "failed_over": obs.active is not None and svc.primary.name not in obs.active
            if svc.strategy == "active_passive" else None,
            "out_of_rotation": [n for n in svc.endpoint_names if obs.active is not None and n not in obs.active],
            "verdicts": {n: {"health": v.health, "reason": v.reason} for n, v in verdicts.items()},
            "routing": obs.to_dict(), "state": st.to_dict(),
            "recent_events": self.events.read(name, limit=events),
        }
