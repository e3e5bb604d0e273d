"""Property-based tests of the MCP tools' input handling (hypothesis), on FailoverMcp called directly.

For any input a client can send:

* never a traceback: a tool returns its structured result or a structured error (an input model
  raises only pydantic's ValidationError, which the SDK turns into a tool error);
* never a hang: every call ends within a bound (no network: the connection points at a closed
  port, probes at another, and host names resolve through a table);
* never a mutation on refused input: the stored strategy file is byte-identical after a refused
  define or configure, and after any trigger or monitor that ran nothing.

Profiles: ``make test`` runs a fixed, modest number of cases per property (derandomized, so the
same cases each time, in a few seconds). A long run (5,000 cases per property):

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/unit/test_mcp_property.py
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.types import CallToolResult
from pydantic import BaseModel, ValidationError

from failover_engine.mcp.models import (
    Condition,
    ConfigureResult,
    DefineResult,
    MonitorResult,
    StandbyIn,
    TriggerResult,
)
from failover_engine.mcp.policy import DestinationPolicy, OperatorPolicy
from failover_engine.mcp.server import FailoverMcp

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
CASES = int(os.environ.get("HYPOTHESIS_CASES", 5000 if LONG else 60))
SETTINGS = settings(max_examples=CASES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])
BOUND_S = 10.0  # no call may take longer (the Done-when of issue 12)

TEMPLATES = ["{{ lookup('ansible.builtin.pipe', 'id') }}", "{% raw %}", "{# x #}", "${HOME}", "$(id)", "`id`",
             "../../etc/passwd", "\x00", "\n", "a" * 2000, "", " ", "us-east-1", "shop", "use1", "usw2",
             "example.com.", "169.254.169.254", "http://169.254.169.254/latest/meta-data/", "💥", "\ud800"]


def resolver(host: str) -> list[str]:
    table = {"app.example.com": ["203.0.113.9"], "metadata.google.internal": ["169.254.169.254"]}
    if host in table:
        return table[host]
    raise OSError("no such host (test table)")


def base_doc() -> dict[str, Any]:
    return {"services": {"shop": {
        "endpoints": [
            {"name": "use1", "role": "primary", "region": "us-east-1",
             "probe": {"type": "http", "url": "http://127.0.0.1:2/health", "headers": {"Cookie": "c"}}},
            {"name": "usw2", "role": "standby", "region": "us-west-2",
             "probe": {"type": "tcp", "host": "127.0.0.1", "port": 3}},
        ],
        "routing": [{"adapter": "route53", "connection": "aws", "hosted_zone": "example.com.",
                     "record": "shop.example.com.", "type": "A", "mode": "failover",
                     "endpoints": {"use1": {"values": ["192.0.2.10"], "set_identifier": "use1"},
                                   "usw2": {"values": ["198.51.100.10"], "set_identifier": "usw2"}}}],
        "detection": {"interval": "5s", "timeout": "1s"},
    }}}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> FailoverMcp:
    """A server with one stored service; its connection and probes point at closed local ports."""
    policy = OperatorPolicy(zones=["example.com."], destinations=DestinationPolicy(["127.0.0.1"], resolver=resolver))
    connections = {"aws": {"type": "route53", "endpoint_url": "http://127.0.0.1:1", "max_attempts": 1,
                           "connect_timeout": 0.2, "read_timeout": 0.5}}
    t = FailoverMcp(tmp_path_factory.mktemp("mcp-home"), root=ROOT, connections=connections, policy=policy)
    assert not isinstance(t.define(base_doc()), CallToolResult)
    return t


# --------------------------------------------------------------------------- inputs
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40),
                      st.sampled_from(TEMPLATES))
json_value = st.recursive(json_leaf, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(TEMPLATES)),
                                                    children, max_size=4)), max_leaves=25)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


@st.composite
def mutated_strategy(draw: st.DrawFn) -> Any:
    """The valid document with one to three values replaced (or keys added) at random places."""
    doc = base_doc()
    for _i in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        value = draw(json_value)
        if not path:
            doc = value if draw(st.booleans()) else doc
            continue
        node = doc
        for key in path[:-1]:
            node = node[key]
        if isinstance(node, dict) and draw(st.booleans()):
            node[draw(st.sampled_from(TEMPLATES + ["colour", "version", "state_dir"]))] = value
        else:
            node[path[-1]] = value
    if draw(st.booleans()):
        try:
            return yaml.safe_dump(doc)
        except yaml.YAMLError:
            return doc
    return doc


def structured(result: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The result's structured content: a model, or an error that still carries one."""
    if isinstance(result, CallToolResult):
        assert result.is_error and isinstance(result.structured_content, dict), result
        json.dumps(result.structured_content)
        assert "Traceback" not in " ".join(getattr(c, "text", "") for c in result.content)
        return result.structured_content
    assert isinstance(result, model), type(result)
    return result.model_dump(mode="json")


