"""Strict, total input handling (issue 12, point 6): every malformed strategy the fuzzing found is
refused with the file, the field path and what is wrong, and nothing is changed.

Each section reproduces one finding first (these tests failed before the fix): duplicate YAML keys,
booleans and zeros taken as numbers, A/AAAA values that are not IPs, records outside their zone,
endpoint URLs that are not URLs, non-UTF-8 bytes, nesting too deep, files too big, paging markers
that do not advance, and state files readable by others.
"""
from __future__ import annotations

import os
import re
import stat
import time
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from failover_engine.core import model
from failover_engine.core.errors import CloudDnsError, Problem, Route53Error, StrategyError
from failover_engine.config.loader import DEFAULT_MAX_BYTES, MAX_DEPTH, load_strategy, parse_strategy

FILE = "strategy.yaml"

BASE = """\
version: 1
connections:
  aws:
    type: route53
    endpoint_url: http://127.0.0.1:5000
    max_attempts: 4
services:
  web:
    endpoints:
      - name: use1
        role: primary
        region: us-east-1
        probe: {type: http, url: "https://use1.example.com/health"}
      - name: usw2
        role: standby
        region: us-west-2
        probe: {type: tcp, host: usw2.example.com, port: 443}
    routing:
      - adapter: route53
        connection: aws
        hosted_zone: example.com.
        record: www.example.com.
        type: A
        ttl: 60
        mode: failover
        endpoints:
          use1: {values: [192.0.2.10]}
          usw2: {values: [198.51.100.10]}
    detection: {interval: 5s, timeout: 2s, failure_threshold: 3, recovery_threshold: 2, latency_limit: 1s}
    policy: {failover: automatic, cooldown: 1s, failback: manual}
    validation: {attempts: 3, interval: 1s}
"""


def mutate(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, f"test setup: {old!r} not in the strategy text"
        text = text.replace(old, new, 1)
    return text


def line_of(text: str, needle: str, start: int = 1) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if i >= start and needle in line:
            return i
    raise AssertionError(f"test setup: {needle!r} not in the strategy text")


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text, file=FILE)
    assert exc.value.file == FILE and all(p.file == FILE for p in exc.value.problems)
    return exc.value.problems


def find(problems: list[Problem], path: str, reason: str) -> Problem:
    hits = [p for p in problems if p.path.split(" (line")[0] == path and re.search(reason, p.message)]
    assert hits, f"no problem at {path!r} matching {reason!r} in {[str(p) for p in problems]}"
    return hits[0]


def test_the_base_is_valid():
    strategy, _unused = parse_strategy(BASE, file=FILE)
    assert strategy.services["web"].routing[0].hosted_zone == "example.com."


# --------------------------------------------------------------------------- duplicate keys
def test_a_duplicate_key_in_a_flow_mapping_names_both_lines():
    text = mutate(BASE, ("cooldown: 1s,", "cooldown: 1s,\n              cooldown: 0s,"))
    p = find(problems_of(text), "services.web.policy.cooldown", "duplicate key 'cooldown'")
    first, second = line_of(text, "cooldown: 1s"), line_of(text, "cooldown: 0s")
    assert f"lines {first} and {second}" in p.message
    assert p.path == f"services.web.policy.cooldown (line {second})"


def test_a_service_defined_twice_is_refused():
    second = BASE.split("services:\n", 1)[1]
    text = BASE + second
    p = find(problems_of(text), "services.web", "duplicate key 'web'")
    assert f"lines {line_of(text, '  web:')} and {line_of(text, '  web:', line_of(text, '  web:') + 1)}" in p.message


def test_every_duplicate_is_reported_at_once_with_the_other_problems():
    text = mutate(BASE, ("version: 1\n", "version: 1\nversion: 1\n"),
                  ("        role: primary\n", "        role: primary\n        role: standby\n"),
                  ("port: 443", "port: 0"))
    problems = problems_of(text)
    find(problems, "version", "duplicate key 'version'")
    find(problems, "services.web.endpoints[0].role", "duplicate key 'role'")
    find(problems, "services.web.endpoints[1].probe.port", "greater than or equal to 1")


