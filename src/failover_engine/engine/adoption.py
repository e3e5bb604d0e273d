"""Adopting what a holder whose lease lapsed left behind (leases with DynamoDB coordination).

A run's journal lives on its own host: when a monitor dies mid-run in one region, the monitor that
takes over in another cannot read it. What it can read is the service's lease, which still names
the dead holder (:meth:`~failover_engine.coordination.locks.LockProvider.lapsed`), and the
provider's records. :func:`adopt` takes the lease over (its epoch goes up by one: the old holder,
if only paused, can write nothing more), reads the routing state, probes what it finds active and
says so. The dead run may have written everything, part or nothing: the records say which, and
the caller (the monitor) goes on from that truth: nothing to do when the failover had landed and
the active endpoint is healthy, otherwise its usual decision makes the change (once).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from failover_engine.engine.failover import FailoverEngine


@dataclass
class Adoption:
    """What :func:`adopt` found for one service."""

    service: str
    previous: dict[str, Any] | None  # the holder whose lease lapsed; None: it was released meanwhile
    epoch: int | None  # the epoch this holder took
    active: dict[str, int] | None = None  # the assignment the records express (None: no known one)
    healthy: bool | None = None  # every active endpoint passed its probe (None: not probed)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "epoch": self.epoch, "active": self.active, "healthy": self.healthy,
                "reasons": self.reasons}

    def event_fields(self, primary: str | None, first_failure: float | None, now: float) -> dict[str, Any]:
        """The ``adopted`` event's fields; with ``rto_s`` when the dead holder's failover had landed
        (the primary out, the active healthy): from the first failed probe to this validation, the
        hand-over included."""
        out = self.to_dict()
        if self.healthy and self.active and primary not in self.active and first_failure is not None:
            out["rto_s"] = round(now - first_failure, 6)
        return out

    def summary(self, rto: float | None = None) -> str:
        state = "healthy" if self.healthy else f"not validated ({'; '.join(self.reasons)})"
        return (f"adopted at epoch {self.epoch} from {(self.previous or {}).get('holder')}: active {self.active}, "
                f"{state}" + (f"; RTO {rto:.3f}s" if rto is not None else ""))


def first_failure(reports: Iterable[Any], key: str) -> float | None:
    """The earliest first failed probe of the endpoint ``key`` among the reports that see it down."""
    firsts = [r.verdicts[key].get("first_failure_at") for r in reports
              if key in r.verdicts and r.verdicts[key].get("health") == "unhealthy"]
    return min((f for f in firsts if f), default=None)


def adopt(engine: "FailoverEngine", name: str, *, by: str) -> Adoption:
    """Take over the lapsed lease of ``name``, read the records and probe the active endpoint(s).

    Logs ``lease_taken_over`` (the previous holder, its epoch and purpose: the run it was doing).
    Raises LockHeld when someone else holds the lease now (it was renewed or taken meanwhile)."""
    with engine.hold_locks([name], f"adopt ({by})"):
        epoch = engine.lock.epochs([name]).get(name)
        previous = engine.lock.taken_over([name]).get(name)
        found = Adoption(name, previous, epoch)
        if previous is None:
            return found  # its holder finished and released it before we came: nothing was left
        engine.events.append("lease_taken_over", name, previous=previous, epoch=epoch, by=by)
        obs = engine.observe(name)
        if not obs.active:
            found.reasons.append("the records match no known assignment (a run stopped half-way)")
            return found
        found.active = dict(obs.active)
        verdicts = engine.check(name, list(obs.active))
        for endpoint in obs.active:
            v = verdicts.get(endpoint)
            health = getattr(getattr(v, "health", None), "value", getattr(v, "health", "unknown"))
            if health != "healthy":
                found.reasons.append(f"{endpoint}: {getattr(v, 'reason', '') or health}")
        found.healthy = not found.reasons
    return found
