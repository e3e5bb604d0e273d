"""`failover-mcp`: define, configure, trigger and monitor failovers from an MCP client.

A shim over the library and the collection's playbooks; it holds no failover logic. Planning
uses the same engine as every other entry point (read-only), and every change is made by an
allowlisted playbook run through ansible-runner, after a two-step confirmation:

1. ``failover.trigger(condition)`` plans (dry run) and returns the plan, its blast radius and a
   confirmation token bound to that plan (HMAC-signed, expiring, single use);
2. ``failover.trigger(condition, confirm=token)`` runs the playbook, which re-plans under the
   service lock and refuses the run as stale unless the plan is still the confirmed one.

What a client may do is the operator's policy (:mod:`.policy`: limits, strict identifiers,
the zones, records and probe destinations clients may use), checked when a strategy is stored
and again when it is used. Tools run their blocking work in bounded lanes of worker threads
with deadlines (:mod:`.work`). Threat model: docs/mcp.md.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Annotated, Any, Callable

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import FailoverError, LockHeld
from failover_engine.engine.events import EventLog, redact
from failover_engine.core.timeline import iso
from failover_engine.coordination.locks import FileLock
from failover_engine.engine.metrics import history
from failover_engine.core.model import Name, Strategy
from failover_engine.core.plan import Plan
from failover_engine.mcp.models import (
    Condition,
    ConfigureResult,
    DefineResult,
    MonitorResult,
    ProblemOut,
    StandbyIn,
    TriggerResult,
)
from failover_engine.mcp.outcomes import blast_radius, run_outcome
from failover_engine.mcp.playbooks import PlaybookError, PlaybookRunner, credential_needs
from failover_engine.mcp.policy import OperatorPolicy, mask_headers
from failover_engine.mcp.settings import (
    ServerSettings,
    SettingsError,
    WorkSettings,
    add_arguments,
    build_settings,
)
from failover_engine.mcp.store import StoreRejected, StrategyStore
from failover_engine.mcp.tokens import TokenBook, TokenRefused
from failover_engine.mcp.work import Busy, DeadlineExceeded, Lane

log = logging.getLogger("failover.mcp")

INSTRUCTIONS = """\
Failover engine. Define services with failover.define (a strategy document: connections and
services), set standbys with failover.configure, watch with failover.monitor. To fail over:
call failover.trigger(condition) first - it changes nothing and returns the plan, its blast
radius and a token; show the plan, then call failover.trigger(condition, confirm=token) with the
same condition to run it. Tokens expire and go stale when the state changes: plan again then."""

MAX_TOKEN = 4096  # a confirmation token is a few hundred characters


def _problems(exc: StoreRejected) -> list[ProblemOut]:
    return [ProblemOut(path=p.path, message=p.message) for p in exc.problems]


def _error(model: Any, text: str) -> CallToolResult:
    """A tool error that still carries the structured result (why, in fields)."""
    data = model.model_dump(mode="json")
    return CallToolResult(content=[TextContent(type="text", text=text + "\n" + json.dumps(data, indent=1))],
                          structured_content=data, is_error=True)


def _plain_error(text: str, **fields: Any) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content={"error": text, **fields}, is_error=True)


class FailoverMcp:
    """The tools' behaviour, independent of the transport (tests call it directly too). Each
    tool method returns its structured result or a structured error; none raises for a client's
    input (the server's own faults aside)."""

    def __init__(self, home: str | Path, *, token_ttl: float = 300.0, allow_code_probes: bool = False,
                 root: Path | None = None, playbook_timeout: int = 900, connections: dict[str, Any] | None = None,
                 allow_client_connections: bool = False, keep_runs: int = 100,
                 policy: OperatorPolicy | None = None):
        self.policy = policy or OperatorPolicy(allow_code_probes=allow_code_probes)
        self.store = StrategyStore(home, allow_code_probes=allow_code_probes, connections=connections,
                                   allow_client_connections=allow_client_connections, policy=self.policy)
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
        return DefineResult(ok=True, stored=True, services=names, defined=defined,
                            strategy=mask_headers(redact(data)))

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
    def trigger(self, cond: Condition, confirm: str | None = None, progress: Callable[[str], None] | None = None
                ) -> TriggerResult | CallToolResult:
        """Dry run (no ``confirm``) or confirmed run; refusals and failures as structured errors."""
        try:
            result = self.plan(cond) if confirm is None else self.apply(cond, confirm, progress)
        except (PlaybookError, FailoverError) as exc:
            stage = "refused" if confirm is None else "failed"
            result = TriggerResult(stage=stage, condition=cond, refusals=[str(exc)],
                                   summary=f"{'cannot plan' if confirm is None else 'run failed'}: {exc}")
        log.info("trigger %s: %s", cond.model_dump(exclude={"reason"}), result.stage)
        if result.stage in ("refused", "failed"):
            return _error(result, result.summary)
        return result

    def _subjects(self, strategy: Strategy, cond: Condition) -> list[str]:
        """The services a condition may touch (before planning): the service, or every service
        with an endpoint in the region."""
        if cond.service is not None:
            return [cond.service]
        return sorted(n for n, svc in strategy.services.items() if any(ep.region == cond.region for ep in svc.endpoints))

    def _policy_refusal(self, strategy: Strategy, names: list[str], probes: bool = True) -> list[str]:
        problems = self.policy.use_problems(strategy, names, probes=probes)
        return [f"the operator's policy refuses this now: {p}" for p in problems]

    def plan(self, cond: Condition) -> TriggerResult:
        """The dry run: plans, blast radius, refusals and (when it may run) a token."""
        engine = FailoverEngine(self.store.loaded())
        refused = self._policy_refusal(engine.strategy, self._subjects(engine.strategy, cond))
        if refused:
            return TriggerResult(stage="refused", condition=cond, refusals=refused,
                                 summary="refused, nothing will run: " + "; ".join(refused))
        refusals: list[str] = []
        plans: list[Plan] = []
        if cond.service is not None:
            engine.loaded.service(cond.service)  # unknown service -> a clear error
            obs = engine.observe(cond.service)
            verdicts = engine.check(cond.service)
            plan = engine.plan(cond.service, cond.action, cond.target, verdicts=verdicts, observation=obs)
            plans.append(plan)
            if cond.kind == "detected" and cond.action == "failover":
                refusals += _still_healthy(cond, cond.service, obs.active or {}, verdicts, engine)
        else:
            _unused, region_plans = engine.region_plans(cond.region)
            if not region_plans:
                refusals.append(f"no service is active in {cond.region}, or none has an endpoint outside it")
            for plan in region_plans:
                plans.append(plan)
                if cond.kind == "detected":
                    refusals += _still_healthy(cond, plan.service, plan.current or {}, engine.check(plan.service),
                                               engine)
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

    def _confirm_refusals(self, cond: Condition, services: list[str]) -> list[str]:
        """What the confirm re-checks before anything runs: the operator's policy (zones, probe
        destinations, resolved again) and, for kind detected, that the failure still holds."""
        engine = FailoverEngine(self.store.loaded())
        refused = self._policy_refusal(engine.strategy, services)
        if refused or cond.kind != "detected" or cond.action != "failover":
            return refused
        out = []
        observed = engine.observe_many(services)
        for name in services:
            out += _still_healthy(cond, name, observed[name].active or {}, engine.check(name), engine)
        return out

    def apply(self, cond: Condition, token: str, progress: Callable[[str], None] | None = None) -> TriggerResult:
        """Redeem ``token`` and run the playbook (blocking). Refusals come back as stage refused."""
        progress = progress or (lambda msg: None)
        result = TriggerResult(stage="refused", condition=cond, summary="")
        try:
            if len(token) > MAX_TOKEN:
                raise TokenRefused("the confirmation token is not one this server issued (forged, altered or from "
                                   "another server process): trigger a dry run first")
            services = sorted(self.tokens.peek(token, cond.model_dump(mode="json")).plans)
        except TokenRefused as exc:
            result.refusals, result.summary = [str(exc)], f"refused: {exc}"
            return result
        try:
            with contextlib.ExitStack() as held:  # every service's trigger lock, sorted: no deadlock
                for name in services:
                    held.enter_context(self.trigger_lock.hold(name, f"mcp trigger: {cond.reason[:60]}"))
                refused = self._confirm_refusals(cond, services)
                if refused:  # the token stays usable: the state may change back
                    result.refusals, result.summary = refused, "refused, nothing ran: " + "; ".join(refused)
                    return result
                try:  # consumed only once the lock is held: a refusal for a busy lock keeps it usable
                    grant = self.tokens.redeem(token, cond.model_dump(mode="json"))
                except TokenRefused as exc:
                    result.refusals, result.summary = [str(exc)], f"refused: {exc}"
                    return result
                for name in services:  # one per service: a region trigger shows in each service's events
                    self.events.append("mcp_triggered", name, region=cond.region, action=cond.action,
                                       kind=cond.kind, reason=cond.reason, force=cond.force, services=services,
                                       plans=grant.plans)
                request: dict[str, Any] = {"strategy_file": str(self.store.path), "force": cond.force}
                if cond.service is not None:
                    op = cond.action
                    request.update(service=cond.service, action=cond.action, target=cond.target,
                                   expected_plan=grant.plans[cond.service])
                else:
                    op = "region"
                    request.update(region=cond.region, expected_plans=grant.plans)
                families, token_vars = credential_needs(self.store.loaded().strategy)
                progress(f"running playbook {op} for {', '.join(services)}")
                run = self.runner.run(op, request, progress=progress, families=families, token_vars=token_vars)
        except LockHeld as exc:
            result.refusals = [f"another trigger is running: {exc}"]
            result.summary = f"refused: {result.refusals[0]}"
            return result
        self._prune_runs()
        result.outcome = run_outcome(run, cond, services)
        ok = result.outcome.status == "succeeded"
        refused_all = bool(result.outcome.services) and all(s.status == "refused" for s in result.outcome.services)
        result.stage = "applied" if ok else "refused" if refused_all else "failed"
        if refused_all:
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

    # ------------------------------------------------------------------ monitor
    def monitor(self, service: str, events: int = 20, probe: bool = True) -> MonitorResult | CallToolResult:
        try:
            engine = FailoverEngine(self.store.loaded())
            engine.loaded.service(service)
            refused = self._policy_refusal(engine.strategy, [service], probes=probe)
            if refused:
                return _plain_error(f"cannot monitor {service}: " + "; ".join(refused), service=service)
            st = engine.status(service, probe=probe, events=events)
        except FailoverError as exc:  # e.g. unknown service: say why (the SDK hides an exception's text)
            return _plain_error(f"cannot monitor {service}: {exc}", service=service)
        runs = history(self.store.state_dir / "reports", service)
        rtos = [r["rto_s"] for r in runs if r.get("status") == "succeeded" and r.get("rto_s") is not None]
        metrics = {"runs": len(runs), "succeeded": sum(1 for r in runs if r.get("status") == "succeeded"),
                   "last_rto_s": rtos[-1] if rtos else None,
                   "median_rto_s": round(statistics.median(rtos), 6) if rtos else None,
                   "history": runs[-10:]}
        return MonitorResult(
            service=service, strategy=st["strategy"], scope=st["scope"], primary=st["primary"], active=st["active"],
            failed_over=st["failed_over"], out_of_rotation=st["out_of_rotation"], verdicts=st["verdicts"],
            warnings=st["routing"].get("warnings", []), state=st["state"],
            recent_events=mask_headers(redact(st["recent_events"])), metrics=metrics,
            interrupted=st.get("interrupted", []))


def _still_healthy(cond: Condition, name: str, active: dict[str, Any], verdicts: dict[str, Any],
                   engine: FailoverEngine) -> list[str]:
    """A ``detected`` condition needs a failure: the active endpoints (in the region, for a
    region condition) that pass their probes now refuse it."""
    svc = engine.loaded.service(name)
    healthy = [n for n in active if (cond.region is None or svc.endpoint(n).region == cond.region)
               and getattr(verdicts.get(n), "health", "") == "healthy"]
    if not healthy:
        return []
    if cond.service is not None:
        return [f"condition kind detected, but the active endpoint(s) {', '.join(healthy)} of {name} pass their "
                "probes now: no failure to act on (use kind manual to fail over anyway)"]
    return [f"condition kind detected, but {name}'s endpoint(s) {', '.join(healthy)} in {cond.region} pass their "
            "probes now (use kind manual to fail over anyway)"]


def _strategy_schema() -> dict[str, Any]:
    """The strategy's JSON schema as a $defs entry (refs rewritten to the tool schema's root)."""
    schema = Strategy.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})
    defs["Strategy"] = schema
    return defs


