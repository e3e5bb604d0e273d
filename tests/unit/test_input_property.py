"""Property-based tests of strategy input (issue 12, point 7): the loader and the CLI
(``failover validate`` and ``failover plan``, in-process through ``failover_engine.cli.main.main``)
against generated strategy files.

Asserted for every generated file:

* never a traceback: only a refusal (StrategyError/FailoverError, printed, exit code 1) or success;
* never a run over 10 s;
* never an invalid file accepted: files built from a valid base by one must-reject mutation
  (booleans in numbers, zeros in durations, non-IP A/AAAA values, records outside the zone,
  duplicate keys, bad URLs, non-UTF-8 bytes, deep nesting, huge strings, control characters,
  files over the size limit, wrong types, unknown or missing fields) are refused, naming the file
  and, for a field, its path; a refused plan creates no state directory (nothing changes);
* valid files still accepted: variations of the bases (durations in other units, key order,
  flow or block style, generated addresses and record names, comments) pass ``validate``, and
  ``plan`` reaches its provider only at a closed local port (a clear "cannot reach", exit 1).

Profiles: ``make test`` runs the default profile: a fixed, modest number of cases (20 per kind
of must-reject file, 360 in all; 200 for each other property; 40 plans, which build an SDK
client), derandomized and without an example database, so a run is repeatable and takes about
half a minute. A long run, 5,000 cases per property (5,004 must-reject files, 278 per kind; 1,000
plans), random each time, about a quarter of an hour on 2 cores::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/unit/test_input_property.py

Last long run (2026-12-06, 2 cores shared with other suites): 24 passed in 373 s; 5,004
must-reject files all refused (validate and plan each; slowest file 0.15 s), 5,000 valid files
accepted, 1,000 plans ended at the closed port (slowest 0.37 s), 5,000 edited files and 5,000
arbitrary texts without a traceback; no run near the 10 s bound. The default profile: 24 passed
in about 20 s.
"""
from __future__ import annotations

import contextlib
import copy
import io
import ipaddress
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from failover_engine.cli import main as cli  # noqa: E402
from failover_engine.core.errors import StrategyError  # noqa: E402
from failover_engine.config.loader import DEFAULT_MAX_BYTES, MAX_DEPTH, parse_strategy, read_yaml  # noqa: E402
from failover_engine.core.model import MAX_STRING  # noqa: E402

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
CASES = 5000 if LONG else 200  # per property
PER_KIND = 278 if LONG else 20  # must-reject files per kind: 18 kinds, 5,004 (long) or 360 cases
PLAN_CASES = 1000 if LONG else 40  # a plan builds an SDK client: slower
RUN_LIMIT_S = 10.0

_common = dict(deadline=None, database=None, derandomize=not LONG, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.large_base_example, HealthCheck.filter_too_much])
SETTINGS = settings(max_examples=CASES, **_common)
PLAN_SETTINGS = settings(max_examples=PLAN_CASES, **_common)
REJECT_SETTINGS = settings(max_examples=PER_KIND, **_common)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free a moment ago; nothing listens once the socket is closed


CLOSED = _closed_port()
NOWHERE = f"http://127.0.0.1:{CLOSED}"


