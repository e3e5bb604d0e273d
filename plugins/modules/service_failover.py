#!/usr/bin/python
# -*- coding: utf-8 -*-
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: service_failover
short_description: Fail a service over to a standby, or back to its primary, or rebalance its active members
version_added: 0.1.0
description:
  - Plans the change of routing (Route 53 records, ...) that moves a service's traffic, checks it
    against the safety rules (the target must pass its probes, one failover per service at a time,
    cooldown), applies it, validates it (read-back and probe of the new active endpoint) and rolls
    it back when validation fails.
  - Idempotent. Asking for the state that already holds changes nothing and reports C(changed=false).
  - In check mode the plan is computed and returned and nothing is changed.
  - "C(diff) (each changed resource before and after) is returned only when asked for (C(--diff) or C(diff: true))."
  - The time of the failure detected by M(resilience.failover.endpoint_probe) (when it recorded an
    incident) starts the RTO clock.
  - For an active_active service (region or zone scope), O(action=rebalance) takes the members that
    fail their probes out of rotation and brings the healthy ones back (e.g. an ARC zonal shift
    away from a failing availability zone, cancelled once the zone is healthy again).
options:
  service:
    description: Name of the service in the strategy file (required unless O(request_file) names it).
    type: str
  action:
    description:
      - C(failover) moves traffic to O(target), or to the first healthy standby.
      - C(failback) moves traffic back to the primary.
      - C(switch) moves traffic to O(target) (required).
      - C(rebalance) (active_active services only) puts exactly the healthy members in rotation, within
        the strategy's rules (for example C(max_out)); a plan that would leave no member in rotation
        is refused.
    type: str
    choices: [failover, failback, switch, rebalance]
    default: failover
  target:
    description: Endpoint to move traffic to (for C(failover) and C(switch)); not used by C(rebalance).
    type: str
  force:
    description:
      - Override the safety refusals (a target that fails its probes, the cooldown).
      - The lock is never overridden, nor a concurrent edit, nor routing that matches no known state (see O(take_over)).
    type: bool
    default: false
  take_over:
    description:
      - Write over routing that matches no known state (records edited by hand, or left half-switched).
      - The event log records the values taken over. A concurrent edit (a record changed between the read
        and the write) is still refused.
    type: bool
    default: false
  expected_plan:
    description:
      - The fingerprint (C(plan.fingerprint) of a check-mode run) of a plan someone confirmed.
      - The run is refused as stale, even with O(force), unless the plan computed under the lock has it,
        so what runs is exactly what was confirmed (the MCP server's two-step trigger uses this).
    type: str
  request_file:
    description:
      - A JSON file holding the run's request (C(operation) C(failover) or C(failback), and any of
        C(service), C(action), C(target), C(force), C(expected_plan), C(strategy_file)); its values win
        over the task's.
      - The MCP server passes a client's request this way, so that no value of it is ever templated.
    type: path
extends_documentation_fragment:
  - resilience.failover.strategy
author:
  - failover-engine developers (@failover-engine)
"""

EXAMPLES = r"""
- name: Fail the shop service over to its standby region
  resilience.failover.service_failover:
    strategy_file: /etc/failover/strategy.yaml
    service: shop
  register: failover

- name: Show the RTO
  ansible.builtin.debug:
    msg: "RTO {{ failover.rto_s }} s, phases {{ failover.report.timeline.phases_s }}"

- name: Fail back to the primary once it is healthy again
  resilience.failover.service_failover:
    strategy_file: /etc/failover/strategy.yaml
    service: shop
    action: failback

- name: Take the zones that fail their probes out of an active-active service, bring healthy ones back
  resilience.failover.service_failover:
    service: shop
    action: rebalance
  register: rebalance

- name: What would a failover change? (nothing is changed in check mode)
  resilience.failover.service_failover:
    service: shop
  check_mode: true
  diff: true
"""

RETURN = r"""
status:
  description: planned (check mode), noop, succeeded, refused, rolled_back, rollback_failed, failed.
  returned: always
  type: str
  sample: succeeded
