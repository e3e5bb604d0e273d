"""Drill and run reports as one self-contained HTML page (pure: report dicts in, a string out).

:func:`render_drill_html` renders a drill report (``drill-report.json``: the failover and failback
runs, the records before and after, the client's requests); :func:`render_run_html` one run's
report (``<state_dir>/reports/*.json``), with a drill's client when there is one. The page has no
external asset and no script: inline CSS and one SVG timeline with, on one time axis,

* a lane per phase (detection, decision, promotion, apply, validation, propagation), a bar per run
  (``rect.phase`` with ``data-stage``, ``data-phase``, ``data-start``/``data-end`` in epoch seconds);
* a lane per endpoint and observer with the probe results the report has (the detection's first and
  confirming failures or successes, the validation's probes: ``.probe.ok`` / ``.probe.fail``);
* per client, its requests (``rect.request``, runs of requests with the same result and endpoint
  merged) and which endpoint served them (``rect.served``), the client-observed outage marked;

then the RTO figures, the plan's changes, the records before and after, and the requests failed per
phase. Every string from a report is escaped (names come from strategies, and through the MCP server
from clients): ``<script>`` shows as text.
"""
from __future__ import annotations

import html
import json
from typing import Any, Iterable

from failover_engine.cli.reporting import _describe_attrs
from failover_engine.core.client_log import epoch, phase_bounds, stamps
from failover_engine.core.timeline import PHASES

WIDTH, LEFT, RIGHT, LANE, GAP = 1100, 230, 20, 18, 6
LABEL_CHARS = 36  # a longer lane label is shortened in the middle (the whole of it in its tooltip)
PHASE_COLOURS = {"detection": "#8e24aa", "decision": "#3949ab", "promotion": "#6d4c41", "apply": "#00897b",
                 "validation": "#43a047", "propagation": "#f9a825"}