@pytest.fixture(autouse=True, scope="module")
def _offline_aws():
    """Fake credentials and no config file: the SDK signs and sends, to a closed port."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "x", "AWS_CONFIG_FILE": "/dev/null",
                     "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"}.items():
            mp.setenv(k, v)
        mp.delenv("FAILOVER_MAX_STRATEGY_BYTES", raising=False)
        yield


# --------------------------------------------------------------------------- valid bases
ROUTE53 = {
    "version": 1,
    "connections": {"aws": {"type": "route53", "endpoint_url": NOWHERE, "max_attempts": 1,
                            "connect_timeout": "300ms", "read_timeout": "300ms", "propagation_timeout": 5}},
    "monitoring": {"observers": [{"name": "local"}], "verdict_ttl": "30s"},
    "services": {"web": {
        "description": "the shop",
        "endpoints": [
            {"name": "use1", "role": "primary", "region": "us-east-1", "weight": 100, "capacity": 4,
             "probe": {"type": "http", "url": f"{NOWHERE}/health", "expect_status": [200, "2xx"]}},
            {"name": "usw2", "role": "standby", "region": "us-west-2", "capacity": 4,
             "probe": {"type": "tcp", "host": "127.0.0.1", "port": CLOSED}},
        ],
        "routing": [{"adapter": "route53", "connection": "aws", "hosted_zone": "example.com.",
                     "record": "www.example.com.", "type": "A", "ttl": 60, "mode": "failover",
                     "endpoints": {"use1": {"values": ["192.0.2.10"]}, "usw2": {"values": ["198.51.100.10"]}}}],
        "detection": {"interval": "1s", "timeout": "300ms", "failure_threshold": 3, "recovery_threshold": 2,
                      "latency_limit": "250ms", "jitter": 0.1, "min_dwell": 0,
                      "latency": {"percentile": 95, "limit": "200ms", "window": 20, "min_samples": 5},
                      "flap": {"max_transitions": 4, "window": "5m"}},
        "policy": {"failover": "manual", "cooldown": "1m", "failback": "manual", "failback_stable_period": "10m"},
        "validation": {"read_back": True, "attempts": 2, "interval": "500ms"},
        "rules": [{"rule": "min_capacity", "capacity": 4}],
    }},
}

CLOUDDNS = {
    "version": 1,
    "connections": {"gcp": {"type": "clouddns", "project": "p", "endpoint_url": NOWHERE,
                            "credentials": "anonymous", "max_attempts": 1}},
    "services": {"api": {
        "endpoints": [{"name": "east", "role": "primary", "region": "us-east1"},
                      {"name": "west", "role": "standby", "region": "us-west1"}],
        "routing": [{"adapter": "clouddns", "connection": "gcp", "managed_zone": "example", "record": "api.example.com.",
                     "type": "AAAA", "ttl": 30, "endpoints": {"east": {"values": ["2001:db8::1"]},
                                                              "west": {"values": ["2001:db8::2"]}}}],
        "detection": {"interval": 5, "timeout": 2},
    }},
}

TRAFFICMANAGER = {
    "version": 1,
    "connections": {"az": {"type": "trafficmanager", "subscription_id": "s", "endpoint_url": "https://127.0.0.1:9443",
                           "credentials": "token_env", "max_attempts": 2}},
    "services": {"app": {
        "strategy": "active_active",
        "endpoints": [{"name": "a", "role": "active", "region": "westeurope", "weight": 50},
                      {"name": "b", "role": "active", "region": "northeurope", "weight": 50}],
        "routing": [{"adapter": "trafficmanager", "connection": "az", "resource_group": "rg", "profile": "p",
                     "mode": "weighted", "active_weight": 1000, "inactive_weight": 1,
                     "endpoints": {"a": {"endpoint": "ep-a"}, "b": {"endpoint": "ep-b"}}}],
        "validation": {"attempts": 1, "interval": "1s"},
    }},
}

BASES = {"route53": ROUTE53, "clouddns": CLOUDDNS, "trafficmanager": TRAFFICMANAGER}
# the durations that must be positive, per base (dotted paths into the document)
POSITIVE = {
    "route53": ["services.web.detection.interval", "services.web.detection.timeout",
                "services.web.detection.latency_limit", "services.web.detection.latency.limit",
                "services.web.detection.flap.window", "services.web.validation.interval",
                "connections.aws.connect_timeout", "connections.aws.read_timeout", "monitoring.verdict_ttl"],
    "clouddns": ["services.api.detection.interval", "services.api.detection.timeout"],
    "trafficmanager": ["services.app.validation.interval"],
}


# the durations of each base, in seconds (valid_docs writes them in other units)
DURATIONS = {
    "route53": {"services.web.detection.interval": 1, "services.web.detection.timeout": 0.3,
                "services.web.detection.latency_limit": 0.25, "services.web.detection.latency.limit": 0.2,
                "services.web.detection.flap.window": 300, "services.web.detection.min_dwell": 0,
                "services.web.policy.cooldown": 60, "services.web.policy.failback_stable_period": 600,
                "services.web.validation.interval": 0.5, "connections.aws.connect_timeout": 0.3,
                "connections.aws.read_timeout": 0.3, "connections.aws.propagation_timeout": 5,
                "monitoring.verdict_ttl": 30},
    "clouddns": {"services.api.detection.interval": 5, "services.api.detection.timeout": 2},
    "trafficmanager": {"services.app.validation.interval": 1},
}


def test_the_bases_are_valid():
    for name, base in BASES.items():
        parse_strategy(yaml.safe_dump(base), file=name)


# --------------------------------------------------------------------------- paths in documents
Path_ = tuple[Any, ...]


def _get(doc: Any, path: Path_) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _dotted(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out


def _parse_dotted(base: dict[str, Any], dotted: str) -> Path_:
    """'services.web.detection.timeout' -> the path (keys of base; no dotted names in the bases)."""
    return tuple(dotted.split("."))


def _leaves(doc: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    if isinstance(doc, dict):
        return [leaf for k, v in doc.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(doc, list):
        return [leaf for i, v in enumerate(doc) for leaf in _leaves(v, (*path, i))]
    return [(path, doc)]


def _mappings(doc: Any, path: Path_ = ()) -> list[Path_]:
    out = []
    if isinstance(doc, dict):
        out.append(path)
        for k, v in doc.items():
            out += _mappings(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _mappings(v, (*path, i))
    return out


# --------------------------------------------------------------------------- writing a document
@dataclass
class Case:
    """A generated strategy file: its bytes and, for a must-reject file, what the refusal names."""

    data: bytes
    kind: str = "valid"
    path: str | None = None  # the field path the refusal must name (None: the file as a whole)
    why: str | None = None  # a piece of the reason (a regular expression), when it is known

    @property
    def must_reject(self) -> bool:
        return self.kind != "valid"


def dump(doc: Any, style: int, comment: str = "") -> str:
    """YAML text of ``doc``: block style, flow style, or JSON (JSON is YAML)."""
    if style == 2:
        text = json.dumps(doc, indent=1)
    else:
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=bool(style), allow_unicode=True, width=1 << 16)
    return (f"# {comment}\n" if comment else "") + text


styles = st.sampled_from([0, 1, 2])
bases = st.sampled_from(sorted(BASES))
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF,
                                  exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80)


def _seconds_forms(seconds: float) -> st.SearchStrategy[Any]:
    forms: list[Any] = [float(seconds), f"{float(seconds)}s", f"{seconds * 1000:g}ms"]
    if seconds == int(seconds):
        forms += [int(seconds), f"{int(seconds)}s", f" {int(seconds)} s "]
        if seconds and seconds % 60 == 0:
            forms += [f"{int(seconds) // 60}m"]
    return st.sampled_from(forms)


@st.composite
def valid_docs(draw: Any, base_name: str | None = None) -> tuple[str, dict[str, Any]]:
    """A valid variation of a base: other spellings of its durations, generated addresses and
    names inside the zone, a description, shuffled keys."""
    name = base_name or draw(bases)
    doc = copy.deepcopy(BASES[name])
    for dotted, seconds in DURATIONS[name].items():
        _set(doc, _parse_dotted(doc, dotted), draw(_seconds_forms(seconds)))
    for routing in [r for svc in doc["services"].values() for r in svc["routing"]]:
        kind = routing.get("type")
        if kind in ("A", "AAAA"):
            version = 4 if kind == "A" else 6
            for b in routing["endpoints"].values():
                b["values"] = [str(draw(st.ip_addresses(v=version)))
                               for _i in range(draw(st.integers(1, 3)))]
            values = [tuple(sorted(b["values"])) for b in routing["endpoints"].values()]
            assume(len(set(values)) == len(values))  # the active endpoint must be told from the record
        if routing.get("hosted_zone"):
            zone = draw(st.lists(labels, min_size=1, max_size=3).map(".".join))
            routing["hosted_zone"] = zone + draw(st.sampled_from([".", ""]))
            routing["record"] = draw(st.sampled_from(["", "www.", "a.b."])) + zone + "."
    if draw(st.booleans()):
        svc = next(iter(doc["services"].values()))
        svc["description"] = draw(printable)
    if draw(st.booleans()):
        doc = {k: doc[k] for k in draw(st.permutations(list(doc)))}
    return name, doc


# --------------------------------------------------------------------------- must-reject mutations
BAD_URLS = ["not a url", "ftp://127.0.0.1:5000", "http://", "http:///path", "https://:443", "127.0.0.1:5000",
            "http://127.0.0.1:99999", "http://127.0.0.1:-1", "http://127.0.0.1:port", "http://exa mple.com",
            "file:///etc/passwd", "//127.0.0.1:5000", "http//127.0.0.1", "javascript:alert(1)", "http:\\\\h",
            "HTTP", ""]
NOT_IPV4 = ["not-an-ip", "192.0.2.300", "192.0.2", "1.2.3.4.5", "2001:db8::1", "www.example.com", "01.2.3.4x",
            " 192.0.2.1x", "0x7f.0.0.1", "::ffff:192.0.2.1", "192.0.2.1/32"]
NOT_IPV6 = ["192.0.2.1", "2001:db8:::1", "gggg::1", "2001:db8::1/64", "fe80::1%eth0x y", "::g", "1::2::3"]
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80",
             b"\xf4\x90\x80\x80"]


KINDS = ["bool-number", "zero-duration", "negative-duration", "bad-address", "outside-zone", "duplicate-key",
         "bad-url", "not-utf8", "deep", "huge-string", "control-char", "too-big", "wrong-type", "unknown-field",
         "missing-field", "not-a-mapping", "alias-bomb", "bad-duration"]
# the bases a kind applies to (the others: any base)
KIND_BASES = {"bad-address": ["route53", "clouddns"], "outside-zone": ["route53"]}


@st.composite
def rejected_cases(draw: Any, kind: str | None = None) -> Case:
    """One must-reject mutation (of ``kind``, else any) of a valid document, written in some style."""
    kind = kind or draw(st.sampled_from(KINDS))
    base_name, doc = draw(valid_docs(draw(st.sampled_from(KIND_BASES.get(kind, sorted(BASES))))))
    style = draw(styles)
    svc_name = next(iter(doc["services"]))
    svc = doc["services"][svc_name]
    if kind == "bool-number":
        leaves = [(p, v) for p, v in _leaves(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        path, _unused = draw(st.sampled_from(leaves))
        _set(doc, path, draw(st.booleans()))
        return Case(dump(doc, style).encode(), kind, _dotted(path), "boolean|duration")
    if kind in ("zero-duration", "negative-duration"):
        path = _parse_dotted(doc, draw(st.sampled_from(POSITIVE[base_name])))
        value = draw(st.sampled_from([0, 0.0, "0", "0s", "0ms", "0.0m"] if kind == "zero-duration"
                                     else [-1, -0.5, "-1s", "-5"]))
        _set(doc, path, value)
        return Case(dump(doc, style).encode(), kind, _dotted(path), "greater than 0|negative|invalid duration")
    if kind == "bad-address":
        routings = [(i, r) for i, r in enumerate(svc["routing"]) if r.get("type") in ("A", "AAAA")]
        i, routing = draw(st.sampled_from(routings))
        ep = draw(st.sampled_from(sorted(routing["endpoints"])))
        bad = draw(st.one_of(st.sampled_from(NOT_IPV4 if routing["type"] == "A" else NOT_IPV6),
                             st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=20)))
        family = ipaddress.IPv4Address if routing["type"] == "A" else ipaddress.IPv6Address
        with contextlib.suppress(ValueError):
            assume(not isinstance(ipaddress.ip_address(bad), family))
        routing["endpoints"][ep]["values"][0] = bad
        return Case(dump(doc, style).encode(), kind,
                    _dotted(("services", svc_name, "routing", i, "endpoints", ep, "values", 0)), "address")
    if kind == "outside-zone":
        routing = svc["routing"][0]
        zone = routing["hosted_zone"].rstrip(".")
        other = draw(st.lists(labels, min_size=1, max_size=3).map(".".join))
        record = draw(st.sampled_from(["", "www."])) + other + draw(st.sampled_from([".", ""]))
        bare = record.rstrip(".").lower()
        assume(bare != zone and not bare.endswith("." + zone))
        routing["record"] = record
        return Case(dump(doc, style).encode(), kind, _dotted(("services", svc_name, "routing", 0, "record")),
                    "not inside hosted zone")
    if kind == "duplicate-key":
        text = dump(doc, 0)
        lines = text.splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith(("-", "#"))]
        i = draw(st.sampled_from(candidates))
        key = lines[i].split(":", 1)[0]
        lines.insert(i, f"{key}: {draw(st.sampled_from(['0s', '1', 'x', 'true', '[]']))}\n")
        return Case("".join(lines).encode(), kind, None, "duplicate key")
    if kind == "bad-url":
        conn = next(iter(doc["connections"]))
        bad = draw(st.one_of(st.sampled_from(BAD_URLS), st.builds(
            "{}{}{}".format, st.sampled_from(["ftp://", "", "http:/", "https//", "ws://"]),
            st.sampled_from(["127.0.0.1", "h", ""]), st.sampled_from(["", ":80", ":0x1"]))))
        doc["connections"][conn]["endpoint_url"] = bad
        return Case(dump(doc, style).encode(), kind, _dotted(("connections", conn, "endpoint_url")), "URL")
    if kind == "not-utf8":
        data = dump(doc, style).encode()
        at = draw(st.integers(0, len(data)))
        return Case(data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:], kind, None, "not UTF-8 at byte")
    if kind == "deep":
        depth = draw(st.integers(MAX_DEPTH + 1, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        text = dump(doc, 0)
        if draw(st.booleans()):
            text += "deep: " + opener * depth + "1" * (opener == "{a: ") + closer * depth + "\n"
        else:
            text += "deep:\n" + "".join("  " * (k + 1) + "-\n" for k in range(min(depth, 300))) + "  " * 301 + "x\n"
        return Case(text.encode(), kind, None, "nested deeper than")
    if kind == "huge-string":
        field = draw(st.sampled_from(["description", "record", "url"]))
        if field == "record" and "record" not in svc["routing"][0]:
            field = "description"
        size = draw(st.integers(MAX_STRING + 1, 200_000))
        filler = draw(st.sampled_from(["a", "a://", "@", "x.", "é"])) * size
        if field == "description":
            svc["description"] = filler
            path = ("services", svc_name, "description")
        elif field == "record":
            svc["routing"][0]["record"] = filler
            path = ("services", svc_name, "routing", 0, "record")
        else:
            svc["endpoints"][0]["probe"] = {"type": "http", "url": "http://h/" + filler}
            path = ("services", svc_name, "endpoints", 0, "probe", "url")
        return Case(dump(doc, style).encode(), kind, _dotted(path), "at most|over the limit|characters")
    if kind == "control-char":
        char = draw(st.sampled_from([chr(c) for c in list(range(0, 9)) + [11, 12] + list(range(14, 32)) + [127]]))
        svc["description"] = "a" + char + "b"
        return Case(dump(doc, style).encode(), kind, None, "control character|not valid YAML")
    if kind == "too-big":
        text = dump(doc, style if style != 2 else 0)
        return Case((text + "# " + "x" * DEFAULT_MAX_BYTES + "\n").encode(), kind, None, "over the limit")
    if kind == "wrong-type":
        leaves = [(p, v) for p, v in _leaves(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)
                  and p[-1] != "expect_status" and not (len(p) > 1 and p[-2] == "expect_status")]
        path, _unused = draw(st.sampled_from(leaves))
        _set(doc, path, draw(st.sampled_from(["three", [1], {"a": 1}, "1e400", "inf", "1 2"])))
        return Case(dump(doc, style).encode(), kind, _dotted(path), None)
    if kind == "unknown-field":
        path = draw(st.sampled_from([p for p in _mappings(doc) if not (p and p[-1] in ("endpoints", "connections",
                                                                                       "services", "args"))]))
        _get(doc, path)["colour"] = "blue"
        return Case(dump(doc, style).encode(), kind, _dotted((*path, "colour")), "unknown field")
    if kind == "missing-field":
        field = draw(st.sampled_from(["endpoints", "routing", "record"]))
        if field == "record":
            routing = svc["routing"][0]
            assume("record" in routing)
            del routing["record"]
            return Case(dump(doc, style).encode(), kind, _dotted(("services", svc_name, "routing", 0, "record")),
                        "Field required")
        del svc[field]
        return Case(dump(doc, style).encode(), kind, _dotted(("services", svc_name, field)), "Field required")
    if kind == "not-a-mapping":
        other = draw(st.sampled_from([[doc], "a string", 42, None, [], True]))
        return Case(dump(other, style).encode(), kind, None, "YAML mapping")
    if kind == "alias-bomb":
        levels = draw(st.integers(7, 12))
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"a{k}: &a{k} [{','.join([f'*a{k - 1}'] * 10)}]" for k in range(1, levels)]
        return Case(("\n".join(lines) + "\n" + dump(doc, 0)).encode(), kind, None, "aliases expanded")
    # bad-duration
    path = _parse_dotted(doc, draw(st.sampled_from(POSITIVE[base_name])))
    _set(doc, path, draw(st.sampled_from(["5 fortnights", "1e3", "5sec", "s", "9" * 400 + "s", ".5s", "5.s",
                                          "0x10", "5 m s"])))
    return Case(dump(doc, style).encode(), kind, _dotted(path), "duration|finite")


# --------------------------------------------------------------------------- running the CLI in-process
@dataclass
class Run:
    rc: int
    out: str
    err: str
    seconds: float


def run_cli(argv: list[str]) -> Run:
    """``failover <argv>`` in this process. Any exception out of main is a traceback a user would
    see: it fails the test (with the example that caused it)."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    run = Run(rc, out.getvalue(), err.getvalue(), time.monotonic() - started)
    assert run.seconds < RUN_LIMIT_S, f"failover {argv[0]} took {run.seconds:.1f}s"
    assert "Traceback" not in run.err
    return run


