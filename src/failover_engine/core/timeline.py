"""RTO and its phases, per failover (pure: no I/O).

Phases: detection (first signal → threshold crossed), decision (→ plan chosen), promotion
(→ a pilot-light standby scaled up by ``terraform apply``, only when the service has one), apply
(→ provider changes in sync), validation (→ read-back and probes passed). RTO is first signal →
validated. For a manual action with no recorded incident, the signal is the command itself.

With a resolve step (``validation.resolve``), propagation (applied → every nameserver answers the
target; it runs beside validation) and the client RTO: first signal → propagated, plus
``client_ttl``, the longest a cache could still hold the old answer. Without one, neither exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


PHASES = (("detection", "first_signal_at", "detected_at"),
          ("decision", "detected_at", "decided_at"),
          ("promotion", "decided_at", "promoted_at"),  # only when a pilot-light standby was promoted
          ("apply", "decided_at", "applied_at"),        # from promoted_at when there was a promotion
          ("validation", "applied_at", "validated_at"),
          ("propagation", "applied_at", "propagated_at"))  # only with a resolve step (client_ttl set)


@dataclass
class Timeline:
    signal: str  # failure | recovery | manual
    first_signal_at: float | None = None
    detected_at: float | None = None
    decided_at: float | None = None
    applied_at: float | None = None
    validated_at: float | None = None
    promoted_at: float | None = None  # pilot-light promotion (terraform apply) done
    propagated_at: float | None = None  # every nameserver of the resolve step answered the target
    client_ttl: float | None = None  # seconds a cache could still hold the old answer (resolve step)

    def _bounds(self) -> list[tuple[str, str, str]]:
        """The phases this run had: promotion only when a standby was promoted (apply then
        starts when the promotion ended); propagation only with a resolve step."""
        skip = {"promotion"} if self.promoted_at is None else set()
        if self.client_ttl is None:
            skip.add("propagation")
        return [(n, "promoted_at" if n == "apply" and self.promoted_at is not None else a, b)
                for n, a, b in PHASES if n not in skip]

    def phases(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, a, b in self._bounds():
            ta, tb = getattr(self, a), getattr(self, b)
            out[name] = round(tb - ta, 6) if ta is not None and tb is not None else None
        return out

    @property
    def rto(self) -> float | None:
        if self.first_signal_at is None or self.validated_at is None:
            return None
        return round(self.validated_at - self.first_signal_at, 6)

    @property
    def client_rto(self) -> float | None:
        """First signal → every nameserver answers the target, plus the longest TTL a cache could
        still hold the old answer; None without a resolve step or when it did not propagate."""
        if self.first_signal_at is None or self.propagated_at is None or self.client_ttl is None:
            return None
        return round(self.propagated_at - self.first_signal_at + self.client_ttl, 6)

    @property
    def complete(self) -> bool:
        return all(getattr(self, f) is not None for _unused, a, b in self._bounds() for f in (a, b))

    def to_dict(self) -> dict[str, Any]:
        names = ["first_signal_at", "detected_at", "decided_at"] + (["promoted_at"] if self.promoted_at else []) \
            + ["applied_at", "validated_at"] + (["propagated_at"] if self.client_ttl is not None else [])
        stamps = {f: iso(getattr(self, f)) for f in names}
        return {"signal": self.signal, "timestamps": stamps, "phases_s": self.phases(), "rto_s": self.rto,
                "client_ttl_s": self.client_ttl, "client_rto_s": self.client_rto}


def render_timeline(t: Timeline) -> str:
    lines = [f"  signal: {t.signal}"]
    for name, a, b in t._bounds():
        d = t.phases()[name]
        lines.append(f"  {name:<11} {_ms(d):>10}   ({iso(getattr(t, a)) or '-'} -> {iso(getattr(t, b)) or '-'})")
    lines.append(f"  {'RTO':<11} {_ms(t.rto):>10}")
    if t.client_ttl is not None:
        lines.append(f"  {'client RTO':<11} {_ms(t.client_rto):>10}   (propagated + a cache's TTL of "
                     f"{t.client_ttl:g} s)")
    return "\n".join(lines)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"
