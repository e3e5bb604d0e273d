"""The operator's policy for MCP clients: limits, strict identifiers, and allowlists.

A client's strategy passes three gates before it is stored, each reporting every problem at once:

1. :meth:`OperatorPolicy.input_problems`, on the raw input before anything parses it: document
   size, nesting depth, string length, control characters. It costs one walk of the input, so a
   4 MiB string is refused in milliseconds and never reaches YAML, pydantic or a regular
   expression.
2. The strategy model (the loader), as for every strategy file.
3. :meth:`OperatorPolicy.strategy_problems`, on the parsed strategy: strict patterns for every
   identifier-like field (:data:`PATTERNS`), counts, probe timeout and interval ranges, the zones
   and records clients may touch, and the destinations probes may reach.

The zone and probe-destination checks are run again when a stored service is used (trigger,
monitor), so an operator's narrower policy applies after a restart, and a host name is resolved
again each time (see :func:`DestinationPolicy.problems` for what that cannot prevent).
"""
from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

from failover_engine.core.errors import Problem
from failover_engine.core.model import (
    CommandProbe,
    DnsProbe,
    HttpProbe,
    PythonProbe,
    Strategy,
    TcpProbe,
    parse_nameserver,
)

INPUT = "<mcp input>"
MASK = "***"

# --------------------------------------------------------------------------- strict identifiers
# Identifier-like fields a client sends. None of them may hold a template or shell character
# ({, }, %, $, #, quotes, spaces). Free text (descriptions, reasons, probe bodies, header values,
# TXT values) is data: only its length and control characters are limited.
PATTERNS: dict[str, str] = {
    "name": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",              # services, endpoints, connections
    "region": r"^[a-z0-9][a-z0-9-]{0,62}$",                   # us-east-1, europe-west1, eastus
    "zone": r"^[a-z0-9][a-z0-9-]{0,62}$",                     # us-east-1a, use1-az1, us-central1-a, 1
    "hosted_zone_id": r"^(/hostedzone/)?[A-Za-z0-9]{1,64}$",
    "set_identifier": r"^[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,127}$",
    "health_check_id": r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$",
    "managed_zone": r"^[a-z][a-z0-9-]{0,62}$",
    "resource_group": r"^[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]$",
    "profile": r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$",
    "tm_endpoint": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,259}$",
    "load_balancer": r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$",
    "arn": r"^arn:[a-z0-9-]{1,32}:[a-z0-9-]{1,64}:[a-z0-9-]{0,32}:[0-9]{0,12}:[A-Za-z0-9/._:+=@-]{1,1000}$",
    "header_name": r"^[A-Za-z0-9!#&'*+.^_`|~-]{1,128}$",
}
_COMPILED = {k: re.compile(v) for k, v in PATTERNS.items()}
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def matches(kind: str, value: str) -> bool:
    return isinstance(value, str) and len(value) <= 1100 and bool(_COMPILED[kind].match(value))


