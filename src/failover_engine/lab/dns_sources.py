"""Where the lab's DNS server (:mod:`failover_engine.lab.dns`) reads its zones: each provider's
state as the adapters write it, read over HTTP on every query, with its routing policy evaluated
the way the provider's DNS would answer a client.

Decisions (the emulators and moto store routing policies, none evaluates health):

* **Route 53** (moto, boto3 ``list_resource_record_sets``): simple records as they are. Failover
  pairs: the PRIMARY's values, the SECONDARY's only when there is no PRIMARY - moto runs no health
  checks, and the lab measures what the *engine's* switch shows clients, so Route 53's own health
  failover is not played. Weighted sets: the set with the highest weight, ties broken by the
  smallest SetIdentifier (deterministic, so a test can assert an answer; Route 53 itself picks at
  random in proportion). Multivalue sets: every value. Latency, geolocation and CIDR sets: the
  smallest SetIdentifier. Alias records are not served.
* **Cloud DNS** (the emulator's v1 REST API): ``rrdatas`` as they are; ``primaryBackup``: the
  primary targets (external endpoints and internal load balancers' addresses; the trickle to the
  backup is not played); ``wrr``: the item with the highest weight, the first on a tie; ``geo``: the
  first item.
* **Traffic Manager** (the emulator's ARM API, one GET per profile): the zone ``trafficmanager.net.``
  holds ``<relativeName>.trafficmanager.net.`` per profile, with the profile's DNS TTL. Among the
  *Enabled* endpoints whose monitor status is not Degraded, Stopped, Inactive or Disabled (all of
  them, when every one is): Priority (and Performance, Geographic, Subnet, which need a client's
  location) - the lowest priority number; Weighted - the highest weight, the lowest priority on a
  tie; MultiValue - every one. The answer is a CNAME to the endpoint's ``target``, or an A (AAAA)
  record when the target is an IP address; an Azure or nested endpoint (no ``target``) gets
  ``<resource name>.azure.lab.invalid.`` (nothing resolves it). A disabled profile, or no endpoint
  to answer with, is NXDOMAIN, as Traffic Manager answers it.
"""
from __future__ import annotations

import ipaddress
import re
import threading
from collections import defaultdict
from typing import Any, Callable, Iterable
from urllib.parse import quote, urlencode

from failover_engine.core.model import CloudDnsConnection, Strategy, TrafficManagerConnection
from failover_engine.lab.emulators import RestError, rest

Records = dict[tuple[str, str], tuple[int, list[str]]]  # as failover_engine.lab.dns.Records

TM_ZONE = "trafficmanager.net."
TM_API_VERSION = "2022-04-01"
TM_DOWN = {"degraded", "stopped", "inactive", "disabled"}
_OCTAL = re.compile(r"\\(\d{3})")


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


# --------------------------------------------------------------------------- Route 53
def route53_records(rrsets: Iterable[dict[str, Any]]) -> Records:
    """A hosted zone's ResourceRecordSets (the API's shape) as a client would be answered (pure)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for rr in rrsets:
        if not rr.get("ResourceRecords"):
            continue  # alias records: not served
        name = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), rr["Name"])  # \052 is '*'
        groups[(_fqdn(name), rr["Type"])].append(rr)
    out: Records = {}
    for key, sets in groups.items():
        chosen = _route53_choice(sets)
        values = list(dict.fromkeys(r["Value"] for s in chosen for r in s["ResourceRecords"]))
        out[key] = (max(int(s.get("TTL", 300)) for s in chosen), values)
    return out


def _route53_choice(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which record sets of one name and type answer (see the module's decisions)."""
    routed = sorted((s for s in sets if s.get("SetIdentifier")), key=lambda s: s["SetIdentifier"])
    if not routed:
        return sets[:1]
    if any("Failover" in s for s in routed):
        primary = [s for s in routed if s.get("Failover") == "PRIMARY"]
        return primary[:1] or routed[:1]
    if any("Weight" in s for s in routed):
        top = max(int(s.get("Weight", 0)) for s in routed)
        return [next(s for s in routed if int(s.get("Weight", 0)) == top)]
    if any(s.get("MultiValueAnswer") for s in routed):
        return routed
    return routed[:1]


