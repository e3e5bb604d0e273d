"""Readable summaries of outcomes and drills, for people (JSON is for machines)."""
from __future__ import annotations

from typing import Any

from .engine import Outcome
from .metrics import PHASES, render_timeline


def render_outcome(out: Outcome) -> str:
    lines = []
    if out.plan is not None:
        lines.append(out.plan.render())
    lines.append(f"status: {out.status}" + (f" (run {out.run_id})" if out.changed else ""))
    for e in out.errors:
        lines.append(f"  error: {e}")
    if out.timeline is not None and out.status in ("succeeded", "rolled_back", "rollback_failed"):
        lines.append(render_timeline(out.timeline))
    if out.rollback is not None:
        lines.append(f"rollback: {'ok, every resource is back in its before-state' if out.rollback['ok'] else 'FAILED'}")
        for s in out.rollback["steps"]:
            for p in s["problems"]:
                lines.append(f"  rollback problem (step {s['step'] + 1}): {p}")
    if out.report_path:
        lines.append(f"report: {out.report_path}")
    return "\n".join(lines)


def _records(resources: dict[str, Any]) -> list[str]:
    out = []
    for key, attrs in sorted(resources.items()):
        if attrs is None:
            out.append(f"    {key}: (absent)")
            continue
        extra = " ".join(f"{k}={attrs[k]}" for k in ("failover", "weight") if k in attrs)
        out.append(f"    {key}: {','.join(attrs.get('values', []))} {extra}".rstrip())
    return out


def render_drill(report: dict[str, Any]) -> str:
    """Summary of a drill report written by playbooks/drill.yml."""
    lines = [f"Drill of service {report.get('service')!r}: {report.get('result', 'unknown').upper()}"]
    for stage in ("failover", "failback"):
        r = report.get(stage) or {}
        tl = r.get("timeline") or {}
        rto = tl.get("rto_s")
        lines.append(f"\n{stage}: {r.get('status', 'not run')}" + (f", RTO {rto * 1000:.0f} ms" if rto is not None else ""))
        phases = tl.get("phases_s") or {}
        for name in [n for n, _, _ in PHASES if n in phases]:
            d = phases[name]
            lines.append(f"  {name:<11} {'-' if d is None else f'{d * 1000:.0f} ms':>10}")
        for e in r.get("errors") or []:
            lines.append(f"  error: {e}")
    for label in ("records_before", "records_after_failover", "records_after_failback"):
        if report.get(label):
            lines.append(f"\n{label.replace('_', ' ')}:")
            lines.extend(_records(report[label]))
    return "\n".join(lines)
