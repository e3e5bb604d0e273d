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
    first healthy endpoint outside the region, all of them as ONE transaction - every service's
    lock (all or none), one concurrent probe round, one batched change per hosted zone / managed
    zone / profile, one read-back - with each service's own safety rules, validation and rollback
    (as M(resilience.failover.service_failover)). A service refused by its rules does not stop the others.
  - Services active elsewhere are left alone. Idempotent; in check mode only the plans are computed.
  - The result is compact (one short row per service); every service's full report is on disk.
options:
  region:
    description: The region to leave (required unless O(request_file) names it).
    type: str
  force:
    description: Override the safety refusals (unhealthy target, cooldown). The lock is never overridden.
    type: bool
    default: false
  take_over:
    description:
      - Write over routing that matches no known state (edited by hand, or left half-switched).
        O(force) never does; a concurrent edit is never overwritten.
    type: bool
    default: false
  progress_file:
    description:
      - Append one line per progress message to this file while the run goes on (the action
        plugin of the same name sets it and prints the lines live).
    type: path
  expected_plans:
    description:
      - Service name to the fingerprint of its confirmed plan (see M(resilience.failover.service_failover)).
      - A service whose plan changed since, or that must move but is not listed, is refused as stale.
    type: dict
  request_file:
    description:
      - A JSON file holding the run's request (C(operation) C(region), and any of C(region), C(force),
        C(expected_plans), C(strategy_file)); its values win over the task's.
      - The MCP server passes a client's request this way, so that no value of it is ever templated.
    type: path
extends_documentation_fragment:
  - resilience.failover.strategy
author:
  - failover-engine developers (@failover-engine)
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
region:
  description: The region-level outcome.
  returned: always
  type: dict
  contains:
    status:
      description: succeeded, partial, failed, noop or planned (check mode).
      type: str
    rto_s:
      description: Region RTO in seconds, from the first signal (or the command) to the last validation.
      type: float
    run_id:
      description: The run's id (journal, events and reports carry it).
      type: str
    report_path:
      description: The region report (every service's full outcome).
      type: str
summary:
  description: Counts per status, services and services moving.
  returned: always
  type: dict
  sample: {"services": 1000, "moving": 1000, "succeeded": 1000}
services:
  description: One short row per service (service, status, target, rto_s, reason, errors, report).
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
    REQUEST_FILE_ARG,
    FailoverError,
    fail_from,
    load,
    progress_writer,
    read_request,
    run_guarded,
)


def main():
    spec = dict(COMMON_ARGS, **REQUEST_FILE_ARG, region=dict(type="str"), force=dict(type="bool", default=False),
                take_over=dict(type="bool", default=False), progress_file=dict(type="path"),
                expected_plans=dict(type="dict"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_one_of=[("region", "request_file")])
    run_guarded(module, run)


def run(module):
    read_request(module, "region_failover")
    if not module.params["region"]:
        module.fail_json(msg="region is required (the request file names none)")
    loaded = load(module)
    from failover_engine.engine.failover import FailoverEngine

    progress = progress_writer(module.params["progress_file"])
    engine = FailoverEngine(loaded, progress=progress)
    try:
        result = engine.run_region(module.params["region"], apply=not module.check_mode,
                                   force=module.params["force"], take_over=module.params["take_over"],
                                   expect=module.params["expected_plans"])
    except FailoverError as exc:
        fail_from(module, exc, changed=False)
    compact = result.to_dict()
    outs = result.services
    moved = [o.service for o in outs if o.status in ("succeeded", "planned", "unverified")]
    diff = {"before": {}, "after": {}}
    for o in outs:
        if o.plan is not None and o.status in ("succeeded", "planned", "unverified"):
            d = o.plan.diff()
            diff["before"].update(d["before"])
            diff["after"].update(d["after"])
    changed = bool(moved) or any(o.changed for o in outs)
    region = {k: compact[k] for k in ("region", "run_id", "status", "rto_s", "phases_s", "first_write_after_s",
                                      "report_path")}
    ret = dict(changed=changed, region=region, summary=compact["summary"], services=compact["services"],
               moved=moved)
    if module._diff:
        ret["diff"] = diff
    failed = [o for o in outs if not o.ok]
    if failed:
        shown = "; ".join("{} {}: {}".format(o.service, o.status, "; ".join(o.errors[:2])) for o in failed[:10])
        more = " (and {} more)".format(len(failed) - 10) if len(failed) > 10 else ""
        module.fail_json(msg="region failover of {}: {}{}".format(module.params["region"], shown, more), **ret)
    module.exit_json(**ret)


if __name__ == "__main__":
    main()