def test_keys_that_load_as_the_same_value_are_duplicates():
    # YAML 1.1 reads both as the boolean true: the second would silently replace the first
    text = mutate(BASE, ("  web:\n", "  web:\n    description: {yes: 1, true: 2}\n"))
    find(problems_of(text), "services.web.description.True", "duplicate key")


def test_a_merge_key_overridden_by_an_explicit_key_is_not_a_duplicate():
    text = mutate(BASE, ("    policy: {failover: automatic, cooldown: 1s, failback: manual}\n",
                         "    policy:\n      <<: {failover: automatic, cooldown: 1s}\n      cooldown: 2s\n"))
    strategy, _unused = parse_strategy(text, file=FILE)
    assert strategy.services["web"].policy.cooldown == 2.0


# --------------------------------------------------------------------------- strict numbers
BOOLEAN_NUMBERS = [
    ("ttl: 60", "ttl: true", "services.web.routing[0].ttl"),
    ("failure_threshold: 3", "failure_threshold: true", "services.web.detection.failure_threshold"),
    ("recovery_threshold: 2", "recovery_threshold: yes", "services.web.detection.recovery_threshold"),
    ("attempts: 3", "attempts: true", "services.web.validation.attempts"),
    ("max_attempts: 4", "max_attempts: true", "connections.aws.max_attempts"),
    ("port: 443", "port: true", "services.web.endpoints[1].probe.port"),
    ("        region: us-east-1\n", "        region: us-east-1\n        weight: true\n",
     "services.web.endpoints[0].weight"),
    ("        region: us-east-1\n", "        region: us-east-1\n        capacity: false\n",
     "services.web.endpoints[0].capacity"),
    ("        ttl: 60\n", "        ttl: 60\n        active_weight: true\n", "services.web.routing[0].active_weight"),
    ("cooldown: 1s", "cooldown: true", "services.web.policy.cooldown"),
    ("interval: 5s", "interval: true", "services.web.detection.interval"),
]


@pytest.mark.parametrize("old, new, path", BOOLEAN_NUMBERS, ids=[b[2].rsplit(".", 1)[-1] for b in BOOLEAN_NUMBERS])
def test_a_boolean_is_never_a_number(old, new, path):
    text = mutate(BASE, (old, new))
    p = find(problems_of(text), path, r"boolean|duration")
    assert p.path.endswith(f"(line {line_of(text, new.strip().splitlines()[-1])})")


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    todo: list[Any] = [model.Strategy]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            if t in found:
                continue
            found.append(t)
            todo.extend(f.annotation for f in t.model_fields.values())
        else:
            todo.extend(typing.get_args(t))
    return found


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return any(_numeric(a) for a in typing.get_args(annotation))


NUMERIC_FIELDS = [(m, name) for m in _models() for name, f in m.model_fields.items()
                  if _numeric(f.annotation) and name != "version"]


def test_the_numeric_fields_are_found():
    names = {f"{m.__name__}.{n}" for m, n in NUMERIC_FIELDS}
    assert {"Route53Routing.ttl", "TcpProbe.port", "Detection.failure_threshold", "Validation.attempts",
            "CommandProbe.expect_exit", "Detection.interval", "Monitoring.metrics_port",
            "CloudDnsRouting.trickle_ratio", "Endpoint.weight"} <= names
    assert len(NUMERIC_FIELDS) > 40


@pytest.mark.parametrize("cls, name", NUMERIC_FIELDS, ids=[f"{m.__name__}.{n}" for m, n in NUMERIC_FIELDS])
@pytest.mark.parametrize("value", [True, False])
def test_no_numeric_field_takes_a_boolean(cls, name, value):
    f = cls.model_fields[name]
    adapter = TypeAdapter(typing.Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation)
    with pytest.raises(ValidationError):
        adapter.validate_python([value] if typing.get_origin(f.annotation) is list else value)