class Route53Source:
    """The hosted zones of a Route 53 endpoint (the lab's moto), read with boto3 on every query."""

    kind = "route53"

    def __init__(self, client_factory: Callable[[], Any]):
        self._factory = client_factory
        self._client: Any = None
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def _c(self) -> Any:
        with self._lock:
            if self._client is None:  # made on the first query: starting the server costs nothing
                self._client = self._factory()
            return self._client

    def zones(self) -> list[str]:
        ids: dict[str, str] = {}
        for page in self._c().get_paginator("list_hosted_zones").paginate():
            for zone in page.get("HostedZones", []):
                ids.setdefault(_fqdn(zone["Name"]), zone["Id"].split("/")[-1])
        self._ids = ids
        return list(ids)

    def records(self, zone: str) -> Records:
        for again in (False, True):  # a zone made again (the lab's reset) has a new id: look it up once more
            if again or zone not in self._ids:
                self.zones()
            try:
                pages = self._c().get_paginator("list_resource_record_sets").paginate(HostedZoneId=self._ids[zone])
                return route53_records(rr for page in pages for rr in page.get("ResourceRecordSets", []))
            except Exception as exc:  # noqa: BLE001 - botocore's ClientError, without importing botocore here
                if again or "NoSuchHostedZone" not in str(exc):
                    raise
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------- Cloud DNS
def clouddns_records(rrsets: Iterable[dict[str, Any]]) -> Records:
    """A managed zone's record sets (the v1 API's shape) as a client would be answered (pure)."""
    out: Records = {}
    for rr in rrsets:
        values = rr.get("rrdatas") or _clouddns_policy_values(rr.get("routingPolicy") or {})
        if values:
            out[(_fqdn(rr["name"]), rr["type"])] = (int(rr.get("ttl", 300)), list(values))
    return out


def _clouddns_policy_values(policy: dict[str, Any]) -> list[str]:
    if "primaryBackup" in policy:
        primary = policy["primaryBackup"].get("primaryTargets") or {}
        return list(primary.get("externalEndpoints") or []) + [
            ilb["ipAddress"] for ilb in primary.get("internalLoadBalancers") or [] if ilb.get("ipAddress")]
    if "wrr" in policy:
        items = policy["wrr"].get("items") or []
        if not items:
            return []
        top = max(float(i.get("weight", 0)) for i in items)
        return list(next(i for i in items if float(i.get("weight", 0)) == top).get("rrdatas") or [])
    if "geo" in policy:
        items = policy["geo"].get("items") or []
        return list(items[0].get("rrdatas") or []) if items else []
    return []


