"""Seed the lab's Cloud DNS emulator with a strategy's steady state (the primary active).

For every ``clouddns`` binding: the managed zone (in the binding's connection's project) and the
record set as the binding's mode holds it while the service's primary endpoint is active. Record
sets are written by identity: a record set that already holds the steady state is left alone, a
different one is replaced in the same atomic change. Plain REST to the emulator (the v1 API).
"""
from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import quote, urlencode

from failover_engine.core.model import CloudDnsConnection, CloudDnsRouting, Service, Strategy
from failover_engine.lab.emulators import RestError, rest
from failover_engine.lab.regions import LabError


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def clouddns_steady_state(binding: CloudDnsRouting, service: Service) -> dict[str, Any]:
    """The record set of a binding while the service's primary endpoint is active (pure).

    simple: the primary's values; primary_backup: the primary's values as primary targets, every
    other endpoint a backup geo target at its ``location``; weighted: a WRR item per endpoint,
    ``active_weight`` for the primary, ``inactive_weight`` for the others.
    """
    primary, eps = service.primary.name, binding.endpoints
    if primary not in eps and binding.mode != "weighted":
        raise LabError(f"clouddns binding {binding.record}: the primary endpoint {primary!r} is not bound; "
                       "the lab seeds the steady state with the primary active")
    rrset: dict[str, Any] = {"name": _fqdn(binding.record), "type": binding.type, "ttl": binding.ttl}
    if binding.mode == "simple":
        rrset["rrdatas"] = list(eps[primary].values)
    elif binding.mode == "primary_backup":
        policy: dict[str, Any] = {
            "primaryTargets": {"externalEndpoints": list(eps[primary].values)},
            "backupGeoTargets": {"items": [{"location": b.location, "rrdatas": list(b.values)}
                                           for name, b in eps.items() if name != primary]}}
        if binding.trickle_ratio:
            policy["trickleTraffic"] = binding.trickle_ratio
        rrset["routingPolicy"] = {"primaryBackup": policy}
    else:
        rrset["routingPolicy"] = {"wrr": {"items": [
            {"weight": binding.active_weight if name == primary else binding.inactive_weight,
             "rrdatas": list(b.values)} for name, b in eps.items()]}}
    return rrset


def zone_dns_names(bindings: list[CloudDnsRouting]) -> dict[str, str]:
    """Managed zone → the DNS name to create it with (pure): the longest common suffix of the
    parent domains of the records bound to it (the record itself when it has no parent)."""
    suffixes: dict[str, list[str]] = {}
    for b in bindings:
        labels = _fqdn(b.record).rstrip(".").split(".")
        parent = labels[1:] or labels
        common = suffixes.setdefault(b.managed_zone, parent)
        n = 0
        while n < min(len(common), len(parent)) and common[-1 - n] == parent[-1 - n]:
            n += 1
        suffixes[b.managed_zone] = common[len(common) - n:] if n else common
        if not n:
            raise LabError(f"managed zone {b.managed_zone!r}: records {b.record} and {'.'.join(common)} "
                           "share no domain; bind them to different managed zones")
    return {zone: ".".join(labels) + "." for zone, labels in suffixes.items()}


def _bindings(strategy: Strategy) -> Iterator[tuple[Service, CloudDnsRouting]]:
    for service in strategy.services.values():
        for binding in service.routing:
            if binding.adapter == "clouddns":
                yield service, binding


def _project(strategy: Strategy, binding: CloudDnsRouting, emulator_url: str) -> str:
    """The binding's project, once its connection is known to point at the lab's emulator."""
    conn = strategy.connections.get(binding.connection or "")
    if not isinstance(conn, CloudDnsConnection) or (conn.endpoint_url or "").rstrip("/") != emulator_url:
        raise LabError(f"clouddns binding {binding.record}: connection {binding.connection!r} must be a clouddns "
                       "connection with endpoint_url: \"{clouddns_url}\" and credentials: anonymous; the lab "
                       "seeds and talks to its local emulator only")
    return conn.project


def seed_clouddns(emulator_url: str, strategy: Strategy) -> dict[str, str]:
    """Create the managed zones and write the steady state of every clouddns binding.

    Returns ``"project/zone"`` → the zone's DNS name. Raises :class:`LabError` naming the binding
    when the emulator refuses a write.
    """
    emulator_url = emulator_url.rstrip("/")
    pairs = list(_bindings(strategy))
    dns_names = zone_dns_names([b for _unused, b in pairs])
    zones: dict[str, str] = {}
    for service, binding in pairs:
        project = _project(strategy, binding, emulator_url)
        base = f"{emulator_url}/dns/v1/projects/{quote(project)}/managedZones"
        key = f"{project}/{binding.managed_zone}"
        if key not in zones:
            zones[key] = _ensure_zone(base, binding.managed_zone, dns_names[binding.managed_zone])
        rrset = clouddns_steady_state(binding, service)
        try:
            _write_rrset(f"{base}/{quote(binding.managed_zone)}", rrset)
        except RestError as exc:
            raise LabError(f"seeding clouddns record {rrset['name']} in managed zone {key} "
                           f"({zones[key]}): {exc}") from None
    return zones


def _ensure_zone(base: str, name: str, dns_name: str) -> str:
    """The zone's DNS name; the zone is created when missing."""
    try:
        return rest("GET", f"{base}/{quote(name)}")[1]["dnsName"]
    except RestError as exc:
        if exc.status != 404:
            raise
    body = {"name": name, "dnsName": dns_name, "description": "failover lab"}
    return rest("POST", base, body)[1]["dnsName"]


def _write_rrset(zone_url: str, rrset: dict[str, Any]) -> None:
    """One atomic change: the steady state added, whatever holds its name/type now deleted."""
    query = urlencode({"name": rrset["name"], "type": rrset["type"]})
    existing = rest("GET", f"{zone_url}/rrsets?{query}")[1].get("rrsets", [])
    current = [{k: v for k, v in r.items() if k != "kind"} for r in existing]
    if current == [rrset]:
        return
    rest("POST", f"{zone_url}/changes", {"additions": [rrset], "deletions": current})