def test_version_is_not_true():
    find(problems_of(mutate(BASE, ("version: 1", "version: true"))), "version", "")


@pytest.mark.parametrize("status", [True, [True], ["2xx", False]])
def test_expect_status_takes_no_boolean(status):
    with pytest.raises(ValidationError):
        model.HttpProbe(url="https://example.com/", expect_status=status if isinstance(status, list) else [status])


POSITIVE_DURATIONS = [
    ("timeout: 2s", "timeout: 0", "services.web.detection.timeout"),
    ("interval: 5s", "interval: 0s", "services.web.detection.interval"),
    ("latency_limit: 1s", "latency_limit: 0ms", "services.web.detection.latency_limit"),
    ("validation: {attempts: 3, interval: 1s}", "validation: {attempts: 3, interval: 0}",
     "services.web.validation.interval"),
    ("    max_attempts: 4\n", "    max_attempts: 4\n    connect_timeout: 0\n", "connections.aws.connect_timeout"),
    ("    max_attempts: 4\n", "    max_attempts: 4\n    read_timeout: 0s\n", "connections.aws.read_timeout"),
    ("latency_limit: 1s}", "latency_limit: 1s, latency: {limit: 0}}", "services.web.detection.latency.limit"),
    ("latency_limit: 1s}", "latency_limit: 1s, flap: {window: 0}}", "services.web.detection.flap.window"),
    ("version: 1\n", "version: 1\nmonitoring: {verdict_ttl: 0}\n", "monitoring.verdict_ttl"),
]


@pytest.mark.parametrize("old, new, path", POSITIVE_DURATIONS, ids=[d[2] for d in POSITIVE_DURATIONS])
def test_timeouts_and_intervals_must_be_positive(old, new, path):
    find(problems_of(mutate(BASE, (old, new))), path, "greater than 0")


@pytest.mark.parametrize("field", ["cooldown", "failback_stable_period"])
def test_zero_stays_valid_where_it_means_none(field):
    text = mutate(BASE, ("cooldown: 1s,", f"cooldown: 1s, {field}: 0," if field != "cooldown" else "cooldown: 0,"))
    parse_strategy(text, file=FILE)


@pytest.mark.parametrize("raw", ["9" * 400 + "s", "9" * 400, 1e400, "inf"])
def test_a_duration_is_finite(raw):
    with pytest.raises(ValidationError):
        model.Policy(cooldown=raw)


# --------------------------------------------------------------------------- record values and zones
@pytest.mark.parametrize("rtype, value, ok", [
    ("A", "192.0.2.1", True), ("A", "not-an-ip", False), ("A", "2001:db8::1", False), ("A", "192.0.2.300", False),
    ("A", "www.example.com", False), ("AAAA", "2001:db8::1", True), ("AAAA", "192.0.2.1", False),
    ("CNAME", "lb.example.net.", True), ("TXT", "v=spf1 -all", True),
])
def test_a_and_aaaa_values_are_addresses_of_their_family(rtype, value, ok):
    other = {"A": "198.51.100.10", "AAAA": "2001:db8::2", "CNAME": "other.example.net.", "TXT": "x"}[rtype]
    text = mutate(BASE, ("type: A", f"type: {rtype}"), ("[192.0.2.10]", f"['{value}']"),
                  ("[198.51.100.10]", f"['{other}']"))
    if ok:
        parse_strategy(text, file=FILE)
        return
    p = find(problems_of(text), "services.web.routing[0].endpoints.use1.values[0]",
             f"not an {'IPv4' if rtype == 'A' else 'IPv6'} address")
    assert repr(value) in p.message


