"""The adapter contract: what a cloud adapter must do, and nothing more.

The core computes desired state and plans; an adapter only knows how its provider spells a
resource. An implementation declares its capabilities and implements five hooks:

* :meth:`Adapter.binding_problems` (classmethod, pure) - can this adapter do what a routing
  binding asks? Called at validation time so a strategy that needs a missing capability fails
  before anything runs.
* :meth:`Adapter.desired` (pure) - the resources' attributes when ``assignment`` takes traffic.
* :meth:`Adapter.active_of` (pure) - which endpoints take traffic given resources' attributes.
* :meth:`Adapter.read` (I/O) - current attributes of the resources of many bindings, batched.
* :meth:`Adapter.apply` (I/O) - make changes; batched and atomic per provider scope where the
  API allows; compare-and-swap where the API allows (never over a resource edited since it was
  read); idempotent; returns the provider calls made.
"""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.core.rules import binding_problems


class Capability(str, enum.Enum):
    SIMPLE_SWAP = "simple_swap"          # swap the value(s) of one record
    FAILOVER_RECORDS = "failover_records"  # primary/secondary records
    WEIGHTED = "weighted"                # weights per endpoint
    ATOMIC_BATCH = "atomic_batch"        # several resources changed in one atomic call
    READ_BACK = "read_back"              # can read what it wrote, for validation


@dataclass
class ApplyReceipt:
    """What an apply did: the provider calls made (for metrics, benchmarks and the event log)."""

    calls: int = 0
    batches: list[dict[str, Any]] = field(default_factory=list)


def split_zone_changes(changes: Sequence[Change], flag: str) -> dict[str, tuple[list[str], list[str]]]:
    """For zone adapters: per resource (key.scope), the zones to put in and to take out of service,
    where ``flag`` is the boolean attribute that says "in service" (pure; no-ops are skipped)."""
    from collections import defaultdict

    out: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for c in changes:
        if c.after is None or (c.before is not None and bool(c.after.get(flag)) == bool(c.before.get(flag))):
            continue  # no-op (or a delete, which a zone endpoint never is)
        out[c.key.scope][0 if c.after.get(flag) else 1].append(c.key.name)
    return {scope: (sorted(zones_in), sorted(zones_out)) for scope, (zones_in, zones_out) in out.items()}


class Adapter(ABC):
    kind: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    @classmethod
    def binding_problems(cls, binding: Any) -> list[tuple[Any, str]]:
        """Every (field path, message) this adapter cannot honour in ``binding``: the pure rules of
        failover_engine.core.rules, which the strategy loader checks too."""
        return binding_problems(binding)

    @abstractmethod
    def desired(self, binding: Any, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        """Attributes of every resource of ``binding`` when ``assignment`` takes traffic."""

    def describe(self, binding: Any) -> str:
        """One line naming what the binding steers, for plans and progress."""
        what = getattr(binding, "record", None) or getattr(binding, "profile", None) or ""
        where = (getattr(binding, "hosted_zone", None) or getattr(binding, "hosted_zone_id", None)
                 or getattr(binding, "managed_zone", None) or getattr(binding, "resource_group", None))
        return f"{self.kind} {what}" + (f" in {where}" if where else "") + f" ({getattr(binding, 'mode', '')})"

    def resource_keys(self, binding: Any) -> list[ResourceKey]:
        """Identity of every resource the binding steers (the same whichever endpoint is active)."""
        first = next(iter(binding.endpoints))
        return list(self.desired(binding, {first: 100}))

    @abstractmethod
    def active_of(self, binding: Any, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        """Which endpoints take traffic now, or None if the state matches no known assignment."""

    @abstractmethod
    def read(self, bindings: Sequence[Any]) -> dict[ResourceKey, Attrs | None]:
        """Current attributes of every resource of ``bindings`` (None when absent)."""

    @abstractmethod
    def apply(self, changes: Sequence[Change]) -> ApplyReceipt:
        """Make ``changes`` (no-op changes must cost no call). Raise an AdapterError on failure.

        Never a blind overwrite (Route 53, Cloud DNS, Traffic Manager; the zone adapters do not check
        yet): a resource that no longer holds its change's ``before`` was edited by someone else
        since it was read; leave it as it is and raise the adapter's
        :class:`~failover_engine.core.errors.ConcurrentEditError` subclass (the resource, both values).
        On any failure set ``written`` on the error (keys of writes the provider accepted) and
        ``unknown`` (keys of writes sent whose answer was lost and that a read did not confirm)."""