active:
  description: Endpoints taking traffic after the run, with their weights.
  returned: always
  type: dict
  sample: {"usw2": 100}
out_of_rotation:
  description: Endpoints not taking traffic after the run (active_active services; empty otherwise).
  returned: always
  type: list
  elements: str
  sample: ["az2"]
plan:
  description: The plan, with every change's before and after.
  returned: always
  type: dict
  contains:
    service: {description: The service., type: str}
    action: {description: "failover, failback, switch or rebalance.", type: str}
    current: {description: Endpoints taking traffic before the run and their weights (null when unknown)., type: dict}
    target: {description: Endpoints taking traffic after the run and their weights., type: dict}
    reason: {description: Why this target was chosen., type: str}
    noop: {description: Whether the plan changes nothing., type: bool}
    warnings: {description: Warnings found while planning., type: list, elements: str}
    refusals: {description: "Safety rules the plan breaks (O(force) overrides them).", type: list, elements: str}
    blocks: {description: "Routing that matches no known state (only O(take_over) writes over it).", type: list, elements: str}
    steps:
      description: One step per routing binding, applied as one unit, each with its changes (resource, action, before, after).
      type: list
      elements: dict
    promotion: {description: "The pilot-light Terraform apply of the run (when, dir, vars), or null.", type: dict}
    fingerprint: {description: "Digest of what the plan would do; pass it as O(expected_plan) to apply exactly this plan.", type: str}
  sample:
    service: shop
    action: failover
    current: {"use1": 100}
    target: {"usw2": 100}
    reason: "use1 failed its probes; usw2 is the first healthy standby"
    noop: false
    warnings: []
    refusals: []
    blocks: []
    steps:
      - step: 0
        adapter: route53
        connection: null
        description: "Route 53 failover records of shop.example.com."
        changes:
          - resource: "route53:Z123/shop.example.com./A[use1]"
            action: update
            before: {"failover": "PRIMARY"}
            after: {"failover": "SECONDARY"}
    promotion: null
    fingerprint: 3f2a9c0e5b7d41a6
rto_s:
  description: Recovery time in seconds, from the first failed probe (or the command) to validation.
  returned: when the failover was applied
  type: float
report:
  description: The full outcome (plan, timeline with each phase, validation, rollback, errors).
  returned: when not in check mode
  type: dict
  contains:
    service: {description: The service., type: str}
    action: {description: The action run., type: str}
    status: {description: "The run's status (see RV(status)), plus C(unverified), C(unknown) and C(error).", type: str}
    ok: {description: Whether the run ended as asked., type: bool}
    changed: {description: Whether anything was written., type: bool}
    run_id: {description: "The run's id (journal, events and reports carry it).", type: str}
    started: {description: When the run started (ISO 8601)., type: str}
    plan: {description: The plan (see RV(plan))., type: dict}
    timeline: {description: "The signal, timestamps, the duration of each phase (detection, decision, promotion, apply, validation) and the RTO.", type: dict}
    validation: {description: "The read-back and probe of the new active endpoint.", type: dict}
    steps: {description: "Per plan step: applied, failed, not_run or noop.", type: list, elements: dict}
    rollback: {description: "The rollback, when one ran: whether it is complete and what it restored.", type: dict}
    errors: {description: Errors of the run., type: list, elements: str}
    api_calls: {description: Cloud API calls made., type: int}
    report_path: {description: Path of this report in the state directory., type: str}
    reason: {description: Why the run ended as it did., type: str}
    promotion: {description: "The pilot-light Terraform apply of the run, or null.", type: dict}
  sample:
    service: shop
    action: failover
    status: succeeded
    ok: true
    changed: true
    run_id: 20261125T101500Z-7f3a
    started: "2026-11-25T10:15:00Z"
    plan: {"service": "shop", "action": "failover", "target": {"usw2": 100}}
    timeline: {"signal": "failure", "phases_s": {"detection": 3.0, "decision": 0.3, "apply": 0.4, "validation": 0.5}, "rto_s": 4.2}
    validation: {"ok": true, "reasons": [], "read_back": {}, "probes": []}
    steps: [{"step": 0, "result": "applied"}]
    rollback: null
    errors: []
    api_calls: 6
    report_path: /var/lib/failover/reports/20261125T101500Z-7f3a.json
    reason: "use1 failed its probes; usw2 is the first healthy standby"
    promotion: null
