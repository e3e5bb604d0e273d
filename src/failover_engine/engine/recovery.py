"""Finishing interrupted runs: a journal left open by a process that died mid-run.

A run writes its journal before its first provider write (:mod:`failover_engine.engine.journal`). When
its process is killed, the journal stays open and the service's lock is released by the kernel:
that is an *interrupted run*. Recovery, with the service's lock held:

* reads every resource of the journaled plan (one batched read);
* decides the direction by the service's ``policy.recovery``: ``forward`` (default) finishes the
  switch when the target passes its probes now, else goes back to the journal's before-state;
  ``back`` always goes back;
* writes only what differs from that state and that the dead run may have written (a resource in
  a write group that had started, or already in the other state): intermediate states, such as a
  Traffic Manager endpoint parked on a temporary priority, are finished too. A resource changed by
  someone else since is left as is and reported;
* reads back, then records the interrupted run as a report (status ``interrupted``, so it shows
  in ``history``), events ``run_interrupted`` and ``recovered``, and closes the journal. A
  recovery that cannot read or write leaves the journal open for the next try and says why.

It runs by itself before every apply of the service (:meth:`FailoverEngine.run`), from the
monitor, and on demand (``failover recover``).
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from failover_engine.core.errors import FailoverError
from failover_engine.engine.journal import JournalState, append_record, key_to_dict, open_journals
from failover_engine.engine.restore import holds, restore

if TYPE_CHECKING:
    from failover_engine.engine.failover import FailoverEngine


def interrupted(engine: "FailoverEngine", service: str | None = None) -> list[dict[str, Any]]:
    """Open journals whose services' locks nobody holds: runs that died (no lock is taken)."""
    out = []
    for j in open_journals(engine.state_dir, service):
        pending = [s for s in j.pending_services if service is None or s == service]
        if pending and not any(engine.lock.is_held(s) for s in pending):
            out.append({**j.summary(), "pending": pending})
    return out


def recover(engine: "FailoverEngine", names: list[str] | None = None, *, apply: bool = False) -> list[dict[str, Any]]:
    """Recover the interrupted runs of ``names`` (all services of open journals when None), taking
    their locks (all or none). Dry run unless ``apply``: say what would be written."""
    wanted = sorted({s for j in open_journals(engine.state_dir) for s in j.pending_services
                     if names is None or s in names})
    if not wanted:
        return []
    known = [s for s in wanted if s in engine.strategy.services]
    with engine.hold_locks(known, "recovery"):
        results = recover_locked(engine, known, apply=apply, reason="on request")
    for s in wanted:
        if s not in known:
            results.append({"service": s, "status": "unrecoverable",
                            "errors": [f"service {s!r} is no longer in the strategy; recover it by hand from the "
                                       "journal's before-state"]})
    return results


def recover_locked(engine: "FailoverEngine", names: list[str], *, apply: bool, reason: str) -> list[dict[str, Any]]:
    """Recover the open journals' pending services among ``names`` (the caller holds their locks)."""
    results = []
    for j in open_journals(engine.state_dir):
        for service in [s for s in j.pending_services if s in names]:
            results.append(_recover_service(engine, j, service, apply=apply, reason=reason))
        if apply:
            _close_if_done(j.path)
    return results


def _direction(engine: "FailoverEngine", j: JournalState, service: str) -> tuple[str, str]:
    svc = engine.loaded.service(service)
    plan = j.plans[service]
    if svc.policy.recovery == "back":
        return "back", "policy recovery: back"
    targets = [n for n, w in plan.target.items() if w > 0 and n in svc.endpoint_names]
    probed = [n for n in targets if svc.endpoint(n).probe is not None]
    verdicts = engine.check(service, probed) if probed else {}
    bad = [f"{n}: {v.reason}" for n, v in verdicts.items() if v.health != "healthy"]
    if bad:
        return "back", f"the target fails its probes now ({'; '.join(bad)})"
    return "forward", "the target passes its probes" if probed else "the target has no probe"


