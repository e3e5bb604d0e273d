"""The collection's playbooks, run by the real ``ansible-playbook`` against the lab.

Each test runs ansible-playbook (from this interpreter's venv) as a subprocess: the modules
run the failover_engine library, which talks to moto (Route 53) and probes the lab's region
servers over HTTP. What the tests check is what ends up in moto (read back with boto3), the
JSON drill report, the play recap, and the module results the default callback prints as JSON
(``ANSIBLE_CALLBACK_RESULT_FORMAT=json``; ansible-core 2.19 ships no json stdout callback).

Every test gets its own copy of the lab's strategy whose ``state_dir`` points into tmp_path, so
cooldowns, incidents and reports of one test never leak into another.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover_engine.config.collection import link_collection
from failover_engine.lab.lab import Lab
from failover_engine.config.loader import load_strategy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
SERVICE = "shop"
RECORD = "shop.drill.example."
ZONE = "drill.example."
STEADY = {"use1-primary": "PRIMARY", "usw2-standby": "SECONDARY"}
FAILED_OVER = {"use1-primary": "SECONDARY", "usw2-standby": "PRIMARY"}

if not ANSIBLE_PLAYBOOK.exists():  # pragma: no cover - environment problem, not a test failure
    pytest.skip(f"ansible-playbook not found next to {sys.executable}; install '.[dev]'",
                allow_module_level=True)


# --------------------------------------------------------------------------- running ansible
@dataclass
class Run:
    """One finished ansible-playbook run."""

    args: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def recap(self, host: str = "localhost") -> dict[str, int]:
        """The host's PLAY RECAP counters (ok, changed, unreachable, failed, skipped, ...)."""
        m = re.search(rf"^{re.escape(host)}\s*:\s*(.+)$", self.stdout.split("PLAY RECAP", 1)[-1], re.M)
        assert m, f"no PLAY RECAP line for {host}:\n{self.describe()}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}

    def results(self) -> list[tuple[str, dict[str, Any]]]:
        """(status, result) of every task result printed as JSON (needs -v for ok/changed)."""
        decoder = json.JSONDecoder()
        out = []
        for m in re.finditer(r"^(ok|changed|fatal|failed|skipping): \[localhost\](?:: FAILED!)? => ",
                             self.stdout, re.M):
            if self.stdout[m.end():m.end() + 1] == "{":
                out.append((m.group(1), decoder.raw_decode(self.stdout, m.end())[0]))
        return out

    def fatal(self) -> dict[str, Any]:
        """The result of the (single) failed task."""
        fatal = [r for status, r in self.results() if status in ("fatal", "failed")]
        assert len(fatal) == 1, f"expected one failed task, got {len(fatal)}:\n{self.describe()}"
        return fatal[0]

    def describe(self) -> str:
        return f"$ {' '.join(self.args)}\nrc={self.rc}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Ansible:
    """Runs ansible-playbook in the repo against one lab, with a private state directory."""

    lab: Lab
    tmp: Path
    strategy: Path
    report: Path
    env: dict[str, str]

    def playbook(self, playbook: str | Path, *args: str, cwd: Path = REPO, timeout: float = 120,
                 **env: str) -> Run:
        cmd = [str(ANSIBLE_PLAYBOOK), str(playbook), *args]
        proc = subprocess.run(cmd, check=False, cwd=cwd, env={**self.env, **env}, capture_output=True, text=True,
                              timeout=timeout)
        return Run(cmd, proc.returncode, proc.stdout, proc.stderr)

    def strategy_variant(self, name: str, edit: Any) -> Path:
        """A copy of this test's strategy, ``edit(text) -> text`` applied, in tmp_path."""
        path = self.tmp / name
        path.write_text(edit(self.strategy.read_text(encoding="utf-8")), encoding="utf-8")
        return path


