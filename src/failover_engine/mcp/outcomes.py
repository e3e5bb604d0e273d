"""Shaping for clients: the blast radius of plans, and the outcome of a playbook run."""
from __future__ import annotations

import json
from typing import Any

from failover_engine.engine.events import redact
from failover_engine.core.plan import Plan
from failover_engine.mcp.models import BlastRadius, Condition, RunOutcome, ServiceOutcome
from failover_engine.mcp.policy import mask_headers


def _unique(items: list[str]) -> list[str]:
    """The items without repeats, sorted."""
    return sorted(dict.fromkeys(items))


def blast_radius(plans: list[Plan]) -> BlastRadius:
    records, providers, ins, outs, services = [], [], [], [], []
    for p in plans:
        if p.is_noop:
            continue
        services.append(p.service)
        for step in p.steps:
            if step.effective:
                label = f"{step.adapter} ({step.connection})" if step.connection else step.adapter
                providers.append(label)
                records.extend(str(c.key) for c in step.effective)
        cur = {n for n, w in (p.current or {}).items() if w > 0}
        new = {n for n, w in p.target.items() if w > 0}
        ins.extend(f"{p.service}/{n}" for n in sorted(new - cur))
        outs.extend(f"{p.service}/{n}" for n in sorted(cur - new))
    return BlastRadius(services=_unique(services), records=_unique(records), providers=_unique(providers),
                       endpoints_in=ins, endpoints_out=outs)


def _full_report(row: dict[str, Any]) -> dict[str, Any]:
    """A region run's compact row, with the service's full report read from the state directory."""
    path = row.get("report")
    if isinstance(path, str):
        try:
            with open(path, encoding="utf-8") as fh:
                full = json.load(fh)
            if isinstance(full, dict):
                return full
        except (OSError, ValueError):
            pass
    return {"service": row.get("service"), "status": row.get("status", "error"), "errors": row.get("errors") or []}


def _service_outcome(report: dict[str, Any] | None, fallback_service: str, msg: str | None = None) -> ServiceOutcome:
    if not report:
        return ServiceOutcome(service=fallback_service, status="error", errors=[msg or "no result from the playbook"])
    tl = report.get("timeline") or {}
    plan = report.get("plan") or {}
    status = report.get("status", "error")
    active = plan.get("target") if status in ("succeeded", "unverified") else plan.get("current")
    return ServiceOutcome(service=report.get("service", fallback_service), status=status, active=active,
                          rto_s=tl.get("rto_s"), phases_s=tl.get("phases_s"), errors=report.get("errors") or [],
                          report=mask_headers(redact(report)), report_path=report.get("report_path"))


def run_outcome(run: Any, cond: Condition, services: list[str]) -> RunOutcome:
    """The playbook run's outcome, from the failover module's result."""
    res = run.result or {}
    outs: list[ServiceOutcome] = []
    if cond.service is not None:
        outs.append(_service_outcome(res.get("report"), cond.service, res.get("msg")))
    else:
        for row in res.get("services") or []:
            outs.append(_service_outcome(_full_report(row), row.get("service", "?")))
        if not outs:
            outs = [_service_outcome(None, s, res.get("msg")) for s in services]
    errors = list(run.failed_tasks)
    if run.status != "successful" and not errors:
        errors.append(f"ansible-runner status {run.status}, rc {run.rc}")
    ok = run.rc == 0 and all(s.status in ("succeeded", "noop") for s in outs)
    return RunOutcome(status="succeeded" if ok else (outs[0].status if len(outs) == 1 else "failed"),
                      playbook=run.playbook, run_id=run.run_id, rc=run.rc, duration_s=run.duration_s,
                      services=outs, errors=errors)
