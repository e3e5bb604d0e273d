"""Readable summaries of outcomes and drills, for people (JSON is for machines)."""
from __future__ import annotations

import json
from typing import Any

from failover_engine.core.outcome import Outcome
from failover_engine.core.timeline import PHASES, render_timeline


def render_outcome(out: Outcome) -> str:
    lines = []
    if out.plan is not None:
        lines.append(out.plan.render())
    lines.append(f"status: {out.status}" + (f" (run {out.run_id})" if out.changed else ""))
    for e in out.errors:
        lines.append(f"  error: {e}")
    if out.timeline is not None and out.status in ("succeeded", "unverified", "rolled_back", "rollback_failed",
                                                   "unknown"):
        lines.append(render_timeline(out.timeline))
    for st in out.steps:
        if st["status"] in ("failed", "not_run") or "rolled_back" in st:
            extra = " (rolled back)" if st.get("rolled_back") else ""
            lines.append(f"  step {st['step'] + 1} {st['description']}: {st['status']}{extra}")
    if out.status == "unverified":
        lines.append("traffic moved (every write was acknowledged) but the read-back could not be read: check the "
                     "records; the cooldown holds")
    if out.rollback is not None and "recovery" in out.rollback:
        rec = out.rollback["recovery"]
        lines.append(f"recovered {rec.get('direction')}: {rec.get('why')}")
    elif out.rollback is not None:
        if out.rollback.get("unknown"):
            verdict = "UNKNOWN: a write's answer was lost and its resources cannot be read; nobody can tell what " \
                      "the provider holds (check it, then `failover status`)"
        elif out.rollback.get("complete"):
            verdict = "ok, every resource is back in its before-state (read back)"
        elif out.rollback["ok"]:
            verdict = "ok for what this run wrote; resources changed by someone else were left as they are"
        else:
            verdict = "FAILED"
        lines.append(f"rollback: {verdict}")
        for s in out.rollback.get("steps", []):
            for p in s["problems"]:
                lines.append(f"  rollback problem (step {s['step'] + 1}): {p}")
        for u in out.rollback.get("unknown", []):
            lines.append(f"  unknown: {u}")
    if out.report_path:
        lines.append(f"report: {out.report_path}")
    return "\n".join(lines)


def _describe_attrs(attrs: dict[str, Any] | None) -> str:
    """One resource's attributes, readably, whatever the provider (by the attributes' shape).

    Route 53 and plain Cloud DNS records: values and role (``192.0.2.10 failover=PRIMARY``);
    Cloud DNS primaryBackup: ``primary 192.0.2.10; backup us-west2 198.51.100.10``; Cloud DNS WRR:
    ``weights 192.0.2.10=100 198.51.100.10=0``; Traffic Manager endpoints: ``priority=1 Enabled``;
    ARC zonal shift: ``shifted away from use1-az2`` or ``no zonal shift (every zone in rotation)``.
    """
    if attrs is None:
        return "(absent)"
    if "primary" in attrs:
        backups = "; ".join(f"backup {b.get('location')} {','.join(b.get('values', []))}"
                            for b in attrs.get("backup", []))
        trickle = f"; trickle {attrs['trickle_ratio']:.0%}" if attrs.get("trickle_ratio") else ""
        return f"primary {','.join(attrs['primary'])}" + (f"; {backups}" if backups else "") + trickle
    if "wrr" in attrs:
        return "weights " + " ".join(f"{','.join(i['values'])}={i['weight']:g}" for i in attrs["wrr"])
    if "away_from" in attrs:  # ARC zonal shift: the zone traffic is shifted away from
        away = attrs["away_from"]
        if not away:
            return "no zonal shift (every zone in rotation)"
        return "shifted away from " + (", ".join(away) if isinstance(away, list) else str(away))
    if "routing_policy" in attrs:
        return f"routing policy {json.dumps(attrs['routing_policy'], sort_keys=True)}"
    values = ",".join(attrs.get("values", []))
    roles = [f"{k}={attrs[k]}" for k in ("failover", "priority", "weight") if k in attrs]
    status = [str(attrs["endpoint_status"])] if "endpoint_status" in attrs else []
    described = " ".join([values, *roles, *status]).strip()
    return described or json.dumps({k: v for k, v in attrs.items() if k != "ttl"}, sort_keys=True)


def _records(resources: dict[str, Any], providers: list[str]) -> list[str]:
    """Resource lines, aligned, grouped by provider: those of ``providers`` (the plan's step order)
    first, any other after them."""
    groups: dict[str, list[str]] = {p: [] for p in providers}
    for key in sorted(resources):
        groups.setdefault(key.partition(":")[0], []).append(key)
    width = max(len(k) for k in resources) + 1
    return [f"    {key + ':':<{width}} {_describe_attrs(resources[key])}" for keys in groups.values() for key in keys]


