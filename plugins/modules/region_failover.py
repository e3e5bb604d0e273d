#!/usr/bin/python
# -*- coding: utf-8 -*-
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: region_failover
short_description: Move every service active in a region to another region
version_added: 0.1.0
description:
  - For each service of the strategy file whose active endpoint is in O(region), fails over to the
    first healthy endpoint outside the region, one service at a time, each with its own lock,
    safety rules, validation and rollback (as M(resilience.failover.service_failover)).
  - Services active elsewhere are left alone. Idempotent; in check mode only the plans are computed.
options:
  region:
    description: The region to leave.
    type: str
    required: true
  force:
    description: Override the safety refusals (unhealthy target, cooldown). The lock is never overridden.
    type: bool
    default: false
  expected_plans:
    description:
      - Service name to the fingerprint of its confirmed plan (see M(resilience.failover.service_failover)).
      - A service whose plan changed since, or that must move but is not listed, is refused as stale.
    type: dict
extends_documentation_fragment:
  - resilience.failover.strategy
author:
  - failover-engine developers
"""

EXAMPLES = r"""
- name: Leave us-east-1
  resilience.failover.region_failover:
    strategy_file: /etc/failover/strategy.yaml
    region: us-east-1
  register: evacuation

- name: What moved
  ansible.builtin.debug:
    msg: "{{ evacuation.services | map(attribute='service') | zip(evacuation.services | map(attribute='status')) }}"
"""

RETURN = r"""
services:
  description: One outcome per service (status planned, noop, succeeded, refused, rolled_back, ...), with its plan and timeline.
  returned: always
  type: list
  elements: dict
moved:
  description: Services whose traffic moved (or would move, in check mode).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.resilience.failover.plugins.module_utils.failover_common import (
    COMMON_ARGS,
    FailoverError,
    fail_from,
    load,
)


def main():
    spec = dict(COMMON_ARGS, region=dict(type="str", required=True), force=dict(type="bool", default=False),
                expected_plans=dict(type="dict"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    loaded = load(module)
    from failover_engine.engine import FailoverEngine

    engine = FailoverEngine(loaded)
    try:
        outs = engine.run_region(module.params["region"], apply=not module.check_mode, force=module.params["force"],
                                 expect=module.params["expected_plans"])
    except FailoverError as exc:
        fail_from(module, exc, changed=False)
    services = [o.to_dict() for o in outs]
    moved = [o.service for o in outs if o.status in ("succeeded", "planned")]
    diff = {"before": {}, "after": {}}
    for o in outs:
        if o.plan is not None and o.status in ("succeeded", "planned"):
            d = o.plan.diff()
            diff["before"].update(d["before"])
            diff["after"].update(d["after"])
    changed = bool(moved) or any(o.changed for o in outs)
    failed = [o for o in outs if not o.ok]
    if failed:
        module.fail_json(msg="region failover of {}: {}".format(
            module.params["region"], "; ".join(f"{o.service} {o.status}: {'; '.join(o.errors)}" for o in failed)),
            changed=changed, services=services, moved=moved, diff=diff)
    module.exit_json(changed=changed, services=services, moved=moved, diff=diff)


if __name__ == "__main__":
    main()
