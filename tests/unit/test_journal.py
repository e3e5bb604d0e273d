"""The write-ahead journal: what it records, what a crash at any byte leaves readable, and how
open journals are found."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from failover_engine.engine.journal import Journal, JournaledPlan, open_journals, prune, read_journal
from failover_engine.core.plan import Change, Plan, PlanStep, ResourceKey

A = ResourceKey("route53", "Z1", "shop.example.", "A", "use1")
B = ResourceKey("route53", "Z1", "shop.example.", "A", "usw2")


def plan(service: str = "shop") -> Plan:
    changes = (Change(A, {"ttl": 30, "values": ["192.0.2.1"], "failover": "PRIMARY"},
                      {"ttl": 30, "values": ["192.0.2.1"], "failover": "SECONDARY"}),
               Change(B, {"ttl": 30, "values": ["198.51.100.1"], "failover": "SECONDARY"},
                      {"ttl": 30, "values": ["198.51.100.1"], "failover": "PRIMARY"}))
    return Plan(service, "failover", {"use1": 100}, {"usw2": 100}, "test",
                (PlanStep(0, "route53", "aws", "route53 shop", changes),))


def test_a_journal_records_plans_groups_and_its_close(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, "run1", "run", [plan()])
    j.group_started("0:route53:aws#1", [A, B])
    state = read_journal(j.path)
    assert state is not None and state.open and state.pending_services == ["shop"]
    assert state.touched("shop") == {A, B} and state.plans["shop"].fingerprint == plan().fingerprint()
    assert [c.key for c in state.plans["shop"].effective] == [A, B]
    j.group_ended("0:route53:aws#1", True)
    j.close({"shop": "succeeded"})
    state = read_journal(j.path)
    assert state is not None and not state.open and state.ended_groups["0:route53:aws#1"]["ok"] is True
    assert stat.S_IMODE(os.stat(j.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(j.path.parent).st_mode) == 0o700
    assert open_journals(tmp_path) == []


def test_a_torn_last_record_is_ignored_and_an_unopened_journal_is_nothing(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, "run2", "run", [plan()])
    j.abandon()
    with open(j.path, "a") as fh:
        fh.write('{"rec": "group_started", "group": "g", "ke')  # the process died mid-write
    state = read_journal(j.path)
    assert state is not None and state.open and state.started_groups == {}
    torn = tmp_path / "journal" / "run3.jsonl"
    torn.write_text('{"rec": "op')  # died while writing the opening record: nothing was written
    assert read_journal(torn) is None
    assert [s.run_id for s in open_journals(tmp_path)] == ["run2"]
    assert [s.run_id for s in open_journals(tmp_path, "other")] == []


def test_a_journaled_plan_round_trips(tmp_path: Path) -> None:
    jp = JournaledPlan.of(plan())
    again = JournaledPlan.from_dict(jp.to_dict())
    assert again == jp and again.changes[0].key == A


def test_prune_keeps_open_journals_and_the_newest_closed(tmp_path: Path) -> None:
    for i in range(5):
        j = Journal.open(tmp_path, f"closed{i}", "run", [plan()])
        j.close({"shop": "succeeded"})
    Journal.open(tmp_path, "open1", "run", [plan()]).abandon()
    prune(tmp_path, keep=2)  # 6 files: over the limit
    left = sorted(p.stem for p in (tmp_path / "journal").glob("*.jsonl"))
    assert "open1" in left and len(left) == 3
