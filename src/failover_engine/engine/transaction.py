"""A run as one transaction, for one service or many (a whole region) at once.

:class:`Transaction` takes requests whose observations and verdicts were gathered in one batched
read and one concurrent probe round, and then:

1. plans each service with its own safety rules (a service refused by its rules, or stale, does
   not stop the others);
2. runs pilot-light promotions of the services that have one;
3. opens the write-ahead :class:`~failover_engine.engine.journal.Journal` (plans, before- and
   after-states, fsynced) before the first provider write;
4. groups every change by adapter and connection, so an adapter makes one atomic batch per
   provider scope (one ChangeResourceRecordSets per hosted zone, one Cloud DNS change per managed
   zone, Traffic Manager PATCHes per profile in parallel); groups run concurrently, each one
   sends all its batches before it waits for them;
5. validates with one batched read-back and one concurrent probe round;
6. rolls back what must be rolled back, per resource, from what a fresh read shows (a lost
   answer leaves the truth unknown until it is read): whatever differs from the before-state and
   was or may have been written by this run is restored; what someone else changed is left as is;
   the restored state is read again, and a run that cannot read says ``unknown``;
7. closes the journal, writes the events (in batches), the reports and the cooldown state.

The caller holds the locks (see :meth:`FailoverEngine.run` and :meth:`FailoverEngine.run_region`).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from failover_engine.core.errors import AdapterError, ConcurrentEditError, CoordinationError, FailoverError, LeaseLost
from failover_engine.engine.journal import Journal, prune
from failover_engine.engine.propagation import PropagationWatch
from failover_engine.core.plan import Attrs, Change, Plan, ResourceKey
from failover_engine.engine.restore import holds, restore
from failover_engine.core.validation import ValidationResult, read_back_mismatches

if TYPE_CHECKING:
    from failover_engine.engine.failover import FailoverEngine
    from failover_engine.core.outcome import Observation, Outcome
    from failover_engine.core.selection import Action, Verdict

GROUP_CONCURRENCY = 4
"""Adapter groups (provider, connection) written at the same time."""


@dataclass
class Request:
    """One service's part of a run."""

    service: str
    action: "Action"
    target: str | None = None
    verdicts: dict[str, "Verdict"] | None = None
    stable_for: dict[str, float] | None = None
    expect: str | None = None


@dataclass
class _Group:
    """The changes of one adapter and connection across the services that move."""

    gid: str
    binding: Any
    changes: list[Change] = field(default_factory=list)
    owners: dict[ResourceKey, str] = field(default_factory=dict)


