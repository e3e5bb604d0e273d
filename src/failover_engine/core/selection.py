"""Which endpoint should take traffic: a pure function of verdicts, the current state and a request.

No I/O here. The engine gathers verdicts (probes) and the current routing state (adapters),
asks :func:`select_target`, and turns the answer into a plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Protocol

from failover_engine.core.model import Role, Service
from failover_engine.core.plan import Assignment

Action = Literal["failover", "failback", "switch", "auto", "rebalance"]


class Verdict(Protocol):
    @property
    def health(self) -> str: ...  # "healthy" | "unhealthy" | "unknown"

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class SimpleVerdict:
    health: str
    reason: str = ""


def verdicts_from_probes(results: Mapping[str, Any]) -> dict[str, Verdict]:
    """Verdicts from one probe round's results (healthy when the probe passed)."""
    return {n: SimpleVerdict("healthy" if r.ok else "unhealthy", r.reason) for n, r in results.items()}


@dataclass(frozen=True)
class Decision:
    action: Literal["failover", "failback", "switch", "rebalance", "none"]
    target: Assignment | None
    reason: str
    refusals: tuple[str, ...] = ()  # safety reasons to refuse (overridable with force)
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _health(verdicts: Mapping[str, Verdict], name: str) -> tuple[str, str]:
    v = verdicts.get(name)
    if v is None:
        return "unknown", "not probed"
    return str(getattr(v.health, "value", v.health)), v.reason


def _active_one(current: Assignment | None) -> str | None:
    if current and len(current) == 1:
        return next(iter(current))
    return None


