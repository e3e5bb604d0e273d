"""Per-service state between runs, detection records, RTO timelines and the run history."""
from __future__ import annotations

import json

import pytest

from failover_engine.engine.events import EventLog
from failover_engine.core.timeline import PHASES, Timeline, render_timeline
from failover_engine.engine.metrics import history
from failover_engine.engine.state import Incident, ServiceState, StateStore, record_detection

T0 = 1_700_000_000.0


# --------------------------------------------------------------------------- StateStore
def test_unknown_service_loads_an_empty_state(tmp_path):
    assert StateStore(tmp_path).load("web") == ServiceState()


def test_state_round_trips(tmp_path):
    store = StateStore(tmp_path)
    st = ServiceState(last_switch_at=T0, last_action="failover", active={"usw2": 100},
                      incident=Incident("failure", T0 - 3, T0 - 1, ["use1"], "connection refused"))
    store.save("web", st)
    assert store.load("web") == st
    assert json.loads((tmp_path / "services" / "web.json").read_text())["active"] == {"usw2": 100}


def test_services_are_stored_apart(tmp_path):
    store = StateStore(tmp_path)
    store.save("web", ServiceState(last_action="failover"))
    store.save("api", ServiceState(last_action="failback"))
    assert (store.load("web").last_action, store.load("api").last_action) == ("failover", "failback")


def test_save_replaces_and_leaves_no_temporary_file(tmp_path):
    store = StateStore(tmp_path)
    store.save("web", ServiceState(last_action="failover"))
    store.save("web", ServiceState(last_action="failback"))
    assert store.load("web").last_action == "failback"
    assert [p.name for p in (tmp_path / "services").iterdir()] == ["web.json"]


@pytest.mark.parametrize("content", ["", "{not json", '{"last_action": "fail'])
def test_a_corrupt_state_file_loads_as_empty(tmp_path, content):
    path = tmp_path / "services" / "web.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert StateStore(tmp_path).load("web") == ServiceState()


@pytest.mark.parametrize("content", ["[]", "null", "42"])
def test_a_state_file_that_is_not_an_object_loads_as_empty(tmp_path, content):
    path = tmp_path / "services" / "web.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert StateStore(tmp_path).load("web") == ServiceState()


def test_unknown_fields_in_a_state_file_are_ignored(tmp_path):
    path = tmp_path / "services" / "web.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"last_action": "failover", "from_a_newer_version": 1}))
    assert StateStore(tmp_path).load("web") == ServiceState(last_action="failover")


def test_record_incident_keeps_the_rest_of_the_state(tmp_path):
    store = StateStore(tmp_path)
    store.save("web", ServiceState(last_switch_at=T0, active={"use1": 100}))
    inc = Incident("failure", T0 + 1, T0 + 3, ["use1"], "timeout")
    store.record_incident("web", inc)
    st = store.load("web")
    assert (st.last_switch_at, st.active, st.incident) == (T0, {"use1": 100}, inc)


@pytest.mark.parametrize("awaited, signal", [("unhealthy", "failure"), ("healthy", "recovery")])
def test_record_detection_writes_the_incident_and_a_detected_event(tmp_path, awaited, signal):
    inc = record_detection(tmp_path, "web", awaited, ["use1"], T0, T0 + 2.5, "3 failures in a row")
    assert inc == Incident(signal, T0, T0 + 2.5, ["use1"], "3 failures in a row")
    assert StateStore(tmp_path).load("web").incident == inc
    (event,) = EventLog(tmp_path / "events.jsonl").read()
    assert (event["event"], event["service"], event["signal"]) == ("detected", "web", signal)
    assert (event["first_signal_at"], event["detected_at"], event["endpoints"]) == (T0, T0 + 2.5, ["use1"])
    assert event["reason"] == "3 failures in a row"


def test_record_detection_without_a_first_signal_starts_at_detection(tmp_path):
    inc = record_detection(tmp_path, "web", "unhealthy", ["use1"], None, T0, "down")
    assert inc.first_signal_at == inc.detected_at == T0


def test_record_detection_copies_the_endpoint_list(tmp_path):
    endpoints = ["use1"]
    inc = record_detection(tmp_path, "web", "unhealthy", endpoints, T0, T0, "down")
    endpoints.append("usw2")
    assert inc.endpoints == ["use1"]


