#!/usr/bin/python
# -*- coding: utf-8 -*-
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_probe
short_description: Probe a service's endpoints once, or until they are unhealthy or healthy again
version_added: 0.1.0
description:
  - Runs the probes the strategy file defines (HTTP(S), TCP) with the service's timeout and latency limit.
  - With O(wait_for), probes every detection interval until the endpoints cross the failure (or
    recovery) threshold, and records the detection as an incident, so the next
    M(resilience.failover.service_failover) reports the RTO from the first failed probe.
  - Changes no cloud resource; C(changed) is always false. In check mode no incident is recorded.
options:
  service:
    description: Name of the service in the strategy file.
    type: str
    required: true
  endpoints:
    description: Endpoints to probe. Default all; with O(wait_for), the primary.
    type: list
    elements: str
  wait_for:
    description: Probe until every given endpoint is in this state (thresholds from the strategy).
    type: str
    choices: [unhealthy, healthy]
  timeout:
    description: Seconds to wait with O(wait_for) before failing.
    type: float
    default: 60
  record_incident:
    description: With O(wait_for), record the detection for the next failover or failback.
    type: bool
    default: true
extends_documentation_fragment:
  - resilience.failover.strategy
author:
  - failover-engine developers (@failover-engine)
"""

EXAMPLES = r"""
- name: Wait until the primary is detected as down
  resilience.failover.endpoint_probe:
    service: shop
    wait_for: unhealthy
    timeout: 60
  register: detection

- name: Probe every endpoint once
  resilience.failover.endpoint_probe:
    service: shop
  register: probes
"""

RETURN = r"""
probes:
  description:
    - Last probe result per endpoint (ok, kind of failure, reason, latency).
    - Named C(probes), not C(results), because Ansible reserves C(results) for loops.
  returned: always
  type: dict
all_ok:
  description: Whether every probed endpoint passed its probe (without wait_for).
  returned: without wait_for
  type: bool
reached:
  description: Whether the awaited state was reached (with wait_for).
  returned: with wait_for
  type: bool
detection:
  description: Rounds, elapsed seconds, time of the first signal and of the detection, verdicts.
  returned: with wait_for
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.resilience.failover.plugins.module_utils.failover_common import (
    COMMON_ARGS,
    load,
    run_guarded,
)


def main():
    spec = dict(COMMON_ARGS,
                service=dict(type="str", required=True),
                endpoints=dict(type="list", elements="str"),
                wait_for=dict(type="str", choices=["unhealthy", "healthy"]),
                timeout=dict(type="float", default=60.0),
                record_incident=dict(type="bool", default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run_guarded(module, run)


def run(module):
    loaded = load(module)
    from failover_engine.detection.rounds import probe_service, wait_for
    from failover_engine.core.errors import FailoverError
    from failover_engine.engine.state import record_detection

    p = module.params
    try:
        svc = loaded.service(p["service"])
        unknown = [e for e in (p["endpoints"] or []) if e not in svc.endpoint_names]
        if unknown:
            module.fail_json(msg=f"service {p['service']!r} has no endpoint(s) {', '.join(unknown)}; "
                                 f"endpoints: {', '.join(svc.endpoint_names)}")
        if not p["wait_for"]:
            results = probe_service(svc, p["endpoints"])
            module.exit_json(changed=False, probes={n: r.to_dict() for n, r in results.items()},
                             all_ok=all(r.ok for r in results.values()))
        eps = p["endpoints"] or [svc.primary.name]
        res = wait_for(svc, eps, p["wait_for"], timeout=p["timeout"])
    except FailoverError as exc:
        module.fail_json(msg=str(exc))
    detection = res.to_dict()
    results = {n: (v.last.to_dict() if v.last else None) for n, v in res.verdicts.items()}
    if not res.reached:
        module.fail_json(msg=f"{', '.join(eps)} not {p['wait_for']} after {p['timeout']}s", changed=False,
                         reached=False, detection=detection, probes=results)
    if p["record_incident"] and not module.check_mode:
        reason = "; ".join(f"{n}: {v.reason}" for n, v in res.verdicts.items())
        record_detection(loaded.state_dir, p["service"], p["wait_for"], eps, res.first_signal_at,
                         res.detected_at, reason)
    module.exit_json(changed=False, reached=True, detection=detection, probes=results)


if __name__ == "__main__":
    main()