class Lanes:
    """The server's kinds of blocking work, each bounded (see :mod:`.work`): probing (dry runs,
    monitor with probes), reading (cloud reads without probes: monitor probe=false, configure),
    storing (define, resources) and running (confirmed playbook runs)."""

    def __init__(self, work: WorkSettings, playbook_timeout: float):
        def lane(name: str, deadline: float, workers: int | None = None, per_client: int | None = None) -> Lane:
            return Lane(name, workers=workers or work.workers, queue=work.queue,
                        per_client=per_client or work.per_client, deadline=deadline)

        self.probe = lane("probing", work.call_timeout)
        self.read = lane("reading", work.call_timeout)
        self.store = lane("storing", min(work.call_timeout, 30.0))
        self.run = lane("playbook", playbook_timeout + 60.0, workers=max(2, work.workers // 2))


def _client(ctx: Context | None) -> Any:
    try:
        return id(ctx.session) if ctx is not None else None
    except Exception:
        return None


def build_server(tools: FailoverMcp, settings: ServerSettings | None = None) -> MCPServer:
    from failover_engine.mcp.exposure import StaticBearerToken, auth_settings

    settings = settings or ServerSettings(home=tools.store.home)
    lanes = Lanes(settings.work, settings.playbook_timeout)
    auth = auth_settings(settings) if settings.transport == "http" else None
    server = MCPServer(name="failover-engine", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING",
                       auth=auth, token_verifier=StaticBearerToken(settings.auth_token) if auth else None)

    async def bounded(lane: Lane, ctx: Context | None, on_error: Callable[[str], Any], fn: Callable[..., Any],
                      *args: Any) -> Any:
        try:
            return await lane.run(fn, *args, client=_client(ctx))
        except (Busy, DeadlineExceeded) as exc:
            log.warning("%s: %s", lane.name, exc)
            return on_error(str(exc))

    @server.tool(name="failover.define", annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def define(strategy: dict[str, Any] | str, ctx: Context) -> DefineResult:
        """Validate and store services' strategies (connections and services, as in a strategy file,
        as an object or YAML text). Same-named services and connections are replaced. Returns the
        normalised strategy, or every problem found (then nothing is stored)."""
        return await bounded(lanes.store, ctx, lambda why: _error(DefineResult(
            ok=False, stored=False, problems=[ProblemOut(path="", message=why)]), why), tools.define, strategy)

    @server.tool(name="failover.configure", annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def configure(service: Name, standbys: Annotated[list[StandbyIn], Field(max_length=16)], ctx: Context,
                        replace: bool = False) -> ConfigureResult:
        """Set or change an active_passive service's standby (backup) endpoints, each with its binding
        on every routing entry. replace=true makes these the only standbys (a standby taking traffic
        now is never removed); otherwise they are added or updated by name."""
        return await bounded(lanes.read, ctx, lambda why: _error(ConfigureResult(
            ok=False, stored=False, service=service, problems=[ProblemOut(path="", message=why)]), why),
            tools.configure, service, standbys, replace)

    @server.tool(name="failover.trigger", annotations=ToolAnnotations(destructiveHint=True, idempotentHint=False))
    async def trigger(condition: Condition, ctx: Context, confirm: str | None = None) -> TriggerResult:
        """Fail a service (or every service active in a region) over, or back. Without `confirm`: a
        dry run returning the plan, its blast radius and a confirmation token (nothing changes). With
        `confirm` set to that token and the same condition: runs the collection's playbook, reports
        progress while it runs, and returns the outcome with the RTO report."""
        def busy(why: str) -> CallToolResult:
            return _error(TriggerResult(stage="refused", condition=condition, refusals=[why], summary=why), why)

        if confirm is None:
            return await bounded(lanes.probe, ctx, busy, tools.trigger, condition)
        loop, count = asyncio.get_running_loop(), 0

        def progress(msg: str) -> None:
            nonlocal count
            count += 1
            try:
                asyncio.run_coroutine_threadsafe(ctx.report_progress(count, None, msg), loop).result(timeout=5)
            except Exception:  # a client that went away must not break the run
                pass

        return await bounded(lanes.run, ctx, busy, tools.trigger, condition, confirm, progress)

    @server.tool(name="failover.monitor", annotations=ToolAnnotations(readOnlyHint=True))
    async def monitor(service: Name, ctx: Context, events: Annotated[int, Field(ge=0, le=200)] = 20,
                      probe: bool = True) -> MonitorResult:
        """A service's status now: active endpoint, probe verdicts (probe=false skips probing),
        routing warnings, recent events and metrics (RTO history)."""
        return await bounded(lanes.probe if probe else lanes.read, ctx,
                             lambda why: _plain_error(f"cannot monitor {service}: {why}", service=service, busy=True),
                             tools.monitor, service, events, probe)

    def _resource_busy(why: str) -> str:
        raise ResourceError(why)

    @server.resource("failover://strategy", name="strategy", mime_type="application/yaml",
                     description="every stored strategy (secret-looking values and probe header values masked)")
    async def strategy_all() -> str:
        return await bounded(lanes.store, None, _resource_busy, tools.store.yaml_text)

    @server.resource("failover://strategy/{service}", name="service-strategy", mime_type="application/yaml",
                     description="one service's stored strategy")
    async def strategy_one(service: str) -> str:
        def text() -> str:
            try:
                return tools.store.yaml_text(service)
            except KeyError:
                raise ResourceError(f"no service named {service[:64]!r} is defined "
                                    f"(defined: {', '.join(tools.store.services()) or 'none'})") from None

        return await bounded(lanes.store, None, _resource_busy, text)

    @server.resource("failover://events", name="events", mime_type="application/x-ndjson",
                     description="the last 200 events of the event log (append-only, redacted)")
    async def events_all() -> str:
        return await bounded(lanes.store, None, _resource_busy,
                             lambda: "".join(json.dumps(e) + "\n" for e in tools.events.read(limit=200)))

    @server.resource("failover://events/{service}", name="service-events", mime_type="application/x-ndjson",
                     description="the last 200 events of one service")
    async def events_one(service: str) -> str:
        return await bounded(lanes.store, None, _resource_busy,
                             lambda: "".join(json.dumps(e) + "\n" for e in tools.events.read(service, limit=200)))

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


def default_home() -> Path:
    env = os.environ.get("FAILOVER_MCP_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "failover-mcp"


def _private_home(home: Path) -> None:
    """The home and its state directory: 0700 (files below are made 0600 by the umask)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for d in (home, home / "state", home / "runs"):
        if d.is_dir():
            os.chmod(d, 0o700)


def main(argv: list[str] | None = None) -> int:
    from failover_engine.mcp.exposure import exposure_lines, transport_security

    ap = argparse.ArgumentParser(
        prog="failover-mcp", description="MCP server of failover-engine: define, configure, trigger (two-step) "
        "and monitor failovers; changes run through the resilience.failover playbooks.",
        epilog="Register it with an MCP client as the command `failover-mcp --home DIR` (stdio). "
        "See docs/mcp.md (its threat model says what clients can and cannot do).")
    add_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="failover-mcp: %(levelname)s %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "azure", "google", "httpx", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.umask(0o077)  # everything this process and its runs write: 0600 files, 0700 directories
    home = (args.home or default_home()).expanduser()
    try:
        settings = build_settings(args, home)
        _private_home(home)
        tools = FailoverMcp(home, token_ttl=settings.token_ttl, allow_code_probes=settings.allow_code_probes,
                            root=settings.collection_root, playbook_timeout=settings.playbook_timeout,
                            connections=settings.connections,
                            allow_client_connections=settings.allow_client_connections,
                            keep_runs=settings.keep_runs, policy=settings.policy)
    except (SettingsError, PlaybookError, FailoverError, OSError) as exc:
        print(f"failover-mcp: {exc}", file=sys.stderr)
        return 2
    server = build_server(tools, settings)
    log.info("home %s, playbooks %s, transport %s", tools.store.home, tools.runner.root, settings.transport)
    for line in exposure_lines(settings):
        log.info("%s", line)
    if settings.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=settings.host, port=settings.port,
                   transport_security=transport_security(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
