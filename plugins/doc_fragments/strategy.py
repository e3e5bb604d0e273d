# -*- coding: utf-8 -*-
# Apache-2.0
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  strategy_file:
    description:
      - Path of the strategy file (YAML) that describes the services.
      - Defaults to the C(FAILOVER_STRATEGY) environment variable.
    type: path
    required: false
  state_dir:
    description:
      - Directory for the event log, locks, incidents and reports.
      - Defaults to the strategy file's C(state_dir).
    type: path
    required: false
requirements:
  - python >= 3.11
  - failover-engine (the library this collection drives; see requirements.txt)
notes:
  - "The modules run on the controller (C(connection: local)); the cloud SDK calls are made by the failover_engine library."
"""
