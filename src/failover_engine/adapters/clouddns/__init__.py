"""Google Cloud DNS: swap a record set, flip a primaryBackup routing policy, or move WRR weights.

Every mode steers one record set (``ResourceKey("clouddns", managed_zone, fqdn, type)``); see
:class:`~failover_engine.core.model.CloudDnsRouting` for what each mode writes.

Cloud DNS updates a record set by a *change*: deletions of the current record sets, which must
match them exactly, and additions of the new ones, applied atomically. So every switch in one
managed zone is ONE change whose deletions are the before-state as last read (the raw record set,
with fields a plan does not show) and whose additions are the after-state; a record edited since
it was read makes the change fail as a whole (412; 409 for one created since, 404 for one
deleted since) and nothing changes: Cloud DNS's own compare-and-swap, checked against the
emulator. The adapter then reads the change's record sets again and raises
:class:`~failover_engine.core.errors.CloudDnsConcurrentEditError` naming the record set and both
values. A change whose answer was lost (5xx, a reset connection, a read timeout) is confirmed by
reading: every record set in its after-state means it landed (``confirmed_by_read``; a repeat of
it fails its own deletions, so it never applies twice); otherwise its keys are in the error's
``unknown``. Only the per-change quota (1,000 record sets) splits a zone's changes. Reads are one
filtered list call per record name/type, or one zone listing when many records of one zone are read.

Which client: google-cloud-dns serialises only name/type/ttl/rrdatas (it drops ``routingPolicy``
when reading and cannot send it) and lists a zone without name/type filters. Record sets and
changes therefore go through google-api-python-client's dns v1 client, built from its bundled
discovery document (no network for discovery): one code path for every mode, so a change that
mixes a plain and a routing-policy record set in one zone stays one atomic change, and reads are
targeted. google-cloud-dns serves the managed-zone lookup (used to explain a missing record: is it
outside the zone?).
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

from failover_engine.core.errors import CloudDnsConcurrentEditError, CloudDnsError
from failover_engine.core.model import CloudDnsConnection, CloudDnsRouting
from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.adapters.base import Adapter, ApplyReceipt, Capability
from failover_engine.adapters.clouddns.api import CloudDnsApi
from failover_engine.adapters.clouddns.records import Rrset, attrs_of, change_bodies, fqdn, in_zone

TARGETED_READ_LIMIT = 4  # up to this many record sets in a zone: filtered reads; beyond: list the zone
PRECONDITION_FAILED = (404, 409, 412)


class CloudDnsAdapter(Adapter):
    kind = "clouddns"
    capabilities = frozenset({Capability.SIMPLE_SWAP, Capability.FAILOVER_RECORDS, Capability.WEIGHTED,
                              Capability.ATOMIC_BATCH, Capability.READ_BACK})

    def __init__(self, connection: CloudDnsConnection | None = None, *,
                 sleep: Callable[[float], None] = time.sleep):
        # no connection: project and credentials from google.auth.default()
        self.connection = connection or CloudDnsConnection(project="")
        self._sleep = sleep
        self.api = CloudDnsApi(self.connection, sleep=sleep)
        self._seen: dict[ResourceKey, Rrset] = {}  # raw record sets last read: the exact deletions
        self._zone_names: dict[str, str] = {}

    @property
    def calls(self) -> int:
        return self.api.calls

    # ------------------------------------------------------------------ validation (pure)
    # ------------------------------------------------------------------ desired state (pure)
    @staticmethod
    def key(binding: CloudDnsRouting) -> ResourceKey:
        return ResourceKey("clouddns", binding.managed_zone, fqdn(binding.record), binding.type)

    def desired(self, binding: CloudDnsRouting, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        active = [ep for ep, w in assignment.items() if w > 0]
        eps = binding.endpoints
        attrs: dict[str, Any] = {"ttl": binding.ttl}
        if binding.mode == "weighted":
            items = [{"weight": float(assignment[n] * binding.active_weight / 100) if n in active
                      else float(binding.inactive_weight), "values": sorted(b.values)} for n, b in eps.items()]
            attrs["wrr"] = sorted(items, key=lambda i: i["values"])
            return {self.key(binding): attrs}
        if len(active) != 1:
            raise CloudDnsError(f"{binding.mode} mode needs exactly one active endpoint, got {active}",
                                resource=binding.record)
        if binding.mode == "simple":
            attrs["values"] = sorted(eps[active[0]].values)
        else:
            backup = [{"location": (b.location or "").lower(), "values": sorted(b.values)}
                      for n, b in eps.items() if n != active[0]]
            attrs.update(primary=sorted(eps[active[0]].values), backup=sorted(backup, key=lambda b: b["location"]),
                         trickle_ratio=float(binding.trickle_ratio))
        return {self.key(binding): attrs}

    def active_of(self, binding: CloudDnsRouting, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        cur = current.get(self.key(binding))
        if not cur:
            return None
        by_values = {tuple(sorted(b.values)): n for n, b in binding.endpoints.items()}
        if binding.mode in ("simple", "primary_backup"):
            field = "values" if binding.mode == "simple" else "primary"
            name = by_values.get(tuple(sorted(cur.get(field) or [])))
            return {name: 100} if name else None
        items = {tuple(sorted(i["values"])): float(i["weight"]) for i in cur.get("wrr") or []}
        if set(items) != set(by_values):
            return None
        active = {by_values[v]: round(w * 100 / binding.active_weight)
                  for v, w in items.items() if w > binding.inactive_weight}
        return active or None

    # ------------------------------------------------------------------ read (I/O, batched)
    def read(self, bindings: Sequence[CloudDnsRouting]) -> dict[ResourceKey, Attrs | None]:
        wanted: dict[str, set[ResourceKey]] = defaultdict(set)
        for b in bindings:
            k = self.key(b)
            wanted[k.scope].add(k)
        out: dict[ResourceKey, Attrs | None] = {}
        for zone, keys in sorted(wanted.items()):
            found = self._read_zone(zone, keys)
            for k in keys:
                raw = found.get(k)
                if raw is None:
                    self._seen.pop(k, None)
                    self._check_in_zone(k)
                else:
                    self._seen[k] = raw
                out[k] = attrs_of(raw) if raw is not None else None
        return out

    def _read_zone(self, zone: str, keys: set[ResourceKey]) -> dict[ResourceKey, Rrset]:
        if len(keys) <= TARGETED_READ_LIMIT:
            listed = [r for k in sorted(keys) for r in self.api.list_rrsets(zone, k.name, k.type)]
        else:
            listed = list(self.api.list_rrsets(zone))
        found = {}
        for rrs in listed:
            k = ResourceKey("clouddns", zone, fqdn(rrs["name"]), rrs["type"])
            if k in keys:
                found[k] = rrs
        return found

    def _check_in_zone(self, key: ResourceKey) -> None:
        """A record set that is absent may be outside its managed zone: say so, it can never be there."""
        if key.scope not in self._zone_names:
            self._zone_names[key.scope] = self.api.zone_dns_name(key.scope)
        dns_name = self._zone_names[key.scope]
        if not in_zone(key.name, dns_name):
            raise CloudDnsError(f"record {key.name} is not inside managed zone {key.scope!r} ({dns_name}): "
                                "fix `record` or `managed_zone`", resource=str(key), code="outsideZone")

    # ------------------------------------------------------------------ apply (I/O, one change per zone)
    def apply(self, changes: Sequence[Change]) -> ApplyReceipt:
        start = self.calls
        receipt = ApplyReceipt()
        effective = [c for c in changes if c.action != "noop"]
        pending: list[tuple[str, str]] = []
        written: list[ResourceKey] = []
        try:
            self._apply_bodies(effective, receipt, pending, written)
            for zone, change_id in pending:  # all changes sent first: their propagation overlaps
                self._wait_done(zone, change_id)
        except CloudDnsError as exc:
            exc.written = tuple(written)
            raise
        receipt.calls = self.calls - start
        return receipt

    def _apply_bodies(self, effective: list[Change], receipt: ApplyReceipt, pending: list[tuple[str, str]],
                      written: list[ResourceKey]) -> None:
        """Create one change per zone (per quota chunk); a created change is atomic and written."""
        for zone, bodies in change_bodies(effective, self._seen).items():
            for body in bodies:
                sent = {(fqdn(r["name"]), r["type"]) for r in body["additions"] + body["deletions"]}
                members = [c for c in effective if c.key.scope == zone and (c.key.name, c.key.type) in sent]
                change = self._create(zone, body, members)
                written.extend(c.key for c in members)
                receipt.batches.append({"zone": zone, "change_id": change.get("id"), "status": change.get("status"),
                                        "additions": len(body["additions"]), "deletions": len(body["deletions"])})
                if change.get("confirmed_by_read"):
                    receipt.batches[-1]["confirmed_by_read"] = True
                if change.get("id") is not None and change.get("status") != "done":
                    pending.append((zone, change["id"]))
                self._remember(members, body)

    def _remember(self, members: list[Change], body: dict[str, Any]) -> None:
        """What the zone holds after a change: the next change's deletions."""
        added = {(fqdn(a["name"]), a["type"]): a for a in body["additions"]}
        for c in members:
            rrs = added.get((c.key.name, c.key.type))
            if rrs is None:
                self._seen.pop(c.key, None)
            else:
                self._seen[c.key] = rrs

    def _create(self, zone: str, body: dict[str, Any], members: list[Change]) -> dict[str, Any]:
        """Create one change. When it fails, find out by reading what happened: a change whose
        answer was lost and that holds (every record set in its after-state) is done; a refusal
        because a record set changed since it was read is a concurrent edit."""
        try:
            return self.api.create_change(zone, body)
        except CloudDnsError as exc:
            lost, refused = self.api.last_lost, getattr(exc, "status", None) in PRECONDITION_FAILED
            if not lost and not refused:
                raise  # refused as a whole (permissions, quota, a bad record set): nothing written
            keys = {c.key for c in members}
            try:
                now = {k: attrs_of(r) for k, r in self._read_zone(zone, keys).items()}
            except CloudDnsError:
                if lost:
                    exc.unknown = tuple(sorted(keys))
                raise exc from None
            if lost and all(now.get(c.key) == _plain(c.after) for c in members):
                # an earlier attempt landed and its answer was lost (sent again by the adapter, or
                # by httplib2 on its own: its connections count what they send)
                return {"id": None, "status": "done", "confirmed_by_read": True}
            if lost:
                exc.unknown = tuple(sorted(keys))
            conflicts = [(c.key, c.before, now.get(c.key)) for c in members if now.get(c.key) != _plain(c.before)]
            if refused and conflicts:
                key, expected, found = conflicts[0]
                edit = CloudDnsConcurrentEditError(
                    key, expected, found, conflicts=conflicts, detail=f"Cloud DNS refused the change: {exc.code}",
                    withheld="Whether an earlier attempt of this change landed is unknown" if lost
                    else "Nothing in this change was written")
                edit.unknown = exc.unknown
                raise edit from None
            raise

    def _wait_done(self, zone: str, change_id: str) -> None:
        """Waiter as data: poll the change every `delay` s (doubling, at most 5 s) until done."""
        delay, waited, timeout = 0.5, 0.0, self.connection.propagation_timeout
        deadline = time.monotonic() + timeout
        while True:
            status = self.api.get_change(zone, change_id).get("status")
            if status == "done":
                return
            if waited + delay > timeout or time.monotonic() + delay > deadline:
                raise CloudDnsError(f"change {change_id} still {status} after {waited:.0f}s of waiting",
                                    resource=zone, code="Timeout")
            self._sleep(delay)
            waited += delay
            delay = min(5.0, delay * 2)


def _plain(attrs: Attrs | None) -> dict[str, Any] | None:
    return None if attrs is None else dict(attrs)
