"""Record sets as attributes and back, and change bodies from plan changes (pure: no I/O).

Attributes are the canonical, comparable form a plan shows (sorted values, floats for weights):

* plain record set: ``{"ttl": 60, "values": ["192.0.2.1"]}``
* ``routingPolicy.primaryBackup``: ``{"ttl", "primary": [ips], "backup": [{"location", "values"}],
  "trickle_ratio": 0.1}`` (backups sorted by location)
* ``routingPolicy.wrr``: ``{"ttl", "wrr": [{"weight": 100.0, "values": [...]}]}`` (items sorted by values)
* any other shape (geo policy, health-checked items, internal load balancer targets):
  ``{"ttl", "routing_policy": <as the API gave it>}`` - shown and replaced, never guessed at.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, Mapping, Sequence

from failover_engine.core.errors import CloudDnsError
from failover_engine.core.plan import Attrs, Change, ResourceKey

MAX_RRSETS_PER_CHANGE = 1000  # default Cloud DNS quotas rrsetAdditionsPerChange / rrsetDeletionsPerChange

Rrset = dict[str, Any]


def fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def in_zone(name: str, dns_name: str) -> bool:
    name, dns_name = fqdn(name), fqdn(dns_name)
    return name == dns_name or name.endswith("." + dns_name)


def _values(v: Any) -> list[str]:
    return sorted(str(x) for x in (v or []))


def _pb_attrs(pb: Mapping[str, Any]) -> dict[str, Any] | None:
    primary = pb.get("primaryTargets") or {}
    items = (pb.get("backupGeoTargets") or {}).get("items") or []
    if primary.get("internalLoadBalancers") or not primary.get("externalEndpoints"):
        return None
    if not items or any(not i.get("rrdatas") or i.get("healthCheckedTargets") for i in items):
        return None
    backup = [{"location": str(i.get("location", "")).lower(), "values": _values(i["rrdatas"])} for i in items]
    return {"primary": _values(primary["externalEndpoints"]), "backup": sorted(backup, key=lambda b: b["location"]),
            "trickle_ratio": float(pb.get("trickleTraffic", 0.0))}


def _wrr_attrs(wrr: Mapping[str, Any]) -> dict[str, Any] | None:
    items = wrr.get("items") or []
    if not items or any(not i.get("rrdatas") or i.get("healthCheckedTargets") for i in items):
        return None
    out = [{"weight": float(i.get("weight", 0.0)), "values": _values(i["rrdatas"])} for i in items]
    return {"wrr": sorted(out, key=lambda i: i["values"])}


def attrs_of(rrset: Mapping[str, Any]) -> Attrs:
    """The attributes of a record set as the API answers it."""
    ttl = int(rrset.get("ttl", 0))
    policy = rrset.get("routingPolicy")
    if not policy:
        return {"ttl": ttl, "values": _values(rrset.get("rrdatas"))}
    known = None
    if policy.get("primaryBackup") and not policy.get("wrr") and not policy.get("geo"):
        known = _pb_attrs(policy["primaryBackup"])
    elif policy.get("wrr") and not policy.get("geo") and not policy.get("primaryBackup"):
        known = _wrr_attrs(policy["wrr"])
    if known is None:
        return {"ttl": ttl, "routing_policy": copy.deepcopy(dict(policy))}
    return {"ttl": ttl, **known}


def rrset_of(key: ResourceKey, attrs: Attrs) -> Rrset:
    """The API record set with these attributes (the inverse of :func:`attrs_of`)."""
    rrs: Rrset = {"name": key.name, "type": key.type, "ttl": int(attrs["ttl"])}
    if "values" in attrs:
        rrs["rrdatas"] = list(attrs["values"])
    elif "primary" in attrs:
        pb: dict[str, Any] = {
            "primaryTargets": {"externalEndpoints": list(attrs["primary"])},
            "backupGeoTargets": {"items": [{"location": b["location"], "rrdatas": list(b["values"])}
                                           for b in attrs["backup"]]}}
        if attrs.get("trickle_ratio"):
            pb["trickleTraffic"] = float(attrs["trickle_ratio"])
        rrs["routingPolicy"] = {"primaryBackup": pb}
    elif "wrr" in attrs:
        rrs["routingPolicy"] = {"wrr": {"items": [{"weight": float(i["weight"]), "rrdatas": list(i["values"])}
                                                  for i in attrs["wrr"]]}}
    elif "routing_policy" in attrs:
        rrs["routingPolicy"] = copy.deepcopy(dict(attrs["routing_policy"]))
    else:
        raise CloudDnsError(f"cannot express attributes {dict(attrs)} as a record set", resource=str(key))
    return rrs


def carry_over(new: Rrset, old: Mapping[str, Any] | None) -> Rrset:
    """Keep what the binding does not manage from the record set being replaced: the routing
    policy's ``healthCheck`` and, for primaryBackup, the backup targets' ``enableFencing``."""
    old_policy, new_policy = (old or {}).get("routingPolicy") or {}, new.get("routingPolicy")
    if not new_policy or not old_policy:
        return new
    if old_policy.get("healthCheck"):
        new_policy["healthCheck"] = old_policy["healthCheck"]
    old_fence = ((old_policy.get("primaryBackup") or {}).get("backupGeoTargets") or {}).get("enableFencing")
    if old_fence and "primaryBackup" in new_policy:
        new_policy["primaryBackup"]["backupGeoTargets"]["enableFencing"] = True
    return new


def _deletion(c: Change, seen: Mapping[ResourceKey, Rrset]) -> Rrset:
    """The before-state exactly as the API holds it: the record set last read when it is the one
    planned against (it carries fields attributes do not show), else rebuilt from ``before``."""
    raw = seen.get(c.key)
    if raw is not None and dict(attrs_of(raw)) == dict(c.before or {}):
        return {k: copy.deepcopy(v) for k, v in raw.items() if k != "kind"}
    return rrset_of(c.key, c.before)  # type: ignore[arg-type]


def change_bodies(changes: Sequence[Change],
                  seen: Mapping[ResourceKey, Rrset] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Group ``changes`` into change bodies per managed zone: deletions of the current record sets,
    additions of the new ones; one body per zone unless it exceeds the per-change quota."""
    seen = seen or {}
    by_zone: dict[str, list[Change]] = defaultdict(list)
    keys: set[ResourceKey] = set()
    for c in changes:
        if c.action == "noop":
            continue
        if c.key in keys:
            raise CloudDnsError("two changes to the same record set in one apply; a record set can change "
                                "once per change", resource=str(c.key))
        keys.add(c.key)
        by_zone[c.key.scope].append(c)
    out: dict[str, list[dict[str, Any]]] = {}
    for zone, zone_changes in by_zone.items():
        bodies: list[dict[str, Any]] = [{"additions": [], "deletions": []}]
        for c in zone_changes:
            body = bodies[-1]
            if max(len(body["additions"]), len(body["deletions"])) >= MAX_RRSETS_PER_CHANGE:
                body = {"additions": [], "deletions": []}
                bodies.append(body)
            old = _deletion(c, seen) if c.before is not None else None
            if old is not None:
                body["deletions"].append(old)
            if c.after is not None:
                body["additions"].append(carry_over(rrset_of(c.key, c.after), old))
        out[zone] = bodies
    return out
