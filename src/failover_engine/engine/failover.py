"""The failover engine: observe → check → select → plan → (safety) → apply → validate → rollback.

This is the one path every entry point uses (CLI, Ansible modules, the monitor, MCP): it owns
the lock, the cooldown, the event log, the incident → RTO timeline and the report.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from failover_engine.adapters import make_adapter
from failover_engine.adapters.base import Adapter
from failover_engine.core.errors import AdapterError, FailoverError, UnknownEndpointError
from failover_engine.engine.events import EventLog, redact
from failover_engine.config.loader import LoadedStrategy
from failover_engine.coordination import lock_for
from failover_engine.coordination.locks import FileLock, LockProvider
from failover_engine.core.timeline import Timeline
from failover_engine.core.model import Service
from failover_engine.core.plan import Assignment, Attrs, Change, Plan, PlanStep, ResourceKey
from failover_engine.core.selection import Action, Verdict, select_target, verdicts_from_probes
from failover_engine.engine.state import StateStore
from failover_engine.engine.files import private_dir
from failover_engine.engine.transaction import Request, Transaction
from failover_engine.core.validation import read_back_mismatches
from failover_engine.core.outcome import Observation, Outcome

if TYPE_CHECKING:
    from failover_engine.engine.region import RegionOutcome

Progress = Callable[[str], None]


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


class FailoverEngine:
    def __init__(self, loaded: LoadedStrategy, *, lock: LockProvider | None = None,
                 adapter_factory: Callable[[str, Any], Adapter] = make_adapter,
                 progress: Progress | None = None):
        self.loaded = loaded
        self.strategy = loaded.strategy
        self.state_dir = Path(loaded.state_dir)
        self.events = EventLog(self.state_dir / "events.jsonl")
        self.store = StateStore(self.state_dir)
        self.lock = lock or lock_for(loaded.strategy, self.state_dir)
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

    def read_resources(self, names: list[str]) -> dict[ResourceKey, Attrs | None]:
        """Every resource of the services' routing bindings, in one batched read per adapter and
        connection (a zone listing, not N reads)."""
        by_adapter: dict[tuple[str, str | None], list[Any]] = {}
        for n in names:
            for b in self.loaded.service(n).routing:
                by_adapter.setdefault((b.adapter, b.connection), []).append(b)
        current: dict[ResourceKey, Attrs | None] = {}
        for bindings in by_adapter.values():
            current.update(self.adapter(bindings[0]).read(bindings))
        return current

    def observe_many(self, names: list[str]) -> dict[str, Observation]:
        """Observe several services with one batched read per adapter (a zone listing, not N reads)."""
        current = self.read_resources(names)
        out = {}
        for n in names:
            states, per = [], []
            for b in self.loaded.service(n).routing:
                ad = self.adapter(b)
                st = {k: current.get(k) for k in ad.resource_keys(b)}
                states.append(st)
                per.append(ad.active_of(b, st))
            out[n] = _observation(states, per)
        return out

    def apply_batched(self, plans: list[Plan]) -> dict[str, Any]:
        """Apply the changes of several plans with one adapter call per adapter (batched per zone).

        The raw batching, for benchmarks of the adapters: no lock, journal, safety check or
        validation. Runs go through :meth:`run_many` (:class:`~failover_engine.engine.transaction.Transaction`).
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
        """Probe the service's endpoints → verdicts, in one concurrent round. An endpoint that fails
        is probed once more in that round, so a single lost probe does not refuse (or allow) a failover."""
        from failover_engine.detection.rounds import probe_round

        svc = self.loaded.service(name)
        return verdicts_from_probes(probe_round([(name, svc, endpoints or svc.endpoint_names)])[name])

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
        blocks: list[str] = []
        warnings = list(obs.warnings) + list(decision.warnings)
        steps: list[PlanStep] = []
        if decision.target is not None and decision.action != "none":
            try:
                steps = self._steps(svc, decision.target, obs)
            except AdapterError as exc:  # the provider cannot express that target (e.g. 2 zones out)
                refusals.append(str(exc))
            if obs.active is not None and steps:
                blocks.extend(self._hand_edits(svc, obs, decision.target))
            if obs.active is None:
                blocks.append("routing state is unknown or inconsistent (records edited by hand, or a run "
                              "left them half-switched); check the records first")
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
                    tuple(steps), tuple(warnings), tuple(refusals), promotion, tuple(blocks))

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
        from failover_engine.config.terraform import runner

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

    def _hand_edits(self, svc: Service, obs: Observation, target: Assignment) -> list[str]:
        """Attributes the plan would write although the switch does not change them: values someone
        set by hand (a record's value or TTL, a disabled standby). Rewriting them is a take-over."""
        out = []
        for i, binding in enumerate(svc.routing):
            ad = self.adapter(binding)
            try:
                now_wanted = ad.desired(binding, obs.active or {})
                then_wanted = ad.desired(binding, target)
            except AdapterError:
                continue
            for key, want in then_wanted.items():
                have = obs.states[i].get(key)
                if have is None:
                    continue
                fixed = {a: v for a, v in want.items() if now_wanted.get(key, {}).get(a) == v}
                for m in read_back_mismatches({key: fixed}, {key: have}) if fixed else []:
                    out.append(f"edited by hand (the switch would overwrite it): {m}")
        return out

    def _gate_refusals(self, svc: Service, target: Assignment, current: Assignment | None) -> list[str]:
        """Run the data-consistency gate of every endpoint about to be promoted (not of those
        already taking traffic: a member staying in rotation does not block removing another)."""
        from failover_engine.detection.probes import probe_once

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
        from failover_engine.core.model import GateRule, MaxOutRule, MinActiveRule, MinCapacityRule
        from failover_engine.detection.probes import probe_once

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
            stable_for: dict[str, float] | None = None, expect: str | None = None,
            take_over: bool = False) -> Outcome:
        """Plan and, when ``apply`` is true, apply under the service lock. Dry run by default.

        One service is a transaction of one (:mod:`failover_engine.engine.transaction`): journaled, CAS
        writes, validated, rolled back from what a fresh read shows. ``verdicts`` (e.g. the
        monitor's quorum verdicts) replace the probe round; ``stable_for`` makes an active_active
        plan an automatic one (see :meth:`plan`); ``expect`` is the fingerprint of a plan someone
        confirmed: the run is refused as stale, even when forced, unless the plan made under the
        lock has it. ``force`` overrides safety refusals, never a concurrent edit nor routing that
        matches no known state; ``take_over`` writes over the latter (recorded with both values)."""
        return self.run_many([Request(name, action, target, verdicts, stable_for, expect)], apply=apply,
                             force=force, take_over=take_over)[0]

    def run_many(self, requests: list[Request], *, apply: bool = False, force: bool = False,
                 take_over: bool = False, kind: str = "run") -> list[Outcome]:
        """Several services as one transaction: one batched read, one probe round, one batch per
        provider scope, one read-back (see :class:`~failover_engine.engine.transaction.Transaction`)."""
        names = [r.service for r in requests]
        for n in names:
            self.loaded.service(n)  # an unknown service: a clear error before anything
        tx = Transaction(self, uuid.uuid4().hex[:12], force=force, take_over=take_over, kind=kind)
        if not apply:
            outs = self._dry_run(tx, requests)
            return outs
        with self.hold_locks(names, f"{kind} {tx.run_id}"):
            for n, previous in self.lock.taken_over(names).items():
                tx.ev("lease_taken_over", n, previous=previous, epoch=self.lock.epochs([n]).get(n))
            self._recover_first(names)
            try:
                self.progress(f"reading routing state of {len(names)} service(s) and probing endpoints")
                observed = self.observe_many(names)
                verdicts = self._verdicts_for(requests)
                outs = tx.execute(requests, observed, verdicts)
            except FailoverError as exc:
                # e.g. Route 53 unreachable before anything changed: close the run in the log
                for r in requests:
                    out = tx.outcomes.get(r.service) or Outcome(r.service, r.action, "error", tx.run_id)
                    if out.status in ("planned",):
                        out.status = "error"
                    out.errors.append(str(exc))
                    tx.outcomes[r.service] = out
                    tx.ev("errored", r.service, error=str(exc))
                tx.flush()
                for out in tx.outcomes.values():
                    out.api_calls = self.api_calls()
                    self._write_report(out)
                raise
        for out in outs:
            out.api_calls = self.api_calls()
            self._write_report(out)
        return outs

    def _dry_run(self, tx: Transaction, requests: list[Request]) -> list[Outcome]:
        observed = self.observe_many([r.service for r in requests])
        tx.plan_all(requests, observed, self._verdicts_for(requests))
        outs = [tx.outcomes[r.service] for r in requests]
        for out in outs:
            if out.plan is not None:
                out.status = "noop" if out.plan.is_noop else "planned"
            out.api_calls = self.api_calls()
        return outs

    def _verdicts_for(self, requests: list[Request]) -> dict[str, dict[str, Verdict]]:
        """One probe round over every service that has no verdicts of its own."""
        from failover_engine.detection.rounds import probe_round

        wanted = [(r.service, self.loaded.service(r.service), self._endpoints_to_probe(r))
                  for r in requests if r.verdicts is None]
        results = probe_round(wanted)
        return {n: verdicts_from_probes(res) for n, res in results.items()}

    def _endpoints_to_probe(self, r: Request) -> list[str]:
        """A switch to a named target needs only the target's verdict; anything else all of them."""
        svc = self.loaded.service(r.service)
        if r.action == "switch" and r.target is not None:
            return [r.target]
        return svc.endpoint_names

    @contextlib.contextmanager
    def hold_locks(self, names: list[str], purpose: str, *, region: str | None = None) -> Iterator[None]:
        """Every service's lock, taken in sorted order, all or none: a held one refuses the whole
        run (LockHeld names the service and its holder) and releases those already taken. A region
        run also takes the region's lease first when the coordination has leases (DynamoDB): two
        controllers never run the same region at once, whichever services they see."""
        if isinstance(self.lock, FileLock):  # its directory private before the first lock file
            private_dir(self.state_dir)
            private_dir(self.lock.directory)
        with contextlib.ExitStack() as stack:
            if region is not None and not isinstance(self.lock, FileLock):
                stack.enter_context(self.lock.hold(f"region:{region}", purpose))
            for n in sorted(set(names)):
                stack.enter_context(self.lock.hold(n, purpose))
            yield

    def _recover_first(self, names: list[str]) -> None:
        """Finish interrupted runs of these services (their locks are ours now) before planning."""
        from failover_engine.engine.recovery import recover_locked

        recover_locked(self, names, apply=True, reason="before the next run")

    def _timeline(self, name: str, action: str, start: float) -> Timeline:
        inc = self.store.load(name).incident
        want = {"failback": ("recovery",), "rebalance": ("failure", "recovery")}.get(action, ("failure",))
        if inc is not None and inc.signal in want and inc.detected_at <= start:
            return Timeline(inc.signal, inc.first_signal_at, inc.detected_at)
        return Timeline("manual", start, start)

    def _validation_probes(self, svc: Service, plan: Plan) -> list[tuple[str, Any]]:
        out = []
        if svc.validation.probe_active:
            for ep in plan.target:
                spec = svc.endpoint(ep).probe
                if spec is not None:
                    out.append((ep, spec))
        out.extend((f"check[{i}]", spec) for i, spec in enumerate(svc.validation.checks))
        return out

    def _record_success(self, name: str, plan: Plan) -> None:
        st = self.store.load(name)
        st.last_switch_at = time.time()
        st.last_action = plan.action
        st.active = dict(plan.target)
        st.incident = None
        self.store.save(name, st)

    def _write_report(self, out: Outcome) -> None:
        private_dir(self.state_dir)
        d = private_dir(self.state_dir / "reports")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(out.started)) + f".{int(out.started % 1 * 1e6):06d}"
        path = d / f"{stamp}-{out.service}-{out.action}-{out.run_id}.json"
        out.report_path = str(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(out.to_dict(), default=str))  # no indent: the C encoder (1,000 reports a region run)

    # ------------------------------------------------------------------ a whole region
    def region_plan(self, region: str) -> list[tuple[str, str | None, str]]:
        """Which services must leave ``region``: (service, target endpoint or None, why); one
        batched read and one probe round (see :mod:`failover_engine.engine.region`)."""
        from failover_engine.engine.region import region_plans

        return region_plans(self, region)[0]

    def region_plans(self, region: str) -> tuple[list[tuple[str, str | None, str]], list[Plan]]:
        """The region dry run: every service's decision and the plans of those that move."""
        from failover_engine.engine.region import region_plans

        return region_plans(self, region)

    def run_region(self, region: str, *, apply: bool = False, force: bool = False,
                   expect: dict[str, str] | None = None, take_over: bool = False) -> "RegionOutcome":
        """Fail every service active in ``region`` over to another region as ONE transaction (see
        :mod:`failover_engine.engine.region`). ``expect`` maps service -> confirmed plan fingerprint: a
        service whose plan changed, or that was not in the confirmed region plan, is refused as stale."""
        from failover_engine.engine.region import run_region

        return run_region(self, region, apply=apply, force=force, expect=expect, take_over=take_over)

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
            "interrupted": self.interrupted(name),
        }

    def interrupted(self, name: str | None = None) -> list[dict[str, Any]]:
        """Runs of the service (or of any) whose process died mid-run: journals left open with no
        lock holder. ``failover recover``, the next apply and the monitor finish them."""
        from failover_engine.engine.recovery import interrupted

        return interrupted(self, name)

    def recover(self, names: list[str] | None = None, *, apply: bool = False) -> list[dict[str, Any]]:
        """Finish interrupted runs (see :mod:`failover_engine.engine.recovery`); dry run unless ``apply``."""
        from failover_engine.engine.recovery import recover

        return recover(self, names, apply=apply)