def _target_checks(service: Service, name: str, verdicts: Mapping[str, Verdict]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    health, why = _health(verdicts, name)
    if health == "unhealthy":
        return (f"target {name!r} fails its checks: {why}",), ()
    if health == "unknown":
        ep = service.endpoint(name)
        if ep.probe is None:
            return (), (f"target {name!r} has no probe; its health was not checked",)
        return (f"target {name!r} health is unknown: {why}",), ()
    return (), ()


def select_target(service: Service, verdicts: Mapping[str, Verdict], current: Assignment | None,
                  action: Action, target: str | None = None, *, primary_stable_for: float | None = None,
                  stable_for_each: Mapping[str, float] | None = None) -> Decision:
    """Decide the assignment an active-passive service should move to.

    * ``failover``: to ``target`` or the first healthy standby (declared order) not active now.
    * ``failback``: to the primary.
    * ``switch``: to ``target`` (required).
    * ``auto``: failover when the active endpoint is unhealthy; failback when the policy allows
      it and the primary has been healthy for ``failback_stable_period``; otherwise nothing.
    A target that fails its checks yields a refusal (the caller may force past it).
    An ``active_active`` service is decided by :func:`select_members` whatever the action.
    """
    if service.strategy == "active_active":
        return select_members(service, verdicts, current, automatic=action == "auto",
                              stable_for=stable_for_each or {})
    active = _active_one(current)
    primary = service.primary.name
    if action == "auto":
        return _auto(service, verdicts, current, active, primary_stable_for)
    if action == "failback":
        target = primary
    elif action == "switch" and target is None:
        raise ValueError("switch needs a target endpoint")
    elif action == "failover" and target is None:
        if active is not None and active != primary:
            return Decision("none", current, f"already failed over: {active!r} is active")
        candidates = [ep.name for ep in service.endpoints if ep.role is Role.standby and ep.name != active]
        healthy = [n for n in candidates if _health(verdicts, n)[0] == "healthy"]
        target = healthy[0] if healthy else (candidates[0] if candidates else None)
        if target is None:
            return Decision("none", current, "no standby to fail over to", ("no standby endpoint",))
    assert target is not None
    service.endpoint(target)  # KeyError for an unknown name; callers check first
    refusals, warnings = _target_checks(service, target, verdicts)
    kind = "failback" if action == "failback" else action
    if active == target:
        return Decision("none", current, f"{target!r} is already active", (), warnings)
    why = {"failover": f"fail over from {active or 'unknown'} to {target}",
           "failback": f"fail back from {active or 'unknown'} to primary {target}",
           "switch": f"switch from {active or 'unknown'} to {target}"}[kind]
    return Decision(kind, {target: 100}, why, refusals, warnings)  # type: ignore[arg-type]


def _auto(service: Service, verdicts: Mapping[str, Verdict], current: Assignment | None,
          active: str | None, primary_stable_for: float | None) -> Decision:
    primary = service.primary.name
    if active is None:
        return Decision("none", current, "routing state unknown; automation holds", ("routing state unknown",))
    health, why = _health(verdicts, active)
    if health == "unhealthy":
        if service.policy.failover != "automatic":
            return Decision("none", current, f"{active!r} unhealthy ({why}); policy is manual: alert only")
        if active == primary:
            return select_target(service, verdicts, current, "failover")
        return _failover_from_standby(service, verdicts, current, active)
    if active != primary and service.policy.failback == "automatic":
        p_health, _unused = _health(verdicts, primary)
        stable = primary_stable_for or 0.0
        if p_health == "healthy" and stable >= service.policy.failback_stable_period:
            return select_target(service, verdicts, current, "failback")
        return Decision("none", current, f"primary not stable long enough for failback "
                                         f"({stable:.0f}s of {service.policy.failback_stable_period:.0f}s)")
    return Decision("none", current, f"{active!r} is {health}; nothing to do")


def _failover_from_standby(service: Service, verdicts: Mapping[str, Verdict], current: Assignment | None,
                           active: str) -> Decision:
    """The active standby failed too: move to the primary if healthy, else another healthy standby."""
    for ep in [service.primary] + service.standbys:
        if ep.name != active and _health(verdicts, ep.name)[0] == "healthy":
            return select_target(service, verdicts, current, "switch", ep.name)
    return Decision("none", current, f"{active!r} unhealthy and no healthy endpoint to move to",
                    ("no healthy endpoint",))


def select_members(service: Service, verdicts: Mapping[str, Verdict], current: Assignment | None, *,
                   automatic: bool = False, stable_for: Mapping[str, float] | None = None) -> Decision:
    """Which members of an active-active service take traffic, and with what weights.

    Healthy members (and members without a probe, with a warning) stay in rotation; a failed one
    is taken out and its share goes to the others - in proportion to their weights (keeping their
    weights does exactly that) or equally (``redistribution: equal``). A member that is out comes
    back when healthy; when ``automatic``, only if the policy's failback is automatic and it has
    been healthy for ``failback_stable_period`` (the same hysteresis as failback). When
    ``automatic``, a member whose health is unknown (not judged yet, the quorum abstains) is
    neither taken out nor brought back, and with a manual failover policy a member that fails is
    only alerted on. A decision never leaves zero members in rotation: with none healthy, the
    current rotation is kept.
    """
    stable_for = stable_for or {}
    warnings, members = [], []
    for ep in service.endpoints:
        health, why = _health(verdicts, ep.name)
        if health == "unknown" and ep.probe is None:
            warnings.append(f"member {ep.name!r} has no probe; kept in rotation unchecked")
            health = "healthy"
        elif health == "unknown" and automatic and current is not None and ep.name in current:
            warnings.append(f"member {ep.name!r} health is unknown ({why}); kept in rotation until judged")
            health = "healthy"
        if health != "healthy":
            continue
        returning = current is not None and ep.name not in current
        if returning and automatic and (service.policy.failback != "automatic" or
                                        stable_for.get(ep.name, 0.0) < service.policy.failback_stable_period):
            continue
        members.append(ep)
    leaving = [n for n in (current or {}) if n not in {ep.name for ep in members}]
    if automatic and leaving and service.policy.failover != "automatic":
        down = ", ".join(f"{n!r} ({_health(verdicts, n)[1]})" for n in leaving)
        return Decision("none", current, f"member(s) {down} unhealthy; policy is manual: alert only",
                        (), tuple(warnings))
    if not members:
        down = ", ".join(f"{n}: {_health(verdicts, n)[1]}" for n in service.endpoint_names)
        return Decision("none", current, f"no healthy member ({down}); keeping the current rotation",
                        ("a plan may never leave zero healthy members in rotation",), tuple(warnings))
    if service.redistribution == "equal":
        target = {ep.name: 100 for ep in members}
    else:
        target = {ep.name: ep.weight for ep in members}
    if current is not None and target == current:
        return Decision("none", current, "rotation already matches the members' health", (), tuple(warnings))
    out = sorted(set(service.endpoint_names) - set(target))
    why = f"rotation {', '.join(f'{n}={w}' for n, w in target.items())}" + (f"; out: {', '.join(out)}" if out else "")
    return Decision("rebalance", target, why, (), tuple(warnings))
