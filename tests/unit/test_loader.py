"""Reading a strategy file: YAML -> Strategy, and every problem reported at once with file, path and line."""
from __future__ import annotations

import json
import re

import pytest

from failover_engine.core.errors import FailoverError, Problem, StrategyError, UnknownServiceError
from failover_engine.config.loader import json_schema, load_strategy, parse_strategy
from failover_engine.core.model import HttpProbe, Role, Route53Connection, TcpProbe

FILE = "strategy.yaml"

VALID = """\
version: 1
connections:
  aws:
    type: route53
    endpoint_url: http://127.0.0.1:5000
    max_attempts: 4
services:
  web:
    description: the shop
    endpoints:
      - name: use1
        role: primary
        region: us-east-1
        probe: {type: http, url: "https://use1.example.com/health", body_contains: ok}
      - name: usw2
        role: standby
        region: us-west-2
        probe: {type: tcp, host: usw2.example.com, port: 443}
    routing:
      - adapter: route53
        connection: aws
        hosted_zone_id: Z123
        record: www.example.com.
        mode: failover
        endpoints:
          use1: {values: [192.0.2.10], set_identifier: use1-primary}
          usw2: {values: [198.51.100.10]}
    detection: {interval: 250ms, timeout: 200ms, failure_threshold: 3, latency_limit: 150ms}
    policy: {failover: automatic, cooldown: 2m, failback: manual}
    validation: {attempts: 5, interval: 1s}
"""


def mutate(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, f"test setup: {old!r} not in the strategy text"
        text = text.replace(old, new, 1)
    return text


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"test setup: {needle!r} not in the strategy text")


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text, file=FILE)
    assert exc.value.file == FILE
    assert all(p.file == FILE for p in exc.value.problems)
    return exc.value.problems


def find(problems: list[Problem], path: str, reason: str) -> Problem:
    """The problem at ``path`` whose message contains ``reason`` (or matches it as a regular expression)."""
    hits = [p for p in problems if p.path.split(" (line")[0] == path
            and (reason in p.message or re.search(reason, p.message))]
    assert hits, f"no problem at {path!r} matching {reason!r} in {[str(p) for p in problems]}"
    return hits[0]


def line_in(problem: Problem) -> int | None:
    m = re.search(r"\(line (\d+)\)$", problem.path)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- valid files
def test_valid_strategy_parses_with_units_and_types():
    strategy, data = parse_strategy(VALID, file=FILE)
    svc = strategy.services["web"]
    assert data["services"]["web"]["description"] == "the shop"
    assert [ep.name for ep in svc.endpoints] == ["use1", "usw2"]
    assert svc.primary.name == "use1" and svc.primary.role is Role.primary
    assert isinstance(svc.endpoints[0].probe, HttpProbe)
    assert isinstance(svc.endpoints[1].probe, TcpProbe) and svc.endpoints[1].probe.port == 443
    assert (svc.detection.interval, svc.detection.timeout, svc.detection.latency_limit) == (0.25, 0.2, 0.15)
    assert svc.policy.cooldown == 120.0 and svc.policy.failover == "automatic"
    assert svc.validation.interval == 1.0
    binding = svc.routing[0]
    assert (binding.mode, binding.hosted_zone_id, binding.connection) == ("failover", "Z123", "aws")
    assert binding.endpoints["use1"].set_identifier == "use1-primary"
    conn = strategy.connections["aws"]
    assert isinstance(conn, Route53Connection) and conn.max_attempts == 4


def test_load_strategy_defaults_state_dir_next_to_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    loaded = load_strategy(path)
    assert loaded.path == path
    assert loaded.state_dir == tmp_path.resolve() / ".failover-state"
    assert loaded.service("web").primary.name == "use1"


