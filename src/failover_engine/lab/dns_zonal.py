"""The lab's load balancers in DNS: what a client resolving a load balancer behind ARC zonal shift is told.

An Application Load Balancer's DNS name answers the addresses of its nodes, one per availability
zone in rotation; a zonal shift takes the zone's addresses out of the answer (that is how ARC
zonal shift moves traffic). :class:`ZonalShiftSource` plays that for every resource registered in
the lab's zonal shift emulator: ``<name>-<id>.<region>.elb.amazonaws.com.`` (from the resource's
ARN, :func:`load_balancer_name`) answers one A record per zone not shifted away, the zone's node
address :func:`zone_address` (``10.0.<n>.10`` for the resource's n-th zone), with the lab's TTL.
The emulator is read in process, on every query. Only the lab's DNS server answers these names.
"""
from __future__ import annotations

from typing import Any

Records = dict[tuple[str, str], tuple[int, list[str]]]  # as failover_engine.lab.dns.Records

ELB_SUFFIX = "elb.amazonaws.com."


def load_balancer_name(arn: str) -> str | None:
    """The DNS name of a load balancer ARN (``...:loadbalancer/app/<name>/<id>``), or None for
    another resource."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "elasticloadbalancing":
        return None
    path = parts[5].split("/")
    if len(path) < 3 or path[0] != "loadbalancer":
        return None
    name, ident = (path[2], path[3]) if len(path) >= 4 else (path[1], path[2])
    return f"{name}-{ident}.{parts[3]}.{ELB_SUFFIX}".lower()


def zone_address(index: int) -> str:
    """The node address of a load balancer's ``index``-th zone (0-based)."""
    return f"10.0.{index + 1}.10"


def zonal_records(resources: dict[str, list[str]], away: dict[str, set[str]], ttl: int) -> Records:
    """Every load balancer's A records: the zones of ``resources`` (ARN → zones) not in ``away``
    (ARN → zones shifted away); all of them when every zone is away (pure)."""
    out: Records = {}
    for arn, zones in resources.items():
        name = load_balancer_name(arn)
        if name is None or not zones:
            continue
        kept = [zone_address(i) for i, zone in enumerate(zones) if zone not in away.get(arn, set())]
        out[(name, "A")] = (ttl, kept or [zone_address(i) for i in range(len(zones))])
    return out


class ZonalShiftSource:
    """The load balancers of the lab's zonal shift emulator (in process) as their DNS answers them."""

    kind = "zonalshift"

    def __init__(self, emulator: Any, ttl: int):
        self.emulator = emulator
        self.ttl = ttl

    def _records(self) -> Records:
        resources = {arn: list(zones) for arn, zones in dict(self.emulator.resources).items()}
        away: dict[str, set[str]] = {}
        for shift in self.emulator.shifts(status="ACTIVE"):
            away.setdefault(shift["resourceIdentifier"], set()).add(shift["awayFrom"])
        return zonal_records(resources, away, self.ttl)

    def zones(self) -> list[str]:
        return sorted({name.split(".", 1)[1] for name, _rtype in self._records()})

    def records(self, zone: str) -> Records:
        return {k: v for k, v in self._records().items() if k[0].endswith("." + zone)}