class CloudDnsSource:
    """The managed zones of the Cloud DNS emulator in the given projects (plain v1 REST)."""

    kind = "clouddns"

    def __init__(self, url: str, projects: Callable[[], list[str]]):
        self.url = url.rstrip("/")
        self._projects = projects
        self._where: dict[str, tuple[str, str]] = {}  # apex → (project, managed zone)

    def _pages(self, path: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = "?" + urlencode({"pageToken": token}) if token else ""
            body = rest("GET", f"{self.url}/dns/v1/projects/{path}{query}")[1] or {}
            items += body.get(key, [])
            token = body.get("nextPageToken") or ""
            if not token:
                return items

    def zones(self) -> list[str]:
        where: dict[str, tuple[str, str]] = {}
        for project in self._projects():
            for zone in self._pages(f"{quote(project)}/managedZones", "managedZones"):
                where.setdefault(_fqdn(zone["dnsName"]), (project, zone["name"]))
        self._where = where
        return list(where)

    def records(self, zone: str) -> Records:
        if zone not in self._where:
            self.zones()
        project, name = self._where[zone]
        return clouddns_records(self._pages(f"{quote(project)}/managedZones/{quote(name)}/rrsets", "rrsets"))


# --------------------------------------------------------------------------- Traffic Manager
def trafficmanager_records(profile: dict[str, Any]) -> Records:
    """One profile (the ARM GET's shape) as Traffic Manager's DNS would answer it (pure)."""
    props = profile.get("properties") or {}
    if str(props.get("profileStatus", "Enabled")).lower() != "enabled":
        return {}
    dns_config = props.get("dnsConfig") or {}
    name = _fqdn(dns_config.get("fqdn") or f"{dns_config.get('relativeName', '')}.{TM_ZONE}")
    ttl = int(dns_config.get("ttl", 60))
    enabled = [e for e in props.get("endpoints") or []
               if str((e.get("properties") or {}).get("endpointStatus", "Enabled")).lower() == "enabled"]
    healthy = [e for e in enabled
               if str(e["properties"].get("endpointMonitorStatus", "")).lower() not in TM_DOWN] or enabled
    chosen = _trafficmanager_choice(str(props.get("trafficRoutingMethod", "Priority")), healthy)
    targets = [_trafficmanager_target(e) for e in chosen]
    out: Records = {}
    for rtype in ("A", "AAAA", "CNAME"):
        values = [v for t, v in targets if t == rtype]
        if values:
            out[(name, rtype)] = (ttl, values if rtype != "CNAME" else values[:1])
            break
    return out


def _trafficmanager_choice(method: str, endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not endpoints:
        return []
    order = {id(e): i for i, e in enumerate(endpoints)}

    def priority(e: dict[str, Any]) -> tuple[float, int]:
        p = e["properties"].get("priority")
        return (float(p) if p is not None else float("inf"), order[id(e)])

    if method.lower() == "multivalue":
        return endpoints
    if method.lower() == "weighted":
        return [min(endpoints, key=lambda e: (-int(e["properties"].get("weight") or 1), *priority(e)))]
    return [min(endpoints, key=priority)]


def _trafficmanager_target(endpoint: dict[str, Any]) -> tuple[str, str]:
    """(record type, value) an endpoint is answered with."""
    props = endpoint["properties"]
    target = props.get("target")
    if not target:
        resource = str(props.get("targetResourceId") or endpoint.get("name") or "endpoint").rstrip("/")
        return "CNAME", f"{resource.rsplit('/', 1)[-1].lower()}.azure.lab.invalid."
    try:
        ip = ipaddress.ip_address(target)
    except ValueError:
        return "CNAME", _fqdn(target)
    return ("A" if ip.version == 4 else "AAAA"), str(ip)


class TrafficManagerSource:
    """The given profiles of the Traffic Manager emulator (ARM over HTTPS with the lab's token)."""

    kind = "trafficmanager"

    def __init__(self, url: str, ca_file: str, token: str, profiles: Callable[[], list[tuple[str, str, str]]]):
        self.url, self.ca_file, self.token = url.rstrip("/"), ca_file, token
        self._profiles = profiles  # (subscription, resource group, profile) of each

    def zones(self) -> list[str]:
        return [TM_ZONE] if self._profiles() else []

    def records(self, zone: str) -> Records:
        out: Records = {}
        if zone != TM_ZONE:
            return out
        for sub, rg, name in self._profiles():
            url = (f"{self.url}/subscriptions/{quote(sub)}/resourceGroups/{quote(rg)}/providers/"
                   f"Microsoft.Network/trafficmanagerprofiles/{quote(name)}?api-version={TM_API_VERSION}")
            try:
                profile = rest("GET", url, token=self.token, ca_file=self.ca_file)[1] or {}
            except RestError as exc:
                if exc.status == 404:
                    continue  # not created (yet): its name does not exist
                raise
            out.update(trafficmanager_records(profile))
        return out


# --------------------------------------------------------------------------- the lab's
def strategy_projects(strategy: Strategy | None) -> list[str]:
    """The Cloud DNS projects of a strategy's connections (pure)."""
    conns = strategy.connections.values() if strategy is not None else []
    return sorted({c.project for c in conns if isinstance(c, CloudDnsConnection)})


def strategy_profiles(strategy: Strategy | None) -> list[tuple[str, str, str]]:
    """(subscription, resource group, profile) of a strategy's Traffic Manager bindings (pure)."""
    found: dict[str, tuple[str, str, str]] = {}
    for service in strategy.services.values() if strategy is not None else []:
        for b in service.routing:
            conn = strategy.connections.get(b.connection or "") if b.adapter == "trafficmanager" else None
            if isinstance(conn, TrafficManagerConnection):
                found.setdefault(f"{b.resource_group}/{b.profile}".lower(),
                                 (conn.subscription_id, b.resource_group, b.profile))
    return list(found.values())


def lab_dns_sources(route53_client: Callable[[], Any], strategy: Callable[[], Strategy | None],
                    clouddns: Any = None, trafficmanager: Any = None, token: str = "") -> list[Any]:
    """The lab's sources: moto's Route 53 (always), and the Cloud DNS and Traffic Manager emulators
    when they run, for the projects and profiles of the strategy ``strategy()`` gives at query time."""
    out: list[Any] = [Route53Source(route53_client)]
    if clouddns is not None:
        out.append(CloudDnsSource(clouddns.url, lambda: strategy_projects(strategy())))
    if trafficmanager is not None:
        out.append(TrafficManagerSource(trafficmanager.url, trafficmanager.ca_file, token,
                                        lambda: strategy_profiles(strategy())))
    return out