def is_dns_name(value: str, *, wildcard: bool = False) -> bool:
    """A DNS name of labels (letters, digits, _ and -), 253 characters at most, an optional final
    dot, and with ``wildcard`` an optional leading ``*.``."""
    if not isinstance(value, str) or not value or len(value) > 254:
        return False
    name = value[:-1] if value.endswith(".") else value
    if wildcard and name.startswith("*."):
        name = name[2:]
    return bool(name) and len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def is_host(value: str) -> bool:
    """A host name or an IP address literal."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return is_dns_name(value)


# --------------------------------------------------------------------------- limits
@dataclass
class Limits:
    """What one client may make the server hold or do. Defaults are for a handful of services
    defined by an assistant, not for bulk imports (use strategy files and the CLI for those)."""

    max_document_bytes: int = 256 * 1024
    max_services: int = 100
    max_endpoints: int = 16
    max_string: int = 1024
    max_depth: int = 32
    probe_timeout: tuple[float, float] = (0.1, 10.0)
    probe_interval: tuple[float, float] = (0.25, 3600.0)

    def describe(self) -> str:
        return (f"documents {self.max_document_bytes} bytes, {self.max_services} services, {self.max_endpoints} "
                f"endpoints per service, strings {self.max_string} characters, nesting {self.max_depth}, probe "
                f"timeout {self.probe_timeout[0]:g}-{self.probe_timeout[1]:g}s, interval "
                f"{self.probe_interval[0]:g}-{self.probe_interval[1]:g}s")


def parse_range(text: str) -> tuple[float, float]:
    """'0.1-10' -> (0.1, 10.0) (seconds)."""
    low, sep, high = str(text).partition("-")
    try:
        lo, hi = float(low), float(high)
    except ValueError:
        raise ValueError(f"invalid range {text!r}: use MIN-MAX in seconds, e.g. 0.1-10") from None
    if not sep or not 0 < lo <= hi:
        raise ValueError(f"invalid range {text!r}: use MIN-MAX in seconds with 0 < MIN <= MAX")
    return lo, hi


# --------------------------------------------------------------------------- probe destinations
# Never reached by a client's probe unless the operator allows them explicitly, by a network at
# least as narrow as the range below (an allowlist of 0.0.0.0/0 does not open them).
SPECIAL_NETWORKS: list[tuple[str, str]] = [
    ("127.0.0.0/8", "loopback"), ("::1/128", "loopback"),
    ("0.0.0.0/8", "this host"), ("::/128", "this host"),
    ("169.254.0.0/16", "link-local (cloud metadata: 169.254.169.254)"), ("fe80::/10", "link-local"),
    ("fd00:ec2::254/128", "cloud metadata (AWS IMDS over IPv6)"),
    ("100.100.100.200/32", "cloud metadata (Alibaba Cloud)"),
    ("168.63.129.16/32", "cloud platform endpoint (Azure WireServer)"),
]
_SPECIAL = [(ipaddress.ip_network(n), why) for n, why in SPECIAL_NETWORKS]
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mcp-resolve")


def resolve(host: str, timeout: float = 2.0) -> list[str]:
    """The addresses ``host`` resolves to now (raises OSError when it does not, in ``timeout``)."""
    fut = _resolver.submit(socket.getaddrinfo, host, None, proto=socket.IPPROTO_TCP)
    try:
        infos = fut.result(timeout=timeout)
    except FutureTimeout:
        raise OSError(f"no answer within {timeout:g}s") from None
    except socket.gaierror as exc:
        raise OSError(exc.strerror or str(exc)) from None
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


@dataclass
class DestinationPolicy:
    """Where client-defined probes may go: ``allow`` holds IP networks (``10.0.0.0/8``,
    ``192.0.2.7``) and host name patterns (``app.example.com``, ``*.svc.example.com``)."""

    allow: list[str] = field(default_factory=list)
    resolver: Any = resolve

    def __post_init__(self) -> None:
        self.networks, self.names = [], []
        for entry in self.allow:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                if not is_dns_name(entry.strip().lower().replace("*.", "", 1)):
                    raise ValueError(f"--allow-probe {entry!r}: give an IP address, a network (CIDR) or a "
                                     "host name (optionally *.domain)") from None
                self.names.append(entry.strip().lower().rstrip("."))

    def problems(self, host: str) -> list[str]:
        """Why probes may not reach ``host`` (empty: they may).

        A host name is resolved here, at check time. The probe resolves it again when it runs, so
        a DNS server that answers differently the second time (DNS rebinding) can still send it
        elsewhere: allow by address (IP or network) where that matters."""
        host = host.strip().lower().rstrip(".").strip("[]")
        try:
            addresses, named = [str(ipaddress.ip_address(host))], False
        except ValueError:
            named = any(fnmatch.fnmatchcase(host, pattern) for pattern in self.names)
            try:
                addresses = self.resolver(host)
            except OSError as exc:
                return [] if named else [f"{host} does not resolve ({exc}): only allowed names may be unresolvable"]
        out = []
        for text in addresses:
            why = self._refusal(ipaddress.ip_address(text), named)
            if why:
                out.append(f"{host}{'' if text == host else f' ({text})'} {why}")
        return out

    def _refusal(self, addr: ipaddress._BaseAddress, named: bool) -> str | None:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        for net, why in _SPECIAL:
            if addr.version == net.version and addr in net:
                if any(a.version == net.version and addr in a and a.prefixlen >= net.prefixlen for a in self.networks):
                    return None
                return (f"is {why}: probes from MCP clients never go there unless the operator allows it "
                        f"explicitly (--allow-probe {addr}/{addr.max_prefixlen})")
        if named or any(addr.version == a.version and addr in a for a in self.networks):
            return None
        return ("is not an allowed probe destination (the operator allows destinations with --allow-probe "
                "HOST|CIDR; allowed now: " + (", ".join(self.allow) or "none") + ")")


# --------------------------------------------------------------------------- the policy
@dataclass
class OperatorPolicy:
    limits: Limits = field(default_factory=Limits)
    zones: list[str] = field(default_factory=list)     # zones, profiles, load balancers clients may touch
    records: list[str] = field(default_factory=list)   # record name globs (default: any in an allowed zone)
    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)
    allow_code_probes: bool = False

    def __post_init__(self) -> None:
        self._zones = {_zone_key(z) for z in self.zones}
        self._records = [_dns_key(r) for r in self.records]

    # ------------------------------------------------------------------ 1. raw input
    def input_problems(self, data: Any, *, size: int | None = None) -> list[Problem]:
        """Size, depth, string length and control characters of a raw input (a parsed JSON value
        or YAML text), found by one iterative walk: no recursion, no regular expression over a
        long string."""
        lim = self.limits
        out: list[Problem] = []
        if size is None and isinstance(data, str):
            size = len(data.encode("utf-8", "surrogatepass"))
        if size is not None and size > lim.max_document_bytes:
            out.append(_problem("", f"{size} bytes is over this server's limit of {lim.max_document_bytes} bytes "
                                    "per document (operator setting --max-document-bytes)"))
            return out
        if isinstance(data, str):
            return out
        total, stack = 0, [(data, "", 0)]
        while stack and len(out) < 50:
            node, path, depth = stack.pop()
            if depth > lim.max_depth:
                out.append(_problem(path, f"nested deeper than {lim.max_depth} levels"))
                continue
            if isinstance(node, dict):
                items = list(node.items())
                for key, value in reversed(items):
                    if isinstance(key, str) and len(key) > 128:
                        out.append(_problem(path, f"a key of {len(key)} characters (keys are at most 128)"))
                        continue
                    stack.append((value, f"{path}.{key}" if path else str(key), depth + 1))
                    total += len(str(key)) + 4
            elif isinstance(node, list):
                for i in range(len(node) - 1, -1, -1):
                    stack.append((node[i], f"{path}[{i}]", depth + 1))
                total += 2
            elif isinstance(node, str):
                total += len(node) + 2
                problem = self.text_problem(node)
                if problem:
                    out.append(_problem(path, problem))
            else:
                total += 8
            if total > lim.max_document_bytes:
                out.append(_problem("", f"over this server's limit of {lim.max_document_bytes} bytes per document "
                                        "(operator setting --max-document-bytes)"))
                break
        return out

    def text_problem(self, text: str) -> str | None:
        """Why a client's string is refused anywhere (length, control characters), or None."""
        if len(text) > self.limits.max_string:
            return (f"a string of {len(text)} characters is over this server's limit of {self.limits.max_string} "
                    "(operator setting --max-string)")
        if _CONTROL.search(text):
            return "control characters (newlines included) are not accepted in MCP input"
        return None

    # ------------------------------------------------------------------ 2. the parsed strategy
    def strategy_problems(self, strategy: Strategy, services: Iterable[str], *, monitoring: bool) -> list[Problem]:
        """Every policy problem of ``services`` (and of ``monitoring``, when the client set it)."""
        out: list[Problem] = []
        if len(strategy.services) > self.limits.max_services:
            out.append(_problem("services", f"{len(strategy.services)} services is over this server's limit of "
                                            f"{self.limits.max_services} (operator setting --max-services)"))
        for name in services:
            svc = strategy.services.get(name)
            if svc is not None:
                out.extend(_problem(p, m) for p, m in self.service_problems(name, svc, resolve_hosts=True))
        if monitoring:
            mon = strategy.monitoring
            if mon.metrics_port is not None:
                out.append(_problem("monitoring.metrics_port", "a listening port on the server host is the "
                                                               "operator's to open, not a client's"))
            for i, spec in enumerate(mon.control_targets):
                out.extend(_problem(p, m) for p, m in self.probe_problems(spec, f"monitoring.control_targets[{i}]"))
        return out

    def service_problems(self, name: str, svc: Any, *, resolve_hosts: bool = True) -> list[tuple[str, str]]:
        """(path, message) for one service: patterns, counts, timings, zones, records, probes."""
        at = f"services.{name}"
        out: list[tuple[str, str]] = []
        lim = self.limits
        if len(svc.endpoints) > lim.max_endpoints:
            out.append((f"{at}.endpoints", f"{len(svc.endpoints)} endpoints is over this server's limit of "
                                           f"{lim.max_endpoints} per service (operator setting --max-endpoints)"))
        for label, value, (low, high) in (("detection.timeout", svc.detection.timeout, lim.probe_timeout),
                                          ("detection.interval", svc.detection.interval, lim.probe_interval)):
            if not low <= value <= high:
                out.append((f"{at}.{label}", f"{value:g}s is outside this server's range {low:g}-{high:g}s "
                                             "for client-defined strategies"))
        for i, ep in enumerate(svc.endpoints):
            for attr in ("region", "zone"):
                value = getattr(ep, attr)
                if value is not None and not matches(attr, value):
                    out.append((f"{at}.endpoints[{i}].{attr}", _pattern_message(attr)))
            for attr in ("probe", "gate"):
                spec = getattr(ep, attr)
                if spec is not None:
                    out.extend(self.probe_problems(spec, f"{at}.endpoints[{i}].{attr}", resolve_hosts))
        for i, rule in enumerate(svc.rules):
            if getattr(rule, "probe", None) is not None:
                out.extend(self.probe_problems(rule.probe, f"{at}.rules[{i}].probe", resolve_hosts))
        for i, spec in enumerate(svc.validation.checks):
            out.extend(self.probe_problems(spec, f"{at}.validation.checks[{i}]", resolve_hosts))
        for i, binding in enumerate(svc.routing):
            out.extend(self.routing_problems(binding, f"{at}.routing[{i}]"))
        return out

    def use_problems(self, strategy: Strategy, names: Iterable[str], *, probes: bool = True) -> list[str]:
        """The policy checks again, when stored services are used (trigger, monitor); without
        ``probes``, probe destinations are not resolved (nothing will be probed)."""
        out = []
        for name in names:
            svc = strategy.services.get(name)
            if svc is not None:
                out.extend(f"{p}: {m}" for p, m in self.service_problems(name, svc, resolve_hosts=probes))
        return out

    # ------------------------------------------------------------------ routing: zones and records
    def routing_problems(self, b: Any, at: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        kind = b.adapter
        checks: list[tuple[str, str | None, str]] = []  # (field, value, pattern kind)
        zone_ids: list[str] = []
        if kind == "route53":
            checks += [("hosted_zone_id", b.hosted_zone_id, "hosted_zone_id")]
            if b.hosted_zone is not None and not is_dns_name(b.hosted_zone):
                out.append((f"{at}.hosted_zone", "not a DNS name (letters, digits, _ and - in dot-separated labels)"))
            zone_ids = [z for z in (b.hosted_zone, b.hosted_zone_id) if z]
        elif kind == "clouddns":
            checks += [("managed_zone", b.managed_zone, "managed_zone")]
            zone_ids = [b.managed_zone]
        elif kind == "trafficmanager":
            checks += [("resource_group", b.resource_group, "resource_group"), ("profile", b.profile, "profile")]
            zone_ids = [f"{b.resource_group}/{b.profile}", b.profile]
        elif kind == "zonalshift":
            checks += [("resource_identifier", b.resource_identifier, "arn")]
            zone_ids = [b.resource_identifier]
        elif kind == "elb":
            checks += [("load_balancer", b.load_balancer, "load_balancer")]
            zone_ids = [b.load_balancer]
        elif kind == "elbv2":
            checks += [(f"target_group_arns[{j}]", arn, "arn") for j, arn in enumerate(b.target_group_arns)]
        for name, value, pattern in checks:
            if value is not None and not matches(pattern, value):
                out.append((f"{at}.{name}", _pattern_message(pattern)))
        if b.connection is not None and not matches("name", b.connection):
            out.append((f"{at}.connection", _pattern_message("name")))
        out.extend(self._binding_problems(b, at))
        if kind == "elbv2":
            refused = [arn for arn in b.target_group_arns if not self._zone_allowed(kind, arn)]
        else:
            refused = [] if any(self._zone_allowed(kind, z) for z in zone_ids) else zone_ids[:1]
        for z in refused:
            out.append((at, f"{kind} {z} is not one this server lets clients touch (the operator allows zones, "
                            "profiles and load balancers with --allow-zone; allowed now: "
                            + (", ".join(self.zones) or "none") + ")"))
        record = getattr(b, "record", None)
        if record is not None:
            out.extend(self._record_problems(kind, record, getattr(b, "hosted_zone", None), at))
        return out

    def _binding_problems(self, b: Any, at: str) -> list[tuple[str, str]]:
        out = []
        for ep, binding in b.endpoints.items():
            where = f"{at}.endpoints.{ep}"
            if not matches("name", ep):
                out.append((where, _pattern_message("name")))
            for attr, pattern in (("set_identifier", "set_identifier"), ("health_check_id", "health_check_id"),
                                  ("location", "region"), ("endpoint", "tm_endpoint"), ("zone", "zone")):
                value = getattr(binding, attr, None)
                if value is not None and not matches(pattern, value):
                    out.append((f"{where}.{attr}", _pattern_message(pattern)))
            if getattr(b, "type", None) == "CNAME":
                for j, value in enumerate(binding.values):
                    if not is_dns_name(value):
                        out.append((f"{where}.values[{j}]", "a CNAME value is a DNS name"))
        return out

    def _record_problems(self, kind: str, record: str, zone: str | None, at: str) -> list[tuple[str, str]]:
        if not is_dns_name(record, wildcard=True):
            return [(f"{at}.record", "not a DNS name (letters, digits, _ and - in dot-separated labels, "
                                     "an optional leading *.)")]
        key = _dns_key(record)
        if self._records:
            if not any(fnmatch.fnmatchcase(key, pattern) for pattern in self._records):
                return [(f"{at}.record", f"{record} is not a record this server lets clients touch (the operator "
                                         "allows records with --allow-record GLOB; allowed now: "
                                         + ", ".join(self.records) + ")")]
        elif zone is not None and key != _dns_key(zone) and not key.endswith("." + _dns_key(zone)):
            return [(f"{at}.record", f"{record} is not inside the hosted zone {zone}")]
        return []

    def _zone_allowed(self, kind: str, zone: str) -> bool:
        key = _zone_key(zone)
        return key in self._zones or f"{kind}:{key}" in self._zones

    # ------------------------------------------------------------------ probes
    def probe_problems(self, spec: Any, at: str, resolve_hosts: bool = True) -> list[tuple[str, str]]:
        if isinstance(spec, (CommandProbe, PythonProbe)):
            if self.allow_code_probes:
                return []
            return [(at, f"a {spec.type} probe runs code on the server host; this server refuses them from MCP "
                         "clients (start it with --allow-code-probes to allow)")]
        out: list[tuple[str, str]] = []
        host = None
        if isinstance(spec, HttpProbe):
            try:
                parts = urlsplit(spec.url)
                host, _unused = parts.hostname, parts.port
            except ValueError as exc:
                return [(f"{at}.url", f"not a URL: {exc}")]
            if not host or not is_host(host.strip("[]")):
                return [(f"{at}.url", "the URL needs a host name or an IP address")]
            if parts.username or parts.password:
                out.append((f"{at}.url", "credentials in a probe URL are not accepted from MCP clients"))
            for field_name in ("headers", "expect_headers"):
                for name in getattr(spec, field_name):
                    if not matches("header_name", name):
                        out.append((f"{at}.{field_name}", _pattern_message("header_name")))
        elif isinstance(spec, TcpProbe):
            host = spec.host
            if not is_host(host):
                return [(f"{at}.host", "a host name or an IP address")]
        elif isinstance(spec, DnsProbe):
            if not is_dns_name(spec.name, wildcard=False):
                out.append((f"{at}.name", "not a DNS name"))
            if spec.nameserver:
                host = parse_nameserver(spec.nameserver)[0]
        if host is not None and resolve_hosts:
            out.extend((at, m) for m in self.destinations.problems(host))
        return out


def _problem(path: str, message: str) -> Problem:
    return Problem(path, message, INPUT)


def _pattern_message(kind: str) -> str:
    return f"not a valid {kind.replace('_', ' ')}: it must match {PATTERNS[kind]}"


def _dns_key(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _zone_key(zone: str) -> str:
    z = zone.strip()
    if z.startswith("/hostedzone/"):
        z = z[len("/hostedzone/"):]
    kind, sep, rest = z.partition(":")
    if sep and kind in ("route53", "clouddns", "trafficmanager", "zonalshift", "elb", "elbv2"):
        return f"{kind}:{_zone_key(rest)}"
    return z.lower().rstrip(".") if not z.startswith("arn:") else z


# --------------------------------------------------------------------------- masking
def mask_headers(node: Any) -> Any:
    """A copy of ``node`` with the value of every probe header masked (``headers`` mappings):
    cookies and API keys go by any name, so every value is masked, whatever its header's name."""
    if isinstance(node, dict):
        return {k: ({h: MASK for h in v} if k == "headers" and isinstance(v, dict) else mask_headers(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [mask_headers(v) for v in node]
    return node