def _steps(outcome: dict[str, Any]) -> list[str]:
    """One line per plan step: provider, what it steers, changes, read-back verdict."""
    checked = {r.get("step"): r for r in (outcome.get("validation") or {}).get("read_back") or []}
    out = []
    for step in (outcome.get("plan") or {}).get("steps") or []:
        changed = sum(1 for c in step.get("changes", []) if c.get("action") != "noop")
        read_back = checked.get(step.get("step"))
        verdict = "" if read_back is None else ", read back " + ("ok" if read_back.get("ok") else "MISMATCH")
        out.append(f"    {step.get('step', 0) + 1}. {step.get('description') or step.get('adapter')}: "
                   f"{changed} change(s){verdict}")
    return out


def _ms_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _client_lines(client: dict[str, Any], stage: str) -> list[str]:
    """What each drill client saw during one run: outage, its own RTO beside the expected one,
    failed requests (per phase, those with failures)."""
    out = []
    for c in client.get("clients") or []:
        fig = (c.get("stages") or {}).get(stage)
        if not fig:
            continue
        ms = _ms_text
        reached = f"reached the new routing {ms(fig.get('client_rto_s'))} after the first signal" \
            if fig.get("reached") else "NEVER reached the new routing"
        out.append(f"  client {c.get('name')}: outage {ms(fig.get('outage_s'))}, {reached} (expected within "
                   f"{ms(fig.get('expected_client_rto_s'))}), {fig.get('failed')}/{fig.get('requests')} requests failed")
        failed = [f"{p['phase']} {p['failed']}" for p in fig.get("failed_per_phase") or [] if p.get("failed")]
        if failed:
            out.append(f"    failed per phase: {', '.join(failed)}")
    return out


def render_drill(report: dict[str, Any]) -> str:
    """Summary of a drill report written by playbooks/drill.yml: per stage the RTO, its phases and
    the plan's steps (one per provider), then the records of every provider before and after."""
    zone = f" (zone {report['zone']} out and back)" if report.get("zone") else ""
    lines = [f"Drill of service {report.get('service')!r}{zone}: {report.get('result', 'unknown').upper()}"]
    if report.get("error"):
        lines.append(f"  error: {report['error']}")
    if report.get("engine_result"):
        lines.append(f"  the engine's runs: {report['engine_result']}; what the client saw decides the drill")
    for stage in ("failover", "failback"):
        r = report.get(stage) or {}
        tl = r.get("timeline") or {}
        rto = tl.get("rto_s")
        rto_text = f", RTO {rto * 1000:.0f} ms" if rto is not None else ""
        if tl.get("client_rto_s") is not None:  # a resolve step: what clients could still be told
            rto_text += f", client RTO {tl['client_rto_s'] * 1000:.0f} ms (TTL {tl.get('client_ttl_s'):g} s)"
        reason = f" ({r['reason']})" if r.get("reason") else ""
        lines.append(f"\n{stage}: {r.get('status', 'not run')}{rto_text}{reason}")
        phases = tl.get("phases_s") or {}
        for name in [n for n, _unused, _unused in PHASES if n in phases]:
            d = phases[name]
            lines.append(f"  {name:<11} {'-' if d is None else f'{d * 1000:.0f} ms':>10}")
        promo = r.get("promotion")
        if promo:
            took = f" in {promo['duration_s'] * 1000:.0f} ms" if promo.get("duration_s") is not None else ""
            variables = ", ".join(f"{k}={v}" for k, v in (promo.get("vars") or {}).items())
            lines.append(f"  {promo.get('phase', 'promotion').replace('_', ' ')}: terraform apply ({variables}) "
                         f"{promo.get('status')}{took} [{promo.get('runner', '?')}]"
                         + (f": {promo['error']}" if promo.get("error") else ""))
        steps = _steps(r)
        if steps:
            lines.append("  steps:")
            lines.extend(steps)
        if r.get("rollback") is not None:
            lines.append(f"  rollback: {'ok' if r['rollback'].get('ok') else 'FAILED'}")
        for e in r.get("errors") or []:
            lines.append(f"  error: {e}")
        lines.extend(_client_lines(report.get("client") or {}, stage))
    steps = ((report.get("failover") or {}).get("plan") or {}).get("steps") or []
    providers = list(dict.fromkeys(str(s.get("adapter")) for s in steps))
    for label in ("records_before", "records_after_failover", "records_after_failback"):
        if report.get(label):
            lines.append(f"\n{label.replace('_', ' ')}:")
            lines.extend(_records(report[label], providers))
    return "\n".join(lines)
