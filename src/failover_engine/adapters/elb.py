"""AWS Classic Load Balancer: zone failover by disabling and re-enabling availability zones.

One resource per zone endpoint: ``ResourceKey("elb", load_balancer, zone)`` with attributes
``{"enabled": bool}``. A read is ONE ``describe_load_balancers`` call for every load balancer
asked about. An apply is, per load balancer, at most ONE
``enable_availability_zones_for_load_balancer`` call (first, so the load balancer never runs
with fewer zones than either end state) and then at most ONE
``disable_availability_zones_for_load_balancer`` call. A plan that would disable every zone of
a load balancer is refused by :meth:`desired`, before any plan exists (apply sees only the
changed zones, so it cannot tell; AWS itself refuses to remove a load balancer's last zone).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from failover_engine.core.errors import ElbError
from failover_engine.core.model import ClassicElbConnection, ClassicElbRouting
from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.adapters.aws import AwsCalls
from failover_engine.adapters.base import Adapter, ApplyReceipt, Capability, split_zone_changes

RETRYABLE = {"Throttling", "ThrottlingException", "RequestLimitExceeded"}
MAX_NAMES_PER_DESCRIBE = 20  # DescribeLoadBalancers accepts up to 20 names per call


class ClassicElbAdapter(AwsCalls, Adapter):
    kind = "elb"
    capabilities = frozenset({Capability.READ_BACK})
    aws_service = "elb"
    aws_label = "Elastic Load Balancing"
    error_class = ElbError
    retryable_codes = frozenset(RETRYABLE)

    def __init__(self, connection: ClassicElbConnection | None = None, *, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connection = connection or ClassicElbConnection()
        self._client = client
        self._sleep = sleep
        self.calls = 0

    # ------------------------------------------------------------------ validation (pure)
    def describe(self, binding: ClassicElbRouting) -> str:
        return f"elb {binding.load_balancer} (availability zones)"

    # ------------------------------------------------------------------ desired state (pure)
    @staticmethod
    def _key(binding: ClassicElbRouting, endpoint: str) -> ResourceKey:
        return ResourceKey("elb", binding.load_balancer, binding.endpoints[endpoint].zone)

    def desired(self, binding: ClassicElbRouting, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        enabled = {ep for ep, w in assignment.items() if w > 0 and ep in binding.endpoints}
        if not enabled:
            raise ElbError(f"refusing to disable every availability zone of {binding.load_balancer} "
                           f"(no endpoint of {sorted(binding.endpoints)} in {dict(assignment)})",
                           resource=binding.load_balancer, code="AllZonesDisabled")
        return {self._key(binding, ep): {"enabled": ep in enabled} for ep in binding.endpoints}

    def active_of(self, binding: ClassicElbRouting, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        active = {ep: 100 for ep in binding.endpoints
                  if (current.get(self._key(binding, ep)) or {}).get("enabled")}
        return active or None

    # ------------------------------------------------------------------ read (I/O, batched)
    def read(self, bindings: Sequence[ClassicElbRouting]) -> dict[ResourceKey, Attrs | None]:
        names = sorted({b.load_balancer for b in bindings})
        zones_of: dict[str, set[str]] = {}
        for i in range(0, len(names), MAX_NAMES_PER_DESCRIBE):
            chunk = names[i:i + MAX_NAMES_PER_DESCRIBE]
            resp = self._call("describe_load_balancers", resource=",".join(chunk), LoadBalancerNames=chunk)
            for lb in resp.get("LoadBalancerDescriptions", []):
                zones_of[lb["LoadBalancerName"]] = set(lb.get("AvailabilityZones", []))
        out: dict[ResourceKey, Attrs | None] = {}
        for b in bindings:
            enabled = zones_of.get(b.load_balancer)
            for ep in b.endpoints:
                out[self._key(b, ep)] = None if enabled is None else {"enabled": self._key(b, ep).name in enabled}
        return out

    # ------------------------------------------------------------------ apply (I/O, batched)
    def apply(self, changes: Sequence[Change]) -> ApplyReceipt:
        start = self.calls
        receipt = ApplyReceipt()
        written: list[ResourceKey] = []
        plans = split_zone_changes(changes, "enabled")
        try:
            for lb, (enable, disable) in plans.items():
                if enable:  # first: capacity never drops below either end state
                    self._call("enable_availability_zones_for_load_balancer", resource=lb,
                               LoadBalancerName=lb, AvailabilityZones=enable)
                    written.extend(ResourceKey("elb", lb, z) for z in enable)
                    receipt.batches.append({"load_balancer": lb, "enabled": enable})
                if disable:
                    self._call("disable_availability_zones_for_load_balancer", resource=lb,
                               LoadBalancerName=lb, AvailabilityZones=disable)
                    written.extend(ResourceKey("elb", lb, z) for z in disable)
                    receipt.batches.append({"load_balancer": lb, "disabled": disable})
        except ElbError as exc:
            exc.written = tuple(written)
            raise
        receipt.calls = self.calls - start
        return receipt
