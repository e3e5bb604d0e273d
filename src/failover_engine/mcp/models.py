"""Typed inputs and structured outputs of the MCP tools (their JSON schemas are generated from these)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from failover_engine.core.model import Name
from failover_engine.mcp.policy import PATTERNS

# Strict identifiers (see policy.PATTERNS): nothing a template or a shell could read as code.
Region = Annotated[str, Field(max_length=63, pattern=PATTERNS["region"],
                              description="a region name: lower-case letters, digits and -, e.g. us-east-1")]
Zone = Annotated[str, Field(max_length=63, pattern=PATTERNS["zone"],
                            description="an availability zone name: lower-case letters, digits and -, e.g. us-east-1a")]
# free text (recorded, shown, never templated): bounded, no control characters
Reason = Annotated[str, Field(min_length=3, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemOut(BaseModel):
    path: str = Field(description="dotted path into the strategy ('' for the whole document)")
    message: str


class DefineResult(BaseModel):
    ok: bool
    stored: bool = Field(description="whether the strategy store changed")
    services: list[str] = Field(default_factory=list, description="every service the store now holds")
    defined: list[str] = Field(default_factory=list, description="the services this call defined or replaced")
    strategy: dict[str, Any] | None = Field(
        default=None, description="the normalised strategy of the defined services (defaults filled in, secrets masked)")
    problems: list[ProblemOut] = Field(default_factory=list, description="every problem found (nothing stored)")


class StandbyIn(_In):
    name: Name
    region: Region | None = None
    zone: Zone | None = None
    weight: int | None = None
    capacity: int | None = None
    probe: dict[str, Any] | None = Field(default=None, description="health probe, as in a strategy file")
    gate: dict[str, Any] | None = None
    routing: list[dict[str, Any]] = Field(
        max_length=16,
        description="this endpoint's binding on each routing entry of the service, in order "
        "(route53: {values, set_identifier}; clouddns: {values}; trafficmanager: {endpoint}; ...)")


class ConfigureResult(BaseModel):
    ok: bool
    stored: bool
    service: str
    standbys: list[str] = Field(default_factory=list, description="the service's standby endpoints now")
    problems: list[ProblemOut] = Field(default_factory=list)


class Condition(_In):
    """What happened and what to do: one service or a whole region."""

    service: Name | None = Field(default=None, description="the service to act on (or give region)")
    region: Region | None = Field(default=None, description="move every service active in this region out of it")
    action: Literal["failover", "failback"] = Field(
        default="failover", description="failover (to a standby or target) or failback (to the primary); service only")
    target: Name | None = Field(default=None, description="endpoint to fail over to (service failover only)")
    reason: Reason = Field(description="why: recorded in the event log (3-500 characters, no control characters)")
    kind: Literal["manual", "detected"] = Field(
        default="manual", description="manual: an operator's decision; detected: on a failure the probes "
        "must confirm now (refused when the active endpoint is healthy)")
    force: bool = Field(default=False, description="override the safety refusals (unhealthy target, cooldown); "
                        "never the lock or a stale plan")

    @model_validator(mode="after")
    def _one_subject(self) -> "Condition":
        if (self.service is None) == (self.region is None):
            raise ValueError("give exactly one of service or region")
        if self.region is not None and (self.action != "failover" or self.target is not None):
            raise ValueError("a region condition fails over (no action failback, no target)")
        if self.action == "failback" and self.target is not None:
            raise ValueError("failback goes to the primary: no target")
        return self


class BlastRadius(BaseModel):
    services: list[str] = Field(description="services whose traffic moves")
    records: list[str] = Field(description="provider resources that change (record sets, endpoints, ...)")
    providers: list[str] = Field(description="providers touched, as adapter (connection)")
    endpoints_in: list[str] = Field(description="endpoints that start taking traffic")
    endpoints_out: list[str] = Field(description="endpoints that stop taking traffic")


class ServiceOutcome(BaseModel):
    service: str
    status: str = Field(description="succeeded, noop, refused, rolled_back, rollback_failed, failed, error")
    active: Any = None
    rto_s: float | None = None
    phases_s: dict[str, float | None] | None = Field(default=None, description="RTO per phase")
    errors: list[str] = Field(default_factory=list)
    report: dict[str, Any] | None = Field(default=None, description="the engine's full report of the run")
    report_path: str | None = None


class RunOutcome(BaseModel):
    status: str = Field(description="succeeded when every service succeeded or had nothing to do")
    playbook: str
    run_id: str
    rc: int | None
    duration_s: float
    services: list[ServiceOutcome] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


class TriggerResult(BaseModel):
    stage: Literal["planned", "noop", "refused", "applied", "failed"] = Field(
        description="planned: dry run, confirm with the token; applied/failed: the playbook ran")
    condition: Condition
    summary: str = Field(description="what was planned or what happened, for a person")
    plans: list[dict[str, Any]] = Field(default_factory=list, description="per service: before/after per resource")
    blast_radius: BlastRadius | None = None
    refusals: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    token: str | None = Field(default=None, description="pass it back as `confirm` to apply exactly this plan")
    expires_at: str | None = None
    outcome: RunOutcome | None = None


class MonitorResult(BaseModel):
    service: str
    strategy: str
    scope: str
    primary: str
    active: Any = Field(description="endpoint(s) taking traffic now, with weights; null when unknown")
    failed_over: bool | None
    out_of_rotation: list[str]
    verdicts: dict[str, dict[str, Any]] = Field(description="probe verdict per endpoint, now")
    warnings: list[str] = Field(default_factory=list)
    state: dict[str, Any]
    recent_events: list[dict[str, Any]]
    metrics: dict[str, Any] = Field(description="runs, successes, last and median RTO, recent history")
    interrupted: list[dict[str, Any]] = Field(
        default_factory=list, description="runs of this service whose process died mid-run (journal left open); "
        "the next trigger finishes them first (forward or back, per policy.recovery)")
