"""Client-side validation (a service's ``validation.resolve``), the pure part: what answer the
nameservers must give once a switch took, whether an answer is it, and what each nameserver said.

The engine's :mod:`failover_engine.engine.propagation` asks the nameservers; this module decides.
An answer *matches* when it holds at least one value and only expected values (a CNAME answer is
compared by its target), so a weighted set that answers one of several target endpoints matches too.
Values compare case-insensitively, without the trailing dot of a name, IP addresses in their
canonical form and TXT strings without their quotes.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable

from failover_engine.core.model import Service, resolve_binding
from failover_engine.core.plan import Assignment
from failover_engine.core.timeline import iso


def canonical_value(value: str) -> str:
    """The comparable form of one record value."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower().rstrip(".")


@dataclass(frozen=True)
class ResolveExpectation:
    """What one service's resolve step asks and expects, for one run's target."""

    name: str                   # fully qualified
    rdtype: str
    expected: frozenset[str]    # canonical values of the target
    old: frozenset[str]         # canonical values of the endpoints out of the target (may be empty)
    record_ttl: int | None      # the binding's TTL, when the name is a binding's record

    def matches(self, values: Iterable[str]) -> bool:
        got = {canonical_value(v) for v in values}
        return bool(got) and got <= self.expected


def resolve_expectation(service: Service, target: Assignment) -> ResolveExpectation:
    """The expectation of ``service``'s resolve step when ``target`` takes the traffic (pure).

    Raises ValueError when nothing is expected (e.g. the target endpoints have no entry in an
    ``expect`` mapping)."""
    spec = service.validation.resolve
    if spec is None:
        raise ValueError("the service has no resolve step")
    binding = resolve_binding(service)
    name = (spec.name or (binding.record if binding else "")).strip().lower()
    name = name if name.endswith(".") else name + "."
    active = {ep for ep, weight in target.items() if weight > 0}
    if isinstance(spec.expect, list):
        expected, old = list(spec.expect), []
    elif isinstance(spec.expect, dict):
        expected = [v for ep, vs in spec.expect.items() if ep in active for v in vs]
        old = [v for ep, vs in spec.expect.items() if ep not in active for v in vs]
    elif binding is not None:
        expected = [v for ep, eb in binding.endpoints.items() if ep in active for v in eb.values]
        old = [v for ep, eb in binding.endpoints.items() if ep not in active for v in eb.values]
    else:
        expected, old = [], []
    if not expected:
        raise ValueError(f"no expected answer for {name} when {', '.join(sorted(active)) or 'nothing'} takes "
                         "the traffic: give `expect` for every endpoint")
    canon = frozenset(canonical_value(v) for v in expected)
    return ResolveExpectation(name, spec.type or (binding.type if binding else "A"), canon,
                              frozenset(canonical_value(v) for v in old) - canon,
                              binding.ttl if binding is not None else None)


@dataclass
class NameserverResult:
    """What one nameserver answered during one run's propagation."""

    nameserver: str
    first_new_at: float | None = None   # the first answer that matched
    last_old_at: float | None = None    # the last answer that did not (values, NXDOMAIN, ...)
    last_old: list[str] | None = None   # its values
    last_old_ttl: int | None = None
    max_old_ttl: int | None = None      # the longest TTL of an answer that did not match
    last_error: str | None = None       # the last query that got no usable answer
    new_ttl: int | None = None          # the TTL of the first answer that matched
    queries: int = 0

    @property
    def propagated(self) -> bool:
        return self.first_new_at is not None

    def note(self, at: float, rcode: str | None, values: list[str], ttl: int | None, error: str | None,
             expectation: ResolveExpectation) -> None:
        """Record one query's outcome."""
        self.queries += 1
        if error is not None:
            self.last_error = error
            return
        if rcode == "NOERROR" and expectation.matches(values):
            if self.first_new_at is None:
                self.first_new_at, self.new_ttl = at, ttl
            return
        self.last_old_at, self.last_old = at, values if values else [rcode or "no answer"]
        self.last_old_ttl = ttl
        if ttl is not None:
            self.max_old_ttl = max(ttl, self.max_old_ttl or 0)

    def describe(self) -> str:
        """Why this nameserver is not propagated, for a person."""
        if self.last_old_at is not None:
            ttl = f" (ttl {self.last_old_ttl})" if self.last_old_ttl is not None else ""
            return f"{self.nameserver} still answers {', '.join(self.last_old or [])}{ttl}"
        return f"{self.nameserver} gave no answer ({self.last_error or 'not asked'})"

    def to_dict(self) -> dict[str, Any]:
        return {"nameserver": self.nameserver, "propagated": self.propagated,
                "first_new_at": iso(self.first_new_at), "last_old_at": iso(self.last_old_at),
                "last_old": self.last_old, "last_old_ttl": self.last_old_ttl, "new_ttl": self.new_ttl,
                "last_error": self.last_error, "queries": self.queries}


@dataclass
class ResolveResult:
    """One service's resolve step in one run: every nameserver's answers and the verdict."""

    name: str
    rdtype: str
    expected: list[str]
    deadline: float
    started_at: float
    nameservers: list[NameserverResult] = field(default_factory=list)
    record_ttl: int | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons and bool(self.nameservers) and all(n.propagated for n in self.nameservers)

    @property
    def propagated_at(self) -> float | None:
        """When the last nameserver first answered the target (None: not all of them did)."""
        if not self.ok:
            return None
        return max(n.first_new_at for n in self.nameservers if n.first_new_at is not None)

    @property
    def client_ttl(self) -> float | None:
        """The longest a cache could still hold the old answer: the longest TTL of an old answer
        seen, else the record's TTL (when the name is not a binding's record: the new answers' TTL)."""
        seen = [n.max_old_ttl for n in self.nameservers if n.max_old_ttl is not None]
        if seen:
            return float(max(seen))
        if self.record_ttl is not None:
            return float(self.record_ttl)
        new = [n.new_ttl for n in self.nameservers if n.new_ttl is not None]
        return float(max(new)) if new else None

    def finish(self) -> None:
        """Set the reason of a deadline missed, naming every nameserver not propagated."""
        late = [n.describe() for n in self.nameservers if not n.propagated]
        if late and not self.reasons:
            self.reasons.append(f"resolve: {self.name} {self.rdtype} did not answer "
                                f"{', '.join(sorted(self.expected))} within {self.deadline:g} s: " + "; ".join(late))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.rdtype, "expected": sorted(self.expected), "ok": self.ok,
                "deadline_s": self.deadline, "started_at": iso(self.started_at),
                "propagated_at": iso(self.propagated_at), "client_ttl_s": self.client_ttl,
                "nameservers": [n.to_dict() for n in self.nameservers], "reasons": self.reasons}