def _assert_refusal(run: Run, case: Case, file: Path) -> None:
    assert run.rc == 1, f"{case.kind}: exit {run.rc}, expected a refusal; stderr: {run.err[:500]}"
    assert f"{file}: " in run.err, f"{case.kind}: the refusal does not name the file: {run.err[:500]}"
    assert "problem(s) in strategy" in run.err
    if case.path is not None:
        assert f" {case.path} (line " in run.err or f" {case.path}: " in run.err or f" {case.path}[" in run.err, \
            f"{case.kind}: no problem at {case.path}: {run.err[:800]}"
    if case.why is not None:
        import re

        assert re.search(case.why, run.err), f"{case.kind}: no {case.why!r} in {run.err[:800]}"
    assert len(run.err) < 100_000, "a refusal never echoes a whole file back"


def _service_of(data: bytes) -> str:
    try:
        doc = read_yaml(data.decode("utf-8"))
        return str(next(iter(doc["services"])))
    except Exception:  # noqa: BLE001 - not a document with services: any name does
        return "web"


# --------------------------------------------------------------------------- the properties
@pytest.mark.parametrize("kind", KINDS)
def test_invalid_files_are_refused_and_change_nothing(kind: str) -> None:
    """Each kind of must-reject file gets its own PER_KIND cases."""

    refused: list[float] = []

    @REJECT_SETTINGS
    @given(case=rejected_cases(kind))
    def check(case: Case) -> None:
        started = time.monotonic()
        _check_refused(case)
        refused.append(time.monotonic() - started)

    check()
    assert len(refused) >= PER_KIND, f"{kind}: only {len(refused)} files were generated"
    print(f"\n{kind}: {len(refused)} files refused, slowest {max(refused):.2f}s")  # shown with -s


