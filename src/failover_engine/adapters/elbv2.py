"""AWS ELBv2 (ALB/NLB target groups): zone failover by deregistering a zone's targets.

One resource per target group and zone endpoint: ``ResourceKey("elbv2", target_group_arn, zone)``
with attributes ``{"in_service": bool}``. Only INSTANCE targets are supported: a target's zone
comes from EC2 (``describe_instances``), because target health does not carry it reliably
(moto leaves ``Target.AvailabilityZone`` empty); a target group of another type is refused at read.

Where deregistered targets come back from is remembered AT THE PROVIDER: taking a zone out tags
the target group with ``failover-engine:parked:<zone>`` whose value lists the targets taken out
("id:port", space separated: ELBv2 tag values may not hold commas; commas are still read). A zone
reads as out of service while that tag exists; failback registers the listed targets again and
removes the tag. A tag value holds at most 256 characters: a zone whose targets do not fit is
refused before anything is changed.

A read is, per call of :meth:`read`: ONE ``describe_target_groups`` and ONE ``describe_tags`` (up
to 20 target groups each), ONE ``describe_target_health`` per target group and ONE
``describe_instances`` for every instance found. An apply, per target group: zones coming back
first (ONE ``register_targets``, ONE ``remove_tags``), then zones going out (ONE ``add_tags``
written before ONE ``deregister_targets``, so a failure never loses the list), then a drain
waiter bounded by the group's ``deregistration_delay.timeout_seconds`` plus a margin. A plan that
would take every zone out is refused by :meth:`desired`, before any plan exists.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from failover_engine.core.errors import Elbv2Error
from failover_engine.core.model import Elbv2Connection, Elbv2Routing
from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.adapters.aws import AwsCalls
from failover_engine.adapters.base import Adapter, ApplyReceipt, Capability, split_zone_changes

RETRYABLE = {"Throttling", "ThrottlingException", "RequestLimitExceeded"}
MAX_ARNS_PER_DESCRIBE = 20    # DescribeTargetGroups / DescribeTags accept up to 20 ARNs per call
MAX_TAG_VALUE = 256           # ELBv2 tag value limit
PARKED_PREFIX = "failover-engine:parked:"
OUT_STATES = {"draining"}     # a target being deregistered counts as out already


@dataclass(frozen=True)
class DrainWaiter:
    """Waiter as data: poll target health every ``interval`` s, for at most the deregistration
    delay plus ``margin`` s, until no deregistered target is still draining."""

    interval: float = 5.0
    margin: float = 30.0

    def polls(self, delay_seconds: float) -> int:
        return max(1, math.ceil((delay_seconds + self.margin) / self.interval))


def parked_key(zone: str) -> str:
    return PARKED_PREFIX + zone


def format_parked(targets: Sequence[tuple[str, int]]) -> str:
    return " ".join(f"{tid}:{port}" for tid, port in sorted(targets))


def parse_parked(value: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for item in value.replace(",", " ").split():
        tid, _sep, port = item.rpartition(":")
        out.append((tid, int(port)) if tid else (item, 0))
    return out


class Elbv2Adapter(AwsCalls, Adapter):
    kind = "elbv2"
    capabilities = frozenset({Capability.READ_BACK})
    aws_service = "elbv2"
    aws_label = "Elastic Load Balancing"
    error_class = Elbv2Error
    retryable_codes = frozenset(RETRYABLE)

    def __init__(self, connection: Elbv2Connection | None = None, *, client: Any = None, ec2_client: Any = None,
                 sleep: Callable[[float], None] = time.sleep, waiter: DrainWaiter = DrainWaiter()):
        self.connection = connection or Elbv2Connection()
        self._client = client
        self._other_clients: dict[str, Any] = {"ec2": ec2_client} if ec2_client is not None else {}
        self._sleep = sleep
        self.waiter = waiter
        self.calls = 0

    @property
    def ec2(self) -> Any:
        return self.client_for("ec2")

    # ------------------------------------------------------------------ validation (pure)
    def describe(self, binding: Elbv2Routing) -> str:
        names = [arn.split(":targetgroup/")[-1].split("/")[0] for arn in binding.target_group_arns]
        return f"elbv2 target group(s) {', '.join(names)} (availability zones)"

    # ------------------------------------------------------------------ desired state (pure)
    @staticmethod
    def _keys(binding: Elbv2Routing, endpoint: str) -> list[ResourceKey]:
        zone = binding.endpoints[endpoint].zone
        return [ResourceKey("elbv2", arn, zone) for arn in binding.target_group_arns]

    def desired(self, binding: Elbv2Routing, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        in_service = {ep for ep, w in assignment.items() if w > 0 and ep in binding.endpoints}
        if not in_service:
            raise Elbv2Error(f"refusing to take every availability zone of {', '.join(binding.target_group_arns)} "
                             f"out of service (no endpoint of {sorted(binding.endpoints)} in {dict(assignment)})",
                             resource=binding.target_group_arns[0], code="AllZonesDisabled")
        return {k: {"in_service": ep in in_service} for ep in binding.endpoints for k in self._keys(binding, ep)}

    def active_of(self, binding: Elbv2Routing, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        """A zone is active when it is in service in EVERY target group of the binding."""
        active = {ep: 100 for ep in binding.endpoints
                  if all((current.get(k) or {}).get("in_service") for k in self._keys(binding, ep))}
        return active or None

    # ------------------------------------------------------------------ read (I/O, batched)
    def _parked_tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        """Parked tags per target group: {arn: {zone: value}} (also checks the groups' type)."""
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(arns), MAX_ARNS_PER_DESCRIBE):
            chunk = list(arns[i:i + MAX_ARNS_PER_DESCRIBE])
            resp = self._call("describe_tags", resource=",".join(chunk), ResourceArns=chunk)
            for desc in resp.get("TagDescriptions", []):
                out[desc["ResourceArn"]] = {t["Key"][len(PARKED_PREFIX):]: t.get("Value", "")
                                            for t in desc.get("Tags", []) if t["Key"].startswith(PARKED_PREFIX)}
        return out

    def _check_instance_groups(self, arns: Sequence[str]) -> None:
        for i in range(0, len(arns), MAX_ARNS_PER_DESCRIBE):
            chunk = list(arns[i:i + MAX_ARNS_PER_DESCRIBE])
            resp = self._call("describe_target_groups", resource=",".join(chunk), TargetGroupArns=chunk)
            for tg in resp.get("TargetGroups", []):
                if tg.get("TargetType", "instance") != "instance":
                    raise Elbv2Error(f"target type {tg['TargetType']!r} is not supported: zone failover needs "
                                     "instance targets (their zone comes from EC2)",
                                     resource=tg["TargetGroupArn"], code="UnsupportedTargetType")

    def _targets_by_zone(self, arns: Sequence[str]) -> dict[str, dict[str, list[tuple[str, int]]]]:
        """Registered (not draining) instance targets per target group and zone."""
        registered: dict[str, list[tuple[str, int]]] = {}
        for arn in arns:
            resp = self._call("describe_target_health", resource=arn, TargetGroupArn=arn)
            registered[arn] = [(d["Target"]["Id"], int(d["Target"].get("Port") or 0))
                               for d in resp.get("TargetHealthDescriptions", [])
                               if (d.get("TargetHealth") or {}).get("State") not in OUT_STATES]
        ids = sorted({tid for targets in registered.values() for tid, _unused in targets})
        zone_of: dict[str, str] = {}
        if ids:
            pages = self._call("describe_instances", resource=",".join(ids[:3]) + ("..." if len(ids) > 3 else ""),
                               service="ec2", InstanceIds=ids)
            for reservation in pages.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    zone_of[inst["InstanceId"]] = inst.get("Placement", {}).get("AvailabilityZone", "")
        out: dict[str, dict[str, list[tuple[str, int]]]] = {}
        for arn, targets in registered.items():
            per_zone: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for tid, port in targets:
                per_zone[zone_of.get(tid, "")].append((tid, port))
            out[arn] = dict(per_zone)
        return out

    def read(self, bindings: Sequence[Elbv2Routing]) -> dict[ResourceKey, Attrs | None]:
        """A zone is out of service while its parked tag exists; otherwise in service."""
        arns = sorted({arn for b in bindings for arn in b.target_group_arns})
        self._check_instance_groups(arns)
        parked = self._parked_tags(arns)
        out: dict[ResourceKey, Attrs | None] = {}
        for b in bindings:
            for ep in b.endpoints:
                for key in self._keys(b, ep):
                    tags = parked.get(key.scope)
                    out[key] = None if tags is None else {"in_service": key.name not in tags}
        return out

    # ------------------------------------------------------------------ apply (I/O, batched)
    def apply(self, changes: Sequence[Change]) -> ApplyReceipt:
        start = self.calls
        receipt = ApplyReceipt()
        written: list[ResourceKey] = []
        plans = split_zone_changes(changes, "in_service")
        try:
            going = [tg for tg, (_unused, away) in plans.items() if away]
            coming = [tg for tg, (back, _unused) in plans.items() if back]
            targets = self._targets_by_zone(going) if going else {}
            # every tag value is checked before anything is changed
            parking = {tg: {z: format_parked(targets[tg].get(z, [])) for z in plans[tg][1]} for tg in going}
            for tg, values in parking.items():
                for zone, value in values.items():
                    if len(value) > MAX_TAG_VALUE:
                        raise Elbv2Error(
                            f"the {len(value.split())} targets of {zone} do not fit in one tag value "
                            f"({len(value)} > {MAX_TAG_VALUE} characters); nothing was changed: take fewer "
                            "targets out per zone or split them over more target groups",
                            resource=tg, code="TooManyTargets")
            parked = self._parked_tags(coming) if coming else {}
            for tg in coming:  # first: capacity never drops below either end state
                back = plans[tg][0]
                again = sorted({t for z in back for t in parse_parked(parked.get(tg, {}).get(z, ""))})
                if again:
                    self._call("register_targets", resource=tg, TargetGroupArn=tg,
                               Targets=[{"Id": tid, "Port": port} if port else {"Id": tid} for tid, port in again])
                written.extend(ResourceKey("elbv2", tg, z) for z in back)
                present = [parked_key(z) for z in back if z in parked.get(tg, {})]
                if present:
                    self._call("remove_tags", resource=tg, ResourceArns=[tg], TagKeys=present)
                receipt.batches.append({"target_group": tg, "registered": back, "targets": len(again)})
            for tg in going:
                away = plans[tg][1]
                self._call("add_tags", resource=tg, ResourceArns=[tg],
                           Tags=[{"Key": parked_key(z), "Value": v} for z, v in parking[tg].items()])
                written.extend(ResourceKey("elbv2", tg, z) for z in away)
                out = sorted({t for z in away for t in targets[tg].get(z, [])})
                if out:
                    self._call("deregister_targets", resource=tg, TargetGroupArn=tg,
                               Targets=[{"Id": tid, "Port": port} if port else {"Id": tid} for tid, port in out])
                    self._wait_drained(tg, out)
                receipt.batches.append({"target_group": tg, "deregistered": away, "targets": len(out)})
        except Elbv2Error as exc:
            exc.written = tuple(written)
            raise
        receipt.calls = self.calls - start
        return receipt

    def _wait_drained(self, tg: str, targets: Sequence[tuple[str, int]]) -> None:
        """Wait until none of ``targets`` is draining, bounded by the deregistration delay + margin."""
        attrs = self._call("describe_target_group_attributes", resource=tg, TargetGroupArn=tg)
        delay = next((float(a["Value"]) for a in attrs.get("Attributes", [])
                      if a.get("Key") == "deregistration_delay.timeout_seconds"), 300.0)
        spec = [{"Id": tid, "Port": port} if port else {"Id": tid} for tid, port in targets]
        for poll in range(self.waiter.polls(delay)):
            resp = self._call("describe_target_health", resource=tg, TargetGroupArn=tg, Targets=spec)
            draining = [d["Target"]["Id"] for d in resp.get("TargetHealthDescriptions", [])
                        if (d.get("TargetHealth") or {}).get("State") == "draining"]
            if not draining:
                return
            if poll + 1 < self.waiter.polls(delay):
                self._sleep(self.waiter.interval)
        raise Elbv2Error(f"targets {', '.join(sorted(draining))} still draining after the deregistration delay "
                         f"({delay:.0f}s) + {self.waiter.margin:.0f}s; they are deregistered and parked, "
                         "traffic drains on its own", resource=tg, code="Timeout")