def test_load_strategy_resolves_a_relative_state_dir_against_the_file(tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    path = sub / "s.yaml"
    path.write_text("state_dir: run/state\n" + VALID)
    assert load_strategy(path).state_dir == sub.resolve() / "run" / "state"


def test_load_strategy_keeps_an_absolute_state_dir_and_the_override_wins(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"state_dir: {tmp_path / 'abs'}\n" + VALID)
    assert load_strategy(path).state_dir == tmp_path / "abs"
    assert load_strategy(path, state_dir=tmp_path / "other").state_dir == tmp_path / "other"


def test_unknown_service_lists_the_known_ones(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(VALID)
    with pytest.raises(UnknownServiceError) as exc:
        load_strategy(path).service("shop")
    msg = str(exc.value)
    assert "'shop'" in msg and "known services: web" in msg and str(path) in msg
    assert exc.value.service == "shop"
    assert isinstance(exc.value, FailoverError)


# --------------------------------------------------------------------------- structural problems
URL_REASON = r"should match pattern|http:// or https://"
NAME_REASON = r"should match pattern|letters, digits"
STRUCTURAL = [
    # (mutations, dotted path, reason, needle for the reported line)
    pytest.param([('"https://use1.example.com/health"', '"ftp://use1.example.com/health"')],
                 "services.web.endpoints[0].probe.url", URL_REASON, "ftp://", id="bad-url"),
    pytest.param([("        role: standby\n", "        role: standby\n        colour: blue\n")],
                 "services.web.endpoints[1].colour", "unknown field", "colour: blue", id="unknown-field"),
    pytest.param([("        record: www.example.com.\n", "")],
                 "services.web.routing[0].record", "Field required", "- adapter: route53", id="missing-record"),
    pytest.param([("role: primary", "role: primry")],
                 "services.web.endpoints[0].role", "Input should be", "role: primry", id="bad-role"),
    pytest.param([("port: 443", "port: 70000")],
                 "services.web.endpoints[1].probe.port", "less than or equal", "port: 70000", id="bad-port"),
    pytest.param([("interval: 250ms", "interval: 5 fortnights")],
                 "services.web.detection.interval", "invalid duration", "5 fortnights", id="bad-duration"),
    pytest.param([("failure_threshold: 3", "failure_threshold: 0")],
                 "services.web.detection.failure_threshold", "greater than or equal", "failure_threshold: 0",
                 id="threshold-zero"),
    pytest.param([("name: usw2", "name: us west 2")],
                 "services.web.endpoints[1].name", NAME_REASON, "us west 2", id="bad-name"),
    pytest.param([("version: 1", "version: 2")], "version", "Input should be 1", "version: 2", id="bad-version"),
    pytest.param([("    max_attempts: 4\n", "    max_attempts: 4\n    retries: 9\n")],
                 "connections.aws.retries", "unknown field", "retries: 9", id="unknown-connection-field"),
    pytest.param([("version: 1\n", "version: 1\ncolour: blue\n")],
                 "colour", "unknown field", "colour: blue", id="unknown-top-level-field"),
    pytest.param([("mode: failover", "mode: latency")],
                 "services.web.routing[0].mode", "Input should be", "mode: latency", id="bad-mode"),
    pytest.param([("{values: [198.51.100.10]}", "{values: []}")],
                 "services.web.routing[0].endpoints.usw2.values", "at least 1", "usw2: {values: []}",
                 id="empty-values"),
    pytest.param([("type: tcp, host", "type: icmp, host")],
                 "services.web.endpoints[1].probe", "does not match any of the expected tags", "type: icmp",
                 id="unknown-probe-type"),
    pytest.param([("policy: {failover: automatic", "policy: {failover: sometimes")],
                 "services.web.policy.failover", "Input should be", "failover: sometimes", id="bad-policy"),
]


@pytest.mark.parametrize("mutations, path, reason, needle", STRUCTURAL)
def test_structural_problem_names_file_path_line_and_reason(mutations, path, reason, needle):
    text = mutate(VALID, *mutations)
    problem = find(problems_of(text), path, reason)
    assert line_in(problem) == line_of(text, needle)
    assert str(problem).startswith(f"{FILE}: {path} (line ")


def test_a_single_endpoint_is_rejected():
    text = mutate(VALID, ("""      - name: usw2
        role: standby
        region: us-west-2
        probe: {type: tcp, host: usw2.example.com, port: 443}
""", ""))
    problem = find(problems_of(text), "services.web.endpoints", "at least 2")
    assert line_in(problem) == line_of(text, "- name: use1")


def test_no_services_is_rejected():
    problems = problems_of("version: 1\nservices: {}\n")
    find(problems, "services", "at least 1")


def test_missing_services_is_rejected_at_the_top_of_the_file():
    problem = find(problems_of("# a comment\nversion: 1\n"), "services", "Field required")
    assert line_in(problem) == 2  # the root mapping starts on line 2


def test_several_structural_problems_are_all_reported_at_once():
    text = mutate(
        VALID,
        ('"https://use1.example.com/health"', '"ftp://x"'),  # bad URL
        ("        role: standby\n", "        role: standby\n        colour: blue\n"),  # unknown field
        ("        record: www.example.com.\n", ""),  # missing required field
    )
    problems = problems_of(text)
    bad_url = find(problems, "services.web.endpoints[0].probe.url", URL_REASON)
    unknown = find(problems, "services.web.endpoints[1].colour", "unknown field")
    missing = find(problems, "services.web.routing[0].record", "Field required")
    assert len(problems) == 3
    assert line_in(bad_url) == line_of(text, "ftp://x")
    assert line_in(unknown) == line_of(text, "colour: blue")
    assert line_in(missing) == line_of(text, "- adapter: route53")


def test_the_error_message_lists_every_problem():
    text = mutate(VALID, ('"https://use1.example.com/health"', '"ftp://x"'), ("port: 443", "port: 0"))
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text, file=FILE)
    msg = str(exc.value)
    assert msg.splitlines()[0] == f"{FILE}: 2 problem(s) in strategy"
    assert "services.web.endpoints[0].probe.url" in msg and "services.web.endpoints[1].probe.port" in msg


def test_routing_binding_without_adapter_uses_the_default():
    text = mutate(VALID, ("      - adapter: route53\n        connection: aws\n", "      - connection: aws\n"))
    strategy, _unused = parse_strategy(text, file=FILE)
    assert strategy.services["web"].routing[0].adapter == "route53"


def test_probe_without_type_uses_the_default():
    text = mutate(VALID, ('{type: http, url:', '{url:'))
    strategy, _unused = parse_strategy(text, file=FILE)
    assert isinstance(strategy.services["web"].endpoints[0].probe, HttpProbe)


def test_schema_optionality_of_discriminators_matches_the_loader():
    """What the loader does today: the schema does not list them as required (the callable discriminators apply the defaults)."""
    defs = json.loads(json_schema())["$defs"]
    assert "adapter" not in defs["Route53Routing"].get("required", [])
    assert "type" not in defs["HttpProbe"].get("required", [])


# --------------------------------------------------------------------------- semantic problems
SEMANTIC = [
    # (mutations, dotted path, reason, needle for the reported line)
    pytest.param([("role: standby", "role: primary")], "services.web.endpoints",
                 "exactly one primary, found 2", "- name: use1", id="two-primaries"),
    pytest.param([("role: standby", "role: primary")], "services.web.endpoints",
                 "at least one standby", "- name: use1", id="no-standby"),
    pytest.param([("          usw2: {values: [198.51.100.10]}\n", "")], "services.web.routing[0].endpoints",
                 "no binding for endpoint(s) usw2", "use1: {values", id="binding-missing-endpoint"),
    pytest.param([("          usw2: {values: [198.51.100.10]}\n",
                   "          usw2: {values: [198.51.100.10]}\n          ghost: {values: [203.0.113.1]}\n")],
                 "services.web.routing[0].endpoints", "unknown endpoint(s) ghost", "use1: {values",
                 id="binding-unknown-endpoint"),
    pytest.param([("connection: aws", "connection: gcp")], "services.web.routing[0].connection",
                 "no connection named 'gcp'", "connection: gcp", id="unknown-connection"),
    pytest.param([("timeout: 200ms", "timeout: 2s")], "services.web.detection.timeout",
                 "must not exceed interval", "detection:", id="timeout-over-interval"),
    pytest.param([("    description: the shop\n", "    description: the shop\n    scope: zone\n")],
                 "services.web.endpoints[0].zone", "zone scope needs a zone", "- name: use1",
                 id="zone-scope-without-zone"),
    pytest.param([("        region: us-west-2\n", "")], "services.web.endpoints[1].region",
                 "region scope needs a region", "- name: usw2", id="region-scope-without-region"),
    pytest.param([("      - name: usw2\n", "      - name: usw3\n        role: standby\n        region: x\n"
                                           "      - name: usw2\n"),
                  ("          usw2: {values: [198.51.100.10]}\n",
                   "          usw2: {values: [198.51.100.10]}\n          usw3: {values: [203.0.113.1]}\n")],
                 "services.web.routing[0].endpoints", "failover mode binds exactly two endpoints",
                 "use1: {values", id="failover-mode-with-3-endpoints"),
    pytest.param([("{values: [198.51.100.10]}", "{values: [198.51.100.10], set_identifier: use1-primary}")],
                 "services.web.routing[0].endpoints", "set_identifier values must be unique", "use1: {values",
                 id="duplicate-set-identifier"),
    pytest.param([("        hosted_zone_id: Z123\n", "")], "services.web.routing[0].hosted_zone_id",
                 "give hosted_zone_id or hosted_zone", "- adapter: route53", id="missing-hosted-zone"),
    pytest.param([("          use1: {values: [192.0.2.10], set_identifier: use1-primary}",
                   "          use1: {values: [a.example.com, b.example.com], set_identifier: use1-primary}"),
                  ("        mode: failover\n", "        mode: failover\n        type: CNAME\n")],
                 "services.web.routing[0].endpoints.use1.values", "exactly one value", "use1: {values",
                 id="cname-with-two-values"),
]


@pytest.mark.parametrize("mutations, path, reason, needle", SEMANTIC)
def test_semantic_problem_names_file_path_line_and_reason(mutations, path, reason, needle):
    text = mutate(VALID, *mutations)
    problem = find(problems_of(text), path, reason)
    assert line_in(problem) == line_of(text, needle)


def test_several_semantic_problems_are_all_reported_at_once():
    text = mutate(
        VALID,
        ("role: standby", "role: primary"),                      # two primaries, no standby
        ("connection: aws", "connection: gcp"),                   # unknown connection
        ("timeout: 200ms", "timeout: 2s"),                        # timeout > interval
        ("        hosted_zone_id: Z123\n", ""),                   # no hosted zone
        ("          usw2: {values: [198.51.100.10]}\n",
         "          ghost: {values: [198.51.100.10]}\n"),          # missing usw2, unknown ghost
    )
    problems = problems_of(text)
    expected = [
        ("services.web.endpoints", "exactly one primary"),
        ("services.web.endpoints", "at least one standby"),
        ("services.web.routing[0].connection", "no connection named 'gcp'"),
        ("services.web.detection.timeout", "interval"),
        ("services.web.routing[0].hosted_zone_id", "hosted_zone"),
        ("services.web.routing[0].endpoints", "no binding for endpoint(s) usw2"),
        ("services.web.routing[0].endpoints", "unknown endpoint(s) ghost"),
    ]
    for path, reason in expected:
        assert line_in(find(problems, path, reason)) is not None
    assert len(problems) == len(expected)


def test_semantic_problem_line_in_a_dotted_service_name():
    second = VALID.split("services:\n", 1)[1].replace("  web:\n", "  web.v2:\n", 1).replace(
        "role: standby", "role: primary")
    text = VALID + second
    problem = find(problems_of(text), "services.web.v2.endpoints", "exactly one primary")
    assert line_in(problem) == line_of(text, "  web.v2:") + 3  # the `endpoints:` value of web.v2


# --------------------------------------------------------------------------- not a strategy at all
@pytest.mark.parametrize("text", ["services: [unclosed\n", "a: b: c\n", "services:\n  web: {\n", "\tversion: 1\n"])
def test_not_yaml_is_one_problem_with_a_line(text):
    (problem,) = problems_of(text)
    assert "not valid YAML" in problem.message
    assert re.match(r"line \d+, column \d+", problem.path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n", "", "# only a comment\n", "null\n"])
def test_not_a_mapping_is_one_problem(text):
    (problem,) = problems_of(text)
    assert problem.path == ""
    assert "YAML mapping with `services:`" in problem.message
    assert str(problem) == f"{FILE}: <root>: {problem.message}"


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(StrategyError) as exc:
        load_strategy(path)
    (problem,) = exc.value.problems
    assert problem.file == str(path) and exc.value.file == str(path)
    assert "cannot read file" in problem.message
    assert str(path) in str(exc.value)


def test_a_directory_is_not_a_file(tmp_path):
    with pytest.raises(StrategyError, match="cannot read file"):
        load_strategy(tmp_path)


def test_load_strategy_reports_problems_with_the_path(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(mutate(VALID, ("port: 443", "port: 0")))
    with pytest.raises(StrategyError) as exc:
        load_strategy(path)
    assert [p.file for p in exc.value.problems] == [str(path)]
    assert str(exc.value).startswith(f"{path}: 1 problem(s)")


# --------------------------------------------------------------------------- schema
def test_json_schema_is_valid_json_describing_services():
    schema = json.loads(json_schema())
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert "services" in schema["properties"]
    assert set(schema["$defs"]) >= {"Service", "Endpoint", "Route53Routing", "HttpProbe", "TcpProbe"}
    duration = schema["$defs"]["Detection"]["properties"]["interval"]
    assert "250ms" in json.dumps(duration)


def test_the_valid_example_satisfies_its_own_schema_shape():
    """The example's top-level keys are all schema properties (no drift between loader and schema)."""
    _unused, data = parse_strategy(VALID)
    schema = json.loads(json_schema())
    assert set(data) <= set(schema["properties"])
    assert set(data["services"]["web"]) <= set(schema["$defs"]["Service"]["properties"])
