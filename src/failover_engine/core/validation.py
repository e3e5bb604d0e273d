"""After applying: did the failover really take? Read back, then probe what is now active."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from failover_engine.core.plan import Attrs, Change, ResourceKey


@dataclass
class ValidationResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    read_back: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    resolve: dict[str, Any] | None = None  # the resolve step: every nameserver's answers (client-side)

    def to_dict(self) -> dict[str, Any]:
        out = {"ok": self.ok, "reasons": self.reasons, "read_back": self.read_back, "probes": self.probes}
        if self.resolve is not None:
            out["resolve"] = self.resolve
        return out


def read_back_mismatches(expected: Mapping[ResourceKey, Attrs | None],
                         actual: Mapping[ResourceKey, Attrs | None]) -> list[str]:
    """Every resource whose provider state differs from what was expected (only expected keys compared)."""
    out = []
    for key, want in expected.items():
        have = actual.get(key)
        if want is None:
            if have is not None:
                out.append(f"{key}: expected absent, found {dict(have)}")
            continue
        if have is None:
            out.append(f"{key}: expected {dict(want)}, found nothing")
            continue
        diff = {k: (want[k], have.get(k)) for k in want if _norm(want[k]) != _norm(have.get(k))}
        if diff:
            out.append(f"{key}: " + ", ".join(f"{k} expected {w!r}, found {h!r}" for k, (w, h) in diff.items()))
    return out


def _norm(v: Any) -> Any:
    return sorted(map(str, v)) if isinstance(v, (list, tuple)) else v


def expected_after(changes: list[Change]) -> dict[ResourceKey, Attrs | None]:
    return {c.key: c.after for c in changes}


def expected_before(changes: list[Change]) -> dict[ResourceKey, Attrs | None]:
    return {c.key: c.before for c in changes}


def probe_until_ok(probe: Callable[[], Any], attempts: int, interval: float,
                   sleep: Callable[[float], None] = time.sleep) -> tuple[bool, list[Any]]:
    """Call ``probe`` up to ``attempts`` times, ``interval`` apart, until a result is ok."""
    results = []
    for i in range(attempts):
        r = probe()
        results.append(r)
        if r.ok:
            return True, results
        if i + 1 < attempts:
            sleep(interval)
    return False, results