class Transaction:
    def __init__(self, engine: "FailoverEngine", run_id: str, *, force: bool = False, take_over: bool = False,
                 kind: str = "run", started: float | None = None):
        self.engine = engine
        self.run_id = run_id
        self.force = force
        self.take_over = take_over
        self.kind = kind
        self.started = started if started is not None else time.time()
        self.outcomes: dict[str, "Outcome"] = {}
        self.plans: dict[str, Plan] = {}
        self._events: list[tuple[str, str | None, dict[str, Any]]] = []
        self.maybe_written: set[ResourceKey] = set()  # written, or sent with the answer lost
        self.written_keys: set[ResourceKey] = set()  # written, the provider said so
        self.unknown_keys: set[ResourceKey] = set()  # sent, the answer lost (or not known)
        self.partial_keys: set[ResourceKey] = set()  # of failed groups: maybe in an intermediate state
        self.conflicts: dict[ResourceKey, ConcurrentEditError] = {}
        self.failed_services: dict[str, list[str]] = {}
        self.journal: Journal | None = None
        self.first_write_at: float | None = None
        self.fenced: FailoverError | None = None  # this process lost a lease mid-run: it writes nothing more

    # ------------------------------------------------------------------ events
    def ev(self, event: str, service: str | None, **fields: Any) -> None:
        self._events.append((event, service, {"run_id": self.run_id, **fields}))

    def flush(self) -> None:
        self.engine.events.append_many(self._events)
        self._events = []

    def progress(self, msg: str) -> None:
        self.engine.progress(msg)

    # ------------------------------------------------------------------ fencing
    def _fence(self, names: Iterable[str]) -> bool:
        """Whether this process still holds every one of these services' leases (one conditional
        write per lease with DynamoDB coordination; nothing to check with file locks). A lost lease
        stops the run: another holder may act now, so nothing more is written, rolled back or
        recorded as known."""
        if self.fenced is not None:
            return False
        try:
            self.engine.lock.fence(sorted(set(names)))
        except (LeaseLost, CoordinationError) as exc:
            self.fenced = exc
            return False
        return True

    def _end_fenced(self, names: list[str], stage: str) -> None:
        """Outcomes of a run that lost its lease: ``refused`` where nothing of the service was sent,
        ``unknown`` where something was (the new holder reads the truth and finishes it)."""
        for name in names:
            out = self.outcomes[name]
            sent = any(c.key in self.maybe_written for c in self.plans[name].changes)
            out.status = "unknown" if sent else "refused"
            msg = f"lease lost {stage}: {self.fenced}"
            if msg not in out.errors:
                out.errors.append(msg)
            self.ev("fenced", name, stage=stage, error=str(self.fenced), status=out.status)

    # ------------------------------------------------------------------ the run
    def plan_all(self, requests: list[Request], observations: dict[str, "Observation"],
                 verdicts: dict[str, dict[str, "Verdict"]], *, log: bool = False) -> None:
        """Plan every request (pure given the observations and verdicts, but for gates and rules)."""
        from failover_engine.core.outcome import Outcome

        for req in requests:
            out = Outcome(req.service, req.action, "planned", self.run_id, started=self.started)
            out.timeline = self.engine._timeline(req.service, req.action, self.started)
            self.outcomes[req.service] = out
            if log:
                self.ev("run_started", req.service, action=req.action, target=req.target, force=self.force,
                        take_over=self.take_over, kind=self.kind, signal=out.timeline.signal)
            try:
                plan = self.engine.plan(req.service, req.action, req.target,
                                        verdicts=req.verdicts if req.verdicts is not None else verdicts[req.service],
                                        observation=observations[req.service], stable_for=req.stable_for)
            except FailoverError as exc:
                out.status, out.errors = "error", [str(exc)]
                continue
            out.plan = self.plans[req.service] = plan
            out.timeline.decided_at = time.time()

    def execute(self, requests: list[Request], observations: dict[str, "Observation"],
                verdicts: dict[str, dict[str, "Verdict"]]) -> list["Outcome"]:
        """Plan, then apply what may be applied; every outcome is final when this returns."""
        self.plan_all(requests, observations, verdicts, log=True)
        movers = self._admit(requests)
        if not movers:
            self.flush()
        movers = self._promote(movers)  # flushes first when a service has a promotion
        if movers:
            self._apply_validate(movers)
        self.flush()
        return [self.outcomes[r.service] for r in requests]

    def _admit(self, requests: list[Request]) -> list[str]:
        """Which planned services go on to apply; the others end here (stale, refused, noop)."""
        movers = []
        for req in requests:
            out, plan = self.outcomes[req.service], self.plans.get(req.service)
            if plan is None:
                self.ev("errored", req.service, error="; ".join(out.errors))
                continue
            self.ev("decided", req.service, plan=plan.to_dict())
            if req.expect is not None and plan.fingerprint() != req.expect:
                out.status = "refused"
                out.errors = [f"stale plan: the confirmed plan was {req.expect}, the plan now is {plan.fingerprint()} "
                              f"({plan.action} {sorted(plan.current or {})} -> {sorted(plan.target)}, "
                              f"{len(plan.changes)} change(s)); the state changed since it was confirmed: plan again"]
                self.ev("refused", req.service, reasons=out.errors, stale=True)
                continue
            blocking = list(plan.blocks) if not self.take_over else []
            if (plan.refusals and not self.force) or blocking:
                out.status = "refused"
                out.errors = blocking + (list(plan.refusals) if not self.force else [])
                if blocking:
                    out.errors.append("routing that matches no known state is never overwritten by --force; "
                                      "check the records, or take them over explicitly (--take-over)")
                self.ev("refused", req.service, reasons=out.errors)
                continue
            if plan.is_noop:
                out.status = "noop"
                self.ev("noop", req.service, reason=plan.reason)
                continue
            if plan.refusals:
                self.ev("forced", req.service, overridden=list(plan.refusals))
            if plan.blocks:
                self.ev("taken_over", req.service, overridden=list(plan.blocks),
                        resources=[c.to_dict() for c in plan.changes])
            movers.append(req.service)
        return movers

    def _promote(self, movers: list[str]) -> list[str]:
        keep = []
        for name in movers:
            plan, out = self.plans[name], self.outcomes[name]
            if plan.promotion and plan.promotion.get("when") == "before_traffic":
                ev = functools.partial(self.ev, service=name)
                self.flush()
                if not self.engine._terraform_apply(plan, out, ev):
                    if plan.promotion.get("on_failure") != "continue":
                        out.status = "failed"
                        out.errors.append(f"pilot-light promotion failed, traffic not moved: {out.promotion['error']}")
                        continue
                    out.errors.append("pilot-light promotion failed, traffic moved anyway (on_failure: continue): "
                                      f"{out.promotion['error']}")
                out.timeline.promoted_at = time.time()  # type: ignore[union-attr]
            keep.append(name)
        return keep

    # ------------------------------------------------------------------ apply
    def _waves(self, names: Iterable[str]) -> dict[int, dict[str, _Group]]:
        """Changes by routing step (wave), then by adapter and connection: a service's steps are
        applied in order (a later step never runs after an earlier one failed), and within a wave
        one group per provider carries every service's changes."""
        waves: dict[int, dict[str, _Group]] = {}
        for name in names:
            svc = self.engine.loaded.service(name)
            for step in self.plans[name].steps:
                if not step.effective:
                    continue
                b = svc.routing[step.index]
                gid = f"{b.adapter}:{b.connection or '-'}"
                g = waves.setdefault(step.index, {}).setdefault(gid, _Group(gid, b))
                for c in step.effective:
                    g.changes.append(c)
                    g.owners[c.key] = name
        return dict(sorted(waves.items()))

    def _apply_validate(self, movers: list[str]) -> None:
        epochs = self.engine.lock.epochs(movers)
        self.journal = Journal.open(self.engine.state_dir, self.run_id, self.kind, [self.plans[n] for n in movers],
                                    extra={"epochs": epochs} if epochs else None)
        try:
            for name in movers:
                out = self.outcomes[name]
                out.steps = [{"step": s.index, "adapter": s.adapter, "description": s.description,
                              "status": "noop" if not s.effective else "not_run"} for s in self.plans[name].steps]
            # the plans are in the journal (fsynced): the events of the decision are written with
            # those of the first writes, not before them (at 1,000 services that is ~0.5 s sooner)
            waves = self._waves(movers)
            n = sum(len(g.changes) for w in waves.values() for g in w.values())
            self.progress(f"applying {n} change(s) of {len(movers)} service(s) in "
                          f"{sum(len(w) for w in waves.values())} provider group(s)")
            for wave, groups in waves.items():
                self._apply_groups(wave, groups)
            if self.fenced is not None:
                self._end_fenced(movers, "before a provider write")
                self.flush()
                self.journal.close({n: self.outcomes[n].status for n in movers})
                return
            applied_at = time.time()
            ok = [m for m in movers if m not in self.failed_services]
            for name in ok:
                self.outcomes[name].timeline.applied_at = applied_at  # type: ignore[union-attr]
            self.flush()
            to_undo = [m for m in movers if m in self.failed_services]
            if ok:
                self.progress(f"validating {len(ok)} service(s): one read-back, one probe round")
                to_undo += self._validate(ok)
            if to_undo and self._fence(to_undo):
                self._rollback(sorted(set(to_undo)))
            elif to_undo:
                self._end_fenced(sorted(set(to_undo)), "before rolling back")
        except BaseException:
            # the run cannot say how it ended: the journal stays open, and recovery finishes it
            self.flush()
            self.journal.abandon()
            raise
        self.flush()
        self.journal.close({n: self.outcomes[n].status for n in movers})
        prune(self.engine.state_dir)

    def _apply_groups(self, wave: int, groups: dict[str, _Group]) -> None:
        """A wave's groups at once (bounded); a group whose batch meets a concurrent edit is sent
        again without the services it concerns (they are refused), so the others still move."""
        if len(groups) == 1:
            self._apply_group(wave, next(iter(groups.values())))
            return
        workers = max(1, min(GROUP_CONCURRENCY, len(groups)))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="apply") as pool:
            futures = [pool.submit(self._apply_group, wave, g) for g in groups.values()]
            for fut in concurrent.futures.as_completed(futures):
                fut.result()

    def _apply_group(self, wave: int, g: _Group) -> None:
        assert self.journal is not None
        changes = list(g.changes)
        for attempt in range(1, 4):
            changes = [c for c in changes if g.owners[c.key] not in self.failed_services]
            if not changes:
                return
            gid = f"{wave}:{g.gid}#{attempt}"
            if not self._fence({g.owners[c.key] for c in changes}):
                return  # the lease is gone: this group is not sent (the run ends fenced)
            self.journal.group_started(gid, [c.key for c in changes])
            if self.first_write_at is None:
                self.first_write_at = time.time()
            try:
                receipt = self.engine.adapter(g.binding).apply(changes)
            except ConcurrentEditError as exc:
                self.journal.group_ended(gid, False, str(exc))
                self._note_failure(wave, g, changes, exc)
                owners = {g.owners.get(k) for k, _unused, _unused in conflicts_of(exc)} - {None}
                for key, _unused, _unused in conflicts_of(exc):
                    if g.owners.get(key) is not None:
                        self.conflicts[key] = exc
                        self._fail(g.owners[key], str(exc), step=wave, conflict=True)
                if not owners:
                    for c in changes:
                        self._fail(g.owners[c.key], str(exc), step=wave)
                    return
                done = set(exc.written or ())
                changes = [c for c in changes if c.key not in done]  # batches that landed stay landed
                continue
            except AdapterError as exc:
                self.journal.group_ended(gid, False, str(exc))
                self._note_failure(wave, g, changes, exc)
                for owner in {g.owners[c.key] for c in changes}:
                    self._fail(owner, str(exc), step=wave)
                return
            self.journal.group_ended(gid, True)
            self.maybe_written.update(c.key for c in changes)
            self.written_keys.update(c.key for c in changes)
            by_service: dict[str, list[Change]] = {}
            for c in changes:
                by_service.setdefault(g.owners[c.key], []).append(c)
            for name, cs in by_service.items():
                for st in self.outcomes[name].steps:
                    if st["step"] == wave:
                        st["status"] = "applied"
                self.ev("step_applied", name, step=wave, group=g.gid, calls=receipt.calls, batches=len(receipt.batches),
                        changes=[c.to_dict() for c in cs])
            self.progress(f"{g.gid}: {len(changes)} change(s) applied in {len(receipt.batches)} batch(es), "
                          f"{receipt.calls} call(s)")
            return

    def _note_failure(self, wave: int, g: _Group, changes: list[Change], exc: AdapterError) -> None:
        written = getattr(exc, "written", None)
        unknown = tuple(getattr(exc, "unknown", ()) or ())
        self.partial_keys.update(c.key for c in changes if written is None or c.key in written or c.key in unknown)
        if written is None:
            self.maybe_written.update(c.key for c in changes)  # not known: anything may be written
            self.unknown_keys.update(c.key for c in changes)
        else:
            self.maybe_written.update(written)
            self.written_keys.update(written)
        self.maybe_written.update(unknown)
        self.unknown_keys.update(unknown)
        for name in {g.owners[c.key] for c in changes}:
            mine = {c.key for c in changes if g.owners[c.key] == name}
            self.ev("step_failed", name, step=wave, group=g.gid, error=str(exc),
                    written=None if written is None else [str(k) for k in written if k in mine],
                    unknown=[str(k) for k in unknown if k in mine])

    def _fail(self, name: str, error: str, *, step: int, conflict: bool = False) -> None:
        errs = self.failed_services.setdefault(name, [])
        if error not in errs:
            errs.append(error)
        out = self.outcomes[name]
        if error not in out.errors:
            out.errors.append(error)
        for s in out.steps:
            if s["step"] == step:
                s.update(status="refused" if conflict else "failed", error=error)

    # ------------------------------------------------------------------ validation
    def _validate(self, names: list[str]) -> list[str]:
        """Read back every service's resources in one batched read, then probe what is now active in
        one round (with each service's attempts). Returns the services to roll back."""
        results = {n: ValidationResult(ok=True) for n in names}
        applied = [t.applied_at for t in (self.outcomes[n].timeline for n in names) if t and t.applied_at]
        watch = PropagationWatch.start(self.engine.loaded, {n: self.plans[n] for n in names},  # resolve steps
                                       min(applied) if applied else time.time())
        current = self._read_with_retries([n for n in names if self.engine.loaded.service(n).validation.read_back])
        rollback: list[str] = []
        for name in names:
            svc, res, out = self.engine.loaded.service(name), results[name], self.outcomes[name]
            out.validation = res
            if not svc.validation.read_back:
                continue
            if current is None:
                res.ok = False
                res.reasons.append("read-back failed: the provider could not be read after the change "
                                   f"({self._read_error}); the change was sent and acknowledged")
                continue
            for step in self.plans[name].steps:
                if step.effective:
                    bad = read_back_mismatches({c.key: c.after for c in step.effective}, current)
                    res.read_back.append({"step": step.index, "ok": not bad, "mismatches": bad})
                    res.reasons.extend(f"read-back: {m}" for m in bad)
        probing = [n for n in names if not results[n].reasons]
        self._probe_validation(probing, results)
        now = time.time()
        if watch is not None:  # beside the read-back and probes since the switch; validated_at stays theirs
            self.progress("waiting for the nameservers of the resolve steps")
            watch.settle(results, {n: self.outcomes[n].timeline for n in names})
        if not self._fence(names):  # before recording any outcome as known
            for name in names:
                self.outcomes[name].validation = results[name]
            self._end_fenced(names, "before recording the outcome")
            return []
        for name in names:
            res, out, svc = results[name], self.outcomes[name], self.engine.loaded.service(name)
            plan = self.plans[name]
            if current is None and svc.validation.read_back and not [r for r in res.reasons
                                                                     if not r.startswith("read-back failed")]:
                out.status = "unverified"
                out.errors.extend(res.reasons)
                self.engine._record_success(name, plan)  # traffic moved: the cooldown holds
                self.ev("unverified", name, reasons=res.reasons, active=plan.target)
                continue
            res.ok = not res.reasons
            if res.ok:
                out.timeline.validated_at = now  # type: ignore[union-attr]
                out.status = "succeeded"
                self.engine._record_success(name, plan)
                self.ev("succeeded", name, rto_s=out.timeline.rto, phases_s=out.timeline.phases(),  # type: ignore[union-attr]
                        active=plan.target, **_client(out.timeline))
                if plan.promotion and plan.promotion.get("when") == "after_failback":
                    self.flush()
                    self.engine._terraform_apply(plan, out, lambda e, _n=name, **kw: self.ev(e, _n, **kw))
                continue
            self.ev("validation_failed", name, reasons=res.reasons)
            out.errors.extend(res.reasons)
            if svc.validation.rollback_on_failure:
                rollback.append(name)
            else:
                out.status = "failed"
        return rollback

    _read_error = ""

    def _read_with_retries(self, names: list[str]) -> dict[ResourceKey, Attrs | None] | None:
        """Every resource of the services' plans, read in one batch per adapter; retried with the
        services' validation attempts and interval; None when it cannot be read."""
        if not names:
            return {}
        svcs = [self.engine.loaded.service(n) for n in names]
        attempts = max(s.validation.attempts for s in svcs)
        interval = min(s.validation.interval for s in svcs)
        for i in range(attempts):
            try:
                return self.engine.read_resources(names)
            except AdapterError as exc:
                self._read_error = str(exc)
                if i + 1 < attempts:
                    time.sleep(interval)
        return None

    def _probe_validation(self, names: list[str], results: dict[str, ValidationResult]) -> None:
        wants: dict[str, list[tuple[str, Any]]] = {n: self.engine._validation_probes(self.engine.loaded.service(n),
                                                                                     self.plans[n]) for n in names}
        pending = {n: list(range(len(w))) for n, w in wants.items() if w}
        attempts: dict[tuple[str, int], list[Any]] = {}
        round_no = 0
        while pending:
            round_no += 1
            items = [(f"{n}\x00{i}\x00{wants[n][i][0]}", wants[n][i][1], n) for n, idx in pending.items() for i in idx]
            got = _probe_specs(self.engine, items)
            nxt: dict[str, list[int]] = {}
            for key, r in got.items():
                n, i = key.split("\x00")[:2]
                attempts.setdefault((n, int(i)), []).append(r)
                svc = self.engine.loaded.service(n)
                if not r.ok and round_no < svc.validation.attempts:
                    nxt.setdefault(n, []).append(int(i))
            pending = nxt
            if pending:
                time.sleep(min(self.engine.loaded.service(n).validation.interval for n in pending))
        for n, w in wants.items():
            for i, (label, _unused) in enumerate(w):
                rs = attempts.get((n, i), [])
                ok = bool(rs) and rs[-1].ok
                results[n].probes.append({"target": label, "ok": ok, "attempts": [r.to_dict() for r in rs]})
                if not ok:
                    results[n].reasons.append(f"probe of {label} failed after {len(rs)} attempt(s): "
                                              f"{rs[-1].reason if rs else 'not run'}")

    # ------------------------------------------------------------------ rollback
    def _rollback(self, names: list[str]) -> None:
        """Restore the services' resources to their before-state, from what a fresh read shows."""
        assert self.journal is not None
        self.progress(f"rolling back {len(names)} service(s)")
        self.journal.note("rollback_started", services=names)
        self.flush()
        ran = {n: {s["step"] for s in self.outcomes[n].steps if s["status"] in ("applied", "failed", "refused")}
               for n in names}
        report = restore(self.engine, {n: self.plans[n] for n in names}, ours=self._ours, touched=self._touched,
                         to="before", steps=ran, journal=self._journal_restore)
        for name in names:
            out, r = self.outcomes[name], report[name]
            out.rollback = r
            out.errors.extend(e for e in r["left_as_is"] + r["problems"] if e not in out.errors)
            conflict = any(k in self.conflicts for k in (c.key for c in self.plans[name].changes))
            if r["unknown"]:
                out.status = "unknown"
            elif r["problems"]:
                out.status = "rollback_failed"
            elif conflict and not r["restored"]:
                out.status = "refused"  # a concurrent edit: nothing of ours is left, the operator's value stays
            else:
                out.status = "rolled_back"
            for s in out.steps:
                s["rolled_back"] = out.status in ("rolled_back", "refused")
            mine = {c.key for c in self.plans[name].changes}
            self.ev(out.status, name, steps=r["steps"], errors=out.errors,
                    concurrent_edit=[{"resource": str(k), "expected": e, "found": f}
                                     for exc in {id(x): x for x in self.conflicts.values()}.values()
                                     for k, e, f in conflicts_of(exc) if k in mine])
        self.journal.note("rollback_ended", statuses={n: self.outcomes[n].status for n in names})

    def _journal_restore(self, gid: str, keys: list[ResourceKey], ok: bool | None) -> None:
        assert self.journal is not None
        if ok is None:
            self.journal.group_started(f"rollback:{gid}", keys)
        else:
            self.journal.group_ended(f"rollback:{gid}", ok)

    def _touched(self, key: ResourceKey) -> str:
        if key in self.unknown_keys or (key in self.maybe_written and key not in self.written_keys):
            return "unknown"
        return "written" if key in self.written_keys else "untouched"

    def _ours(self, key: ResourceKey, now: Attrs | None, change: Change) -> bool:
        """May this run have put the resource in its current state? (Then rolling back restores it.)"""
        if key in self.conflicts:
            return False
        return holds(now, change.after) or key in self.partial_keys


