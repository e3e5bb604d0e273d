"""``playbooks/region_failover.yml`` as a user sees it: live progress, input guards, a compact end.

The real ``ansible-playbook`` (this venv's) runs the playbook against a lab of three services
(moto plays Route 53, local servers play the regions), as in test_playbooks.py. The collection's
action plugin ``region_failover`` relays the module's progress lines while the module runs; the
playbook refuses to start without a strategy file or a region, and ends with a summary and only
the services that did not succeed. What changed is read back from moto with boto3.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from failover_engine.config.collection import link_collection
from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = "playbooks/region_failover.yml"
ZONE = "progress.example."
SERVICES = ("alpha", "bravo", "charlie")
REGION_TASK = "TASK [Fail over every service active in the region]"
RESULT_LINE = re.compile(r"^(ok|changed|fatal|failed|skipping): \[localhost\]")
PROGRESS = "[localhost] "

# Three services, primary in us-east-1 (server use1), standby in us-west-2: alpha and bravo on
# server usw2, charlie on server euw1 (so that charlie alone can be refused: its standby down).
TEMPLATE = {
    "version": 1, "state_dir": "state",
    "connections": {"aws-local": {"type": "route53", "endpoint_url": "{moto_url}", "region": "us-east-1"}},
    "services": {
        name: {
            "strategy": "active_passive", "scope": "region",
            "endpoints": [
                {"name": "primary", "role": "primary", "region": "us-east-1",
                 "probe": {"type": "http", "url": "http://127.0.0.1:{use1_port}/health", "body_contains": "ok"}},
                {"name": "standby", "role": "standby", "region": "us-west-2",
                 "probe": {"type": "http", "url": f"http://127.0.0.1:{{{standby}_port}}/health",
                           "body_contains": "ok"}}],
            "routing": [{"adapter": "route53", "connection": "aws-local", "hosted_zone": ZONE,
                         "record": f"{name}.{ZONE}", "type": "A", "ttl": 30, "mode": "failover",
                         "endpoints": {"primary": {"values": [f"192.0.2.{i + 1}"], "set_identifier": f"{name}-a"},
                                       "standby": {"values": [f"198.51.100.{i + 1}"], "set_identifier": f"{name}-b"}}}],
            "detection": {"interval": "2s", "timeout": "1s"},
            "policy": {"cooldown": "1s"},
            "validation": {"attempts": 2, "interval": "200ms"},
        }
        for i, (name, standby) in enumerate(zip(SERVICES, ("usw2", "usw2", "euw1")))
    },
}
STEADY = {"PRIMARY": "a", "SECONDARY": "b"}
MOVED = {"PRIMARY": "b", "SECONDARY": "a"}


@dataclass
class Run:
    args: list[str]
    rc: int
    lines: list[tuple[float, str]]  # (seconds since the start, line) of stdout + stderr

    @property
    def output(self) -> str:
        return "\n".join(text for _unused, text in self.lines)

    def describe(self) -> str:
        return f"$ {' '.join(self.args)}\nrc={self.rc}\n{self.output}"

    def region_task(self) -> tuple[list[tuple[float, str]], tuple[float, str] | None]:
        """(progress lines of the region task, its result line) as they came."""
        progress, inside = [], False
        for at, text in self.lines:
            if text.startswith(REGION_TASK):
                inside = True
            elif inside and RESULT_LINE.match(text):
                return progress, (at, text)
            elif inside and text.startswith(PROGRESS):
                progress.append((at, text[len(PROGRESS):]))
        return progress, None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    link_collection(REPO)
    run_dir = tmp_path_factory.mktemp("lab")
    template = run_dir / "template.yaml"
    template.write_text(yaml.safe_dump(TEMPLATE, sort_keys=False), encoding="utf-8")
    with Lab(run_dir, regions=("use1", "usw2", "euw1"), strategy_template=template) as lab:
        yield lab


@pytest.fixture
def env(lab: Lab, tmp_path: Path) -> dict[str, str]:
    """The lab in its steady state; the environment ansible-playbook gets (one state dir per test)."""
    lab.reset()
    data = yaml.safe_load(lab.strategy_path.read_text(encoding="utf-8"))
    data["state_dir"] = str(tmp_path / "state")
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (tmp_path / "ansible-tmp").mkdir()
    return {**lab.child_env(), "FAILOVER_STRATEGY": str(strategy),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(env: dict[str, str], *args: str, command: str = "ansible-playbook", **extra: str | None) -> Run:
    """Run ``command`` from the repo root; every output line with the time it came."""
    cmd = [str(BIN / command), *args]
    child_env = {k: v for k, v in {**env, **extra}.items() if v is not None}
    lines: list[tuple[float, str]] = []
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.monotonic() - start, line.rstrip("\n")))
    return Run(cmd, proc.wait(timeout=180), lines)


def roles(lab: Lab) -> dict[str, dict[str, str]]:
    """service -> {PRIMARY|SECONDARY: a|b} (which set identifier holds which role), from moto."""
    client = lab.route53_client()
    zone_id = lab.zones[ZONE]
    out: dict[str, dict[str, str]] = {}
    for rr in client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
        if "Failover" in rr:
            name, side = rr["SetIdentifier"].rsplit("-", 1)
            out.setdefault(name, {})[rr["Failover"]] = side
    return out


def all_steady(lab: Lab) -> bool:
    return roles(lab) == {name: STEADY for name in SERVICES}


# --------------------------------------------------------------------------- live progress
def test_progress_lines_appear_while_the_module_runs_before_its_result(lab: Lab, env: dict[str, str]) -> None:
    lab.regions["use1"].set_mode("hang")  # the primaries do not answer
    lab.regions["usw2"].set_mode("slow", delay_ms=800)  # the targets answer in time, slowly: the run takes a while

    got = run(env, PLAYBOOK, "-e", "region=us-east-1")

    assert got.rc == 0, got.describe()
    progress, result = got.region_task()
    assert result is not None and result[1].startswith("changed:"), got.describe()
    assert len(progress) >= 2, got.describe()
    # relayed while the module ran, not printed with its result: the first line came well before it
    assert result[0] - progress[0][0] >= 0.5, got.describe()
    assert roles(lab) == {name: MOVED for name in SERVICES}


def test_every_progress_line_is_shown_once_in_the_order_written(lab: Lab, env: dict[str, str],
                                                                tmp_path: Path) -> None:
    """With a progress_file of the user's, the lines shown are exactly those the module appended
    (the file's earlier content is not shown again, and the file is kept)."""
    progress_file = tmp_path / "progress.log"
    progress_file.write_text("an earlier run\n", encoding="utf-8")
    args = f"region=us-east-1 strategy_file={env['FAILOVER_STRATEGY']} progress_file={progress_file}"

    got = run(env, "localhost", "-m", "resilience.failover.region_failover", "-a", args, command="ansible")

    assert got.rc == 0, got.describe()
    written = progress_file.read_text(encoding="utf-8").splitlines()
    assert written[0] == "an earlier run" and len(written) > 1
    shown = [text[len(PROGRESS):] for _unused, text in got.lines if text.startswith(PROGRESS)]
    assert shown == written[1:], got.describe()
    first_result = next(i for i, (_unused, text) in enumerate(got.lines) if text.startswith("localhost |"))
    assert all(i < first_result for i, (_unused, text) in enumerate(got.lines) if text.startswith(PROGRESS))


# --------------------------------------------------------------------------- input guards
@pytest.mark.parametrize("args, unset, says", [
    ((), ("FAILOVER_STRATEGY",), ["no strategy file: give -e strategy_file=PATH", "no region: give the region"]),
    (("-e", "strategy_file=/nonexistent/strategy.yaml", "-e", "region=us-east-1"), ("FAILOVER_STRATEGY",),
     ["strategy file /nonexistent/strategy.yaml not found"]),
    ((), (), ["no region: give the region to leave, -e region=NAME"]),
], ids=["no-strategy-no-region", "strategy-not-found", "no-region"])
def test_a_missing_input_stops_the_play_before_the_module_runs(lab: Lab, env: dict[str, str], args: tuple[str, ...],
                                                               unset: tuple[str, ...], says: list[str]) -> None:
    got = run(env, PLAYBOOK, *args, **{var: None for var in unset})

    assert got.rc == 2, got.describe()
    fatal = [text for _unused, text in got.lines if text.startswith("[ERROR]")]
    assert len(fatal) == 1 and all(s in fatal[0] for s in says), got.describe()
    assert "Nothing was changed." in fatal[0]
    assert "Is a directory" not in got.output
    progress, result = got.region_task()
    assert progress == [] and result is not None and result[1].startswith("skipping:"), got.describe()
    assert all_steady(lab)


def test_a_module_failure_is_reported_as_the_module_reported_it(lab: Lab, env: dict[str, str],
                                                                tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nservices:\n  alpha: 1\n", encoding="utf-8")

    got = run(env, PLAYBOOK, "-e", f"strategy_file={broken}", "-e", "region=us-east-1")

    assert got.rc == 2, got.describe()
    progress, result = got.region_task()
    assert progress == [] and result is not None and result[1].startswith("fatal:"), got.describe()
    assert "services.alpha (line 3)" in got.output, got.describe()  # the module's own message
    assert "TASK [Summary]" not in got.output
    assert all_steady(lab)


# --------------------------------------------------------------------------- a compact end
def test_the_outcome_is_a_summary_not_one_line_per_service(lab: Lab, env: dict[str, str]) -> None:
    check = run(env, PLAYBOOK, "--check", "-e", "region=us-east-1")
    assert check.rc == 0, check.describe()
    assert "region us-east-1: planned; 3 service(s): planned 3" in check.output
    assert all_steady(lab)

    got = run(env, PLAYBOOK, "-e", "region=us-east-1")

    assert got.rc == 0, got.describe()
    assert roles(lab) == {name: MOVED for name in SERVICES}
    tail = got.output.split(REGION_TASK, 1)[1]
    tail = "\n".join(line for line in tail.splitlines() if not line.startswith(PROGRESS))
    assert "region us-east-1: succeeded; 3 service(s): succeeded 3" in tail, got.describe()
    assert "region RTO" in tail and "report:" in tail, got.describe()
    assert not any(name in tail for name in SERVICES), got.describe()  # no line per service
    assert re.search(r"TASK \[Services that did not succeed\] \*+\nskipping", tail), got.describe()
    assert len(tail) < 2500, got.describe()


def test_only_the_services_that_did_not_succeed_are_listed(lab: Lab, env: dict[str, str]) -> None:
    lab.regions["use1"].set_mode("down")
    lab.regions["euw1"].set_mode("down")  # charlie's standby: charlie is refused, the others move

    got = run(env, PLAYBOOK, "-e", "region=us-east-1")

    assert got.rc == 2, got.describe()
    assert roles(lab) == {"alpha": MOVED, "bravo": MOVED, "charlie": STEADY}
    tail = got.output.split(REGION_TASK, 1)[1]
    tail = "\n".join(line for line in tail.splitlines() if not line.startswith(PROGRESS))
    assert re.search(r"region us-east-1: partial; 3 service\(s\): refused 1, succeeded 2", tail), \
        got.describe()
    listed = tail.split("TASK [Services that did not succeed]", 1)[1].split("TASK [", 1)[0]
    assert "charlie: refused" in listed and "alpha" not in listed and "bravo" not in listed, got.describe()
    fatal = [text for _unused, text in got.lines if text.startswith("[ERROR]")]
    assert len(fatal) == 1 and "1 of 3 service(s) did not succeed" in fatal[0], got.describe()
    assert len(tail) < 4000, got.describe()
