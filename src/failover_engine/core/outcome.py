"""What a run found and what it did: a service's Observation (what the providers hold now) and
its Outcome (status, plan, timeline, validation, rollback). Pure data, shared by the engine, the
region run, recovery, the monitor and the entry points."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from failover_engine.core.plan import Assignment, Attrs, Plan, ResourceKey
from failover_engine.core.timeline import Timeline, iso
from failover_engine.core.validation import ValidationResult


@dataclass
class Observation:
    """What the providers hold now for one service."""

    states: list[dict[ResourceKey, Attrs | None]]  # per routing binding
    per_binding: list[Assignment | None]
    active: Assignment | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "per_binding": self.per_binding, "warnings": self.warnings,
                "resources": [{str(k): v for k, v in s.items()} for s in self.states]}


@dataclass
class Outcome:
    """The result of one service's run. ``status`` is one of: planned, noop, refused (a safety
    rule, a stale plan or a concurrent edit: nothing of this run is left), succeeded, unverified
    (applied and acknowledged, but the read-back could not be read: traffic moved, cooldown armed),
    rolled_back (validation or a write failed and every resource was read back in its
    before-state), rollback_failed, unknown (a write's answer was lost and the resources could not
    be read: the truth is not known), failed (validation failed, rollback disabled; or the
    promotion failed), error (raised before any change), interrupted (its process died mid-run;
    recovery finished it)."""

    service: str
    action: str
    status: str
    run_id: str
    plan: Plan | None = None
    timeline: Timeline | None = None
    validation: ValidationResult | None = None
    rollback: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    report_path: str | None = None
    started: float = field(default_factory=time.time)
    api_calls: int = 0
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)  # per plan step: applied/failed/not_run/noop
    promotion: dict[str, Any] | None = None  # the pilot-light terraform apply of this run, if any

    @property
    def changed(self) -> bool:
        return self.status in ("succeeded", "unverified", "rolled_back", "rollback_failed", "unknown", "interrupted")

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "noop", "succeeded")

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "action": self.action, "status": self.status, "ok": self.ok,
            "changed": self.changed, "run_id": self.run_id, "started": iso(self.started),
            "plan": self.plan.to_dict() if self.plan else None,
            "timeline": self.timeline.to_dict() if self.timeline else None,
            "validation": self.validation.to_dict() if self.validation else None,
            "steps": self.steps, "rollback": self.rollback, "errors": self.errors, "api_calls": self.api_calls,
            "report_path": self.report_path, "reason": self.reason or (self.plan.reason if self.plan else ""),
            "promotion": self.promotion,
        }
