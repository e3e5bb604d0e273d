"""AWS ARC zonal shift: shift a resource's traffic away from one availability zone, with an expiry.

The path AWS recommends for zone failover: a zonal shift is a data-plane operation that does
not depend on the load balancer's control plane at failover time.

One resource per binding: ``ResourceKey("zonalshift", <resource ARN>, "shift")`` with attributes
``{"away_from": <zone> | None}``. The API allows one active shift per resource, so at most one
zone can be out: an assignment that leaves two or more zones out is refused (ZonalShiftError).

Moving a shift from zone A to zone B is *cancel A, then start B*: UpdateZonalShift can change
only the expiry and the comment, never ``awayFrom``, and a second active shift is a conflict.
Between the two calls traffic flows to every zone (A recovered, B about to be shifted away
from). If the start fails, the error's ``written`` names the resource (it is in an intermediate
state: no shift) so the engine restores it.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

from failover_engine.core.errors import ZonalShiftError
from failover_engine.core.model import ZonalShiftConnection, ZonalShiftRouting
from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.adapters.aws import AwsCalls
from failover_engine.adapters.base import Adapter, ApplyReceipt, Capability

RETRYABLE = {"ThrottlingException", "InternalServerException", "ServiceUnavailableException"}


def _remaining(shift: dict[str, Any]) -> float:
    """Seconds until an active shift expires (the API gives ``expiryTime`` as a datetime)."""
    expiry = shift.get("expiryTime")
    if expiry is None:
        return float("inf")
    return expiry.timestamp() - time.time() if hasattr(expiry, "timestamp") else float(expiry) - time.time()


def expires_in_text(seconds: float) -> str:
    """Seconds → the API's ``expiresIn`` (whole hours as ``"2h"``, else minutes rounded up: ``"90m"``)."""
    minutes = max(1, math.ceil(seconds / 60 - 1e-9))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class ZonalShiftAdapter(AwsCalls, Adapter):
    kind = "zonalshift"
    capabilities = frozenset({Capability.READ_BACK})
    aws_service = "arc-zonal-shift"
    aws_label = "ARC zonal shift"
    error_class = ZonalShiftError
    retryable_codes = frozenset(RETRYABLE)

    def __init__(self, connection: ZonalShiftConnection | None = None, *, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connection = connection or ZonalShiftConnection()
        self._client = client
        self._sleep = sleep
        self.calls = 0
        # bindings seen by desired()/read(), by resource: apply() takes a new shift's expiry and
        # comment from them (a Change carries only the zone)
        self._bindings: dict[str, ZonalShiftRouting] = {}

    # ------------------------------------------------------------------ errors
    def _hint(self, op: str, code: str, response: dict[str, Any]) -> str:
        reason = response.get("reason")
        hint = ""
        if code == "ConflictException" and reason == "ZonalShiftAlreadyExists":
            hint = (f"; the resource already has an active zonal shift "
                    f"({response.get('zonalShiftId', '?')}) started by someone else since it was "
                    "read: check it, cancel it if it is stale, then run again")
        elif code == "ResourceNotFoundException":
            hint = "; is the resource registered with ARC zonal shift in this account and region?"
        return (f" [{reason}]" if reason else "") + hint

    # ------------------------------------------------------------------ validation (pure)
    # ------------------------------------------------------------------ desired state (pure)
    @staticmethod
    def _key(binding: ZonalShiftRouting) -> ResourceKey:
        return ResourceKey("zonalshift", binding.resource_identifier, "shift")

    def describe(self, binding: ZonalShiftRouting) -> str:
        return f"zonalshift {binding.resource_identifier} (expires in {expires_in_text(binding.expires_in)})"

    def resource_keys(self, binding: ZonalShiftRouting) -> list[ResourceKey]:
        return [self._key(binding)]

    def desired(self, binding: ZonalShiftRouting, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        self._bindings[binding.resource_identifier] = binding
        out = [name for name in binding.endpoints if assignment.get(name, 0) <= 0]
        if len(out) == len(binding.endpoints):
            raise ZonalShiftError("the assignment takes every zone out of rotation; a zonal shift always "
                                  "leaves traffic in the other zones", resource=binding.resource_identifier)
        if len(out) > 1:
            zones = ", ".join(f"{n} ({binding.endpoints[n].zone})" for n in out)
            raise ZonalShiftError(f"the assignment takes {len(out)} zones out ({zones}) but a resource has at most "
                                  "one active zonal shift: only one zone can be out at a time",
                                  resource=binding.resource_identifier, code="OneShiftPerResource")
        return {self._key(binding): {"away_from": binding.endpoints[out[0]].zone if out else None}}

    def active_of(self, binding: ZonalShiftRouting, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        cur = current.get(self._key(binding))
        if cur is None:
            return None
        away = cur.get("away_from")
        zones = {b.zone for b in binding.endpoints.values()}
        if away is not None and (not isinstance(away, str) or away not in zones):
            return None  # several shifts (autoshift, practice run) or a zone this binding does not know
        return {name: 100 for name, b in binding.endpoints.items() if b.zone != away}

    # ------------------------------------------------------------------ read (I/O)
    def _active_shifts(self, resource: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kw: dict[str, Any] = {}
        while True:
            resp = self._call("list_zonal_shifts", resource=resource, resourceIdentifier=resource,
                              status="ACTIVE", **kw)
            items.extend(s for s in resp.get("items", []) if s.get("resourceIdentifier") == resource)
            if not resp.get("nextToken"):
                return items
            kw = {"nextToken": resp["nextToken"]}

    def read(self, bindings: Sequence[ZonalShiftRouting]) -> dict[ResourceKey, Attrs | None]:
        out: dict[ResourceKey, Attrs | None] = {}
        for b in bindings:
            key = self._key(b)
            self._bindings.setdefault(b.resource_identifier, b)
            if key in out:
                continue
            shifts = self._active_shifts(b.resource_identifier)
            away = sorted({s["awayFrom"] for s in shifts})
            attrs: dict[str, Any] = {"away_from": away[0] if len(away) == 1 else (away or None)}
            if len(shifts) == 1 and _remaining(shifts[0]) < b.expires_in / 2:
                attrs["expiring"] = True  # less than half its life left: the next apply extends it
            out[key] = attrs
        return out

    # ------------------------------------------------------------------ apply (I/O)
    def apply(self, changes: Sequence[Change]) -> ApplyReceipt:
        """Start, cancel or move (cancel, then start) the shift of each changed resource.

        A new shift's expiry and comment come from the resource's binding as last seen by
        :meth:`desired` or :meth:`read` (else the model's defaults: 1 hour)."""
        start = self.calls
        receipt = ApplyReceipt()
        written: list[ResourceKey] = []
        try:
            for c in changes:
                if c.action == "noop":
                    continue
                resource = c.key.scope
                before = (c.before or {}).get("away_from")
                after = (c.after or {}).get("away_from")
                if before is not None and before == after:  # same zone, shift expiring: extend it
                    receipt.batches.append(self._extend(resource, before))
                    written.append(c.key)
                    continue
                if before is not None:
                    self._cancel(resource, before)
                    written.append(c.key)
                    receipt.batches.append({"resource": resource, "canceled": before})
                if after is not None:
                    binding = self._bindings.get(resource)
                    seconds = binding.expires_in if binding else 3600.0
                    comment = binding.comment if binding else "failover-engine zone failover"
                    resp = self._call("start_zonal_shift", resource=resource, resourceIdentifier=resource,
                                      awayFrom=after, expiresIn=expires_in_text(seconds), comment=comment[:128])
                    if c.key not in written:
                        written.append(c.key)
                    receipt.batches.append({"resource": resource, "started": after,
                                            "zonal_shift_id": resp["zonalShiftId"]})
        except ZonalShiftError as exc:
            exc.written = tuple(written)
            raise
        receipt.calls = self.calls - start
        return receipt

    def _extend(self, resource: str, away_from: str) -> dict[str, Any]:
        """UpdateZonalShift: a fresh expiry for the active shift away from ``away_from``."""
        binding = self._bindings.get(resource)
        seconds = binding.expires_in if binding else 3600.0
        mine = [s for s in self._active_shifts(resource) if s["awayFrom"] == away_from]
        if not mine:
            raise ZonalShiftError(f"no active shift away from {away_from} to extend (expired or canceled "
                                  "since it was read); run again", resource=resource, code="ShiftChanged")
        self._call("update_zonal_shift", resource=resource, zonalShiftId=mine[0]["zonalShiftId"],
                   expiresIn=expires_in_text(seconds))
        return {"resource": resource, "extended": away_from, "zonal_shift_id": mine[0]["zonalShiftId"]}

    def _cancel(self, resource: str, away_from: str) -> None:
        """Cancel the active shift away from ``away_from``; refuse to cancel anybody else's."""
        shifts = self._active_shifts(resource)
        mine = [s for s in shifts if s["awayFrom"] == away_from]
        if not mine:
            if not shifts:
                return  # expired or canceled since it was read: nothing to cancel
            others = ", ".join(f"{s['zonalShiftId']} away from {s['awayFrom']}" for s in shifts)
            raise ZonalShiftError(f"expected an active shift away from {away_from}, found {others}: changed by "
                                  "someone else since it was read; check it, then run again",
                                  resource=resource, code="ShiftChanged")
        for s in mine:
            self._call("cancel_zonal_shift", resource=resource, zonalShiftId=s["zonalShiftId"])
