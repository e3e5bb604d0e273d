"""Typed errors. One base class; a subclass per kind of failure and per adapter.

Every message says what went wrong, where (file/field, provider/resource) and, when
there is one, what to do about it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


class AdapterError(FailoverError):
    """A cloud API call failed. Names the adapter, the resource and the provider's error."""

    adapter = "adapter"

    def __init__(self, message: str, *, resource: str | None = None, code: str | None = None):
        self.resource = resource
        self.code = code
        # what apply() had already changed when it failed (ResourceKeys); None = not known.
        # The engine restores exactly these, even from an intermediate state.
        self.written: tuple[Any, ...] | None = None
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


class ProbeConfigError(FailoverError):
    pass
