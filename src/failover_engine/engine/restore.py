"""Putting resources back: read what the providers hold, write only what is ours, read again.

:func:`restore` serves both the rollback of a transaction (to the before-state) and the recovery
of an interrupted run (forward to the after-state, or back). It reads every resource of the plans
per provider (:func:`read_tolerant`: one unreachable provider does not hide the others), writes
only what differs from the wanted state and may have been put there by the run (``ours``),
leaves what someone else changed, and reads back what it wrote. A resource that cannot be read is
judged by ``touched``: untouched (nothing to do), written (a problem) or unknown (nobody can tell).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from failover_engine.core.errors import AdapterError, ConcurrentEditError
from failover_engine.core.plan import Attrs, Change, Plan, ResourceKey
from failover_engine.core.validation import read_back_mismatches

if TYPE_CHECKING:
    from failover_engine.engine.failover import FailoverEngine


def holds(current: Attrs | None, expected: Attrs | None) -> bool:
    """Whether a resource read now is in the expected state (only the expected attributes count)."""
    if expected is None or current is None:
        return expected is None and current is None
    return not read_back_mismatches({"_": expected}, {"_": current})


def restore(engine: "FailoverEngine", plans: dict[str, Any], *, ours: Callable[[ResourceKey, Attrs | None, Any], bool],
            touched: Callable[[ResourceKey], str], to: str, steps: dict[str, set[int]] | None = None,
            journal: Callable[[str, list[ResourceKey], bool | None], None] | None = None) -> dict[str, dict[str, Any]]:
    """Put the resources of ``plans`` (Plan or JournaledPlan) in their ``to`` state ("before" or
    "after") where ``ours`` says this run may have changed them; read, write, read again.

    Per service: ``restored`` (resources written), ``left_as_is`` (changed by someone else: never
    overwritten), ``problems`` (still not in the wanted state), ``unknown`` (could not read: the
    truth is not known), ``found`` (what the first read showed), and ``steps``: the same per
    routing step, newest first (only the steps in ``steps[service]`` when given).

    A resource that cannot be read is judged by ``touched(key)``: "untouched" (this run never
    wrote it: nothing to restore), "written" (it did, and cannot restore it: a problem) or
    "unknown" (a write's answer was lost: nobody can tell). ``journal(group, keys, ok)`` is told
    before each write (ok None) and after it, so a restore killed mid-way is itself recoverable."""
    names = list(plans)
    report: dict[str, dict[str, Any]] = {
        n: {"restored": [], "left_as_is": [], "problems": [], "unknown": [], "found": {}} for n in names}
    per_step: dict[str, dict[int, dict[str, Any]]] = {
        n: {st: {"step": st, "restored": [], "left_as_is": [], "problems": []}
            for st in sorted({c[1] for c in _changes_of(plans[n]) if c[2] != c[3]}, reverse=True)
            if steps is None or st in steps.get(n, set())} for n in names}

    def note(n: str, step: int, what: str, text: str) -> None:
        report[n][what].append(text)
        if step in per_step[n]:
            per_step[n][step][what].append(text)

    now, unread = read_tolerant(engine, names)
    writes: dict[str, list[tuple[str, int, Change]]] = {}
    bindings: dict[str, Any] = {}
    for n in names:
        svc = engine.loaded.service(n)
        for key, step, before, after in _changes_of(plans[n]):
            want = before if to == "before" else after
            if key in unread:
                if before == after:
                    continue
                seen = touched(key)
                if seen == "written":
                    note(n, step, "problems", f"{key}: written by this run, and it cannot be read to restore it: "
                                              f"{unread[key]}")
                elif seen == "unknown":
                    report[n]["unknown"].append(f"{key}: the write's answer was lost and it cannot be read: "
                                                f"{unread[key]}")
                continue
            have = now.get(key)
            report[n]["found"][str(key)] = None if have is None else dict(have)
            if holds(have, want):
                continue
            if not ours(key, have, Change(key, before, after)):
                note(n, step, "left_as_is", f"{key}: changed by someone else since it was read "
                                            f"(now {None if have is None else dict(have)}); left as is")
                continue
            b = svc.routing[step]
            gid = f"{step}:{b.adapter}:{b.connection or '-'}"
            bindings[gid] = b
            writes.setdefault(gid, []).append((n, step, Change(key, have, want)))
    for gid in sorted(writes, key=lambda g: -int(g.split(":", 1)[0])):  # newest step first
        items = writes[gid]
        if journal is not None:
            journal(gid, [c.key for _unused, _unused, c in items], None)
        try:
            engine.adapter(bindings[gid]).apply([c for _unused, _unused, c in items])
            for n, step, c in items:
                note(n, step, "restored", str(c.key))
        except ConcurrentEditError as exc:
            for n, step, c in items:
                note(n, step, "left_as_is", f"{c.key}: {exc}")
        except AdapterError as exc:
            for n, step, c in items:
                note(n, step, "problems", f"{c.key}: {exc}")
        if journal is not None:
            journal(gid, [], not any(str(c.key) not in report[n]["restored"] for n, _unused, c in items))
    if not writes:
        return _finish(report, per_step)
    after_read, unread = read_tolerant(engine, names)
    for n in names:
        for key, step, before, after in _changes_of(plans[n]):
            want = before if to == "before" else after
            if str(key) in report[n]["restored"] and key in unread:
                report[n]["unknown"].append(f"{key}: restored, but it cannot be read back: {unread[key]}")
            elif str(key) in report[n]["restored"] and not holds(after_read.get(key), want):
                note(n, step, "problems", f"{key}: expected {want}, found {after_read.get(key)}")
    return _finish(report, per_step)


def read_tolerant(engine: "FailoverEngine", names: list[str]) -> tuple[dict[ResourceKey, Attrs | None],
                                                                       dict[ResourceKey, str]]:
    """Every resource of the services, read per adapter and connection: (what was read, and the
    keys of the groups that could not be read with the error), so one unreachable provider does
    not hide what the others hold."""
    by_adapter: dict[tuple[str, str | None], list[Any]] = {}
    for n in names:
        for b in engine.loaded.service(n).routing:
            by_adapter.setdefault((b.adapter, b.connection), []).append(b)
    current: dict[ResourceKey, Attrs | None] = {}
    unread: dict[ResourceKey, str] = {}
    for bindings in by_adapter.values():
        ad = engine.adapter(bindings[0])
        try:
            current.update(ad.read(bindings))
        except AdapterError as exc:
            for b in bindings:
                for k in ad.resource_keys(b):
                    unread[k] = str(exc)
    return current, unread


def _finish(report: dict[str, dict[str, Any]], per_step: dict[str, dict[int, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    for n, r in report.items():
        r["ok"] = not r["problems"] and not r["unknown"]
        r["complete"] = r["ok"] and not r["left_as_is"]
        r["steps"] = [{**d, "ok": not d["problems"] and not r["unknown"]} for d in per_step[n].values()]
    return report


def _changes_of(plan: Any) -> list[tuple[ResourceKey, int, Any, Any]]:
    """(key, routing step, before, after) of every resource of a Plan or a JournaledPlan."""
    if isinstance(plan, Plan):
        return [(c.key, s.index, c.before, c.after) for s in plan.steps for c in s.changes]
    return [(c.key, c.step, c.before, c.after) for c in plan.changes]
