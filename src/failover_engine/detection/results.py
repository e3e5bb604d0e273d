"""What a probe found: its FailureKind, its ProbeResult, and ProbeFailed (raised inside a probe
kind). Shared by the probe runner (probes) and the probe kinds (kinds), so neither imports the other
for them."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class FailureKind(str, Enum):
    """Why a probe failed; ``none`` when it succeeded. New kinds are only ever appended."""

    none = "none"
    timeout = "timeout"
    refused = "refused"
    dns = "dns"
    tls = "tls"
    status = "status"
    body = "body"
    slow = "slow"
    error = "error"
    header = "header"  # an expected response header is missing or lacks the expected value
    answer = "answer"  # a DNS answer lacks an expected value
    exit = "exit"  # a command probe exited with a code not in expect_exit
    check = "check"  # a Python probe returned False
    reset = "reset"  # the connection was reset by the peer (e.g. a firewall or a partition)


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe.

    ``latency_ms`` is set when the endpoint answered (HTTP response read, TCP connection
    accepted, DNS answer received, command exited, Python check returned) and ``None``
    otherwise. ``at`` is ``time.time()`` when the probe started.
    """

    ok: bool
    kind: FailureKind
    reason: str
    latency_ms: float | None
    at: float
    endpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``kind`` as its string value)."""
        return {
            "endpoint": self.endpoint,
            "ok": self.ok,
            "kind": self.kind.value,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "at": self.at,
        }


class ProbeFailed(Exception):
    """Raised inside a probe kind when it got no usable answer; becomes a result with no latency."""

    def __init__(self, kind: FailureKind, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


Failure = tuple[FailureKind, str]
"""Why an answer is not healthy: (kind, reason)."""
