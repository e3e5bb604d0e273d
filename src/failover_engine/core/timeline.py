"""RTO and its phases, per failover (pure: no I/O).

Phases: detection (first signal → threshold crossed), decision (→ plan chosen), promotion
(→ a pilot-light standby scaled up by ``terraform apply``, only when the service has one), apply
(→ provider changes in sync), validation (→ read-back and probes passed). RTO is first signal →
validated. For a manual action with no recorded incident, the signal is the command itself.
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
          ("validation", "applied_at", "validated_at"))


@dataclass
class Timeline:
    signal: str  # failure | recovery | manual
    first_signal_at: float | None = None
    detected_at: float | None = None
    decided_at: float | None = None
    applied_at: float | None = None
    validated_at: float | None = None
    promoted_at: float | None = None  # pilot-light promotion (terraform apply) done

    def _bounds(self) -> list[tuple[str, str, str]]:
        """The phases this run had: promotion only when a standby was promoted (apply then
        starts when the promotion ended)."""
        if self.promoted_at is None:
            return [p for p in PHASES if p[0] != "promotion"]
        return [(n, "promoted_at" if n == "apply" else a, b) for n, a, b in PHASES]

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
    def complete(self) -> bool:
        return all(getattr(self, f) is not None for _unused, a, b in self._bounds() for f in (a, b))

    def to_dict(self) -> dict[str, Any]:
        names = ["first_signal_at", "detected_at", "decided_at"] + (["promoted_at"] if self.promoted_at else []) \
            + ["applied_at", "validated_at"]
        stamps = {f: iso(getattr(self, f)) for f in names}
        return {"signal": self.signal, "timestamps": stamps, "phases_s": self.phases(), "rto_s": self.rto}


def render_timeline(t: Timeline) -> str:
    lines = [f"  signal: {t.signal}"]
    for name, a, b in t._bounds():
        d = t.phases()[name]
        lines.append(f"  {name:<11} {_ms(d):>10}   ({iso(getattr(t, a)) or '-'} -> {iso(getattr(t, b)) or '-'})")
    lines.append(f"  {'RTO':<11} {_ms(t.rto):>10}")
    return "\n".join(lines)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"
