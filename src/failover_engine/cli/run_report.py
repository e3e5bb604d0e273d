"""`failover report RUN_ID`: one past run's report, as text, JSON or a self-contained HTML page.

The run is found in the state dir's reports (``<state_dir>/reports/<start>-<service>-<action>-<run
id>.json``; a unique prefix of the run id will do). When the run was part of a drill
(``drill-report.json`` beside the state dir, as ``failover drill`` lays them out), the page also
shows what the drill's client saw during that run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from failover_engine.cli.report_html import render_run_html
from failover_engine.config.loader import load_strategy
from failover_engine.core.errors import FailoverError


class RunNotFound(FailoverError):
    """No report (or more than one) holds the run id asked for."""


def find_run(reports_dir: Path, run_id: str) -> Path:
    """The report of the run whose id is (or starts with) ``run_id``."""
    if not run_id or any(c in run_id for c in "/\\*?[]"):
        raise RunNotFound(f"{run_id!r} is not a run id (letters and digits, as `failover history` shows them)")
    found = []
    for path in sorted(reports_dir.glob("*.json")):
        last = path.stem.rsplit("-", 1)[-1]
        if last.startswith(run_id):
            found.append(path)
    if not found:
        raise RunNotFound(f"no run {run_id!r} in {reports_dir} (see `failover history`)")
    ids = sorted({p.stem.rsplit("-", 1)[-1] for p in found})
    if len(ids) > 1:
        raise RunNotFound(f"run id {run_id!r} is ambiguous: {', '.join(ids)}")
    return found[-1]


def drill_of(state_dir: Path, run_id: str) -> tuple[dict[str, Any], str] | None:
    """(drill report, stage) of the drill beside ``state_dir`` that ran ``run_id``, if any."""
    path = state_dir.parent / "drill-report.json"
    try:
        drill = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for stage in ("failover", "failback"):
        if isinstance(drill, dict) and isinstance(drill.get(stage), dict) and drill[stage].get("run_id") == run_id:
            return drill, stage
    return None


def render_run_text(run: dict[str, Any]) -> str:
    """A few lines for a person: what the run did, its RTO figures and phases, its errors."""
    tl = run.get("timeline") or {}
    lines = [f"run {run.get('run_id')} of service {run.get('service')}: {run.get('action')} {run.get('status')}"
             + (f" ({run['reason']})" if run.get("reason") else ""), f"  started {run.get('started')}"]
    for key, label in (("rto_s", "RTO"), ("client_rto_s", "client RTO")):
        if tl.get(key) is not None:
            lines.append(f"  {label:<11} {tl[key] * 1000:>8.0f} ms")
    for name, seconds in (tl.get("phases_s") or {}).items():
        lines.append(f"  {name:<11} {'-' if seconds is None else f'{seconds * 1000:.0f} ms':>11}")
    lines += [f"  error: {e}" for e in run.get("errors") or []]
    return "\n".join(lines) + "\n"


def cmd_report(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir) if args.state_dir else load_strategy(args.strategy).state_dir
    path = find_run(state_dir / "reports", args.run_id)
    run = json.loads(path.read_text(encoding="utf-8"))
    if args.html:
        drill = drill_of(state_dir, str(run.get("run_id")))
        text = render_run_html(run, drill[0].get("client") if drill else None, drill[1] if drill else None)
    elif args.json:
        text = json.dumps(run, indent=2) + "\n"
    else:
        text = render_run_text(run)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"failover report: {args.output} (run {run.get('run_id')}, from {path})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_parser(sub: Any) -> None:
    """`failover report` among the CLI's commands."""
    s = sub.add_parser("report", help="a past run's report: text, JSON, or a self-contained HTML page (--html)")
    s.add_argument("run_id", metavar="RUN_ID", help="the run's id (or a unique prefix), as `failover history` and "
                   "the outcome show it")
    s.add_argument("-f", "--strategy", default=os.environ.get("FAILOVER_STRATEGY", "strategy.yaml"),
                   help="strategy file, for its state_dir (default: $FAILOVER_STRATEGY or ./strategy.yaml)")
    s.add_argument("--state-dir", help="the state dir whose reports/ holds the run (instead of the strategy's)")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--html", action="store_true", help="a self-contained HTML page: timeline, plan, records, RTO")
    fmt.add_argument("--json", action="store_true", help="the report as it is stored")
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    s.set_defaults(func=cmd_report)