# --------------------------------------------------------------------------- Timeline
def full() -> Timeline:
    return Timeline("failure", first_signal_at=T0, detected_at=T0 + 1.5, decided_at=T0 + 1.75,
                    applied_at=T0 + 4.0, validated_at=T0 + 5.25)


def test_phases_and_rto_of_a_complete_timeline():
    t = full()
    assert t.phases() == {"detection": 1.5, "decision": 0.25, "apply": 2.25, "validation": 1.25}
    assert t.rto == 5.25
    assert t.rto == pytest.approx(sum(t.phases().values()))
    assert t.complete


@pytest.mark.parametrize("missing", ["first_signal_at", "detected_at", "decided_at", "applied_at", "validated_at"])
def test_a_missing_timestamp_blanks_its_phases_and_makes_it_incomplete(missing):
    t = full()
    setattr(t, missing, None)
    phases = t.phases()
    touching = {name for name, a, b in PHASES if missing in (a, b) and name not in ("promotion", "propagation")}
    assert {n for n, v in phases.items() if v is None} == touching
    assert not t.complete
    assert (t.rto is None) == (missing in ("first_signal_at", "validated_at"))


def test_a_promotion_is_its_own_phase_between_decision_and_apply():
    t = full()
    assert "promotion" not in t.phases() and "promoted_at" not in t.to_dict()["timestamps"]
    t.promoted_at = T0 + 3.0  # decided at +1.75, applied at +4.0
    assert t.phases() == {"detection": 1.5, "decision": 0.25, "promotion": 1.25, "apply": 1.0, "validation": 1.25}
    assert t.rto == pytest.approx(sum(t.phases().values())) and t.complete
    assert list(t.to_dict()["timestamps"]) == ["first_signal_at", "detected_at", "decided_at", "promoted_at",
                                               "applied_at", "validated_at"]
    assert "promotion" in render_timeline(t)


def test_a_manual_timeline_without_detection_still_has_an_rto():
    t = Timeline("manual", first_signal_at=T0, decided_at=T0 + 1, applied_at=T0 + 2, validated_at=T0 + 3)
    assert t.rto == 3.0 and t.phases()["detection"] is None and t.phases()["decision"] is None


def test_timeline_to_dict_and_render():
    d = full().to_dict()
    assert d["signal"] == "failure" and d["rto_s"] == 5.25
    assert d["timestamps"]["first_signal_at"] == "2023-11-14T22:13:20.000Z"
    assert d["phases_s"]["apply"] == 2.25
    json.dumps(d)
    text = render_timeline(full())
    assert "signal: failure" in text and "RTO" in text and "5250 ms" in text and "2250 ms" in text
    assert "-" in render_timeline(Timeline("manual"))


# --------------------------------------------------------------------------- history
def report(service: str, action: str, rto: float | None, started: str) -> dict:
    return {"service": service, "action": action, "status": "ok", "started": started,
            "timeline": {"rto_s": rto, "phases_s": {"apply": 1.0}}}


def test_history_reads_reports_oldest_first_and_filters(tmp_path):
    (tmp_path / "2024-01-02T00-00-00-web.json").write_text(json.dumps(report("web", "failback", 3.0, "b")))
    (tmp_path / "2024-01-01T00-00-00-web.json").write_text(json.dumps(report("web", "failover", 5.0, "a")))
    (tmp_path / "2024-01-01T12-00-00-api.json").write_text(json.dumps(report("api", "failover", None, "c")))
    (tmp_path / "2024-01-03T00-00-00-bad.json").write_text("{torn")
    (tmp_path / "notes.txt").write_text("not a report")
    rows = history(tmp_path)
    assert [(r["service"], r["action"], r["rto_s"]) for r in rows] == [
        ("web", "failover", 5.0), ("api", "failover", None), ("web", "failback", 3.0)]
    assert rows[0]["report"] == str(tmp_path / "2024-01-01T00-00-00-web.json")
    assert rows[0]["phases_s"] == {"apply": 1.0} and rows[0]["status"] == "ok" and rows[0]["started"] == "a"
    assert [r["action"] for r in history(tmp_path, "web")] == ["failover", "failback"]
    assert history(tmp_path, "nope") == []


def test_history_of_a_missing_directory_is_empty(tmp_path):
    assert history(tmp_path / "absent") == []


def test_history_of_a_report_without_a_timeline(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"service": "web", "action": "failover", "status": "refused"}))
    (row,) = history(tmp_path)
    assert (row["rto_s"], row["phases_s"], row["status"]) == (None, None, "refused")