def _check_refused(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strategy.yaml"
        path.write_bytes(case.data)
        _assert_refusal(run_cli(["validate", str(path)]), case, path)
        state = Path(tmp) / "state"
        plan = run_cli(["plan", _service_of(case.data), "-f", str(path), "--state-dir", str(state)])
        _assert_refusal(plan, case, path)
        assert not state.exists(), "a refused plan wrote state"
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["strategy.yaml"]


@SETTINGS
@given(doc=valid_docs(), style=styles, comment=printable)
def test_valid_files_are_accepted(doc: tuple[str, dict[str, Any]], style: int, comment: str) -> None:
    name, data = doc
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strategy.yaml"
        path.write_text(dump(data, style, comment.replace("\n", " ")), encoding="utf-8")
        run = run_cli(["validate", str(path)])
        assert run.rc == 0, f"a valid {name} file was refused: {run.err[:1000]}"
        assert run.out.startswith(f"{path}: ok (1 service(s)")


@PLAN_SETTINGS
@given(doc=valid_docs(base_name="route53"), style=styles)
def test_plan_of_a_valid_file_fails_cleanly_at_the_closed_port(doc: tuple[str, dict[str, Any]], style: int) -> None:
    _unused, data = doc
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strategy.yaml"
        path.write_text(dump(data, style), encoding="utf-8")
        run = run_cli(["plan", "web", "-f", str(path), "--state-dir", str(Path(tmp) / "state")])
        assert run.rc == 1 and run.err.startswith("failover: error: route53"), run.err[:1000]
        assert "cannot reach Route 53" in run.err


# arbitrary edits of a valid file: whatever comes out, a result or a refusal, never a traceback
edits = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), st.one_of(
    st.binary(max_size=8), st.sampled_from([b"\n", b": ", b"- ", b"[", b"{", b"&a ", b"*a", b"<<: ", b"!!", b"'",
                                            b'"', b"\t", b"%YAML 1.1\n", b"---\n", b"...\n", b"? ", b"|\n", b">-\n"]))),
    max_size=6)