report_path:
  description: Path of the JSON report written in the state directory.
  returned: when not in check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.resilience.failover.plugins.module_utils.failover_common import (
    COMMON_ARGS,
    REQUEST_FILE_ARG,
    FailoverError,
    fail_from,
    load,
    read_request,
    run_guarded,
)


def out_of_rotation(engine, service, active):
    """Members of an active_active service not in ``active`` (none for other strategies)."""
    svc = engine.loaded.service(service)
    if svc.strategy != "active_active" or active is None:
        return []
    return [n for n in svc.endpoint_names if n not in active]


def plan_only(engine, params):
    """Check mode: compute the plan, change nothing. Returns (changed, result)."""
    plan = engine.plan(params["service"], params["action"], params["target"])
    active = plan.target if not plan.is_noop else plan.current
    result = dict(status="noop" if plan.is_noop else "planned", plan=plan.to_dict(), diff=plan.diff(),
                  active=active, out_of_rotation=out_of_rotation(engine, params["service"], active))
    refusals = ([] if params["force"] else list(plan.refusals)) + ([] if params["take_over"] else list(plan.blocks))
    if refusals and not plan.is_noop:
        result["refusals"] = refusals
    return not plan.is_noop, result


def apply(engine, params):
    out = engine.run(params["service"], params["action"], params["target"], apply=True, force=params["force"],
                     expect=params["expected_plan"], take_over=params["take_over"])
    report = out.to_dict()
    plan = out.plan
    active = (plan.target if out.status in ("succeeded", "unverified") else plan.current) if plan else None
    result = dict(status=out.status, plan=report["plan"], report=report, report_path=out.report_path,
                  active=active, out_of_rotation=out_of_rotation(engine, params["service"], active),
                  rto_s=out.timeline.rto if out.timeline else None,
                  diff=plan.diff() if plan and out.changed else dict(before={}, after={}))
    return out.changed, out.ok, result


def main():
    spec = dict(COMMON_ARGS, **REQUEST_FILE_ARG,
                service=dict(type="str"),
                action=dict(type="str", default="failover", choices=["failover", "failback", "switch", "rebalance"]),
                target=dict(type="str"),
                force=dict(type="bool", default=False),
                take_over=dict(type="bool", default=False),
                expected_plan=dict(type="str"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[("action", "switch", ["target"])],
                           required_one_of=[("service", "request_file")])
    run_guarded(module, run)


def run(module):
    read_request(module, "service_failover")
    if not module.params["service"]:
        module.fail_json(msg="service is required (the request file names none)")
    if module.params["action"] == "rebalance" and module.params["target"]:
        module.fail_json(msg="action=rebalance takes no target: it puts exactly the healthy members in rotation")
    loaded = load(module)
    from failover_engine.engine.failover import FailoverEngine

    engine = FailoverEngine(loaded)
    try:
        if module.check_mode:
            changed, result = plan_only(engine, module.params)
            if not module._diff:
                result.pop("diff")
            if result.get("refusals"):
                module.fail_json(msg="the plan would be refused: " + "; ".join(result["refusals"]),
                                 changed=False, **result)
            module.exit_json(changed=changed, **result)
        changed, ok, result = apply(engine, module.params)
        if not module._diff:
            result.pop("diff")
    except FailoverError as exc:
        fail_from(module, exc, changed=False)
    if not ok:
        errors = result["report"].get("errors") or [result["status"]]
        module.fail_json(msg=f"{module.params['action']} of {module.params['service']} {result['status']}: "
                             + "; ".join(errors), changed=changed, **result)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
