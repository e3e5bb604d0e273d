"""Typed errors. One base class; a subclass per kind of failure and per adapter.

Every message says what went wrong, where (file/field, provider/resource) and, when
there is one, what to do about it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence


class FailoverError(Exception):
    """Base class of every error this library raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation finding: a dotted path into the strategy and what is wrong there."""

    path: str
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class StrategyError(FailoverError):
    """The strategy file is missing, unreadable or invalid. Carries every problem at once."""

    def __init__(self, problems: list[Problem], file: str | None = None):
        self.problems = problems
        self.file = file
        head = f"{file}: " if file else ""
        lines = [f"{head}{len(problems)} problem(s) in strategy"] + [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class UnknownServiceError(FailoverError):
    def __init__(self, service: str, known: list[str], file: str | None = None):
        self.service = service
        where = f" in {file}" if file else ""
        super().__init__(
            f"unknown service {service!r}{where}; known services: {', '.join(sorted(known)) or '(none)'}"
        )


class UnknownEndpointError(FailoverError):
    def __init__(self, service: str, endpoint: str, known: list[str]):
        super().__init__(
            f"service {service!r} has no endpoint {endpoint!r}; endpoints: {', '.join(known)}"
        )


class SafetyRefusal(FailoverError):
    """A plan broke one or more safety rules. Nothing was changed. `--force` overrides."""

    def __init__(self, service: str, reasons: list[str]):
        self.service = service
        self.reasons = reasons
        lines = [f"refused to fail over service {service!r}; nothing was changed:"]
        lines += [f"  - {r}" for r in reasons]
        lines.append("  (use --force / force: true to override, after checking the reasons)")
        super().__init__("\n".join(lines))


class LockHeld(FailoverError):
    def __init__(self, service: str, holder: str):
        self.service = service
        self.holder = holder
        super().__init__(
            f"another failover of service {service!r} is in progress (lock held by {holder}); "
            "nothing was changed"
        )


class CoordinationError(FailoverError):
    """The coordination table (DynamoDB) could not be reached or used: nobody acts without a lease."""


class LeaseLost(FailoverError):
    """This process no longer holds a lease it took (it lapsed while the process was paused or cut
    off from the coordination table, and another holder may have taken it): it writes nothing more."""

    def __init__(self, key: str, epoch: int, detail: str = ""):
        self.key = key
        self.epoch = epoch
        super().__init__(f"lease {key!r} at epoch {epoch} is no longer ours"
                         + (f" ({detail})" if detail else "") + "; this run writes nothing more")


class AdapterError(FailoverError):
    """A cloud API call failed. Names the adapter, the resource and the provider's error."""

    adapter = "adapter"

    def __init__(self, message: str, *, resource: str | None = None, code: str | None = None):
        self.resource = resource
        self.code = code
        # what apply() had already changed when it failed (ResourceKeys); None = not known.
        # The engine restores exactly these, even from an intermediate state.
        self.written: tuple[Any, ...] | None = None
        # keys whose write was sent but whose answer was lost (connection reset, read timeout,
        # 5xx after sending) and that a read could not confirm: the write may or may not have
        # happened (and may still land). Never also in ``written``.
        self.unknown: tuple[Any, ...] = ()
        where = f" [{resource}]" if resource else ""
        what = f" ({code})" if code else ""
        super().__init__(f"{self.adapter}{where}: {message}{what}")


class Route53Error(AdapterError):
    adapter = "route53"


class CloudDnsError(AdapterError):
    adapter = "clouddns"


class TrafficManagerError(AdapterError):
    adapter = "trafficmanager"


class ZonalShiftError(AdapterError):
    adapter = "zonalshift"


class ElbError(AdapterError):
    adapter = "elb"


class Elbv2Error(AdapterError):
    adapter = "elbv2"


class ConcurrentEditError(AdapterError):
    """A resource changed at the provider since it was read: our write was refused (or withheld)
    and nothing of that batch was written; what the provider holds stays as it is.

    ``key`` is the resource (a ResourceKey), ``expected`` the state the write was planned against
    (attributes, or None for absent), ``found`` what the provider holds now (attributes, or None).
    When several resources of the batch changed, ``conflicts`` holds every (key, expected, found);
    ``key``/``expected``/``found`` are the first of them. ``code`` is always ``"ConcurrentEdit"``.

    Each adapter raises its own subclass (:class:`Route53ConcurrentEditError`, ...), which is also
    that adapter's error class, so ``except Route53Error`` still catches it and ``adapter`` names it.
    """

    code_name = "ConcurrentEdit"

    def __init__(self, key: Any, expected: Any, found: Any, *,
                 conflicts: Sequence[tuple[Any, Any, Any]] | None = None, detail: str = "",
                 withheld: str = "Nothing in this batch was written"):
        self.key = key
        self.expected = _plain(expected)
        self.found = _plain(found)
        self.conflicts: tuple[tuple[Any, Any, Any], ...] = tuple(
            (k, _plain(e), _plain(f)) for k, e, f in (conflicts or [(key, expected, found)]))
        others = len(self.conflicts) - 1
        more = f" (and {others} more resource(s) of the same batch)" if others > 0 else ""
        note = f" ({detail})" if detail else ""
        super().__init__(
            f"concurrent edit: the resource changed since it was read{more}{note}: planned against "
            f"{_show(self.expected)}, the provider now holds {_show(self.found)}. {withheld}, and the other "
            "edit was left as it is. Re-plan from what is there now and apply again (the new plan takes "
            "the resource over explicitly), or leave it to whoever edited it",
            resource=str(key), code=self.code_name)


def _plain(v: Any) -> Any:
    """Attributes as plain, comparable data (a Mapping becomes a dict, tuples lists)."""
    if v is None:
        return None
    return json.loads(json.dumps(v, default=lambda o: dict(o) if isinstance(o, Mapping) else list(o)))


def _show(v: Any) -> str:
    return "nothing (absent)" if v is None else json.dumps(v, sort_keys=True, separators=(", ", ": "))


class Route53ConcurrentEditError(ConcurrentEditError, Route53Error):
    adapter = "route53"


class CloudDnsConcurrentEditError(ConcurrentEditError, CloudDnsError):
    adapter = "clouddns"


class TrafficManagerConcurrentEditError(ConcurrentEditError, TrafficManagerError):
    adapter = "trafficmanager"


class ProbeConfigError(FailoverError):
    pass
