"""Plans are data: a failover is a list of steps, each a list of changes (before → after).

A :class:`Plan` is computed from what the providers hold now and what the selection asks
for; it is shown, checked against the safety rules, then applied step by step in order.
Rolling back a step applies the inverse of its changes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

Attrs = Mapping[str, Any]
Assignment = dict[str, int]
"""Which endpoints take traffic, and with what weight: ``{"usw2": 100}`` for active-passive."""


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of one resource a provider holds (a record set, an endpoint, a target group)."""

    adapter: str
    scope: str  # hosted zone id, managed zone, profile ...
    name: str
    type: str = ""
    set_identifier: str | None = None

    def __str__(self) -> str:
        sid = f"[{self.set_identifier}]" if self.set_identifier else ""
        typ = f"/{self.type}" if self.type else ""
        return f"{self.adapter}:{self.scope}/{self.name}{typ}{sid}"


@dataclass(frozen=True)
class Change:
    """One resource's before and after. ``None`` means absent."""

    key: ResourceKey
    before: Attrs | None
    after: Attrs | None

    @property
    def action(self) -> Literal["create", "update", "delete", "noop"]:
        if self.before == self.after:
            return "noop"
        if self.before is None:
            return "create"
        if self.after is None:
            return "delete"
        return "update"

    def inverse(self) -> "Change":
        return Change(self.key, self.after, self.before)

    def to_dict(self) -> dict[str, Any]:
        return {"resource": str(self.key), "action": self.action,
                "before": _plain(self.before), "after": _plain(self.after)}


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, default=list)) if v is not None else None


@dataclass(frozen=True)
class PlanStep:
    """The changes on one routing binding (one provider), applied as one unit."""

    index: int
    adapter: str
    connection: str | None
    description: str
    changes: tuple[Change, ...]

    @property
    def effective(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action != "noop")

    def inverse(self) -> "PlanStep":
        return PlanStep(self.index, self.adapter, self.connection, f"rollback of: {self.description}",
                        tuple(c.inverse() for c in self.effective))

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.index, "adapter": self.adapter, "connection": self.connection,
                "description": self.description, "changes": [c.to_dict() for c in self.effective]}


@dataclass(frozen=True)
class Plan:
    service: str
    action: Literal["failover", "failback", "switch", "rebalance"]
    current: Assignment | None
    target: Assignment
    reason: str
    steps: tuple[PlanStep, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    refusals: tuple[str, ...] = field(default_factory=tuple)
    """Safety rules this plan breaks; applying it is refused unless forced."""
    promotion: Mapping[str, Any] | None = None
    """Pilot-light Terraform apply of this run: {when: before_traffic|after_failback, dir, vars}."""
    blocks: tuple[str, ...] = field(default_factory=tuple)
    """Refusals that ``force`` does not override: routing that matches no known assignment (edited
    by hand, or left inconsistent). Only an explicit take-over (``take_over``) writes over it."""

    @property
    def is_noop(self) -> bool:
        return all(not s.effective for s in self.steps)

    @property
    def changes(self) -> list[Change]:
        return [c for s in self.steps for c in s.effective]

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "action": self.action,
            "current": self.current,
            "target": self.target,
            "reason": self.reason,
            "noop": self.is_noop,
            "warnings": list(self.warnings),
            "refusals": list(self.refusals),
            "blocks": list(self.blocks),
            "steps": [s.to_dict() for s in self.steps],
            "promotion": _plain(dict(self.promotion)) if self.promotion else None,
            "fingerprint": self.fingerprint(),
        }

    def fingerprint(self) -> str:
        """A digest of what the plan would do: the target and every change's before and after.

        Two plans with the same fingerprint make the same changes from the same state; a
        confirmed plan is applied only while the plan computed under the lock still has it
        (reasons, warnings and refusals are not part of it: they carry timings)."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached  # a plan is immutable: computed once (a region run asks 1,000 plans several times)
        body = {"service": self.service, "action": self.action, "current": self.current, "target": self.target,
                "changes": [c.to_dict() for c in self.changes]}
        if self.promotion:
            body["promotion"] = dict(self.promotion)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:32]
        object.__setattr__(self, "_fingerprint", digest)
        return digest

    def diff(self) -> dict[str, Any]:
        """Ansible-style diff: ``before``/``after`` keyed by resource."""
        before = {str(c.key): _plain(c.before) for c in self.changes}
        after = {str(c.key): _plain(c.after) for c in self.changes}
        return {"before": before, "after": after}

    def render(self) -> str:
        """Human-readable plan, like ``terraform plan``."""
        cur = _fmt_assign(self.current)
        lines = [f"Plan for service {self.service!r}: {self.action} {cur} -> {_fmt_assign(self.target)}",
                 f"  reason: {self.reason}"]
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        for r in self.refusals:
            lines.append(f"  REFUSED unless forced: {r}")
        for r in self.blocks:
            lines.append(f"  REFUSED (force does not override; take over explicitly): {r}")
        if self.is_noop:
            lines.append("  no changes: the requested state already holds")
            return "\n".join(lines)
        if self.promotion and self.promotion.get("when") == "before_traffic":
            lines.append(f"  step 0: pilot-light promotion: terraform apply in {self.promotion['dir']} "
                         f"with {_fmt_vars(self.promotion['vars'])}, before traffic moves")
        for step in self.steps:
            if not step.effective:
                continue
            lines.append(f"  step {step.index + 1}: {step.description}")
            for c in step.effective:
                sym = {"create": "+", "delete": "-", "update": "~"}[c.action]
                lines.append(f"    {sym} {c.key}")
                for k in sorted(set(c.before or {}) | set(c.after or {})):
                    b = (c.before or {}).get(k)
                    a = (c.after or {}).get(k)
                    if b != a:
                        lines.append(f"        {k}: {json.dumps(_plain(b))} -> {json.dumps(_plain(a))}")
        if self.promotion and self.promotion.get("when") == "after_failback":
            lines.append(f"  then: scale back: terraform apply in {self.promotion['dir']} "
                         f"with {_fmt_vars(self.promotion['vars'])}, once the failback is validated")
        n = len(self.changes)
        lines.append(f"  {n} change(s) in {sum(1 for s in self.steps if s.effective)} step(s)")
        return "\n".join(lines)


def _fmt_vars(variables: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in variables.items())


def _fmt_assign(a: Assignment | None) -> str:
    if a is None:
        return "(unknown)"
    if not a:
        return "(none)"
    if len(a) == 1:
        return next(iter(a))
    return ",".join(f"{k}={v}" for k, v in sorted(a.items()))