def test_clouddns_values_are_checked_too():
    text = mutate(BASE, ("      - adapter: route53\n        connection: aws\n        hosted_zone: example.com.\n",
                         "      - adapter: clouddns\n        managed_zone: example\n"),
                  ("        mode: failover\n", ""), ("[192.0.2.10]", "[nope]"))
    find(problems_of(text), "services.web.routing[0].endpoints.use1.values[0]", "not an IPv4 address")


@pytest.mark.parametrize("zone, record, ok", [
    ("example.com.", "www.example.com.", True), ("example.com", "www.example.com", True),
    ("Example.COM.", "WWW.example.com.", True), ("example.com.", "example.com.", True),
    ("example.com.", "www.example.org.", False), ("example.com.", "wwwexample.com.", False),
    ("shop.example.com.", "www.example.com.", False),
])
def test_a_record_lies_inside_its_hosted_zone(zone, record, ok):
    text = mutate(BASE, ("hosted_zone: example.com.", f"hosted_zone: {zone}"),
                  ("record: www.example.com.", f"record: {record}"))
    if ok:
        parse_strategy(text, file=FILE)
    else:
        p = find(problems_of(text), "services.web.routing[0].record", "not inside hosted zone")
        assert record in p.message and zone in p.message


def test_a_zone_given_by_id_cannot_be_checked_at_validate():
    text = mutate(BASE, ("hosted_zone: example.com.", "hosted_zone_id: Z123"), ("www.example.com.", "www.example.org."))
    parse_strategy(text, file=FILE)


@pytest.mark.parametrize("url, ok", [
    ("http://127.0.0.1:5000", True), ("https://r53.example.com", True), ("http://[::1]:5000/", True),
    ("not a url", False), ("ftp://127.0.0.1", False), ("http://", False), ("http:///path", False),
    ("http://127.0.0.1:99999", False), ("http://127.0.0.1:port", False), ("127.0.0.1:5000", False),
    ("http://exa mple.com", False), ("http://h\x00st", False),
])
@pytest.mark.parametrize("conn", ["type: route53", "type: trafficmanager\n    subscription_id: s",
                                  "type: clouddns\n    project: p"])
def test_endpoint_url_is_an_http_url_with_a_host(url, ok, conn):
    import json

    text = mutate(BASE, ("type: route53", conn), ("http://127.0.0.1:5000", json.dumps(url)),
                  ("        connection: aws\n", ""))
    if ok:
        parse_strategy(text, file=FILE)
    else:
        find(problems_of(text), "connections.aws.endpoint_url", "http:// or https:// URL|control character")


def test_a_probe_url_needs_a_host():
    find(problems_of(mutate(BASE, ('"https://use1.example.com/health"', '"https:///health"'))),
         "services.web.endpoints[0].probe.url", "host")


# --------------------------------------------------------------------------- bytes, depth, size
def write(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80"])
def test_a_file_that_is_not_utf8_says_where(tmp_path, bad):
    data = BASE.encode().replace(b"us-west-2", b"us-" + bad + b"west-2")
    path = write(tmp_path, data)
    with pytest.raises(StrategyError) as exc:
        load_strategy(path)
    (p,) = exc.value.problems
    assert p.file == str(path)
    assert f"not UTF-8 at byte {data.index(bad)}" in p.message
    assert p.path == f"line {line_of(BASE, 'us-west-2')}"


def test_a_utf16_file_is_not_utf8(tmp_path):
    path = write(tmp_path, BASE.encode("utf-16"))
    with pytest.raises(StrategyError, match="not UTF-8 at byte 0"):
        load_strategy(path)


def test_a_byte_order_mark_is_fine(tmp_path):
    load_strategy(write(tmp_path, b"\xef\xbb\xbf" + BASE.encode()))


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_characters_are_a_yaml_problem_with_a_line(char):
    text = mutate(BASE, ("us-west-2", f"us-{char}west-2"))
    (p,) = problems_of(text)
    assert p.path.startswith(f"line {line_of(BASE, 'us-west-2')}, column ")
    assert "not valid YAML" in p.message


@pytest.mark.parametrize("shape", [
    lambda n: "a: " + "[" * n + "]" * n + "\n",
    lambda n: "a: " + "{b: " * n + "1" + "}" * n + "\n",
    lambda n: "".join("  " * i + f"k{i}:\n" for i in range(min(n, 700))) + "  " * min(n, 700) + "v\n",
    lambda n: "".join("  " * i + "-\n" for i in range(min(n, 700))) + "  " * min(n, 700) + "v\n",
    lambda n: "a: " + "[" * n,  # unclosed as well
])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 100_000])
def test_nesting_too_deep_is_refused_without_a_recursion_error(shape, depth):
    started = time.monotonic()
    (p,) = problems_of(shape(depth))
    assert "nested deeper than" in p.message or "not valid YAML" in p.message
    assert time.monotonic() - started < 5


