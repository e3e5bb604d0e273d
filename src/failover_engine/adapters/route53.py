"""AWS Route 53: swap a simple record, flip PRIMARY/SECONDARY failover records, or move weights.

Every switch in one hosted zone is ONE ChangeResourceRecordSets batch (atomic), chunked only at
the API's limits (1,000 ResourceRecord elements, 32,000 value characters), never split inside one
record name/type (a failover pair must flip together).

Writes are compare-and-swap, never a blind overwrite: a changed record is written as the DELETE
of its exact before-record (as Route 53 holds it: TTL, values, role or weight, SetIdentifier,
HealthCheckId, alias target and any field a plan does not show, taken from the record set last
read) plus the CREATE of its after-record, in the same batch; a new record is a CREATE, a removed
one a DELETE. Route 53 refuses a DELETE that does not match the record exactly, so a record
someone edited since our read fails the batch whole (InvalidChangeBatch) and nothing of it is
written. The adapter then reads the batch's records again and raises
:class:`~failover_engine.core.errors.Route53ConcurrentEditError` naming the record and both values.

With ``check_before_write`` on the connection (off by default: Route 53 checks the DELETE itself),
the adapter also reads the zone's records just before a zone's first batch and compares them
with the changes' before-states (one read per zone: targeted or a zone listing). That is what
makes the guarantee hold where DELETE is not checked, as on plain moto (5.2.x), which matches a DELETE
only by name/type against any record ever created there, ignores SetIdentifier, role, weight and
health check, and deletes every record of the zone with the DELETE's SetIdentifier, whatever its
name. On such a provider an edit landing between that read and the batch (milliseconds, plus the
earlier batches of the same zone) is not caught; on Route 53 the DELETE closes that window. (moto
also refuses a CREATE identical to one it saw before while the name has records: the third flip
of a pair fails there. failover_engine/lab/moto_route53.py gives moto AWS's semantics: the lab and the tests install it.)

A batch whose answer was lost (5xx, a reset connection) is sent again: a repeat of a batch that
landed fails on its DELETE, so it can never apply twice (a read timeout is not repeated: see
:mod:`.aws`). Whenever an attempt's answer was lost, the outcome is confirmed by reading: every
record in its after-state means the batch landed (``confirmed_by_read`` in the receipt, no change
id to wait for); otherwise the batch's keys are reported in the error's ``unknown``. Keys of
accepted batches are in ``written``.

Reads are batched per zone: a few records are read with targeted ``list_resource_record_sets``
calls, many with one zone listing.
"""
from __future__ import annotations

import copy
import time
from collections import defaultdict
from typing import Any, Callable, Sequence

from failover_engine.core.errors import Route53ConcurrentEditError, Route53Error
from failover_engine.core.model import Route53Connection, Route53Routing
from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.adapters.aws import AwsCalls
from failover_engine.adapters.base import Adapter, ApplyReceipt, Capability

