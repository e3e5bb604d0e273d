"""What each kind of routing binding must hold, whoever steers it (pure rules, no provider call).

``binding_problems(binding)`` gives every (field path, message) that the binding's adapter could
not honour: the strategy loader reports them with their place in the file, and every adapter's
``binding_problems`` answers with the same rules. Limits that are the providers' API rules live
here too (the adapters import them)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the model imports these rules; at run time the rules only read attributes
    from failover_engine.core.model import (
        ClassicElbRouting,
        CloudDnsRouting,
        Elbv2Routing,
        Route53Routing,
        TrafficManagerRouting,
        ZonalShiftRouting,
    )

Problems = list[tuple[Any, str]]

PRIORITY_MAX = 1000  # Traffic Manager priorities and weights are 1-1000 (API rule)
MIN_EXPIRY_S = 60.0  # an ARC zonal shift expires in 1 minute ...
MAX_EXPIRY_S = 3 * 24 * 3600.0  # ... to 3 days (API rule)


def _route53(binding: Route53Routing) -> Problems:
    out: Problems = []
    if not binding.hosted_zone_id and not binding.hosted_zone:
        out.append(("hosted_zone_id", "give hosted_zone_id or hosted_zone"))
    if binding.mode == "failover" and len(binding.endpoints) != 2:
        out.append(("endpoints", "failover mode binds exactly two endpoints (one PRIMARY, one SECONDARY)"))
    if binding.mode in ("failover", "weighted"):
        sids = [b.set_identifier or name for name, b in binding.endpoints.items()]
        if len(set(sids)) != len(sids):
            out.append(("endpoints", "set_identifier values must be unique"))
    if binding.type == "CNAME":
        for name, b in binding.endpoints.items():
            if len(b.values) != 1:
                out.append((f"endpoints.{name}.values", "a CNAME record has exactly one value"))
    if binding.mode == "weighted" and binding.active_weight <= binding.inactive_weight:
        out.append(("active_weight", "must be greater than inactive_weight"))
    return out


def _clouddns(binding: CloudDnsRouting) -> Problems:
    out: Problems = []
    eps = binding.endpoints
    if binding.type == "CNAME":
        out += [(f"endpoints.{n}.values", "a CNAME record has exactly one value")
                for n, b in eps.items() if len(b.values) != 1]
    seen: dict[tuple[str, ...], str] = {}
    for name, b in eps.items():
        other = seen.setdefault(tuple(sorted(b.values)), name)
        if other != name:
            out.append((f"endpoints.{name}.values", f"same values as endpoint {other!r}: the active "
                        "endpoint could not be told from the record set"))
    if binding.mode == "primary_backup":
        out += _clouddns_primary_backup(binding)
    elif binding.trickle_ratio:
        out.append(("trickle_ratio", "applies to mode primary_backup only"))
    if binding.mode == "weighted" and binding.active_weight <= binding.inactive_weight:
        out.append(("active_weight", "must be greater than inactive_weight"))
    return out


def _clouddns_primary_backup(binding: CloudDnsRouting) -> Problems:
    out: Problems = []
    if binding.type not in ("A", "AAAA"):
        out.append(("type", "primary_backup health-checks its primary targets (IP addresses): use A or AAAA"))
    if len(binding.endpoints) < 2:
        out.append(("endpoints", "primary_backup needs one primary and at least one backup endpoint"))
    locations: dict[str, str] = {}
    for name, b in binding.endpoints.items():
        if not b.location:
            out.append((f"endpoints.{name}.location", "primary_backup needs the GCP region of every endpoint "
                        "(any of them may become a backup geo target), e.g. location: us-east1"))
            continue
        other = locations.setdefault(b.location.lower(), name)
        if other != name:
            out.append((f"endpoints.{name}.location", f"location {b.location!r} is also endpoint {other!r}'s: "
                        "backup geo targets need distinct locations"))
    return out


def _trafficmanager(binding: TrafficManagerRouting) -> Problems:
    out: Problems = []
    seen: dict[str, str] = {}
    for name, eb in binding.endpoints.items():
        other = seen.get(eb.endpoint.lower())
        if other is not None:
            out.append((("endpoints", name, "endpoint"),
                        f"Traffic Manager endpoint {eb.endpoint!r} is already bound to {other!r}; each "
                        "service endpoint needs its own"))
        seen.setdefault(eb.endpoint.lower(), name)
    if binding.mode == "weighted" and binding.active_weight <= binding.inactive_weight:
        out.append(("active_weight", "must be greater than inactive_weight"))
    if binding.mode == "priority" and len(binding.endpoints) > PRIORITY_MAX:
        out.append(("endpoints", f"a priority profile holds at most {PRIORITY_MAX} endpoints"))
    if not binding.endpoints:
        out.append(("endpoints", "bind at least one endpoint"))
    return out


def _zonalshift(binding: ZonalShiftRouting) -> Problems:
    out: Problems = []
    if len(binding.endpoints) < 2:
        out.append(("endpoints", "a zonal shift needs at least two zones (it moves traffic to the others)"))
    zones = [b.zone for b in binding.endpoints.values()]
    if len(set(zones)) != len(zones):
        out.append(("endpoints", "each endpoint names a different zone"))
    if not MIN_EXPIRY_S <= binding.expires_in <= MAX_EXPIRY_S:
        out.append(("expires_in", "a zonal shift expires in 1 minute to 3 days"))
    if len(binding.comment) > 128:
        out.append(("comment", "at most 128 characters (the API's limit)"))
    return out


def _zones(binding: Any, stays: str) -> Problems:
    """A load balancer's zone failover: two zones at least (``stays``: what the last one must keep
    doing), each endpoint its own zone."""
    out: Problems = []
    if len(binding.endpoints) < 2:
        out.append(("endpoints", f"zone failover needs at least two zones (one must stay {stays})"))
    zones = [b.zone for b in binding.endpoints.values()]
    dupes = sorted({z for z in zones if zones.count(z) > 1})
    if dupes:
        out.append(("endpoints", f"each endpoint needs its own zone; repeated: {', '.join(dupes)}"))
    return out


def _elb(binding: ClassicElbRouting) -> Problems:
    return _zones(binding, "enabled")


def _elbv2(binding: Elbv2Routing) -> Problems:
    """Two distinct zones at least, distinct target groups. (Instance targets only: the target
    type is known only to the provider and is checked at read.)"""
    out = _zones(binding, "in service")
    arns = binding.target_group_arns
    if len(set(arns)) != len(arns):
        out.append(("target_group_arns", "each target group may be listed once"))
    return out


_RULES: dict[str, Callable[[Any], Problems]] = {
    "route53": _route53, "clouddns": _clouddns, "trafficmanager": _trafficmanager,
    "zonalshift": _zonalshift, "elb": _elb, "elbv2": _elbv2,
}


def binding_problems(binding: Any) -> Problems:
    """Every (field path, message) that ``binding`` breaks; [] for a kind with no rules of its own."""
    rule = _RULES.get(getattr(binding, "adapter", ""))
    return rule(binding) if rule else []