def test_nesting_up_to_the_limit_is_parsed():
    text = mutate(BASE, ("  web:\n", "  web:\n    description: " + "[" * (MAX_DEPTH - 4) + "]" * (MAX_DEPTH - 4) + "\n"))
    find(problems_of(text), "services.web.description", "valid string")  # the model's, not the depth guard's


def test_nesting_through_aliases_counts():
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, MAX_DEPTH + 2)]
    (p,) = problems_of("\n".join(lines) + "\n")
    assert "nested deeper than" in p.message


def test_an_alias_bomb_is_refused_fast():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    started = time.monotonic()
    (p,) = problems_of("\n".join(lines) + "\n")
    assert "aliases" in p.message and time.monotonic() - started < 2


def test_a_recursive_alias_is_refused():
    (p,) = problems_of("a: &a [*a]\n")
    assert "refers to itself" in p.message


def test_anchors_and_merge_keys_still_work():
    text = mutate(BASE, ("services:\n", "defaults: &fast {interval: 1s, timeout: 500ms}\nservices:\n"))
    find(problems_of(text), "defaults", "unknown field")  # an anchor needs a home the model knows
    text = mutate(BASE, ("    detection: {interval: 5s, timeout: 2s,", "    detection: {<<: &fast {interval: 5s, timeout: 2s},"))
    parse_strategy(text, file=FILE)


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.truncate(DEFAULT_MAX_BYTES + 1)  # sparse: reading it would be slow, stat is not
    opened = []
    monkeypatch.setattr(Path, "open", lambda *a, **k: opened.append(a) or (_i for _i in ()).throw(AssertionError))
    started = time.monotonic()
    with pytest.raises(StrategyError) as exc:
        load_strategy(path)
    assert time.monotonic() - started < 0.5 and not opened
    (p,) = exc.value.problems
    assert p.file == str(path)
    assert f"{DEFAULT_MAX_BYTES + 1} bytes" in p.message and "FAILOVER_MAX_STRATEGY_BYTES" in p.message


def test_the_size_limit_has_an_environment_override(tmp_path, monkeypatch):
    path = write(tmp_path, BASE)
    monkeypatch.setenv("FAILOVER_MAX_STRATEGY_BYTES", str(len(BASE) - 1))
    with pytest.raises(StrategyError, match="over the limit"):
        load_strategy(path)
    monkeypatch.setenv("FAILOVER_MAX_STRATEGY_BYTES", str(len(BASE)))
    load_strategy(path)
    monkeypatch.setenv("FAILOVER_MAX_STRATEGY_BYTES", "lots")
    with pytest.raises(StrategyError, match="FAILOVER_MAX_STRATEGY_BYTES"):
        load_strategy(path)


def test_text_over_the_limit_is_refused_by_parse_strategy():
    started = time.monotonic()
    with pytest.raises(StrategyError, match="over the limit"):
        parse_strategy(BASE + "#" * DEFAULT_MAX_BYTES, file=FILE)
    assert time.monotonic() - started < 0.5
    with pytest.raises(StrategyError, match="over the limit"):
        parse_strategy(BASE, file=FILE, max_bytes=100)