RETRYABLE = {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded"}
REJECTED = {"InvalidChangeBatch", "InvalidInput"}  # a DELETE that does not match (moto: InvalidInput)
MAX_RECORDS_PER_BATCH = 1000  # ResourceRecord elements: DELETE and CREATE each count once per value
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
        self._seen: dict[ResourceKey, dict[str, Any]] = {}  # record sets last read: the exact DELETEs
        self.calls = 0

    # ------------------------------------------------------------------ validation (pure)
    # ------------------------------------------------------------------ desired state (pure)
    def zone_id(self, binding: Route53Routing) -> str:
        if binding.hosted_zone_id:
            return binding.hosted_zone_id.split("/")[-1]
        name = fqdn(binding.hosted_zone or "")
        if name not in self._zone_ids:
            resp = self._call("list_hosted_zones_by_name", resource=name, retry_lost=True, DNSName=name, MaxItems="1")
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
                out[k] = self._attrs_of(found[k]) if k in found else None
        return out

    def _read_zone(self, zone: str, keys: set[ResourceKey]) -> dict[ResourceKey, dict[str, Any]]:
        """The record sets of ``keys`` as Route 53 holds them (absent keys left out); remembered
        in ``_seen`` as the exact before-records of the next DELETEs."""
        found = self._list_zone(zone, keys)
        for k in keys:
            if k in found:
                self._seen[k] = found[k]
            else:
                self._seen.pop(k, None)
        return found

    def _list_zone(self, zone: str, keys: set[ResourceKey]) -> dict[ResourceKey, dict[str, Any]]:
        found: dict[ResourceKey, dict[str, Any]] = {}
        by_name: dict[tuple[str, str], set[ResourceKey]] = defaultdict(set)
        for k in keys:
            by_name[(k.name, k.type)].add(k)
        if len(by_name) <= TARGETED_READ_LIMIT:
            for (name, typ), wanted in sorted(by_name.items()):
                found.update(self._list_name(zone, name, typ, wanted))
            return found
        kw: dict[str, Any] = {}
        starts: set[tuple[Any, ...]] = {()}
        while True:
            resp = self._call("list_resource_record_sets", resource=zone, retry_lost=True, HostedZoneId=zone,
                              MaxItems="300", **kw)
            for rrs in resp["ResourceRecordSets"]:
                k = self._key_of(zone, rrs)
                if k in keys:
                    found[k] = rrs
            if not resp.get("IsTruncated"):
                return found
            kw = {"StartRecordName": resp["NextRecordName"], "StartRecordType": resp["NextRecordType"]}
            if resp.get("NextRecordIdentifier"):
                kw["StartRecordIdentifier"] = resp["NextRecordIdentifier"]
            _advance(starts, kw, zone)

    def _list_name(self, zone: str, name: str, typ: str, wanted: set[ResourceKey]) -> dict[ResourceKey, dict[str, Any]]:
        """The record sets at one name/type: ask for as many as are wanted, page on until every
        wanted one is found or the name ends. A server that gives no NextRecordIdentifier to page
        on inside a name (moto) is asked again from the same start for more items."""
        found: dict[ResourceKey, dict[str, Any]] = {}
        kw: dict[str, Any] = {"StartRecordName": name, "StartRecordType": typ}
        starts: set[tuple[Any, ...]] = {tuple(sorted(kw.items()))}
        items = len(wanted)
        while True:
            resp = self._call("list_resource_record_sets", resource=f"{zone}/{name}", retry_lost=True,
                              HostedZoneId=zone, MaxItems=str(items), **kw)
            for rrs in resp["ResourceRecordSets"]:
                if self._key_of(zone, rrs) in wanted:
                    found[self._key_of(zone, rrs)] = rrs
            more_of_ours = (fqdn(resp.get("NextRecordName") or ""), resp.get("NextRecordType")) == (name, typ)
            if wanted <= set(found) or not resp.get("IsTruncated") or not more_of_ours:
                return found
            if resp.get("NextRecordIdentifier"):
                kw = {"StartRecordName": resp["NextRecordName"], "StartRecordType": resp["NextRecordType"],
                      "StartRecordIdentifier": resp["NextRecordIdentifier"]}
                _advance(starts, kw, f"{zone}/{name}")
            elif items < 300:
                items = min(300, items * 4)
            else:
                return found

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
        """The ResourceRecordSet with these attributes (the inverse of :meth:`_attrs_of`)."""
        rrs: dict[str, Any] = {"Name": key.name, "Type": key.type}
        if key.set_identifier:
            rrs["SetIdentifier"] = key.set_identifier
        if "failover" in attrs:
            rrs["Failover"] = attrs["failover"]
        if "weight" in attrs:
            rrs["Weight"] = int(attrs["weight"])
        if attrs.get("alias_target"):
            rrs["AliasTarget"] = dict(attrs["alias_target"])  # an alias has neither TTL nor values
        else:
            rrs["TTL"] = int(attrs["ttl"])
            rrs["ResourceRecords"] = [{"Value": v} for v in attrs["values"]]
        if attrs.get("health_check_id"):
            rrs["HealthCheckId"] = attrs["health_check_id"]
        return rrs

    @classmethod
    def _before_rrset(cls, change: Change, seen: dict[ResourceKey, dict[str, Any]] | None) -> dict[str, Any]:
        """The before-record exactly as Route 53 holds it: the record set last read when it is the
        one planned against (it carries fields attributes do not show), else rebuilt from ``before``."""
        raw = (seen or {}).get(change.key)
        if raw is not None and same_attrs(cls._attrs_of(raw), change.before):
            return copy.deepcopy(raw)
        return cls._rrset(change.key, change.before)  # type: ignore[arg-type]

    @staticmethod
    def _elements(entry: dict[str, Any]) -> tuple[int, int]:
        """(ResourceRecord elements, value characters) an entry counts for the batch limits; an
        alias (no ResourceRecords) counts as one element."""
        values = [r["Value"] for r in entry["ResourceRecordSet"].get("ResourceRecords") or []]
        return max(1, len(values)), sum(len(v) for v in values)

    @classmethod
    def batches_for(cls, changes: Sequence[Change],
                    seen: dict[ResourceKey, dict[str, Any]] | None = None) -> dict[str, list[list[dict[str, Any]]]]:
        """Group changes into ChangeResourceRecordSets batches per zone (pure; exposed for tests).

        An update is the DELETE of the before-record and the CREATE of the after-record; a create
        is a CREATE, a delete a DELETE. Per record name/type the DELETEs come first, and a name/type
        group never straddles two batches."""
        by_zone: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for c in changes:
            if c.action == "noop":
                continue
            group = by_zone[c.key.scope][(c.key.name, c.key.type)]
            if c.before is not None:
                group.append({"Action": "DELETE", "ResourceRecordSet": cls._before_rrset(c, seen)})
            if c.after is not None:
                group.append({"Action": "CREATE", "ResourceRecordSet": cls._rrset(c.key, c.after)})
        out: dict[str, list[list[dict[str, Any]]]] = {}
        for zone, groups in by_zone.items():
            batches: list[list[dict[str, Any]]] = [[]]
            weight = chars = 0
            for (name, typ), group in groups.items():
                group.sort(key=lambda e: e["Action"] != "DELETE")  # stable: DELETEs, then CREATEs
                gw = sum(cls._elements(e)[0] for e in group)
                gc = sum(cls._elements(e)[1] for e in group)
                if gw > MAX_RECORDS_PER_BATCH or gc > MAX_VALUE_CHARS_PER_BATCH:
                    raise Route53Error(f"the change of {name} {typ} needs {gw} ResourceRecord elements and {gc} "
                                       f"value characters; one atomic batch holds {MAX_RECORDS_PER_BATCH} and "
                                       f"{MAX_VALUE_CHARS_PER_BATCH}: use fewer values", resource=f"{zone}/{name}",
                                       code="BatchTooLarge")
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
        effective = [c for c in changes if c.action != "noop"]
        by_zone: dict[str, list[Change]] = defaultdict(list)
        for c in effective:
            by_zone[c.key.scope].append(c)
        written: list[ResourceKey] = []
        try:
            for zone, zone_changes in by_zone.items():
                if getattr(self.connection, "check_before_write", False):
                    self._check_unchanged(zone, zone_changes)
                by_key = {c.key: c for c in zone_changes}
                for batch in self.batches_for(zone_changes, self._seen).get(zone, []):
                    members = [by_key[k] for k in dict.fromkeys(self._key_of(zone, e["ResourceRecordSet"])
                                                                for e in batch)]
                    info = self._send(zone, batch, members, comment)
                    written.extend(c.key for c in members)  # a batch is atomic: written once accepted
                    self._remember(members)
                    entry: dict[str, Any] = {"zone": zone, "changes": len(batch), "change_id": info.get("Id")}
                    if info.get("confirmed_by_read"):
                        entry["confirmed_by_read"] = True
                    receipt.batches.append(entry)
            for b in receipt.batches:  # all batches sent first: their propagation overlaps
                if b["change_id"] is not None:
                    self._wait_insync(b["change_id"], b["zone"])
        except Route53Error as exc:
            exc.written = tuple(written)
            raise
        receipt.calls = self.calls - start
        return receipt

    def _check_unchanged(self, zone: str, changes: list[Change]) -> None:
        """Read the zone's records just before its first batch: one that no longer holds its
        before-state was edited since the plan's read; refuse before writing anything of the zone."""
        now = self._read_zone(zone, {c.key for c in changes})
        conflicts = [(c.key, c.before, self._attrs_of(now[c.key]) if c.key in now else None)
                     for c in changes if not same_attrs(self._attrs_of(now[c.key]) if c.key in now else None,
                                                        c.before)]
        if conflicts:
            key, expected, found = conflicts[0]
            raise Route53ConcurrentEditError(key, expected, found, conflicts=conflicts,
                                             detail="seen when reading the zone just before writing")

    def _send(self, zone: str, batch: list[dict[str, Any]], members: list[Change], comment: str) -> dict[str, Any]:
        """One batch. When it fails, find out by reading what happened (see the module docstring):
        returns the ChangeInfo, or ``{"confirmed_by_read": True}`` when a lost answer had landed."""
        try:
            resp = self._call("change_resource_record_sets", resource=zone, retry_lost=True, HostedZoneId=zone,
                              ChangeBatch={"Comment": comment[:256], "Changes": batch})
            return resp["ChangeInfo"]
        except Route53Error as exc:
            lost, rejected = self.last_lost, exc.code in REJECTED
            if not lost and not rejected:
                raise  # refused as a whole (access, throttling, ...): nothing of it was written
            keys = {c.key for c in members}
            try:
                raw = self._read_zone(zone, keys)
            except Route53Error:
                if lost:
                    exc.unknown = tuple(sorted(keys))
                raise exc from None
            now = {k: self._attrs_of(raw[k]) if k in raw else None for k in keys}
            if lost and all(same_attrs(now[c.key], c.after) for c in members):
                return {"confirmed_by_read": True}  # an earlier attempt landed; its answer was lost
            if lost:
                exc.unknown = tuple(sorted(keys))
            conflicts = [(c.key, c.before, now[c.key]) for c in members if not same_attrs(now[c.key], c.before)]
            if rejected and conflicts:
                key, expected, found = conflicts[0]
                edit = Route53ConcurrentEditError(
                    key, expected, found, conflicts=conflicts, detail=f"Route 53 refused the batch: {exc}",
                    withheld="Whether an earlier attempt of this batch landed is unknown" if lost
                    else "Nothing in this batch was written")
                edit.unknown = exc.unknown
                raise edit from None
            raise

    def _remember(self, members: list[Change]) -> None:
        """What the zone holds after an accepted batch: the next batch's DELETEs."""
        for c in members:
            if c.after is None:
                self._seen.pop(c.key, None)
            else:
                self._seen[c.key] = self._rrset(c.key, c.after)

    def _wait_insync(self, change_id: str, zone: str) -> None:
        """Waiter as data: poll get_change every `delay` s until INSYNC or the timeout."""
        delay, deadline = 2.0, time.monotonic() + self.connection.propagation_timeout
        while True:
            status = self._call("get_change", resource=zone, retry_lost=True, Id=change_id)["ChangeInfo"]["Status"]
            if status == "INSYNC":
                return
            if time.monotonic() + delay > deadline:
                raise Route53Error(f"change {change_id} still {status} after "
                                   f"{self.connection.propagation_timeout:.0f}s", resource=zone, code="Timeout")
            self._sleep(delay)


def _advance(starts: set[tuple[Any, ...]], kw: dict[str, Any], resource: str) -> None:
    """Progress guard of a paging loop: a page must start where no earlier page started. A provider
    that hands back a marker it gave before (the same page again, or a circle) would be paged forever."""
    start = tuple(sorted(kw.items()))
    if start in starts:
        marker = ", ".join(f"{k.removeprefix('Start')}={v}" for k, v in sorted(kw.items()))
        raise Route53Error(f"list_resource_record_sets: the paging marker did not advance ({marker} was "
                           f"given before, after {len(starts)} page(s)); stopped rather than list the same "
                           "records forever (a provider fault: try again later)", resource=resource,
                           code="PagingStuck")
    starts.add(start)


def same_attrs(a: Attrs | None, b: Attrs | None) -> bool:
    """Do two record states match as Route 53 compares them (the order of values aside)?"""
    if a is None or b is None:
        return a is None and b is None
    norm = [{**dict(x), "values": sorted(x.get("values") or [])} for x in (a, b)]
    return norm[0] == norm[1]