def timed(fn: Any, *args: Any) -> Any:
    started = time.monotonic()
    out = fn(*args)
    assert time.monotonic() - started < BOUND_S, f"{fn.__name__} took over {BOUND_S}s"
    return out


# --------------------------------------------------------------------------- properties
@SETTINGS
@given(value=json_value)
def test_input_models_refuse_only_with_a_validation_error(value: Any) -> None:
    for model in (Condition, StandbyIn):
        try:
            model.model_validate(value)
        except ValidationError as exc:
            assert exc.errors()  # structured: every error has a location and a message


@SETTINGS
@given(doc=st.one_of(mutated_strategy(), json_value, st.text(max_size=300)))
def test_define_never_raises_and_never_stores_refused_input(tools: FailoverMcp, doc: Any) -> None:
    before = tools.store.path.read_bytes()
    data = structured(timed(tools.define, doc), DefineResult)
    if not data.get("ok"):
        assert data["stored"] is False and data["problems"]
        assert tools.store.path.read_bytes() == before
    tools.define(base_doc())  # back to the base for the next case


@SETTINGS
@given(standbys=st.lists(st.one_of(json_value, st.fixed_dictionaries({
    "name": st.sampled_from(TEMPLATES + ["usw2", "eu1"]), "region": st.sampled_from(TEMPLATES),
    "probe": json_value, "routing": st.lists(json_value, max_size=3)})), max_size=3),
    service=st.sampled_from(TEMPLATES), replace=st.booleans())
def test_configure_never_raises_and_never_stores_refused_input(tools: FailoverMcp, standbys: list[Any],
                                                               service: str, replace: bool) -> None:
    try:
        parsed = [StandbyIn.model_validate(s) for s in standbys]
    except ValidationError:
        return  # the SDK refuses these before the tool runs
    before = tools.store.path.read_bytes()
    data = structured(timed(tools.configure, service, parsed, replace), ConfigureResult)
    if not data.get("ok"):
        assert tools.store.path.read_bytes() == before
    tools.define(base_doc())


conditions = st.fixed_dictionaries({"reason": st.sampled_from(TEMPLATES[:6] + ["why not", "abc"])}, optional={
    "service": st.sampled_from(TEMPLATES + ["shop", "nope"]), "region": st.sampled_from(TEMPLATES + ["us-east-1"]),
    "action": st.sampled_from(["failover", "failback", "switch", "{{x}}"]),
    "target": st.sampled_from(TEMPLATES + ["usw2", "nope"]), "kind": st.sampled_from(["manual", "detected", "x"]),
    "force": st.one_of(st.booleans(), json_leaf)})


@SETTINGS
@given(cond=conditions, confirm=st.one_of(st.none(), st.sampled_from(TEMPLATES), st.text(max_size=80)))
def test_trigger_never_raises_and_runs_nothing_unconfirmed(tools: FailoverMcp, cond: dict[str, Any],
                                                           confirm: str | None) -> None:
    try:
        c = Condition.model_validate(cond)
    except ValidationError:
        return  # refused by the SDK with the model's errors
    before = tools.store.path.read_bytes()
    runs = sorted((tools.store.home / "runs").glob("*")) if (tools.store.home / "runs").exists() else []
    data = structured(timed(tools.trigger, c, confirm), TriggerResult)
    assert data["stage"] in ("planned", "noop", "refused", "failed")
    if confirm is not None:  # no token of this server: refused, nothing ran
        assert data["stage"] == "refused" and data["outcome"] is None
    assert tools.store.path.read_bytes() == before
    assert (sorted((tools.store.home / "runs").glob("*")) if (tools.store.home / "runs").exists() else []) == runs


@SETTINGS
@given(service=st.one_of(st.sampled_from(TEMPLATES + ["shop"]), st.text(max_size=30)),
       events=st.integers(0, 200), probe=st.booleans())
def test_monitor_never_raises(tools: FailoverMcp, service: str, events: int, probe: bool) -> None:
    before = tools.store.path.read_bytes()
    data = structured(timed(tools.monitor, service, events, probe), MonitorResult)
    assert ("error" in data) or data["service"] == service
    assert "Cookie" not in json.dumps(data) or "***" in json.dumps(data)
    assert tools.store.path.read_bytes() == before