def test_a_file_that_grows_while_read_is_cut_at_the_limit(tmp_path, monkeypatch):
    # a FIFO or /dev/zero has no size to stat: the reader stops one byte past the limit
    monkeypatch.setenv("FAILOVER_MAX_STRATEGY_BYTES", "1000")
    with pytest.raises(StrategyError, match="over the limit of 1000 bytes"):
        load_strategy("/dev/zero")


def test_a_huge_string_is_refused_by_its_length():
    text = mutate(BASE, ("  web:\n", "  web:\n    description: " + "x" * 100_000 + "\n"))
    find(problems_of(text), "services.web.description", "at most")


def test_a_long_bad_value_is_not_echoed_whole():
    text = mutate(BASE, ("name: usw2", "name: " + "!" * 3000))
    msg = str(problems_of(text)[0])
    assert len(msg) < 600


def test_a_pile_of_problems_is_reported_fast_and_capped():
    services = "".join(f"  s{i}: {{endpoints: [], routing: []}}\n" for i in range(5000))
    started = time.monotonic()
    problems = problems_of("services:\n" + services)
    assert time.monotonic() - started < 5
    assert len(problems) <= 201 and "more problem(s)" in problems[-1].message


@pytest.mark.parametrize("text", ['["not", "a", "mapping"]\n', '"just a string"\n', "[]\n"])
def test_a_json_document_that_is_not_a_mapping(text):
    (p,) = problems_of(text)
    assert "YAML mapping with `services:`" in p.message


def test_json_is_yaml():
    import json

    import yaml

    strategy, _unused = parse_strategy(json.dumps(yaml.safe_load(BASE)), file=FILE)
    assert list(strategy.services) == ["web"]


