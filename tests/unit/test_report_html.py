"""The drill report page (failover_engine.cli.report_html) and `failover report` (cli.run_report):
structure of the one SVG timeline, the tables, escaping of every string, finding a run."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from failover_engine.cli.main import main
from failover_engine.cli.report_html import render_drill_html, render_run_html, request_runs
from failover_engine.cli.run_report import RunNotFound, drill_of, find_run
from failover_engine.core.client_log import ClientRequest, client_figures
from failover_engine.core.timeline import PHASES, Timeline

T0 = 1_800_000_000.0
HOSTILE = '<script>alert("x")</script>'
RUN_IDS = {"failover": "0f0123456789", "failback": "0b0123456789"}


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    p = Elements()
    p.feed(page)
    return p


def outcome(action: str, target: dict[str, int], t: float, promoted: bool = False, *,
            resource: str = "route53:Z1/shop.drill.example./A[use1-primary]") -> dict[str, Any]:
    tl = Timeline("failure" if action == "failover" else "recovery", T0 + t, T0 + t + 0.5, T0 + t + 1.5,
                  T0 + t + 1.6 + (0.4 if promoted else 0), T0 + t + 1.7 + (0.4 if promoted else 0),
                  promoted_at=T0 + t + 1.9 if promoted else None, propagated_at=T0 + t + 1.65 + (0.4 if promoted else 0),
                  client_ttl=1.0)
    before, after = ("PRIMARY", "SECONDARY") if action == "failover" else ("SECONDARY", "PRIMARY")
    return {"run_id": RUN_IDS[action], "service": "shop", "action": action, "status": "succeeded",
            "reason": f"{action} of shop", "errors": [], "timeline": tl.to_dict(),
            "plan": {"target": target, "steps": [{"step": 0, "adapter": "route53", "description": "route53 shop",
                                                  "changes": [{"resource": resource, "action": "update",
                                                               "before": {"values": ["192.0.2.10"], "failover": before},
                                                               "after": {"values": ["192.0.2.10"], "failover": after}}]}]},
            "validation": {"probes": [{"target": next(iter(target)), "attempts": [
                {"at": T0 + t + 1.65, "endpoint": next(iter(target)), "ok": True, "reason": "ok 200"}]}]}}


def drill_report(name: str = "shop.drill.example.", promoted: bool = False, **extra: Any) -> dict[str, Any]:
    over = outcome("failover", {"usw2": 100}, 1.0, promoted)
    back = outcome("failback", {"use1": 100}, 6.0)
    reqs = []
    for i in range(200):  # 50 ms apart over 10 s: down 0.8-3.0 (old answer), usw2 3.0-7.5, use1 after
        at = T0 + i * 0.05 + 0.005
        ep = "use1" if at < T0 + 3.0 or at >= T0 + 7.5 else "usw2"
        ok = not (T0 + 0.8 <= at < T0 + 3.0)
        reqs.append(ClientRequest(at, ok, ep, "192.0.2.10" if ep == "use1" else "198.51.100.10",
                                  ("192.0.2.10",) if ep == "use1" else ("198.51.100.10",), (ep,), 200 if ok else None,
                                  None if ok else "connection refused", ttl=1.0).to_dict())
    recorded = {"interval_s": 0.05, "min_ttl_s": 0.0, "clients": [
        {"label": f"route53 {name}", "name": name, "type": "A", "endpoints": {"192.0.2.10": "use1",
                                                                              "198.51.100.10": "usw2"},
         "started_at": T0, "stopped_at": T0 + 10.0, "requests": reqs}]}
    records = {"route53:Z1/shop.drill.example./A[use1-primary]": {"values": ["192.0.2.10"], "failover": "PRIMARY"}}
    report = {"service": "shop", "result": "succeeded", "error": None, "failover": over, "failback": back,
              "detection": {"first_signal_at": T0 + 1.0, "verdicts": {"use1": {
                  "endpoint": "use1", "first_failure_at": T0 + 1.0, "detected_at": T0 + 1.5, "consecutive_failures": 3}}},
              "recovery": {"verdicts": {"use1": {"first_success_at": T0 + 6.0, "recovered_at": T0 + 6.25,
                                                 "consecutive_successes": 2}}},
              "records_before": records,
              "records_after_failover": {k: {**v, "failover": "SECONDARY"} for k, v in records.items()},
              "records_after_failback": records,
              "lab_actions": [{"at": T0 + 0.8, "region": "use1", "mode": "down"},
                              {"at": T0 + 5.0, "region": "use1", "mode": "up"}], **extra}
    report["client"] = client_figures(recorded, [("failover", over), ("failback", back)])
    return report


def test_one_svg_timeline_with_every_phase_of_every_run_in_order() -> None:
    page = parse(render_drill_html(drill_report(promoted=True)))
    assert [t for t, _a in page.tags].count("svg") == 1
    phases = [a for t, a in page.tags if t == "rect" and "phase" in a.get("class", "").split()]
    for stage in ("failover", "failback"):
        mine = [a for a in phases if a["data-stage"] == stage]
        names = [a["data-phase"] for a in mine]
        assert names == [n for n, _a, _b in PHASES if n in names]
        expected = ["detection", "decision", "promotion", "apply", "validation", "propagation"] if stage == "failover" \
            else ["detection", "decision", "apply", "validation", "propagation"]
        assert names == expected, stage
        starts = [float(a["data-start"]) for a in mine]
        xs = [float(a["x"]) for a in mine]
        assert starts == sorted(starts) and xs == sorted(xs)
        assert all(float(a["data-end"]) >= float(a["data-start"]) and float(a["width"]) >= 2 for a in mine)
    over = [a for a in phases if a["data-stage"] == "failover"]
    back = [a for a in phases if a["data-stage"] == "failback"]
    assert max(float(a["x"]) for a in over) < min(float(a["x"]) for a in back)  # one time axis


def test_the_timeline_shows_probes_and_the_clients_requests_and_outage() -> None:
    page = parse(render_drill_html(drill_report()))
    probes = [a for t, a in page.tags if t == "circle" and "probe" in a.get("class", "")]
    assert {(a["data-endpoint"], a["data-observer"], a["class"]) for a in probes} == {
        ("use1", "local", "probe fail"), ("use1", "local", "probe ok"), ("usw2", "local", "probe ok")}
    requests = [a for t, a in page.tags if t == "rect" and a.get("class", "").startswith("request")]
    # ok on use1, failed on use1 (the outage), ok on usw2, ok on use1 again: four runs of requests
    assert [(a["class"], a["data-endpoint"]) for a in requests] == [
        ("request ok", "use1"), ("request fail", "use1"), ("request ok", "usw2"), ("request ok", "use1")]
    assert sum(int(a["data-count"]) for a in requests) == 200
    assert len([a for t, a in page.tags if t == "rect" and a.get("class") == "served"]) == 4
    actions = [(a["data-region"], a["data-mode"]) for t, a in page.tags if t == "g" and a.get("class") == "lab-action"]
    assert actions == [("use1", "down"), ("use1", "up")]  # the failure the drill injected, and its end
    [outage] = [a for t, a in page.tags if t == "rect" and a.get("class") == "outage"]
    assert outage["data-stage"] == "failover"
    text = " ".join(page.text)
    assert "client-observed outage" in text and "2200 ms" in text  # 0.8 -> 3.0


def test_the_page_shows_rto_figures_plan_diff_and_records() -> None:
    page = render_drill_html(drill_report())
    text = re.sub(r"\s+", " ", " ".join(parse(page).text))
    for expected in ("engine RTO", "engine client RTO", "client-observed outage", "1700 ms", "2650 ms",
                     "failover: PRIMARY → SECONDARY", "records before", "records after failover",
                     "records after failback", "192.0.2.10 failover=SECONDARY", "failed per phase"):
        assert expected in text, expected
    assert 'class="result succeeded"' in page


def test_the_page_is_self_contained() -> None:
    page = render_drill_html(drill_report())
    tags = parse(page).tags
    assert not [t for t, _a in tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [a for _t, a in tags for k in ("src", "href") if k in a]
    assert "url(" not in page and "@import" not in page


@pytest.mark.parametrize("where", ["service", "client", "resource", "error", "reason"])
def test_every_string_from_a_report_is_escaped(where: str) -> None:
    report = drill_report(name=HOSTILE + "." if where == "client" else "shop.drill.example.")
    if where == "service":
        report["service"] = HOSTILE
    elif where == "resource":
        report["records_before"] = {HOSTILE: {"values": [HOSTILE]}}
        report["failover"]["plan"]["steps"][0]["changes"][0]["resource"] = HOSTILE
    elif where == "error":
        report["error"] = HOSTILE
    else:
        report["failover"]["plan"]["steps"][0]["description"] = HOSTILE
    page = render_drill_html(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert HOSTILE in " ".join(parse(page).text)  # shown as text


def test_a_run_page_shows_that_run_with_the_drills_client_in_its_window() -> None:
    report = drill_report()
    page = render_run_html(report["failback"], report["client"], "failback")
    tags = parse(page).tags
    assert {a["data-stage"] for t, a in tags if t == "rect" and a.get("class") == "phase"} == {"failback"}
    counts = sum(int(a["data-count"]) for t, a in tags if t == "rect" and a.get("class", "").startswith("request"))
    assert counts == 80  # the failback's window: its first signal (6.0) to the client's end (10.0)
    alone = parse(render_run_html(report["failover"]))
    assert not [a for t, a in alone.tags if t == "rect" and a.get("class", "").startswith("request")]
    assert "no client measured this run" in " ".join(alone.text)
    text = " ".join(alone.text)
    assert "192.0.2.10 failover=PRIMARY" in text and "192.0.2.10 failover=SECONDARY" in text  # before, after


def test_request_runs_merge_consecutive_requests_with_the_same_result_and_endpoint() -> None:
    rows = [{"at": T0 + i * 0.05, "ok": i not in (3, 4), "endpoint": "a" if i < 6 else "b", "error": "refused"
             if i in (3, 4) else None} for i in range(8)]
    runs = request_runs(rows, 0.05)
    assert [(r["ok"], r["endpoint"], r["count"]) for r in runs] == [
        (True, "a", 3), (False, "a", 2), (True, "a", 1), (True, "b", 2)]
    assert runs[1]["errors"] == {"refused"}
    gap = request_runs([{"at": T0, "ok": True, "endpoint": "a"}, {"at": T0 + 5, "ok": True, "endpoint": "a"}], 0.05)
    assert len(gap) == 2  # a pause (the client stopped) is not drawn as requests


# --------------------------------------------------------------------------- failover report RUN_ID
def write_runs(state: Path, report: dict[str, Any]) -> None:
    (state / "reports").mkdir(parents=True)
    for stage in ("failover", "failback"):
        run = report[stage]
        (state / "reports" / f"20270115T0800{len(stage)}.000000-shop-{stage}-{run['run_id']}.json").write_text(
            json.dumps(run))
    (state.parent / "drill-report.json").write_text(json.dumps(report))


def test_find_run_by_id_or_unique_prefix(tmp_path: Path) -> None:
    report = drill_report()
    write_runs(tmp_path / "state", report)
    reports = tmp_path / "state" / "reports"
    assert find_run(reports, "0b0123456789").name.endswith("-failback-0b0123456789.json")
    assert find_run(reports, "0f01").name.endswith("-failover-0f0123456789.json")
    with pytest.raises(RunNotFound, match="no run 'zzz'"):
        find_run(reports, "zzz")
    with pytest.raises(RunNotFound, match="ambiguous: 0b0123456789, 0f0123456789"):
        find_run(reports, "0")
    with pytest.raises(RunNotFound, match="is not a run id"):
        find_run(reports, "*")
    assert drill_of(tmp_path / "state", "0b0123456789") == (report, "failback")
    assert drill_of(tmp_path / "state", "other") is None


def test_failover_report_writes_the_html_page_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = drill_report()
    write_runs(tmp_path / "state", report)
    out = tmp_path / "run.html"
    assert main(["report", "0b0123456789", "--state-dir", str(tmp_path / "state"), "--html", "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'data-stage="failback"' in page and "rect class=\"request" in page
    assert main(["report", "0b01", "--state-dir", str(tmp_path / "state")]) == 0
    text = capsys.readouterr().out
    assert "run 0b0123456789 of service shop: failback succeeded" in text and "client RTO" in text
    assert main(["report", "nope", "--state-dir", str(tmp_path / "state")]) == 1
    assert "no run 'nope'" in capsys.readouterr().err
