#!/usr/bin/python
# -*- coding: utf-8 -*-
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: service_info
short_description: Status of failover services - active endpoint, health verdicts, routing records, recent events
version_added: 0.1.0
description:
  - Reads the routing state from the providers (which endpoint takes traffic), probes the endpoints
    once (unless O(probe=false)) and returns the recent events of the event log. Changes nothing.
options:
  service:
    description: Service to report on. All services when omitted.
    type: str
  probe:
    description: Probe the endpoints once and return their verdicts.
    type: bool
    default: true
  events:
    description: How many recent events to return per service.
    type: int
    default: 10
extends_documentation_fragment:
  - resilience.failover.strategy
author:
  - failover-engine developers (@failover-engine)
"""

EXAMPLES = r"""
- name: Where does the shop service's traffic go?
  resilience.failover.service_info:
    strategy_file: /etc/failover/strategy.yaml
    service: shop
  register: shop

- name: Fail if shop is failed over
  ansible.builtin.assert:
    that: not shop.services[0].failed_over
"""

RETURN = r"""
services:
  description: One entry per service.
  returned: always
  type: list
  elements: dict
  contains:
    service: {description: Service name., type: str}
    active: {description: Endpoints taking traffic and their weights (null when unknown)., type: dict}
    primary: {description: The primary endpoint., type: str}
    failed_over: {description: Whether traffic is away from the primary., type: bool}
    verdicts: {description: Health per endpoint with the reason., type: dict}
    routing: {description: "Records as the providers hold them, per routing binding.", type: dict}
    recent_events: {description: Last events of the event log., type: list}
    interrupted:
      description:
        - Runs of the service whose process died mid-run (write-ahead journal left open, no lock holder).
        - The next apply, the monitor, or C(failover recover) finishes them.
      type: list
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.resilience.failover.plugins.module_utils.failover_common import (
    COMMON_ARGS,
    FailoverError,
    fail_from,
    load,
    run_guarded,
)


def main():
    spec = dict(COMMON_ARGS, service=dict(type="str"), probe=dict(type="bool", default=True),
                events=dict(type="int", default=10))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run_guarded(module, run)


def run(module):
    loaded = load(module)
    from failover_engine.engine.failover import FailoverEngine

    engine = FailoverEngine(loaded)
    names = [module.params["service"]] if module.params["service"] else list(loaded.strategy.services)
    try:
        services = [engine.status(n, probe=module.params["probe"], events=module.params["events"]) for n in names]
    except FailoverError as exc:
        fail_from(module, exc, changed=False)
    module.exit_json(changed=False, services=services)


if __name__ == "__main__":
    main()
