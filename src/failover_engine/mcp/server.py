"""`failover-mcp`: define, configure, trigger and monitor failovers from an MCP client.

A shim over the library and the collection's playbooks; it holds no failover logic. Planning
uses the same engine as every other entry point (read-only), and every change is made by an
allowlisted playbook run through ansible-runner, after a two-step confirmation:

1. ``failover.trigger(condition)`` plans (dry run) and returns the plan, its blast radius and a
   confirmation token bound to that plan (HMAC-signed, expiring, single use);
2. ``failover.trigger(condition, confirm=token)`` runs the playbook, which re-plans under the
   service lock and refuses the run as stale unless the plan is still the confirmed one.

Tools run their blocking work (cloud reads, probes, the playbook) in worker threads.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from ..engine import FailoverEngine
from ..errors import FailoverError, LockHeld
from ..events import EventLog, iso, redact
from ..locks import FileLock
from ..metrics import history
from ..model import Strategy
from ..plan import Plan
from .models import (BlastRadius, Condition, ConfigureResult, DefineResult, MonitorResult, ProblemOut,
                     RunOutcome, ServiceOutcome, StandbyIn, TriggerResult)
from .playbooks import PlaybookError, PlaybookRunner
from .store import StoreRejected, StrategyStore
from .tokens import TokenBook, TokenRefused

log = logging.getLogger("failover.mcp")

INSTRUCTIONS = """\
Failover engine. Define services with failover.define (a strategy document: connections and
services), set standbys with failover.configure, watch with failover.monitor. To fail over:
call failover.trigger(condition) first - it changes nothing and returns the plan, its blast
radius and a token; show the plan, then call failover.trigger(condition, confirm=token) with the
same condition to run it. Tokens expire and go stale when the state changes: plan again then."""


def _problems(exc: StoreRejected) -> list[ProblemOut]:
    return [ProblemOut(path=p.path, message=p.message) for p in exc.problems]


def _error(model: Any, text: str) -> CallToolResult:
    """A tool error that still carries the structured result (why, in fields)."""
    data = model.model_dump(mode="json")
    return CallToolResult(content=[TextContent(type="text", text=text + "\n" + json.dumps(data, indent=1))],
                          structured_content=data, is_error=True)


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
    uniq = lambda xs: sorted(dict.fromkeys(xs))  # noqa: E731
    return BlastRadius(services=uniq(services), records=uniq(records), providers=uniq(providers),
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
                          report=redact(report), report_path=report.get("report_path"))


class FailoverMcp:
    """The tools' behaviour, independent of the transport (tests call it directly too)."""

    def __init__(self, home: str | Path, *, token_ttl: float = 300.0, allow_code_probes: bool = False,
                 root: Path | None = None, playbook_timeout: int = 900, connections: dict[str, Any] | None = None,
                 allow_client_connections: bool = False, keep_runs: int = 100):
        self.store = StrategyStore(home, allow_code_probes=allow_code_probes, connections=connections,
                                   allow_client_connections=allow_client_connections)
        self.keep_runs = keep_runs
        self.tokens = TokenBook(token_ttl)
        self.runner = PlaybookRunner(self.store.home, root=root, timeout=playbook_timeout)
        self.events = EventLog(self.store.state_dir / "events.jsonl")
        self.trigger_lock = FileLock(self.store.state_dir / "locks" / "mcp")

    # ------------------------------------------------------------------ define / configure
    def define(self, strategy: dict[str, Any] | str) -> DefineResult | CallToolResult:
        try:
            parsed, defined = self.store.define(strategy)
        except StoreRejected as exc:
            return _error(DefineResult(ok=False, stored=False, services=self.store.services(),
                                       problems=_problems(exc)),
                          f"strategy rejected, nothing stored: {len(exc.problems)} problem(s)")
        names = sorted(parsed.services)
        data = parsed.model_dump(mode="json", exclude={"state_dir"})
        data["services"] = {k: v for k, v in data["services"].items() if k in defined}
        self.events.append("mcp_defined", None, services=defined)
        return DefineResult(ok=True, stored=True, services=names, defined=defined, strategy=redact(data))

    def configure(self, service: str, standbys: list[StandbyIn], replace: bool) -> ConfigureResult | CallToolResult:
        active = None
        if replace and service in self.store.services():
            try:
                obs = FailoverEngine(self.store.loaded()).observe(service)
                active = None if obs.active is None else [n for n, w in obs.active.items() if w > 0]
            except FailoverError as exc:
                log.warning("configure %s: routing state unreadable: %s", service, exc)
        try:
            parsed = self.store.configure(service, [s.model_dump(exclude_none=True) for s in standbys],
                                          replace=replace, active=active)
        except StoreRejected as exc:
            return _error(ConfigureResult(ok=False, stored=False, service=service, problems=_problems(exc)),
                          f"standbys of {service} rejected, nothing stored")
        svc = parsed.services[service]
        names = [ep.name for ep in svc.standbys]
        self.events.append("mcp_configured", service, standbys=names, replace=replace)
        return ConfigureResult(ok=True, stored=True, service=service, standbys=names)

    # ------------------------------------------------------------------ trigger
    def plan(self, cond: Condition) -> TriggerResult:
        """The dry run: plans, blast radius, refusals and (when it may run) a token."""
        engine = FailoverEngine(self.store.loaded())
        refusals: list[str] = []
        plans: list[Plan] = []
        if cond.service is not None:
            engine.loaded.service(cond.service)  # unknown service -> a clear error
            obs = engine.observe(cond.service)
            verdicts = engine.check(cond.service)
            plan = engine.plan(cond.service, cond.action, cond.target, verdicts=verdicts, observation=obs)
            plans.append(plan)
            if cond.kind == "detected" and cond.action == "failover":
                healthy = [n for n in (obs.active or {}) if getattr(verdicts.get(n), "health", "") == "healthy"]
                if healthy:
                    refusals.append(f"condition kind detected, but the active endpoint(s) {', '.join(healthy)} of "
                                    f"{cond.service} pass their probes now: no failure to act on (use kind manual "
                                    "to fail over anyway)")
        else:
            decisions, region_plans = engine.region_plans(cond.region)
            if not region_plans:
                refusals.append(f"no service is active in {cond.region}, or none has an endpoint outside it")
            for plan in region_plans:
                name = plan.service
                plans.append(plan)
                if cond.kind == "detected":
                    v = engine.check(name)
                    svc = engine.loaded.service(name)
                    healthy = [n for n in (plans[-1].current or {})
                               if svc.endpoint(n).region == cond.region and getattr(v.get(n), "health", "") == "healthy"]
                    if healthy:
                        refusals.append(f"condition kind detected, but {name}'s endpoint(s) {', '.join(healthy)} in "
                                        f"{cond.region} pass their probes now (use kind manual to fail over anyway)")
        safety = [f"{p.service}: {r}" for p in plans if not p.is_noop for r in p.refusals]
        warnings = [f"{p.service}: {w}" for p in plans for w in p.warnings]
        radius = blast_radius(plans)
        result = TriggerResult(stage="planned", condition=cond, summary="", plans=[p.to_dict() for p in plans],
                               blast_radius=radius, warnings=warnings)
        if refusals or (safety and not cond.force):
            result.stage, result.refusals = "refused", refusals + safety
            result.summary = "refused, nothing will run: " + "; ".join(result.refusals)
            return result
        if all(p.is_noop for p in plans):
            result.stage = "noop"
            result.summary = "nothing to do: " + "; ".join(f"{p.service}: {p.reason}" for p in plans)
            return result
        token, expires = self.tokens.issue(cond.model_dump(mode="json"), {p.service: p.fingerprint() for p in plans})
        result.token, result.expires_at = token, iso(expires)
        forced = f" (forced past: {'; '.join(safety)})" if safety else ""
        result.summary = (f"plan: {len(radius.records)} resource(s) on {', '.join(radius.providers)}; "
                          + "; ".join(f"{p.service}: {p.action} {sorted(p.current or {})} -> {sorted(p.target)}"
                                      for p in plans if not p.is_noop)
                          + f"{forced}. Confirm with the token before {result.expires_at}.")
        return result

    def apply(self, cond: Condition, token: str, progress=None) -> TriggerResult:
        """Redeem ``token`` and run the playbook (blocking). Refusals come back as stage refused."""
        progress = progress or (lambda msg: None)
        result = TriggerResult(stage="refused", condition=cond, summary="")
        try:
            services = sorted(self.tokens.peek(token, cond.model_dump(mode="json")).plans)
        except TokenRefused as exc:
            result.refusals, result.summary = [str(exc)], f"refused: {exc}"
            return result
        try:
            with contextlib.ExitStack() as held:  # every service's trigger lock, sorted: no deadlock
                for name in services:
                    held.enter_context(self.trigger_lock.hold(name, f"mcp trigger: {cond.reason[:60]}"))
                try:  # consumed only once the lock is held: a refusal for a busy lock keeps it usable
                    grant = self.tokens.redeem(token, cond.model_dump(mode="json"))
                except TokenRefused as exc:
                    result.refusals, result.summary = [str(exc)], f"refused: {exc}"
                    return result
                for name in services:  # one per service: a region trigger shows in each service's events
                    self.events.append("mcp_triggered", name, region=cond.region, action=cond.action,
                                       kind=cond.kind, reason=cond.reason, force=cond.force, services=services,
                                       plans=grant.plans)
                if cond.service is not None:
                    op = cond.action
                    xv: dict[str, Any] = {"service": cond.service, "expected_plan": grant.plans[cond.service]}
                    if cond.target:
                        xv["target"] = cond.target
                else:
                    op, xv = "region", {"region": cond.region, "expected_plans": grant.plans}
                xv.update(strategy_file=str(self.store.path), force=cond.force)
                progress(f"running playbook {op} for {', '.join(services)}")
                run = self.runner.run(op, xv, progress=progress)
        except LockHeld as exc:
            result.refusals = [f"another trigger is running: {exc}"]
            result.summary = f"refused: {result.refusals[0]}"
            return result
        self._prune_runs()
        result.outcome = self._outcome(run, cond, services)
        ok = result.outcome.status == "succeeded"
        refused = bool(result.outcome.services) and all(s.status == "refused" for s in result.outcome.services)
        result.stage = "applied" if ok else "refused" if refused else "failed"
        if refused:
            result.refusals = [e for s in result.outcome.services for e in s.errors]
        for name in services:
            self.events.append("mcp_run_finished", name, region=cond.region, status=result.outcome.status,
                               playbook=run.playbook, rc=run.rc, run=run.run_id, duration_s=run.duration_s)
        parts = []
        for s in result.outcome.services:
            rto = f", RTO {s.rto_s:.3f}s" if s.rto_s is not None else ""
            parts.append(f"{s.service}: {s.status}{rto}" + (f" ({'; '.join(s.errors)})" if s.errors else ""))
        result.summary = f"{run.playbook} {result.outcome.status} in {run.duration_s:.1f}s: " + "; ".join(parts)
        return result

    def _prune_runs(self) -> None:
        """Keep the newest ``keep_runs`` run directories (their artefacts are the audit trail)."""
        runs = sorted(p for p in (self.store.home / "runs").glob("*") if p.is_dir())
        for old in runs[:max(0, len(runs) - self.keep_runs)]:
            shutil.rmtree(old, ignore_errors=True)

    def _outcome(self, run, cond: Condition, services: list[str]) -> RunOutcome:
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

    # ------------------------------------------------------------------ monitor
    def monitor(self, service: str, events: int, probe: bool) -> MonitorResult:
        engine = FailoverEngine(self.store.loaded())
        st = engine.status(service, probe=probe, events=events)
        runs = history(self.store.state_dir / "reports", service)
        rtos = [r["rto_s"] for r in runs if r.get("status") == "succeeded" and r.get("rto_s") is not None]
        metrics = {"runs": len(runs), "succeeded": sum(1 for r in runs if r.get("status") == "succeeded"),
                   "last_rto_s": rtos[-1] if rtos else None,
                   "median_rto_s": round(statistics.median(rtos), 6) if rtos else None,
                   "history": runs[-10:]}
        return MonitorResult(
            service=service, strategy=st["strategy"], scope=st["scope"], primary=st["primary"], active=st["active"],
            failed_over=st["failed_over"], out_of_rotation=st["out_of_rotation"], verdicts=st["verdicts"],
            warnings=st["routing"].get("warnings", []), state=st["state"], recent_events=redact(st["recent_events"]),
            metrics=metrics, interrupted=st.get("interrupted", []))