def _recover_service(engine: "FailoverEngine", j: JournalState, service: str, *, apply: bool,
                     reason: str) -> dict[str, Any]:
    from failover_engine.core.outcome import Outcome

    plan = j.plans[service]
    touched = j.touched(service)
    superseded = _superseded(engine, j, service)
    if superseded is not None:
        return _supersede(engine, j, service, superseded, apply=apply)
    try:
        direction, why = _direction(engine, j, service)
    except FailoverError as exc:
        return {"service": service, "run_id": j.run_id, "status": "failed", "errors": [str(exc)]}
    to = "after" if direction == "forward" else "before"
    other = "before" if to == "after" else "after"

    def ours(key: Any, have: Any, change: Any) -> bool:
        # the dead run may have put it here (a group that started), or it sits in the plan's other state
        return key in touched or holds(have, getattr(change, other))

    base = {"service": service, "run_id": j.run_id, "direction": direction, "why": why,
            "interrupted_at": j.opened_at, "holder": j.holder, "groups_started": len(j.started_groups),
            "groups_ended": len(j.ended_groups)}
    if not apply:
        return {**base, "status": "planned", "changes": _pending(engine, plan, ours, to)}
    engine.progress(f"{service}: recovering interrupted run {j.run_id} ({direction}: {why})")
    engine.events.append("run_interrupted", service, run_id=j.run_id, holder=j.holder, journal=str(j.path),
                         groups_started=len(j.started_groups), groups_ended=len(j.ended_groups), found=reason)

    def journal(gid: str, keys: list[Any], ok: bool | None) -> None:
        # recovery's own writes go into the dead run's journal: a recovery killed mid-way leaves
        # them as "started", and the next one finishes them too (e.g. a parked priority)
        group = f"recovery:{os.getpid()}:{gid}"
        if ok is None:
            append_record(j.path, {"rec": "group_started", "group": group, "keys": [key_to_dict(k) for k in keys]})
        else:
            append_record(j.path, {"rec": "group_ended", "group": group, "ok": ok})

    report = restore(engine, {service: plan}, ours=ours, to=to, journal=journal,
                     touched=lambda key: "unknown" if key in touched else "untouched")[service]
    ok = not report["unknown"] and not report["problems"]
    status = f"recovered_{direction}" if ok else ("unknown" if report["unknown"] else "recovery_failed")
    result = {**base, "status": status, "restored": report["restored"], "left_as_is": report["left_as_is"],
              "errors": report["problems"] + report["unknown"]}
    engine.events.append("recovered" if ok else "recovery_failed", service, run_id=j.run_id, direction=direction,
                         why=why, restored=report["restored"], left_as_is=report["left_as_is"],
                         errors=result["errors"])
    if not ok:
        return result  # the journal stays open: the next run or the monitor tries again
    append_record(j.path, {"rec": "resolved", "service": service, "direction": direction, "status": status})
    if direction == "forward":
        st = engine.store.load(service)
        st.last_switch_at, st.last_action, st.active, st.incident = time.time(), plan.action, dict(plan.target), None
        engine.store.save(service, st)
    out = Outcome(service, plan.action, "interrupted", j.run_id, started=j.opened_at,
                  reason=f"the run's process died mid-run; recovered {direction} ({why})")
    out.rollback = {"recovery": result}
    out.errors = list(report["left_as_is"])
    engine._write_report(out)
    result["report"] = out.report_path
    return result


def _superseded(engine: "FailoverEngine", j: JournalState, service: str) -> int | None:
    """With lease coordination: the epoch we hold now when another holder held the service's lease
    between the dead run and us (our epoch is more than one past the run's). That holder read the
    truth and acted on it, so the dead run's plan is history: recovering it could undo their work."""
    was = j.epochs.get(service)
    now = engine.lock.epochs([service]).get(service)
    if was is None or now is None or now <= was + 1:
        return None
    return now


def _supersede(engine: "FailoverEngine", j: JournalState, service: str, epoch: int, *,
               apply: bool) -> dict[str, Any]:
    from failover_engine.core.outcome import Outcome

    why = (f"the service's lease went from epoch {j.epochs.get(service)} (this run) to {epoch} (now): another "
           "holder ran the service since and acted on what it read; nothing of this run is rewritten")
    base = {"service": service, "run_id": j.run_id, "direction": "none", "why": why,
            "interrupted_at": j.opened_at, "holder": j.holder, "groups_started": len(j.started_groups),
            "groups_ended": len(j.ended_groups)}
    if not apply:
        return {**base, "status": "superseded", "changes": []}
    engine.events.append("recovery_superseded", service, run_id=j.run_id, holder=j.holder, why=why)
    append_record(j.path, {"rec": "resolved", "service": service, "direction": "none", "status": "superseded"})
    out = Outcome(service, j.plans[service].action, "interrupted", j.run_id, started=j.opened_at,
                  reason=f"the run's process died mid-run; superseded ({why})")
    engine._write_report(out)
    return {**base, "status": "superseded", "restored": [], "left_as_is": [], "errors": [],
            "report": out.report_path}


def _pending(engine: "FailoverEngine", plan: Any, ours: Any, to: str) -> list[dict[str, Any]]:
    now = engine.read_resources([plan.service])
    out = []
    for c in plan.changes:
        want = c.after if to == "after" else c.before
        have = now.get(c.key)
        if not holds(have, want):
            out.append({"resource": str(c.key), "now": have, "to": want,
                        "write": bool(ours(c.key, have, c)), })
    return out


def _close_if_done(path: Any) -> None:
    from failover_engine.engine.journal import read_journal

    j = read_journal(path)
    if j is not None and j.open and not j.pending_services:
        append_record(path, {"rec": "closed", "statuses": {s: r.get("status") for s, r in j.resolved.items()},
                             "by": "recovery"})