@SETTINGS
@given(base=bases, style=styles, edits=edits)
def test_edited_files_never_crash(base: str, style: int, edits: list[tuple[float, int, bytes]]) -> None:
    data = bytearray(dump(BASES[base], style).encode())
    for where, cut, insert in edits:
        at = int(where * len(data))
        data[at:at + cut] = insert
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strategy.yaml"
        path.write_bytes(bytes(data))
        run = run_cli(["validate", str(path)])
        assert run.rc in (0, 1)
        event(f"exit {run.rc}")
        if run.rc == 1:
            assert f"{path}: " in run.err and "problem(s) in strategy" in run.err
        else:  # accepted: it must load as a strategy, and stay one when parsed again
            parse_strategy(bytes(data).decode("utf-8"), file=str(path))


@SETTINGS
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_is_a_strategy_or_a_strategy_error(text: str) -> None:
    started = time.monotonic()
    try:
        parse_strategy(text, file="fuzz.yaml")
    except StrategyError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)
    assert time.monotonic() - started < RUN_LIMIT_S


def test_every_kind_is_generated_as_itself():
    seen: set[str] = set()

    @settings(max_examples=len(KINDS) * 3, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=rejected_cases())
    def collect(case: Case) -> None:
        seen.add(case.kind)

    collect()
    assert seen <= set(KINDS) and len(KINDS) == 18