def _strategy_schema() -> dict[str, Any]:
    """The strategy's JSON schema as a $defs entry (refs rewritten to the tool schema's root)."""
    schema = Strategy.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})
    defs["Strategy"] = schema
    return defs


def build_server(tools: FailoverMcp) -> MCPServer:
    server = MCPServer(name="failover-engine", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")
    thread = anyio.to_thread.run_sync

    @server.tool(name="failover.define", annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def define(strategy: dict[str, Any] | str) -> DefineResult:
        """Validate and store services' strategies (connections and services, as in a strategy file,
        as an object or YAML text). Same-named services and connections are replaced. Returns the
        normalised strategy, or every problem found (then nothing is stored)."""
        return await thread(tools.define, strategy)

    @server.tool(name="failover.configure", annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def configure(service: str, standbys: list[StandbyIn], replace: bool = False) -> ConfigureResult:
        """Set or change an active_passive service's standby (backup) endpoints, each with its binding
        on every routing entry. replace=true makes these the only standbys (a standby taking traffic
        now is never removed); otherwise they are added or updated by name."""
        return await thread(tools.configure, service, standbys, replace)

    @server.tool(name="failover.trigger", annotations=ToolAnnotations(destructiveHint=True, idempotentHint=False))
    async def trigger(condition: Condition, ctx: Context, confirm: str | None = None) -> TriggerResult:
        """Fail a service (or every service active in a region) over, or back. Without `confirm`: a
        dry run returning the plan, its blast radius and a confirmation token (nothing changes). With
        `confirm` set to that token and the same condition: runs the collection's playbook, reports
        progress while it runs, and returns the outcome with the RTO report."""
        if confirm is None:
            try:
                result = await thread(tools.plan, condition)
            except FailoverError as exc:
                result = TriggerResult(stage="refused", condition=condition, refusals=[str(exc)],
                                       summary=f"cannot plan: {exc}")
        else:
            count = 0

            def progress(msg: str) -> None:
                nonlocal count
                count += 1
                try:
                    anyio.from_thread.run(ctx.report_progress, count, None, msg)
                except Exception:  # a client that went away must not break the run
                    pass

            try:
                result = await thread(tools.apply, condition, confirm, progress)
            except (PlaybookError, FailoverError) as exc:
                result = TriggerResult(stage="failed", condition=condition, summary=f"run failed: {exc}",
                                       refusals=[str(exc)])
        log.info("trigger %s: %s", condition.model_dump(exclude={"reason"}), result.stage)
        if result.stage in ("refused", "failed"):
            return _error(result, result.summary)
        return result

    @server.tool(name="failover.monitor", annotations=ToolAnnotations(readOnlyHint=True))
    async def monitor(service: str, events: int = 20, probe: bool = True) -> MonitorResult:
        """A service's status now: active endpoint, probe verdicts (probe=false skips probing),
        routing warnings, recent events and metrics (RTO history)."""
        try:
            return await thread(tools.monitor, service, events, probe)
        except FailoverError as exc:  # e.g. unknown service: say why (the SDK hides an exception's text)
            return CallToolResult(content=[TextContent(type="text", text=f"cannot monitor {service}: {exc}")],
                                  structured_content={"service": service, "error": str(exc)}, is_error=True)

    @server.resource("failover://strategy", name="strategy", mime_type="application/yaml",
                     description="every stored strategy (secret-looking values masked)")
    def strategy_all() -> str:
        return tools.store.yaml_text()

    @server.resource("failover://strategy/{service}", name="service-strategy", mime_type="application/yaml",
                     description="one service's stored strategy")
    def strategy_one(service: str) -> str:
        try:
            return tools.store.yaml_text(service)
        except KeyError:
            raise ResourceError(f"no service named {service!r} is defined "
                                f"(defined: {', '.join(tools.store.services()) or 'none'})") from None

    @server.resource("failover://events", name="events", mime_type="application/x-ndjson",
                     description="the last 200 events of the event log (append-only, redacted)")
    def events_all() -> str:
        return "".join(json.dumps(e) + "\n" for e in tools.events.read(limit=200))

    @server.resource("failover://events/{service}", name="service-events", mime_type="application/x-ndjson",
                     description="the last 200 events of one service")
    def events_one(service: str) -> str:
        return "".join(json.dumps(e) + "\n" for e in tools.events.read(service, limit=200))

    schema = server._tool_manager.get_tool("failover.define").parameters  # noqa: SLF001 (documented field)
    schema.setdefault("$defs", {}).update(_strategy_schema())
    schema["properties"]["strategy"] = {
        "title": "Strategy", "description": "a strategy document (connections, services, monitoring) as an "
        "object, or the same as YAML text", "anyOf": [{"$ref": "#/$defs/Strategy"}, {"type": "string"}]}
    return server


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("failover-engine")
    except Exception:
        return "0"


def load_connections(path: Path) -> dict[str, Any]:
    """The operator's connections file, validated as a strategy file's connections are."""
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from ..errors import Problem, StrategyError
    from ..model import Connection, Name, format_loc

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StrategyError([Problem("", f"cannot read connections: {exc}", str(path))], str(path)) from None
    if isinstance(data, dict) and isinstance(data.get("connections"), dict):
        data = data["connections"]
    try:
        parsed = TypeAdapter(dict[Name, Connection]).validate_python(data)
    except ValidationError as exc:
        raise StrategyError([Problem(format_loc(tuple(e["loc"])), e["msg"], str(path)) for e in exc.errors()],
                            str(path)) from None
    return {name: conn.model_dump(mode="json", exclude_defaults=True) | {"type": conn.type}
            for name, conn in parsed.items()}


def default_home() -> Path:
    env = os.environ.get("FAILOVER_MCP_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "failover-mcp"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="failover-mcp", description="MCP server of failover-engine: define, configure, trigger (two-step) "
        "and monitor failovers; changes run through the resilience.failover playbooks.",
        epilog="Register it with an MCP client as the command `failover-mcp --home DIR` (stdio). "
        "See docs/mcp.md.")
    ap.add_argument("--home", type=Path, default=None,
                    help="where strategies, state, event log and run artefacts live "
                         "(default $FAILOVER_MCP_HOME or ~/.local/state/failover-mcp)")
    ap.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                    help="stdio (default) or streamable HTTP")
    ap.add_argument("--host", default="127.0.0.1", help="HTTP listen address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    ap.add_argument("--token-ttl", type=float, default=300.0, help="seconds a confirmation token lives (default 300)")
    ap.add_argument("--playbook-timeout", type=int, default=900, help="seconds a playbook run may take (default 900)")
    ap.add_argument("--allow-code-probes", action="store_true",
                    help="accept command and python probes from clients (they run code on this host)")
    ap.add_argument("--connections", type=Path, default=None,
                    help="YAML file of the connections clients may use (name: {type, endpoint_url, ...}, "
                         "or a strategy file's `connections:`); clients reference them by name")
    ap.add_argument("--allow-client-connections", action="store_true",
                    help="accept connections from clients (they decide where credentials are sent: labs only)")
    ap.add_argument("--keep-runs", type=int, default=100, help="run directories kept under HOME/runs (default 100)")
    ap.add_argument("--collection-root", type=Path, default=None,
                    help="checkout holding playbooks/ and ansible.cfg (default: found from the package or cwd)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="failover-mcp: %(levelname)s %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "azure", "google", "httpx", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    home = (args.home or default_home()).expanduser()
    try:
        connections = load_connections(args.connections) if args.connections else None
        tools = FailoverMcp(home, token_ttl=args.token_ttl, allow_code_probes=args.allow_code_probes,
                            root=args.collection_root, playbook_timeout=args.playbook_timeout,
                            connections=connections, allow_client_connections=args.allow_client_connections,
                            keep_runs=args.keep_runs)
    except (PlaybookError, FailoverError) as exc:
        print(f"failover-mcp: {exc}", file=sys.stderr)
        return 2
    server = build_server(tools)
    log.info("home %s, playbooks %s, transport %s", tools.store.home, tools.runner.root, args.transport)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
