# -*- coding: utf-8 -*-
# Apache-2.0
"""Shared by the resilience.failover modules: options, library import guard, error mapping."""
from __future__ import annotations

import os
import traceback

try:
    from failover_engine.core.errors import FailoverError
    from failover_engine.config.loader import load_strategy

    HAS_LIBRARY = True
    LIBRARY_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by fail_json
    HAS_LIBRARY = False
    LIBRARY_IMPORT_ERROR = traceback.format_exc()
    FailoverError = Exception  # type: ignore[misc,assignment]

from ansible.module_utils.basic import env_fallback

COMMON_ARGS = dict(
    strategy_file=dict(type="path", required=False, fallback=(env_fallback, ["FAILOVER_STRATEGY"])),
    state_dir=dict(type="path", required=False),
)


def require_library(module):
    if not HAS_LIBRARY:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("failover-engine (the collection's requirements.txt says how to install it)"),
                         exception=LIBRARY_IMPORT_ERROR)


def strategy_path(module):
    path = module.params.get("strategy_file")  # the option, else FAILOVER_STRATEGY (env_fallback)
    if not path:
        module.fail_json(msg="strategy_file is required (or set FAILOVER_STRATEGY)")
    return path


def load_secrets_file(environ=None):
    """Put the variables of the file named by FAILOVER_SECRETS_FILE into the environment.

    The MCP server hands cloud credentials to a playbook run by reference (a 0600 JSON file it
    deletes after the run), so they never sit in ansible-runner's recorded environment. Variables
    already set win. Returns the names set (never the values)."""
    environ = os.environ if environ is None else environ
    path = environ.get("FAILOVER_SECRETS_FILE")
    if not path:
        return []
    import json

    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    names = []
    for name, value in data.items():
        if isinstance(name, str) and isinstance(value, str) and name not in environ:
            environ[name] = value
            names.append(name)
    return names


def load(module):
    """Load the strategy file named by the module's options, or fail with every problem."""
    require_library(module)
    try:
        load_secrets_file()
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read the secrets file named by FAILOVER_SECRETS_FILE: %s" % type(exc).__name__)
    try:
        return load_strategy(strategy_path(module), state_dir=module.params.get("state_dir"))
    except FailoverError as exc:
        module.fail_json(msg=str(exc), problems=[str(p) for p in getattr(exc, "problems", [])])


def progress_writer(path):
    """A progress callback appending one line per message to ``path`` (flushed), or None."""
    if not path:
        return None

    def write(msg):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(msg.replace("\n", " ") + "\n")

    return write


def run_guarded(module, work):
    """Run ``work(module)``; an unexpected exception fails the module with its traceback.

    Library errors (FailoverError) are handled by ``work`` itself; anything else is a bug or an
    environment problem, reported with ``exception`` so that ``-vvv`` shows where it came from."""
    try:
        work(module)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="unexpected error: %s: %s" % (type(exc).__name__, exc),
                         exception=traceback.format_exc())


def fail_from(module, exc, **result):
    """Turn a library error into fail_json with its message (which names what and where)."""
    module.fail_json(msg=str(exc), error_type=type(exc).__name__, **result)


# The MCP server's run request. Ansible templates extra vars, so the server never passes a
# client's value as one: it writes the request as a JSON file and passes only its path; the
# module reads the values from the file here, as plain data (never templated).
REQUEST_FILE_ARG = dict(request_file=dict(type="path", required=False))

# per module: the operations a request may name, and the fields it may set (with their types)
REQUEST_FIELDS = {
    "service_failover": (("failover", "failback"),
                         dict(strategy_file=str, service=str, action=str, target=str, force=bool,
                              expected_plan=str)),
    "region_failover": (("region",), dict(strategy_file=str, region=str, force=bool, expected_plans=dict)),
}


def request_problems(data, module_name):
    """Every problem of a request (a parsed JSON value) for ``module_name``; empty when valid."""
    operations, fields = REQUEST_FIELDS[module_name]
    if not isinstance(data, dict):
        return ["the request is a JSON object"]
    problems = []
    if data.get("operation") not in operations:
        problems.append("operation must be one of %s for this module" % ", ".join(operations))
    for key, value in data.items():
        if key == "operation":
            continue
        if key not in fields:
            problems.append("unknown field %r" % (key,))
        elif value is not None and (not isinstance(value, fields[key])
                                    or (fields[key] is not bool and isinstance(value, bool))):
            problems.append("%s must be a %s" % (key, fields[key].__name__))
        elif isinstance(value, dict) and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            problems.append("%s maps names to strings" % key)
    if module_name == "service_failover" and data.get("action", data.get("operation")) != data.get("operation"):
        problems.append("action must be the request's operation")
    return problems


def read_request(module, module_name):
    """Set the module's parameters from the file named by its ``request_file`` option (when
    given): the request's values win over the task's. Fails the module on a bad request.
    Returns the request (None without a request file)."""
    path = module.params.get("request_file")
    if not path:
        return None
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read the request file %s: %s" % (path, type(exc).__name__))
    problems = request_problems(data, module_name)
    if problems:
        module.fail_json(msg="invalid request file %s: %s" % (path, "; ".join(problems)), problems=problems)
    for key, value in data.items():
        if key == "operation":
            if module_name == "service_failover":
                module.params["action"] = value
        else:
            module.params[key] = value
    return data