ENDPOINT_COLOURS = ("#1e88e5", "#fb8c00", "#8e24aa", "#00acc1", "#6d4c41", "#d81b60", "#7cb342")
OK, FAIL = "#2e7d32", "#c62828"
STAGES = ("failover", "failback")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.result{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.succeeded{background:#2e7d32}.failed{background:#c62828}.other{background:#6e7781}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.changed{background:#fff8c5}.bad{color:#c62828;font-weight:600}.good{color:#2e7d32;font-weight:600}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
svg{max-width:100%;height:auto;border:1px solid #d0d7de;background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#1b1f24}svg .axis text{fill:#57606a}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-1px;border-radius:2px}.note{color:#57606a}
"""


def esc(value: Any) -> str:
    """Any value as HTML text or attribute content."""
    return html.escape("" if value is None else str(value), quote=True)


def _ms(seconds: Any) -> str:
    return "-" if seconds is None else f"{float(seconds) * 1000:.0f} ms"


def _num(value: float) -> str:
    return f"{value:.1f}"


# --------------------------------------------------------------------------- what the page shows
def drill_stages(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(stage, run report) of the drill's runs that have a report."""
    return [(s, report[s]) for s in STAGES if isinstance(report.get(s), dict)]


def probe_marks(report: dict[str, Any], stages: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Probe results the reports hold: {at, endpoint, observer, ok, what} (sorted by time)."""
    marks: list[dict[str, Any]] = []
    for key, stage in (("detection", "failover"), ("recovery", "failback")):
        det = report.get(key) or {}
        for endpoint, v in (det.get("verdicts") or {}).items():
            observer = v.get("observer") or "local"
            first = epoch(v.get("first_failure_at") if key == "detection" else v.get("first_success_at"))
            confirmed = epoch(v.get("detected_at") if key == "detection" else v.get("recovered_at"))
            ok = key == "recovery"
            count = v.get("consecutive_failures") if key == "detection" else v.get("consecutive_successes")
            for at, what in ((first, "first"), (confirmed, f"confirming ({count} in a row)")):
                if at is not None:
                    marks.append({"at": at, "endpoint": endpoint, "observer": observer, "ok": ok,
                                  "what": f"{stage} detection: {what} {'success' if ok else 'failure'}"})
    for stage, run in stages:
        for probe in ((run.get("validation") or {}).get("probes") or []):
            for a in probe.get("attempts") or []:
                at = epoch(a.get("at"))
                if at is not None:
                    marks.append({"at": at, "endpoint": a.get("endpoint") or probe.get("target"), "observer": "local",
                                  "ok": bool(a.get("ok")), "what": f"{stage} validation: {a.get('reason') or ''}"})
    return sorted(marks, key=lambda m: m["at"])


def request_runs(requests: Iterable[dict[str, Any]], interval: float) -> list[dict[str, Any]]:
    """Consecutive requests with the same result and endpoint, merged: {start, end, ok, endpoint,
    address, count, errors}."""
    runs: list[dict[str, Any]] = []
    for r in requests:
        at = epoch(r.get("at"))
        if at is None:
            continue
        last = runs[-1] if runs else None
        if last and last["ok"] == bool(r.get("ok")) and last["endpoint"] == r.get("endpoint") \
                and at - last["end"] <= 3 * interval:
            last["end"], last["count"] = at + interval, last["count"] + 1
            if r.get("error"):
                last["errors"].add(r["error"])
            continue
        runs.append({"start": at, "end": at + interval, "ok": bool(r.get("ok")), "endpoint": r.get("endpoint"),
                     "address": r.get("address"), "count": 1, "errors": {r["error"]} if r.get("error") else set()})
    return runs


def time_range(report: dict[str, Any], stages: list[tuple[str, dict[str, Any]]],
               clients: list[dict[str, Any]], marks: list[dict[str, Any]]) -> tuple[float, float]:
    times = [m["at"] for m in marks]
    for _stage, run in stages:
        times += list(stamps(run.get("timeline")).values())
    for c in clients:
        times += [t for t in (epoch(r.get("at")) for r in c.get("requests") or []) if t is not None]
    times += [t for t in (epoch((report.get("detection") or {}).get("first_signal_at")),) if t is not None]
    times += [t for t in (epoch(a.get("at")) for a in report.get("lab_actions") or []) if t is not None]
    if not times:
        return 0.0, 1.0
    lo, hi = min(times), max(times)
    pad = max(0.2, (hi - lo) * 0.02)
    return lo - pad, hi + pad


# --------------------------------------------------------------------------- the SVG
class _Svg:
    def __init__(self, t0: float, t1: float):
        self.t0, self.t1 = t0, t1
        self.parts: list[str] = []
        self.y = 34

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - RIGHT)

    def lane(self, label: str, css: str = "lane") -> float:
        y = self.y
        shown = label if len(label) <= LABEL_CHARS else label[:12] + "…" + label[-(LABEL_CHARS - 13):]
        self.parts.append(f'<text x="{LEFT - 8}" y="{y + 13}" text-anchor="end" class="{css}-label">{esc(shown)}'
                          f'<title>{esc(label)}</title></text>'
                          f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y + LANE + GAP / 2}" y2="{y + LANE + GAP / 2}" '
                          'stroke="#eaeef2"/>')
        self.y += LANE + GAP
        return y

    def axis(self) -> None:
        span = self.t1 - self.t0
        step = next((s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if span / s <= 12), 1200)
        ticks = []
        k = 0
        while k * step <= span:
            x = self.x(self.t0 + k * step)
            ticks.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="22" y2="{{bottom}}" stroke="#f0f2f4"/>'
                         f'<text x="{_num(x)}" y="16" text-anchor="middle">+{k * step:g} s</text>')
            k += 1
        self.parts.insert(0, '<g class="axis">' + "".join(ticks) + "</g>")

    def render(self, title: str) -> str:
        height = self.y + 10
        body = "".join(self.parts).replace("{bottom}", str(height - 6))
        return (f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 {WIDTH} {height}" '
                f'width="{WIDTH}" height="{height}" role="img" aria-label="{esc(title)}" '
                f'data-t0="{self.t0:.6f}" data-t1="{self.t1:.6f}"><title>{esc(title)}</title>{body}</svg>')


def _phase_lanes(svg: _Svg, stages: list[tuple[str, dict[str, Any]]]) -> None:
    present = {name for _s, run in stages for name, _a, _b in phase_bounds(run.get("timeline"))}
    for name in (n for n, _a, _b in PHASES if n in present):
        y = svg.lane(name)
        for stage, run in stages:
            for phase, start, end in phase_bounds(run.get("timeline")):
                if phase != name:
                    continue
                x0, x1 = svg.x(start), svg.x(end)
                svg.parts.append(
                    f'<rect class="phase" data-stage="{esc(stage)}" data-phase="{esc(name)}" data-start="{start:.6f}" '
                    f'data-end="{end:.6f}" x="{_num(x0)}" y="{y + 2}" width="{_num(max(2.0, x1 - x0))}" '
                    f'height="{LANE - 4}" fill="{PHASE_COLOURS.get(name, "#57606a")}" rx="2">'
                    f'<title>{esc(stage)} {esc(name)}: {_ms(end - start)}</title></rect>')
                text, right = f"{esc(stage)} {_ms(end - start)}", max(x1, x0 + 2) + 3
                if right > WIDTH - RIGHT - 110:  # no room on the right: the label goes left of the bar
                    svg.parts.append(f'<text x="{_num(x0 - 3)}" y="{y + 13}" text-anchor="end" '
                                     f'class="phase-label">{text}</text>')
                else:
                    svg.parts.append(f'<text x="{_num(right)}" y="{y + 13}" class="phase-label">{text}</text>')


def _probe_lanes(svg: _Svg, marks: list[dict[str, Any]]) -> None:
    lanes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in marks:
        lanes.setdefault((str(m["endpoint"]), str(m["observer"])), []).append(m)
    for (endpoint, observer), items in sorted(lanes.items()):
        y = svg.lane(f"probes {endpoint} ({observer})")
        for m in items:
            cls = "ok" if m["ok"] else "fail"
            svg.parts.append(f'<circle class="probe {cls}" data-endpoint="{esc(endpoint)}" data-observer="{esc(observer)}" '
                             f'data-at="{m["at"]:.6f}" cx="{_num(svg.x(m["at"]))}" cy="{y + LANE / 2}" r="4" '
                             f'fill="{OK if m["ok"] else FAIL}"><title>{esc(endpoint)}: {esc(m["what"])}</title></circle>')


def _client_lanes(svg: _Svg, clients: list[dict[str, Any]], colours: dict[str, str]) -> None:
    for c in clients:
        interval = float(c.get("interval_s") or 0.05)
        runs = request_runs(c.get("requests") or [], interval)
        label = c.get("name") or c.get("label") or "client"
        y = svg.lane(f"client {label}")
        y2 = svg.lane("  served by")
        for run in runs:
            x0, x1 = svg.x(run["start"]), svg.x(run["end"])
            width = _num(max(1.0, x1 - x0))
            what = f'{run["count"]} request(s) to {run["endpoint"] or "?"} ({run["address"] or "no answer"}): ' + (
                "ok" if run["ok"] else "failed " + ", ".join(sorted(run["errors"])))
            svg.parts.append(
                f'<rect class="request {"ok" if run["ok"] else "fail"}" data-client="{esc(label)}" '
                f'data-endpoint="{esc(run["endpoint"] or "")}" data-start="{run["start"]:.6f}" data-end="{run["end"]:.6f}" '
                f'data-count="{run["count"]}" x="{_num(x0)}" y="{y + 3}" width="{width}" height="{LANE - 6}" '
                f'fill="{OK if run["ok"] else FAIL}"><title>{esc(what)}</title></rect>')
            colour = colours.get(str(run["endpoint"]), "#afb8c1")
            svg.parts.append(
                f'<rect class="served" data-endpoint="{esc(run["endpoint"] or "")}" x="{_num(x0)}" y="{y2 + 3}" '
                f'width="{width}" height="{LANE - 6}" fill="{colour}" opacity="{1 if run["ok"] else 0.35}">'
                f'<title>{esc(what)}</title></rect>')
        for stage, fig in (c.get("stages") or {}).items():
            first, reached = epoch(fig.get("first_failure_at")), epoch(fig.get("reached_at"))
            if first is None:
                continue
            end = reached if reached is not None else svg.t1
            svg.parts.append(
                f'<rect class="outage" data-stage="{esc(stage)}" data-client="{esc(label)}" x="{_num(svg.x(first))}" '
                f'y="{y}" width="{_num(max(1.0, svg.x(end) - svg.x(first)))}" height="{LANE}" fill="none" '
                f'stroke="{FAIL}" stroke-dasharray="4 2"><title>{esc(stage)}: client-observed outage '
                f'{_ms(fig.get("outage_s")) if reached is not None else "never ended"}</title></rect>')


def _action_lane(svg: _Svg, actions: list[dict[str, Any]]) -> None:
    """The failures the drill injected through the lab (a region down, up, ...): a marker each."""
    if not actions:
        return
    y = svg.lane("lab: injected")
    for a in actions:
        at = epoch(a.get("at"))
        if at is None:
            continue
        x, down = _num(svg.x(at)), a.get("mode") != "up"
        label = f'{a.get("region")} {a.get("mode")}'
        svg.parts.append(f'<g class="lab-action" data-at="{at:.6f}" data-region="{esc(a.get("region"))}" '
                         f'data-mode="{esc(a.get("mode"))}"><path d="M{x} {y + 2} l5 7 l-5 7 l-5 -7 z" '
                         f'fill="{FAIL if down else OK}"/><text x="{_num(svg.x(at) + 8)}" y="{y + 13}">{esc(label)}'
                         f'</text><title>{esc(label)} (through the lab control API)</title></g>')


def _signal_markers(svg: _Svg, stages: list[tuple[str, dict[str, Any]]], top: float) -> None:
    for stage, run in stages:
        at = stamps(run.get("timeline")).get("first_signal_at")
        if at is None:
            continue
        x = _num(svg.x(at))
        svg.parts.append(f'<line class="signal" data-stage="{esc(stage)}" x1="{x}" x2="{x}" y1="{top}" y2="{svg.y}" '
                         f'stroke="#57606a" stroke-dasharray="2 3"/><text x="{x}" y="{svg.y + 8}" '
                         f'text-anchor="middle" class="note">{esc(stage)}: first signal</text>')
    svg.y += 12


def timeline_svg(report: dict[str, Any], stages: list[tuple[str, dict[str, Any]]],
                 clients: list[dict[str, Any]], title: str) -> str:
    """The one SVG timeline of the page (see the module's doc)."""
    marks = probe_marks(report, stages)
    t0, t1 = time_range(report, stages, clients, marks)
    svg = _Svg(t0, t1)
    top = svg.y
    _action_lane(svg, report.get("lab_actions") or [])
    _phase_lanes(svg, stages)
    _probe_lanes(svg, marks)
    _client_lanes(svg, clients, endpoint_colours(report, clients))
    _signal_markers(svg, stages, top)
    svg.axis()
    return svg.render(title)


def endpoint_colours(report: dict[str, Any], clients: list[dict[str, Any]]) -> dict[str, str]:
    names: list[str] = []
    for c in clients:
        for ep in list((c.get("endpoints") or {}).values()) + [r.get("endpoint") for r in c.get("requests") or []]:
            if ep and ep not in names:
                names.append(str(ep))
    return {n: ENDPOINT_COLOURS[i % len(ENDPOINT_COLOURS)] for i, n in enumerate(names)}


# --------------------------------------------------------------------------- the tables
def _table(head: list[str], rows: list[list[str]], css: str = "") -> str:
    """A table; ``rows`` hold HTML already escaped."""
    out = [f'<table class="{esc(css)}"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(cells) + "</tr>" for cells in rows]
    return "".join(out) + "</tbody></table>"


def _td(value: Any, css: str = "") -> str:
    return f'<td class="{css}">{esc(value)}</td>' if css else f"<td>{esc(value)}</td>"


def rto_table(stages: list[tuple[str, dict[str, Any]]], clients: list[dict[str, Any]]) -> str:
    """Per run: status, the engine's RTO and client RTO, and per client what it observed."""
    rows = []
    for stage, run in stages:
        tl = run.get("timeline") or {}
        figs = [(c, (c.get("stages") or {}).get(stage)) for c in clients] or [({}, None)]
        for c, fig in figs:
            fig = fig or {}
            verdict_css = "" if not fig else ("good" if fig.get("within") else "bad")
            rows.append([_td(stage), _td(run.get("status")), _td(_ms(tl.get("rto_s")), "num"),
                         _td(_ms(tl.get("client_rto_s")), "num"), _td(c.get("name") or "-", "mono"),
                         _td(_ms(fig.get("outage_s")) if fig else "-", "num"),
                         _td(_ms(fig.get("client_rto_s")) if fig else "-", "num"),
                         _td(_ms(fig.get("expected_client_rto_s")) if fig else "-", "num"),
                         _td(f'{fig.get("failed", "-")} / {fig.get("requests", "-")}' if fig else "-", "num"),
                         _td(fig.get("verdict") or "no client measured this run", verdict_css)])
    return _table(["run", "status", "engine RTO", "engine client RTO", "client", "client-observed outage",
                   "client reached new routing", "expected (client RTO + interval + slack)", "failed / requests",
                   "verdict"], rows, "rto")


def phases_table(stages: list[tuple[str, dict[str, Any]]]) -> str:
    rows = []
    for stage, run in stages:
        for name, start, end in phase_bounds(run.get("timeline")):
            rows.append([_td(stage), _td(name), _td(_ms(end - start), "num")])
    return _table(["run", "phase", "duration"], rows, "phases")


def plan_table(stages: list[tuple[str, dict[str, Any]]]) -> str:
    """Every change of every run's plan: the attributes that differ, before → after."""
    rows = []
    for stage, run in stages:
        for step in ((run.get("plan") or {}).get("steps") or []):
            for ch in step.get("changes") or []:
                before, after = ch.get("before") or {}, ch.get("after") or {}
                keys = sorted(set(before) | set(after), key=str)
                diff = "; ".join(f"{k}: {_short(before.get(k))} → {_short(after.get(k))}"
                                 for k in keys if before.get(k) != after.get(k)) or "(no change)"
                rows.append([_td(stage), _td(step.get("description") or step.get("adapter")),
                             _td(ch.get("resource"), "mono"), _td(ch.get("action")), _td(diff, "mono changed")])
    return _table(["run", "step", "resource", "action", "before → after"], rows, "plan")


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "-" if value is None else str(value)


def records_table(columns: list[tuple[str, dict[str, Any] | None]]) -> str:
    """Resources by row, one column per moment (before, after failover, ...); a cell that differs
    from the one before it is marked."""
    keys = sorted({k for _label, recs in columns for k in (recs or {})})
    rows = []
    for key in keys:
        cells, previous = [_td(key, "mono")], None
        for i, (_label, recs) in enumerate(columns):
            text = _describe_attrs((recs or {}).get(key)) if key in (recs or {}) else "(absent)"
            cells.append(_td(text, "mono changed" if i and text != previous else "mono"))
            previous = text
        rows.append(cells)
    return _table(["resource"] + [label for label, _recs in columns], rows, "records")


def client_phase_table(clients: list[dict[str, Any]]) -> str:
    rows = []
    for c in clients:
        for stage, fig in (c.get("stages") or {}).items():
            for p in fig.get("failed_per_phase") or []:
                rows.append([_td(c.get("name"), "mono"), _td(stage), _td(p.get("phase")),
                             _td(_ms(p.get("duration_s")), "num"), _td(p.get("requests"), "num"),
                             _td(p.get("failed"), "num", ) if not p.get("failed") else _td(p["failed"], "num bad")])
    return _table(["client", "run", "phase", "duration", "requests", "failed"], rows, "client-phases")


def _legend(colours: dict[str, str]) -> str:
    items = [f'<span><i style="background:{c}"></i>{esc(n)}</span>' for n, c in PHASE_COLOURS.items()]
    items += [f'<span><i style="background:{OK}"></i>request ok / probe ok</span>',
              f'<span><i style="background:{FAIL}"></i>request failed / probe failed</span>']
    items += [f'<span><i style="background:{c}"></i>served by {esc(n)}</span>' for n, c in colours.items()]
    return '<p class="legend">' + "".join(items) + "</p>"


# --------------------------------------------------------------------------- pages
def _page(title: str, result: str, subtitle: str, sections: list[str]) -> str:
    css = {"succeeded": "succeeded", "failed": "failed"}.get(result, "other")
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f'<h1>{esc(title)} <span class="result {css}" id="result">{esc(result.upper())}</span></h1>'
            f'<p class="note">{subtitle}</p>' + "".join(sections) + "</body></html>\n")


def render_drill_html(report: dict[str, Any]) -> str:
    """The page of a drill report (drill-report.json as `failover drill` completes it)."""
    stages = drill_stages(report)
    client = report.get("client") or {}
    clients = [{**c, "interval_s": c.get("interval_s", client.get("interval_s"))} for c in client.get("clients") or []]
    service = report.get("service")
    zone = f" (member {report['zone']} out and back)" if report.get("zone") else ""
    title = f"Drill of service {service}{zone}"
    subtitle = esc(report.get("error") or "") or "every run of the drill on one time axis; times are relative to its start"
    if client:
        subtitle += " · client: " + esc(client.get("verdict"))
    sections = [f"<h2>Timeline</h2>{timeline_svg(report, stages, clients, title)}"
                f"{_legend(endpoint_colours(report, clients))}",
                f"<h2>RTO</h2>{rto_table(stages, clients)}{phases_table(stages)}",
                f"<h2>Plan</h2>{plan_table(stages)}",
                "<h2>Records</h2>" + records_table([(label.replace("_", " "), report.get(label)) for label in
                                                    ("records_before", "records_after_failover",
                                                     "records_after_failback") if label in report])]
    if clients:
        sections.append(f"<h2>Client requests failed per phase</h2>{client_phase_table(clients)}"
                        f'<p class="note">slack {esc(client.get("slack_s"))} s, one request every '
                        f'{esc(client.get("interval_s"))} s; minimum TTL {esc(client.get("min_ttl_s"))} s</p>')
    return _page(title, str(report.get("result") or "unknown"), subtitle, sections)


def render_run_html(run: dict[str, Any], client: dict[str, Any] | None = None, drill_stage: str | None = None) -> str:
    """The page of one run's report (``<state_dir>/reports/*.json``); ``client``: the client figures
    of the drill the run belongs to, if any, where it was the ``drill_stage`` run (failover or
    failback; the client's requests are clipped to that run's window)."""
    stage = str(run.get("action") or "run")
    stages = [(stage, run)]
    clients = []
    for c in (client or {}).get("clients") or []:
        figs = {k: v for k, v in (c.get("stages") or {}).items() if k == drill_stage}
        window = next(iter(figs.values()), None)
        lo, hi = (epoch(window.get("start")), epoch(window.get("end"))) if window else (None, None)
        reqs = [r for r in c.get("requests") or [] if lo is None or lo <= (epoch(r.get("at")) or 0) < (hi or 0)]
        clients.append({**c, "requests": reqs, "interval_s": (client or {}).get("interval_s"),
                        "stages": {stage: v for v in figs.values()}})
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for step in ((run.get("plan") or {}).get("steps") or []):
        for ch in step.get("changes") or []:
            before[ch.get("resource")], after[ch.get("resource")] = ch.get("before"), ch.get("after")
    title = f"Run {run.get('run_id')} of service {run.get('service')}: {stage}"
    subtitle = esc(run.get("reason") or "") + (" · " + esc("; ".join(run.get("errors") or [])) if run.get("errors") else "")
    sections = [f"<h2>Timeline</h2>{timeline_svg({}, stages, clients, title)}{_legend(endpoint_colours({}, clients))}",
                f"<h2>RTO</h2>{rto_table(stages, clients)}{phases_table(stages)}",
                f"<h2>Plan</h2>{plan_table(stages)}",
                "<h2>Records</h2>" + records_table([("before", before), ("after", after)])]
    if clients:
        sections.append(f"<h2>Client requests failed per phase</h2>{client_phase_table(clients)}")
    return _page(title, str(run.get("status") or "unknown"), subtitle, sections)
