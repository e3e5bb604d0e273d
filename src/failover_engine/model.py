"""The strategy file, as pydantic v2 models.

A strategy file describes services; each service has endpoints (where it runs), routing
bindings (where its traffic is steered: a Route 53 record, later a Cloud DNS record or a
Traffic Manager profile), detection settings, a policy and validation steps.

Structural checks live in the models; checks that relate several parts of a service
(exactly one primary, every routing binding names every endpoint, a connection exists)
are in :func:`semantic_problems`, so that every problem is reported at once.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '250ms', '5s', '2m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT[m.group(2)]
    raise ValueError(
        f"invalid duration {value!r}: use seconds (5, 0.25) or a string such as '250ms', '5s', '2m', '1h'"
    )


Duration = Annotated[
    float,
    BeforeValidator(_parse_duration),
    PlainSerializer(lambda v: v, return_type=float),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h)?$"},
            ],
            "description": "seconds, or a string such as '250ms', '5s', '2m', '1h'",
        }
    ),
]

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- probes
class HttpProbe(_Model):
    """An HTTP(S) GET (or other method); healthy when the status is expected and the body matches."""

    type: Literal["http"] = "http"
    url: Annotated[str, Field(pattern=r"^https?://\S+$", description="http:// or https:// URL")]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200])
    body_contains: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True


class TcpProbe(_Model):
    """A TCP connect; healthy when the connection is accepted within the timeout."""

    type: Literal["tcp"] = "tcp"
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]


ProbeSpec = Annotated[Union[HttpProbe, TcpProbe], Field(discriminator="type")]


# --------------------------------------------------------------------------- endpoints
class Role(str, Enum):
    primary = "primary"
    standby = "standby"
    active = "active"  # active-active members (issue: active-active strategies)


class Endpoint(_Model):
    name: Name
    role: Role
    region: str | None = None
    zone: str | None = None
    probe: ProbeSpec | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None


# --------------------------------------------------------------------------- routing
class Route53EndpointBinding(_Model):
    """How one endpoint appears in a Route 53 record set."""

    values: list[str] = Field(min_length=1, description="record values (IPs, hostnames) of this endpoint")
    set_identifier: str | None = Field(
        default=None, description="SetIdentifier of this endpoint's record (failover and weighted modes)"
    )
    health_check_id: str | None = None


class Route53Routing(_Model):
    """Traffic steered by a Route 53 record.

    mode ``simple``: one record whose values are swapped to the active endpoint's values.
    mode ``failover``: PRIMARY/SECONDARY failover records, one per endpoint; the active endpoint's
    record is made PRIMARY and the others SECONDARY, in one atomic batch.
    mode ``weighted``: one weighted record per endpoint; active endpoints get ``active_weight``,
    the others ``inactive_weight``.
    """

    adapter: Literal["route53"] = "route53"
    connection: str | None = Field(default=None, description="name of an entry under `connections`")
    hosted_zone_id: str | None = None
    hosted_zone: str | None = Field(default=None, description="zone name, e.g. example.com. (looked up)")
    record: str
    type: Literal["A", "AAAA", "CNAME", "TXT"] = "A"
    ttl: Annotated[int, Field(ge=0, le=2147483647)] = 60
    mode: Literal["simple", "failover", "weighted"] = "simple"
    active_weight: Annotated[int, Field(ge=0, le=255)] = 100
    inactive_weight: Annotated[int, Field(ge=0, le=255)] = 0
    endpoints: dict[str, Route53EndpointBinding]


RoutingBinding = Annotated[Union[Route53Routing], Field(discriminator="adapter")]


class Route53Connection(_Model):
    type: Literal["route53"] = "route53"
    endpoint_url: str | None = Field(default=None, description="override for local runs (moto); unset = AWS")
    region: str = "us-east-1"
    profile: str | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    propagation_timeout: Duration = 120.0


Connection = Annotated[Union[Route53Connection], Field(discriminator="type")]


# --------------------------------------------------------------------------- detection, policy
class Detection(_Model):
    interval: Duration = 5.0
    timeout: Duration = 2.0
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    recovery_threshold: Annotated[int, Field(ge=1, le=100)] = 2
    latency_limit: Duration | None = Field(
        default=None, description="an answer slower than this counts as a failure"
    )


class Policy(_Model):
    failover: Literal["automatic", "manual"] = "manual"
    cooldown: Duration = 300.0
    failback: Literal["automatic", "manual"] = "manual"
    failback_stable_period: Duration = 600.0


class Validation(_Model):
    read_back: bool = True
    probe_active: bool = Field(default=True, description="probe the newly active endpoint(s)")
    checks: list[ProbeSpec] = Field(default_factory=list, description="extra probes that must pass")
    attempts: Annotated[int, Field(ge=1, le=100)] = 3
    interval: Duration = 1.0
    rollback_on_failure: bool = True


class Service(_Model):
    description: str | None = None
    strategy: Literal["active_passive"] = "active_passive"
    scope: Literal["region", "zone"] = "region"
    endpoints: list[Endpoint] = Field(min_length=2)
    routing: list[RoutingBinding] = Field(min_length=1)
    detection: Detection = Field(default_factory=Detection)
    policy: Policy = Field(default_factory=Policy)
    validation: Validation = Field(default_factory=Validation)

    def endpoint(self, name: str) -> Endpoint:
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        raise KeyError(name)

    @property
    def endpoint_names(self) -> list[str]:
        return [ep.name for ep in self.endpoints]

    @property
    def primary(self) -> Endpoint:
        return next(ep for ep in self.endpoints if ep.role is Role.primary)

    @property
    def standbys(self) -> list[Endpoint]:
        return [ep for ep in self.endpoints if ep.role is Role.standby]


class Strategy(_Model):
    """A strategy file: connections to the clouds and the services to protect."""

    version: Literal[1] = 1
    state_dir: str | None = Field(
        default=None,
        description="where the event log, locks and service state live (relative to the file); "
        "default: .failover-state next to the file",
    )
    connections: dict[Name, Connection] = Field(default_factory=dict)
    services: dict[Name, Service] = Field(min_length=1)


def semantic_problems(strategy: Strategy) -> list[tuple[str, str]]:
    """Checks across fields; returns every (path, message) at once."""
    out: list[tuple[str, str]] = []
    for sname, svc in strategy.services.items():
        base = f"services.{sname}"
        names = svc.endpoint_names
        seen: set[str] = set()
        for i, ep in enumerate(svc.endpoints):
            if ep.name in seen:
                out.append((f"{base}.endpoints[{i}].name", f"duplicate endpoint name {ep.name!r}"))
            seen.add(ep.name)
            if svc.scope == "zone" and not ep.zone:
                out.append((f"{base}.endpoints[{i}].zone", "zone scope needs a zone on every endpoint"))
            if svc.scope == "region" and not ep.region:
                out.append((f"{base}.endpoints[{i}].region", "region scope needs a region on every endpoint"))
        if svc.strategy == "active_passive":
            primaries = [ep.name for ep in svc.endpoints if ep.role is Role.primary]
            if len(primaries) != 1:
                out.append((f"{base}.endpoints", f"active_passive needs exactly one primary, found {len(primaries)}"))
            if not svc.standbys:
                out.append((f"{base}.endpoints", "active_passive needs at least one standby"))
            for i, ep in enumerate(svc.endpoints):
                if ep.role is Role.active:
                    out.append((f"{base}.endpoints[{i}].role", "role 'active' is for active_active services"))
        if svc.detection.timeout > svc.detection.interval:
            out.append((f"{base}.detection.timeout", "timeout must not exceed interval"))
        for r, binding in enumerate(svc.routing):
            rbase = f"{base}.routing[{r}]"
            if binding.connection is not None and binding.connection not in strategy.connections:
                out.append((f"{rbase}.connection", f"no connection named {binding.connection!r} under `connections`"))
            elif binding.connection is not None:
                conn = strategy.connections[binding.connection]
                if conn.type != binding.adapter:
                    out.append((f"{rbase}.connection", f"connection {binding.connection!r} is of type {conn.type}, not {binding.adapter}"))
            missing = [n for n in names if n not in binding.endpoints]
            extra = [n for n in binding.endpoints if n not in names]
            if missing:
                out.append((f"{rbase}.endpoints", f"no binding for endpoint(s) {', '.join(missing)}"))
            if extra:
                out.append((f"{rbase}.endpoints", f"binding for unknown endpoint(s) {', '.join(extra)}"))
            from .adapters import adapter_class  # local import: registry is lazy

            for path, msg in adapter_class(binding.adapter).binding_problems(binding):
                out.append((f"{rbase}.{path}" if path else rbase, msg))
    return out
