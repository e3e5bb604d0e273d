"""After applying: read-back comparison and probing until ok (pure; sleep injected)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from failover_engine.core.plan import Change, ResourceKey
from failover_engine.core.validation import (
    ValidationResult,
    expected_after,
    expected_before,
    probe_until_ok,
    read_back_mismatches,
)

K1 = ResourceKey("route53", "Z1", "www.example.com.", "A", "use1")
K2 = ResourceKey("route53", "Z1", "www.example.com.", "A", "usw2")
A = {"ttl": 60, "values": ["192.0.2.1", "192.0.2.2"], "failover": "PRIMARY"}


# --------------------------------------------------------------------------- read-back
@pytest.mark.parametrize(
    "expected, actual, fragments",
    [
        ({K1: A}, {K1: dict(A)}, []),
        ({K1: A}, {K1: {**A, "values": ["192.0.2.2", "192.0.2.1"]}}, []),  # list order ignored
        ({K1: A}, {K1: {**A, "health_check_id": "hc"}}, []),                # extra attributes ignored
        ({K1: None}, {}, []),                                                # absent, as expected
        ({K1: None}, {K1: None}, []),
        ({}, {K1: A}, []),                                                   # only expected keys compared
        ({K1: None}, {K1: A}, ["expected absent, found"]),
        ({K1: A}, {}, ["found nothing"]),
        ({K1: A}, {K1: None}, ["found nothing"]),
        ({K1: A}, {K1: {**A, "failover": "SECONDARY"}}, ["failover expected 'PRIMARY', found 'SECONDARY'"]),
        ({K1: A}, {K1: {**A, "values": ["192.0.2.1"]}}, ["values expected"]),
        ({K1: A}, {K1: {"ttl": 60, "values": A["values"]}}, ["failover expected 'PRIMARY', found None"]),
        ({K1: A}, {K1: {**A, "ttl": 300}}, ["ttl expected 60, found 300"]),
    ],
)
def test_read_back_mismatches(expected, actual, fragments):
    out = read_back_mismatches(expected, actual)
    assert len(out) == len(fragments), out
    for line, fragment in zip(out, fragments):
        assert line.startswith(f"{K1}: ") and fragment in line


def test_every_mismatching_resource_and_attribute_is_reported():
    out = read_back_mismatches({K1: A, K2: {**A, "failover": "SECONDARY"}},
                               {K1: {**A, "ttl": 1, "failover": "SECONDARY"}, K2: None})
    assert len(out) == 2
    assert "ttl expected 60" in out[0] and "failover expected 'PRIMARY'" in out[0]
    assert out[1].startswith(str(K2)) and "found nothing" in out[1]


def test_expected_after_and_before_of_changes():
    changes = [Change(K1, A, {**A, "failover": "SECONDARY"}), Change(K2, None, A)]
    assert expected_after(changes) == {K1: {**A, "failover": "SECONDARY"}, K2: A}
    assert expected_before(changes) == {K1: A, K2: None}
    assert read_back_mismatches(expected_after(changes), expected_after(changes)) == []
    assert len(read_back_mismatches(expected_after(changes), expected_before(changes))) == 2


def test_validation_result_to_dict():
    r = ValidationResult(False, ["x"], [{"k": 1}], [{"ok": False}])
    assert r.to_dict() == {"ok": False, "reasons": ["x"], "read_back": [{"k": 1}], "probes": [{"ok": False}]}


# --------------------------------------------------------------------------- probe_until_ok
@dataclass
class Result:
    ok: bool
    n: int


class ScriptedProbe:
    def __init__(self, outcomes: str):
        self.outcomes = outcomes  # "F" fail / "S" ok, one per call
        self.calls = 0

    def __call__(self) -> Result:
        r = Result(self.outcomes[self.calls] == "S", self.calls)
        self.calls += 1
        return r


@pytest.mark.parametrize(
    "outcomes, attempts, ok, calls",
    [
        ("S", 3, True, 1),
        ("FS", 3, True, 2),
        ("FFS", 3, True, 3),
        ("FFFS", 3, False, 3),   # bounded: the 4th would pass but is never made
        ("FFFFF", 5, False, 5),
        ("F", 1, False, 1),
        ("SSS", 3, True, 1),     # stops at the first ok
    ],
)
def test_probe_until_ok(outcomes, attempts, ok, calls):
    sleeps: list[float] = []
    probe = ScriptedProbe(outcomes)
    got_ok, results = probe_until_ok(probe, attempts, 0.25, sleep=sleeps.append)
    assert got_ok is ok
    assert probe.calls == calls == len(results)
    assert [r.n for r in results] == list(range(calls))
    assert sleeps == [0.25] * (calls - 1)  # between attempts, never after the last one


def test_probe_until_ok_with_no_attempts_does_not_probe():
    probe = ScriptedProbe("S")
    assert probe_until_ok(probe, 0, 1.0, sleep=lambda s: pytest.fail("no sleep")) == (False, [])
    assert probe.calls == 0