# --------------------------------------------------------------------------- paging guards
class StuckRoute53:
    """Stands in for the boto3 Route 53 client (the provider): it answers every listing with the
    same truncated page and the same next marker, as a provider bug would."""

    def __init__(self, identifier: str | None = "sid-1"):
        self.calls = 0
        self.identifier = identifier

    def list_resource_record_sets(self, **kw: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls > 50:
            raise AssertionError("the adapter kept paging")
        page = {"ResourceRecordSets": [], "IsTruncated": True,
                "NextRecordName": kw.get("StartRecordName", "www.example.com."), "NextRecordType": "A"}
        if self.identifier:
            page["NextRecordIdentifier"] = self.identifier
        return page


def _route53(client: Any):
    from failover_engine.adapters.route53 import Route53Adapter

    return Route53Adapter(model.Route53Connection(max_attempts=1), client=client, sleep=lambda s: None)


def _keys(n: int) -> set:
    from failover_engine.core.plan import ResourceKey

    return {ResourceKey("route53", "Z1", f"r{i}.example.com.", "A", f"sid-{i}") for i in range(n)}


@pytest.mark.parametrize("names", [1, 10], ids=["targeted", "zone-listing"])
def test_route53_paging_stops_when_the_marker_does_not_advance(names):
    client = StuckRoute53()
    with pytest.raises(Route53Error, match="did not advance") as exc:
        _route53(client)._list_zone("Z1", _keys(names))
    assert client.calls <= 3
    assert exc.value.code == "PagingStuck"


def test_route53_paging_stops_when_markers_go_round_in_a_circle():
    class Circle(StuckRoute53):
        def list_resource_record_sets(self, **kw: Any) -> dict[str, Any]:
            page = super().list_resource_record_sets(**kw)
            page["NextRecordName"] = f"r{self.calls % 3}.example.com."
            return page

    client = Circle()
    with pytest.raises(Route53Error, match="did not advance"):
        _route53(client)._list_zone("Z1", _keys(10))
    assert client.calls <= 5


def test_route53_paging_that_advances_still_reads_every_page():
    class Pages(StuckRoute53):
        def list_resource_record_sets(self, **kw: Any) -> dict[str, Any]:
            self.calls += 1
            i = self.calls
            rrs = [{"Name": f"r{i}.example.com.", "Type": "A", "SetIdentifier": f"sid-{i}", "TTL": 60,
                    "ResourceRecords": [{"Value": "192.0.2.1"}]}]
            if i == 8:
                return {"ResourceRecordSets": rrs, "IsTruncated": False}
            return {"ResourceRecordSets": rrs, "IsTruncated": True, "NextRecordName": f"r{i + 1}.example.com.",
                    "NextRecordType": "A", "NextRecordIdentifier": f"sid-{i + 1}"}

    client = Pages()
    found = _route53(client)._list_zone("Z1", _keys(10))
    assert len(found) == 8 and client.calls == 8  # r1..r8 (r0 and r9 are not there)


class StuckRrsets:
    """Stands in for googleapiclient's dns v1 ``resourceRecordSets()`` (the provider): every page
    carries the same nextPageToken."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.calls = 0

    def resourceRecordSets(self) -> "StuckRrsets":
        return self

    def list(self, **kw: Any) -> "StuckRrsets":
        return self

    def execute(self, **kw: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls > 50:
            raise AssertionError("the adapter kept paging")
        return {"rrsets": [{"name": "x."}], "nextPageToken": self.tokens[(self.calls - 1) % len(self.tokens)]}


@pytest.mark.parametrize("tokens", [["t1"], ["t1", "t2", "t3"]], ids=["same-token", "circle"])
def test_clouddns_paging_stops_when_the_page_token_does_not_advance(tokens):
    pytest.importorskip("googleapiclient")
    from failover_engine.adapters.clouddns.api import CloudDnsApi

    api = CloudDnsApi(model.CloudDnsConnection(project="p", max_attempts=1), sleep=lambda s: None)
    fake = StuckRrsets(tokens)
    api._records = fake
    with pytest.raises(CloudDnsError, match="did not advance"):
        list(api.list_rrsets("zone"))
    assert fake.calls <= len(tokens) + 1


# --------------------------------------------------------------------------- file modes
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_private_and_directories_too(tmp_path):
    from failover_engine.engine.events import EventLog
    from failover_engine.engine.state import Incident, StateStore
    from failover_engine.engine.files import private_dir

    state = tmp_path / "deep" / "state"
    StateStore(state).save("web", __import__("failover_engine.engine.state", fromlist=["ServiceState"]).ServiceState())
    StateStore(state).record_incident("web", Incident("failure", 1.0, 2.0))
    EventLog(state / "events.jsonl").append("x")
    assert mode(state) == 0o700 and mode(state / "services") == 0o700
    assert mode(state / "services" / "web.json") == 0o600
    assert mode(state / "events.jsonl") == 0o600
    assert private_dir(state / "reports") == state / "reports" and mode(state / "reports") == 0o700


def test_loose_modes_left_by_an_older_version_are_tightened(tmp_path):
    from failover_engine.engine.events import EventLog
    from failover_engine.engine.state import ServiceState, StateStore

    state = tmp_path / "state"
    (state / "services").mkdir(parents=True)
    os.chmod(state, 0o755)
    os.chmod(state / "services", 0o775)
    (state / "events.jsonl").write_text("")
    os.chmod(state / "events.jsonl", 0o644)
    StateStore(state).save("web", ServiceState())
    EventLog(state / "events.jsonl").append("x")
    assert (mode(state), mode(state / "services"), mode(state / "events.jsonl")) == (0o700, 0o700, 0o600)


def test_an_engine_run_leaves_only_private_files(tmp_path):
    """What the engine writes (event log, service state, locks, journal, reports, region reports)
    is 0600 in 0700 directories, with a umask that would give 0644/0755."""
    from failover_engine.engine.failover import FailoverEngine
    from failover_engine.engine.journal import Journal
    from failover_engine.engine.region import RegionOutcome
    from failover_engine.engine.state import ServiceState

    path = write(tmp_path, "state_dir: st/inner\n" + BASE)
    old = os.umask(0o022)
    try:
        eng = FailoverEngine(load_strategy(path))
        eng.events.append("hello")
        eng.store.save("web", ServiceState())
        with eng.hold_locks(["web"], "test"):
            pass
        Journal.open(eng.state_dir, "run-1", "failover", []).close({})
        eng._write_report(_Outcome())
        RegionOutcome("us-east-1", "run-2", 1_700_000_000.0, apply=False).write_report(eng.state_dir)
    finally:
        os.umask(old)
    seen = set()
    for p in [eng.state_dir.parent, eng.state_dir, *eng.state_dir.rglob("*")]:
        seen.add(p.name)
        if p.suffix == ".lock":
            continue  # lock files (pid, host, purpose) are locks.py's: 0640, in a 0700 directory
        assert mode(p) == (0o700 if p.is_dir() else 0o600), (p, oct(mode(p)))
    assert seen >= {"events.jsonl", "services", "locks", "journal", "reports", "regions", "web.json",
                    "run-1.jsonl"}


class _Outcome:
    started = 1_700_000_000.0
    service, action, run_id, report_path = "web", "failover", "run-1", None

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service}


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------- the CLI on bad input
def _cli(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    from failover_engine.cli import main as cli

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, err.getvalue()


def test_a_state_directory_that_is_a_file_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": "/dev/null"}.items():
        monkeypatch.setenv(k, v)
    text = mutate(BASE, ("http://127.0.0.1:5000", f"http://127.0.0.1:{_closed_port()}"))
    path = write(tmp_path, text)
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    rc, err = _cli(["apply", "web", "-f", str(path), "--state-dir", str(blocker), "--yes"])
    assert rc == 1 and err.startswith("failover: error: "), err
    assert str(blocker) in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["validate"], ["plan", "web", "-f"], ["status", "-f"], ["events", "-f"]])
def test_the_cli_refuses_bad_bytes_with_where_and_why(tmp_path, command):
    path = write(tmp_path, BASE.encode().replace(b"us-west-2", b"us-\xffwest-2"))
    rc, err = _cli([*command, str(path)])
    assert rc == 1
    assert f"{path}: line {line_of(BASE, 'us-west-2')}: not UTF-8 at byte" in err
    assert not (tmp_path / ".failover-state").exists()


@pytest.mark.parametrize("old, new, path", [
    ("    validation:", "    rules: [{rule: min_active, count: 1, colour: blue}]\n    validation:",
     "services.web.rules[0].colour"),  # found by test_input_property: the path said rules[0].min_active.colour
    ('{type: http, url: "https://use1.example.com/health"}', '{url: "https://use1.example.com/health", colour: 1}',
     "services.web.endpoints[0].probe.colour"),  # a probe without `type` is http: no tag in the path either
])
def test_union_tags_never_show_in_a_path(old, new, path):
    find(problems_of(mutate(BASE, (old, new))), path, "unknown field")


def test_the_json_schema_keeps_its_bounds():
    """The boolean guard sits after the constraints: before them, pydantic writes ``ge``/``le``
    (not JSON Schema) instead of minimum/maximum."""
    import json

    from failover_engine.config.loader import json_schema

    text = json_schema()
    defs = json.loads(text)["$defs"]
    assert not re.search(r'"(ge|le|gt|lt)":', text)
    assert defs["Detection"]["properties"]["failure_threshold"]["minimum"] == 1
    assert defs["TcpProbe"]["properties"]["port"]["maximum"] == 65535
    interval = defs["Detection"]["properties"]["interval"]["anyOf"]
    assert interval[0] == {"type": "number", "exclusiveMinimum": 0}
    pattern = re.compile(interval[1]["pattern"])
    assert [s for s in ["5s", "10", "0.5s", "250ms", "00.05m"] if not pattern.match(s)] == []
    assert [s for s in ["0", "0s", "0.0s", ".5s", "-1s", "5x"] if pattern.match(s)] == []
