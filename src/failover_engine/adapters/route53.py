"""AWS Route 53: swap a simple record, flip PRIMARY/SECONDARY failover records, or move weights.

Every switch in one hosted zone is ONE ChangeResourceRecordSets batch (atomic), chunked only
at the API's limit (1,000 ResourceRecord elements, UPSERT counting twice), never split inside
one record name/type (a failover pair must flip together). Reads are batched per zone: a few
records are read with targeted ``list_resource_record_sets`` calls, many with one zone listing.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

from ..errors import Route53Error
from ..model import Route53Connection, Route53Routing
from ..plan import Assignment, Attrs, Change, ResourceKey
from .aws import AwsCalls
from .base import Adapter, ApplyReceipt, Capability

RETRYABLE = {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded"}
MAX_RECORDS_PER_BATCH = 1000  # ResourceRecord elements; UPSERT counts twice (AWS quota)
MAX_VALUE_CHARS_PER_BATCH = 32000
TARGETED_READ_LIMIT = 4  # up to this many record names in a zone: targeted reads; beyond: list the zone


def fqdn(name: str) -> str:
    name = name.strip().lower().replace("\\052", "*")
    return name if name.endswith(".") else name + "."


class Route53Adapter(AwsCalls, Adapter):
    kind = "route53"
    aws_service = "route53"
    aws_label = "Route 53"
    error_class = Route53Error
    retryable_codes = frozenset(RETRYABLE)
    capabilities = frozenset({Capability.SIMPLE_SWAP, Capability.FAILOVER_RECORDS, Capability.WEIGHTED,
                              Capability.ATOMIC_BATCH, Capability.READ_BACK})

    def __init__(self, connection: Route53Connection | None = None, *, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connection = connection or Route53Connection()
        self._client = client
        self._sleep = sleep
        self._zone_ids: dict[str, str] = {}
        self.calls = 0

    # ------------------------------------------------------------------ validation (pure)
    @classmethod
    def binding_problems(cls, binding: Route53Routing) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
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

    # ------------------------------------------------------------------ desired state (pure)
    def zone_id(self, binding: Route53Routing) -> str:
        if binding.hosted_zone_id:
            return binding.hosted_zone_id.split("/")[-1]
        name = fqdn(binding.hosted_zone or "")
        if name not in self._zone_ids:
            resp = self._call("list_hosted_zones_by_name", resource=name, DNSName=name, MaxItems="1")
            zones = [z for z in resp.get("HostedZones", []) if fqdn(z["Name"]) == name]
            if not zones:
                raise Route53Error(f"no hosted zone named {name}", resource=name, code="NoSuchHostedZone")
            self._zone_ids[name] = zones[0]["Id"].split("/")[-1]
        return self._zone_ids[name]

    def _key(self, binding: Route53Routing, endpoint: str | None) -> ResourceKey:
        sid = None
        if binding.mode != "simple" and endpoint is not None:
            sid = binding.endpoints[endpoint].set_identifier or endpoint
        return ResourceKey("route53", self.zone_id(binding), fqdn(binding.record), binding.type, sid)

    def desired(self, binding: Route53Routing, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        active = [ep for ep, w in assignment.items() if w > 0]
        if binding.mode == "simple":
            if len(active) != 1:
                raise Route53Error(f"simple mode needs exactly one active endpoint, got {active}",
                                   resource=binding.record)
            return {self._key(binding, None): {"ttl": binding.ttl, "values": list(binding.endpoints[active[0]].values)}}
        out: dict[ResourceKey, Attrs] = {}
        for name, eb in binding.endpoints.items():
            attrs: dict[str, Any] = {"ttl": binding.ttl, "values": list(eb.values)}
            if binding.mode == "failover":
                attrs["failover"] = "PRIMARY" if name in active else "SECONDARY"
            else:
                w = assignment.get(name, 0)
                # an endpoint in rotation never rounds down to weight 0 (it would silently drop out)
                attrs["weight"] = max(1, round(w * binding.active_weight / 100)) if w > 0 else binding.inactive_weight
            if eb.health_check_id:
                attrs["health_check_id"] = eb.health_check_id
            out[self._key(binding, name)] = attrs
        return out

    def active_of(self, binding: Route53Routing, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        if binding.mode == "simple":
            cur = current.get(self._key(binding, None))
            if not cur:
                return None
            for name, eb in binding.endpoints.items():
                if sorted(eb.values) == sorted(cur["values"]):
                    return {name: 100}
            return None
        if binding.mode == "failover":
            primaries = [n for n in binding.endpoints
                         if (current.get(self._key(binding, n)) or {}).get("failover") == "PRIMARY"]
            return {primaries[0]: 100} if len(primaries) == 1 else None
        weights = {n: (current.get(self._key(binding, n)) or {}).get("weight") for n in binding.endpoints}
        if any(w is None for w in weights.values()):
            return None
        active = {n: round(w * 100 / binding.active_weight) for n, w in weights.items() if w > binding.inactive_weight}
        return active or None

    # ------------------------------------------------------------------ read (I/O, batched)
    def read(self, bindings: Sequence[Route53Routing]) -> dict[ResourceKey, Attrs | None]:
        wanted: dict[str, set[ResourceKey]] = defaultdict(set)
        for b in bindings:
            names: list[str | None] = [None] if b.mode == "simple" else list(b.endpoints)
            for ep in names:
                k = self._key(b, ep)
                wanted[k.scope].add(k)
        out: dict[ResourceKey, Attrs | None] = {}
        for zone, keys in wanted.items():
            found = self._read_zone(zone, keys)
            for k in keys:
                out[k] = found.get(k)
        return out

    def _read_zone(self, zone: str, keys: set[ResourceKey]) -> dict[ResourceKey, Attrs]:
        found: dict[ResourceKey, Attrs] = {}
        expected: dict[tuple[str, str], int] = defaultdict(int)
        for k in keys:
            expected[(k.name, k.type)] += 1
        if len(expected) <= TARGETED_READ_LIMIT:
            for (name, typ), count in sorted(expected.items()):
                kw: dict[str, Any] = {"StartRecordName": name, "StartRecordType": typ}
                while True:  # ask for the record sets expected at that name; page on if there are more
                    resp = self._call("list_resource_record_sets", resource=f"{zone}/{name}",
                                      HostedZoneId=zone, MaxItems=str(count), **kw)
                    sets = resp["ResourceRecordSets"]
                    for rrs in sets:
                        if fqdn(rrs["Name"]) == name and rrs["Type"] == typ:
                            found[self._key_of(zone, rrs)] = self._attrs_of(rrs)
                    more_of_ours = (fqdn(resp.get("NextRecordName", "")), resp.get("NextRecordType")) == (name, typ)
                    if not resp.get("IsTruncated") or not more_of_ours:
                        break
                    kw = {"StartRecordName": resp["NextRecordName"], "StartRecordType": resp["NextRecordType"]}
                    if resp.get("NextRecordIdentifier"):
                        kw["StartRecordIdentifier"] = resp["NextRecordIdentifier"]
            return found
        kw = {}
        while True:
            resp = self._call("list_resource_record_sets", resource=zone, HostedZoneId=zone, MaxItems="300", **kw)
            for rrs in resp["ResourceRecordSets"]:
                k = self._key_of(zone, rrs)
                if k in keys:
                    found[k] = self._attrs_of(rrs)
            if not resp.get("IsTruncated"):
                return found
            kw = {"StartRecordName": resp["NextRecordName"], "StartRecordType": resp["NextRecordType"]}
            if resp.get("NextRecordIdentifier"):
                kw["StartRecordIdentifier"] = resp["NextRecordIdentifier"]

    @staticmethod
    def _key_of(zone: str, rrs: dict[str, Any]) -> ResourceKey:
        return ResourceKey("route53", zone, fqdn(rrs["Name"]), rrs["Type"], rrs.get("SetIdentifier"))

    @staticmethod
    def _attrs_of(rrs: dict[str, Any]) -> Attrs:
        attrs: dict[str, Any] = {"ttl": int(rrs.get("TTL", 0)),
                                 "values": [r["Value"] for r in rrs.get("ResourceRecords", [])]}
        if "Failover" in rrs:
            attrs["failover"] = rrs["Failover"]
        if "Weight" in rrs:
            attrs["weight"] = int(rrs["Weight"])
        if rrs.get("HealthCheckId"):
            attrs["health_check_id"] = rrs["HealthCheckId"]
        if "AliasTarget" in rrs:
            attrs["alias_target"] = rrs["AliasTarget"]
        return attrs

    # ------------------------------------------------------------------ apply (I/O, batched)
    @staticmethod
    def _rrset(key: ResourceKey, attrs: Attrs) -> dict[str, Any]:
        rrs: dict[str, Any] = {"Name": key.name, "Type": key.type, "TTL": int(attrs["ttl"]),
                               "ResourceRecords": [{"Value": v} for v in attrs["values"]]}
        if key.set_identifier:
            rrs["SetIdentifier"] = key.set_identifier
        if "failover" in attrs:
            rrs["Failover"] = attrs["failover"]
        if "weight" in attrs:
            rrs["Weight"] = int(attrs["weight"])
        if attrs.get("health_check_id"):
            rrs["HealthCheckId"] = attrs["health_check_id"]
        return rrs

    @classmethod
    def batches_for(cls, changes: Sequence[Change]) -> dict[str, list[list[dict[str, Any]]]]:
        """Group changes into ChangeResourceRecordSets batches per zone (pure; exposed for tests)."""
        by_zone: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for c in changes:
            if c.action == "noop":
                continue
            if c.after is not None:
                entry = {"Action": "UPSERT", "ResourceRecordSet": cls._rrset(c.key, c.after)}
            else:
                entry = {"Action": "DELETE", "ResourceRecordSet": cls._rrset(c.key, c.before)}  # type: ignore[arg-type]
            by_zone[c.key.scope][(c.key.name, c.key.type)].append(entry)
        out: dict[str, list[list[dict[str, Any]]]] = {}
        for zone, groups in by_zone.items():
            batches: list[list[dict[str, Any]]] = [[]]
            weight = chars = 0
            for group in groups.values():  # a name/type group never straddles two batches
                gw = sum(len(e["ResourceRecordSet"]["ResourceRecords"]) * (2 if e["Action"] == "UPSERT" else 1)
                         for e in group)
                gc = sum(len(r["Value"]) * (2 if e["Action"] == "UPSERT" else 1)  # UPSERT counts twice
                         for e in group for r in e["ResourceRecordSet"]["ResourceRecords"])
                if batches[-1] and (weight + gw > MAX_RECORDS_PER_BATCH or chars + gc > MAX_VALUE_CHARS_PER_BATCH):
                    batches.append([])
                    weight = chars = 0
                batches[-1].extend(group)
                weight += gw
                chars += gc
            out[zone] = batches
        return out

    def apply(self, changes: Sequence[Change], *, comment: str = "failover-engine") -> ApplyReceipt:
        start = self.calls
        receipt = ApplyReceipt()
        written: list[ResourceKey] = []
        try:
            for zone, batches in self.batches_for(changes).items():
                for batch in batches:  # a batch is atomic: written only once accepted
                    resp = self._call("change_resource_record_sets", resource=zone, HostedZoneId=zone,
                                      ChangeBatch={"Comment": comment[:256], "Changes": batch})
                    written.extend(self._key_of(zone, e["ResourceRecordSet"]) for e in batch)
                    info = resp["ChangeInfo"]
                    receipt.batches.append({"zone": zone, "changes": len(batch), "change_id": info["Id"]})
            for b in receipt.batches:  # all batches sent first: their propagation overlaps
                self._wait_insync(b["change_id"], b["zone"])
        except Route53Error as exc:
            exc.written = tuple(written)
            raise
        receipt.calls = self.calls - start
        return receipt

    def _wait_insync(self, change_id: str, zone: str) -> None:
        """Waiter as data: poll get_change every `delay` s until INSYNC or the timeout."""
        delay, deadline = 2.0, time.monotonic() + self.connection.propagation_timeout
        while True:
            status = self._call("get_change", resource=zone, Id=change_id)["ChangeInfo"]["Status"]
            if status == "INSYNC":
                return
            if time.monotonic() + delay > deadline:
                raise Route53Error(f"change {change_id} still {status} after "
                                   f"{self.connection.propagation_timeout:.0f}s", resource=zone, code="Timeout")
            self._sleep(delay)