def _client(timeline: Any) -> dict[str, Any]:
    """The client RTO for an event, when the service has a resolve step."""
    return {"client_rto_s": timeline.client_rto} if timeline is not None and timeline.client_ttl is not None else {}


def conflicts_of(exc: ConcurrentEditError) -> list[tuple[ResourceKey, Any, Any]]:
    """(resource, the state planned against, the state found) of every record a concurrent edit concerns."""
    many = getattr(exc, "conflicts", None)
    if many:
        return [tuple(c) if isinstance(c, (tuple, list)) else (c.key, c.expected, c.found) for c in many]  # type: ignore[misc]
    return [(exc.key, getattr(exc, "expected", None), getattr(exc, "found", None))]


def _probe_specs(engine: "FailoverEngine", items: list[tuple[str, Any, str]]) -> dict[str, Any]:
    """Probe (id, spec, service) items in one concurrent round with each service's detection
    settings; identical probes (spec, timeout, latency limit) run once for every item that has them."""
    import asyncio

    from failover_engine.detection.probes import probe_many

    unique: dict[str, tuple[Any, float, float | None]] = {}  # probe id -> (spec, timeout, latency)
    ids: dict[str, str] = {}  # dedup key (may hold header values: never written anywhere) -> probe id
    item_key: dict[str, str] = {}
    for ident, spec, svc_name in items:
        det = engine.loaded.service(svc_name).detection
        key = ids.setdefault(f"{spec.model_dump_json()}|{det.timeout}|{det.latency_limit}", f"p{len(ids)}")
        unique.setdefault(key, (spec, det.timeout, det.latency_limit))
        item_key[ident] = key

    async def go() -> dict[str, Any]:
        groups: dict[tuple[float, float | None], list[tuple[str, Any]]] = {}
        for key, (spec, timeout, latency) in unique.items():
            groups.setdefault((timeout, latency), []).append((key, spec))
        parts = await asyncio.gather(*(probe_many(it, timeout=t, latency_limit=lat, concurrency=512)
                                       for (t, lat), it in groups.items()))
        return {k: r for part in parts for k, r in part.items()}

    got = asyncio.run(go()) if unique else {}
    return {ident: dataclasses.replace(got[key], endpoint=ident.split("\x00")[-1]) for ident, key in item_key.items()}