def private_strategy(lab: Lab, tmp: Path) -> Path:
    """The lab's strategy with ``state_dir`` made absolute under ``tmp`` (one state per test)."""
    data = yaml.safe_load(lab.strategy_path.read_text(encoding="utf-8"))
    data["state_dir"] = str(tmp / "state")
    path = tmp / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module", autouse=True)
def collection_link() -> None:
    """The repo as resilience.failover under ./collections (what `make collections` does)."""
    link_collection(REPO)


@pytest.fixture
def ansible(lab: Lab, tmp_path: Path) -> Ansible:
    strategy = private_strategy(lab, tmp_path)
    report = tmp_path / "report.json"
    (tmp_path / "ansible-tmp").mkdir()
    env = {
        **lab.child_env(),  # os.environ without AWS_* (no real profile can leak in) + lab.env()
        "FAILOVER_STRATEGY": str(strategy),
        "FAILOVER_DRILL_REPORT": str(report),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return Ansible(lab, tmp_path, strategy, report, env)


# --------------------------------------------------------------------------- moto
def zone_records(lab: Lab) -> list[dict[str, Any]]:
    """Every record set of the drill zone, as moto holds it (sorted, for comparisons)."""
    client = lab.route53_client()
    zones = client.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
    zone_id = next(z["Id"] for z in zones if z["Name"] == ZONE)
    records = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted(records, key=lambda r: (r["Name"], r["Type"], r.get("SetIdentifier", "")))


def failover_roles(lab: Lab) -> dict[str, str]:
    """SetIdentifier -> PRIMARY/SECONDARY of the shop record, read from moto."""
    return {r["SetIdentifier"]: r["Failover"] for r in zone_records(lab)
            if r["Name"] == RECORD and r["Type"] == "A" and "Failover" in r}


def roles_in_report(records: dict[str, Any]) -> dict[str, str]:
    """SetIdentifier -> failover role from the drill report's ``records_*`` (keyed by resource)."""
    out = {}
    for resource, attrs in records.items():
        m = re.search(r"/shop\.drill\.example\./A\[(.+)\]$", resource)
        if m:
            out[m.group(1)] = attrs["failover"]
    return out


# --------------------------------------------------------------------------- 1. the drill
def test_drill_playbook_fails_over_and_back_with_complete_timelines(ansible: Ansible) -> None:
    svc = load_strategy(ansible.strategy).service(SERVICE)
    assert failover_roles(ansible.lab) == STEADY

    run = ansible.playbook("playbooks/drill.yml")

    assert run.rc == 0, run.describe()
    report = json.loads(ansible.report.read_text())
    assert report["result"] == "succeeded", report.get("error")
    assert report["error"] is None
    for action, signal in (("failover", "failure"), ("failback", "recovery")):
        outcome = report[action]
        assert outcome["status"] == "succeeded", (action, outcome["errors"])
        timeline = outcome["timeline"]
        # the incident endpoint_probe recorded starts the clock, not the command
        assert timeline["signal"] == signal, action
        assert all(timeline["timestamps"].values()), (action, timeline["timestamps"])
        assert all(v is not None and v >= 0 for v in timeline["phases_s"].values()), (action, timeline)
        assert timeline["rto_s"] > 0
        # propagation (the drill template's resolve step) runs beside validation: not on top of it
        serial = sum(v for k, v in timeline["phases_s"].items() if k != "propagation")
        assert timeline["rto_s"] == pytest.approx(serial, abs=0.01)
        assert outcome["validation"]["ok"] is True

    # detection lasts (threshold - 1) probe intervals: the first failed probe starts it,
    # the threshold-th consecutive one ends it
    interval = svc.detection.interval
    expected = (svc.detection.failure_threshold - 1) * interval
    detection = report["failover"]["timeline"]["phases_s"]["detection"]
    assert expected >= 0.4
    assert expected * 0.8 <= detection <= expected + interval + 1.0, detection
    assert report["detection"]["rounds"] >= svc.detection.failure_threshold
    expected_recovery = (svc.detection.recovery_threshold - 1) * interval
    recovery = report["failback"]["timeline"]["phases_s"]["detection"]
    assert expected_recovery * 0.8 <= recovery <= expected_recovery + interval + 1.0, recovery

    assert roles_in_report(report["records_before"]) == STEADY
    assert roles_in_report(report["records_after_failover"]) == FAILED_OVER
    assert roles_in_report(report["records_after_failback"]) == STEADY
    assert failover_roles(ansible.lab) == STEADY  # failed back, in moto itself
    assert ansible.lab.regions["use1"].status()["mode"] == "up"  # the drill restored the primary


# --------------------------------------------------------------------------- 2. failover, failback
def test_failover_is_idempotent_and_failback_restores_the_primary(ansible: Ansible) -> None:
    first = ansible.playbook("playbooks/failover.yml", "-v", "-e", f"service={SERVICE}",
                             ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    switched_at = time.monotonic()
    assert first.rc == 0, first.describe()
    assert first.recap()["changed"] == 1
    result = first.results()[0][1]
    assert result["status"] == "succeeded"
    assert result["active"] == {"usw2": 100}
    assert result["rto_s"] > 0
    assert Path(result["report_path"]).parent == ansible.tmp / "state" / "reports"
    assert failover_roles(ansible.lab) == FAILED_OVER

    again = ansible.playbook("playbooks/failover.yml", "-v", "-e", f"service={SERVICE}",
                             ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert again.rc == 0, again.describe()
    assert again.recap()["changed"] == 0, again.describe()
    assert again.results()[0][1]["status"] == "noop"
    assert failover_roles(ansible.lab) == FAILED_OVER

    cooldown = load_strategy(ansible.strategy).service(SERVICE).policy.cooldown
    assert cooldown >= 1
    time.sleep(max(0.0, cooldown + 0.2 - (time.monotonic() - switched_at)))
    back = ansible.playbook("playbooks/failback.yml", "-e", f"service={SERVICE}")
    assert back.rc == 0, back.describe()
    assert back.recap()["changed"] == 1
    assert failover_roles(ansible.lab) == STEADY


def test_failback_within_the_cooldown_is_refused_unless_forced(ansible: Ansible) -> None:
    strategy = ansible.strategy_variant("long-cooldown.yaml",
                                        lambda t: re.sub(r"(?m)^(\s+cooldown:) .*$", r"\1 600s", t))
    assert load_strategy(strategy).service(SERVICE).policy.cooldown == 600
    env = {"FAILOVER_STRATEGY": str(strategy), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
    assert ansible.playbook("playbooks/failover.yml", "-e", f"service={SERVICE}", **env).rc == 0
    assert failover_roles(ansible.lab) == FAILED_OVER
    records = zone_records(ansible.lab)

    refused = ansible.playbook("playbooks/failback.yml", "-e", f"service={SERVICE}", **env)
    assert refused.rc != 0, refused.describe()
    fatal = refused.fatal()
    assert fatal["status"] == "refused"
    assert fatal["changed"] is False
    assert "cooldown" in fatal["msg"]
    assert zone_records(ansible.lab) == records

    forced = ansible.playbook("playbooks/failback.yml", "-e", f"service={SERVICE}", "-e", "force=true", **env)
    assert forced.rc == 0, forced.describe()
    assert failover_roles(ansible.lab) == STEADY


def test_relative_strategy_file_is_relative_to_where_the_command_runs(ansible: Ansible) -> None:
    # Ansible runs local modules in the playbook's directory: the playbook must resolve the
    # path the person typed against their working directory, not against playbooks/.
    assert ansible.strategy.parent == ansible.tmp
    run = ansible.playbook(REPO / "playbooks" / "failover.yml", "-e", f"strategy_file={ansible.strategy.name}",
                           "-e", f"service={SERVICE}", cwd=ansible.tmp, FAILOVER_STRATEGY="")

    assert run.rc == 0, run.describe()
    assert failover_roles(ansible.lab) == FAILED_OVER


# --------------------------------------------------------------------------- 3. check mode
def test_check_mode_shows_the_diff_and_changes_nothing(ansible: Ansible) -> None:
    records = zone_records(ansible.lab)

    run = ansible.playbook("playbooks/failover.yml", "--check", "--diff", "-e", f"service={SERVICE}")

    assert run.rc == 0, run.describe()
    assert run.recap()["changed"] == 1  # would change
    assert "--- before" in run.stdout and "+++ after" in run.stdout, run.describe()
    assert re.search(r"^-\s+failover: PRIMARY$", run.stdout, re.M), run.describe()
    assert re.search(r"^\+\s+failover: SECONDARY$", run.stdout, re.M), run.describe()
    assert re.search(r"^-\s+failover: SECONDARY$", run.stdout, re.M), run.describe()
    assert re.search(r"^\+\s+failover: PRIMARY$", run.stdout, re.M), run.describe()
    assert f"{RECORD}/A[use1-primary]" in run.stdout and f"{RECORD}/A[usw2-standby]" in run.stdout
    assert "planned" in run.stdout
    assert zone_records(ansible.lab) == records
    assert not (ansible.tmp / "state" / "reports").exists()  # check mode writes no report


# --------------------------------------------------------------------------- 4. bad input
def test_invalid_strategy_fails_naming_the_file_and_every_field(ansible: Ansible) -> None:
    bad = ansible.strategy_variant(
        "bad-strategy.yaml",
        lambda t: t.replace("failure_threshold: 3", "failure_threshold: three").replace("ttl: 30", "tll: 30"))
    records = zone_records(ansible.lab)

    run = ansible.playbook("playbooks/failover.yml", "-e", f"service={SERVICE}",
                           FAILOVER_STRATEGY=str(bad), ANSIBLE_CALLBACK_RESULT_FORMAT="json")

    assert run.rc != 0, run.describe()
    fatal = run.fatal()
    assert str(bad) in fatal["msg"]
    assert "services.shop.detection.failure_threshold" in fatal["msg"]
    assert "services.shop.routing[0].tll" in fatal["msg"]  # every problem at once
    assert len(fatal["problems"]) == 2
    assert run.recap()["failed"] == 1
    assert zone_records(ansible.lab) == records


def test_unknown_service_names_the_known_ones(ansible: Ansible) -> None:
    records = zone_records(ansible.lab)

    run = ansible.playbook("playbooks/failover.yml", "-e", "service=nope", ANSIBLE_CALLBACK_RESULT_FORMAT="json")

    assert run.rc != 0, run.describe()
    fatal = run.fatal()
    assert "unknown service 'nope'" in fatal["msg"]
    assert "known services: shop" in fatal["msg"]
    assert fatal["error_type"] == "UnknownServiceError"
    assert zone_records(ansible.lab) == records


def test_no_strategy_at_all_says_how_to_give_one(ansible: Ansible) -> None:
    run = ansible.playbook("playbooks/failover.yml", "-e", f"service={SERVICE}", FAILOVER_STRATEGY="",
                           ANSIBLE_CALLBACK_RESULT_FORMAT="json")

    assert run.rc != 0, run.describe()
    assert run.fatal()["msg"] == "strategy_file is required (or set FAILOVER_STRATEGY)"


def test_missing_service_variable_says_how_to_give_it(ansible: Ansible) -> None:
    run = ansible.playbook("playbooks/failover.yml")

    assert run.rc != 0, run.describe()
    assert "-e service=NAME" in run.output


def test_failover_to_a_standby_that_is_down_is_refused(ansible: Ansible) -> None:
    ansible.lab.regions["usw2"].set_mode("down")
    records = zone_records(ansible.lab)

    run = ansible.playbook("playbooks/failover.yml", "-e", f"service={SERVICE}",
                           ANSIBLE_CALLBACK_RESULT_FORMAT="json")

    assert run.rc != 0, run.describe()
    fatal = run.fatal()
    assert fatal["status"] == "refused"
    assert fatal["changed"] is False
    assert "refused" in fatal["msg"]
    assert "'usw2' fails its checks" in fatal["msg"]
    assert "connection refused" in fatal["msg"]
    assert zone_records(ansible.lab) == records


# --------------------------------------------------------------------------- 5. action group
def test_module_defaults_action_group_reaches_all_three_modules(ansible: Ansible) -> None:
    out = ansible.tmp / "adhoc-results.json"
    playbook = ansible.tmp / "adhoc.yml"
    playbook.write_text(textwrap.dedent(f"""\
        - name: The action group gives every module its strategy_file
          hosts: localhost
          gather_facts: false
          module_defaults:
            group/resilience.failover.failover:
              strategy_file: {json.dumps(str(ansible.strategy))}
          tasks:
            - name: Status
              resilience.failover.service_info:
                service: {SERVICE}
              register: info
            - name: Probe once
              resilience.failover.endpoint_probe:
                service: {SERVICE}
              register: probe
            - name: Plan a failover
              resilience.failover.service_failover:
                service: {SERVICE}
              check_mode: true
              diff: true
              register: plan
            - name: Save the results
              ansible.builtin.copy:
                dest: {json.dumps(str(out))}
                mode: "0644"
                content: "{{{{ {{'info': info, 'probe': probe, 'plan': plan}} | to_nice_json }}}}"
        """))
    records = zone_records(ansible.lab)

    # without FAILOVER_STRATEGY, module_defaults is the only source of strategy_file
    run = ansible.playbook(playbook, FAILOVER_STRATEGY="")

    assert run.rc == 0, run.describe()
    assert "[WARNING]" not in run.output, run.describe()
    got = json.loads(out.read_text())
    info = got["info"]["services"][0]
    assert info["service"] == SERVICE
    assert info["active"] == {"use1": 100}
    assert info["failed_over"] is False
    assert {v["health"] for v in info["verdicts"].values()} == {"healthy"}
    assert got["probe"]["changed"] is False
    assert got["probe"]["all_ok"] is True
    assert set(got["probe"]["probes"]) == {"use1", "usw2"}
    assert got["plan"]["changed"] is True
    assert got["plan"]["status"] == "planned"
    assert got["plan"]["active"] == {"usw2": 100}
    assert set(got["plan"]["diff"]["before"]) == set(got["plan"]["diff"]["after"])
    assert len(got["plan"]["diff"]["after"]) == 2
    assert zone_records(ansible.lab) == records


# --------------------------------------------------------------------------- region failover
def test_region_playbook_moves_every_service_active_there_and_only_once(ansible: Ansible) -> None:
    check = ansible.playbook("playbooks/region_failover.yml", "--check", "--diff", "-e", "region=us-east-1")
    assert check.rc == 0, check.describe()
    assert "PRIMARY" in check.stdout and failover_roles(ansible.lab) == STEADY  # check mode: plan only

    run = ansible.playbook("playbooks/region_failover.yml", "-v", "-e", "region=us-east-1",
                           ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert run.rc == 0, run.describe()
    result = run.results()[0][1]
    assert result["moved"] == [SERVICE] and result["services"][0]["status"] == "succeeded"
    assert failover_roles(ansible.lab) == FAILED_OVER

    again = ansible.playbook("playbooks/region_failover.yml", "-v", "-e", "region=us-east-1",
                             ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert again.rc == 0 and again.recap()["changed"] == 0, again.describe()
    assert again.results()[0][1]["services"][0]["status"] == "noop"
    other = ansible.playbook("playbooks/region_failover.yml", "-e", "region=eu-west-1")
    assert other.rc == 0 and other.recap()["changed"] == 0, other.describe()
    assert failover_roles(ansible.lab) == FAILED_OVER
