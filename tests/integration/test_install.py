"""failover-engine as a user installs it, outside the checkout.

``make dist`` builds the library's wheel and the collection's tarball; they go into a brand-new
virtualenv (the wheel, not an editable install) and a collections path in a temporary HOME (the
default one, ``~/.ansible/collections``). From there: a playbook with the modules against a moto
server, ``failover drill`` on every cloud from an empty directory, and the one-line errors when an
extra or the collection is missing. Nothing of the checkout is on the way: the commands run from
empty directories with a clean environment, and the installed collection is compared file by file
before and after, since a drill must never write into it.

The new venv takes its dependencies from a wheelhouse kept beside the project's venv
(``<venv>/wheelhouse``) with the versions the project's venv has (``pip freeze`` as constraints),
offline. The first run fills it from the package registry (``pip wheel``, which also builds any
dependency published only as an sdist), so later runs need no network; ``make clean`` removes it.
Measured on a busy 2-core machine (load 3.5): the whole module 97 s with the wheelhouse filled
(make dist 8.5 s, venv and installs 8 s, playbook 7 s, the aws drill 12 s, the six other clouds two
at a time 58 s, each 18-21 s), 132 s when it fills the wheelhouse first.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from failover_engine.lab.lab import Lab

# the first test also pays for the module's fixture: make dist, the venv, and on a fresh machine
# filling the wheelhouse from the package registry
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the project venv's bin (not resolved: the venv python is a symlink)
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
FIRST_EXTRAS = "ansible,lab"  # then the drills of gcp, azure and terraform name their missing extra
ALL_EXTRAS = "ansible,lab,gcp,azure,terraform"
OTHER_CLOUDS = ("gcp", "azure", "multi", "zone", "weighted", "terraform")
DRILL_TIMEOUT_S = 300  # one drill: generous, for a busy 2-core machine

for tool in ("ansible-galaxy", "ansible-playbook"):
    if not (BIN / tool).exists():  # pragma: no cover - environment problem, not a test failure
        pytest.skip(f"{tool} not found next to {sys.executable}; install '.[dev]'", allow_module_level=True)


def run(cmd: list[str | Path], *, cwd: Path = REPO, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(map(str, proc.args))}\nrc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"


@dataclass
class Install:
    """The installed venv and collection, and what the commands said before everything was there."""

    root: Path
    venv: Path
    home: Path
    wheel: Path
    tarball: Path
    timings: dict[str, float] = field(default_factory=dict)
    before: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    @property
    def collection(self) -> Path:
        return self.home / ".ansible" / "collections" / "ansible_collections" / "resilience" / "failover"

    def env(self, **extra: str) -> dict[str, str]:
        """A user's environment: the installed venv's bin first, the temporary HOME, no ANSIBLE_*,
        nothing of the project's venv."""
        path = [str(self.venv / "bin")] + [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep)
                                           if p and Path(p) != BIN]
        keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")}
        return {**keep, "PATH": os.pathsep.join(path), "HOME": str(self.home), "ANSIBLE_NOCOLOR": "1", **extra}

    def empty_dir(self, name: str) -> Path:
        d = self.root / "work" / name
        d.mkdir(parents=True)
        return d

    def failover(self, *args: str, cwd: Path, timeout: float = DRILL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return run([self.venv / "bin" / "failover", *args], cwd=cwd, env=self.env(), timeout=timeout)


def _pip_install(venv: Path, requirement: str, constraints: Path) -> None:
    """Install ``requirement`` into ``venv`` from the wheelhouse, offline; fill the wheelhouse from
    the package registry first when it lacks something."""
    pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python"]
    offline = [*pip, "install", "--quiet", "--no-compile", "--no-index", "--find-links", WHEELHOUSE,
               "--constraint", constraints, requirement]
    proc = run(offline)
    if proc.returncode != 0:
        fill = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", WHEELHOUSE,
                    "--constraint", constraints, requirement])
        assert fill.returncode == 0, show(fill)
        for ours in WHEELHOUSE.glob("failover_engine-*"):
            ours.unlink()  # the library always comes from the fresh build, never the wheelhouse
        proc = run(offline)
    assert proc.returncode == 0, show(proc)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time (what a write would change)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("install")
    timings: dict[str, float] = {}

    started = time.monotonic()
    dist = root / "dist"
    # the project's venv is set up already (make test did it): -o keeps make from redoing it
    build = run(["make", "-s", "-o", f"{sys.prefix}/.installed", "dist", f"DIST={dist}", f"VENV={sys.prefix}"])
    assert build.returncode == 0, show(build)
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    wheel = dist / f"failover_engine-{version}-py3-none-any.whl"
    tarball = dist / f"resilience-failover-{version}.tar.gz"
    assert wheel.is_file() and tarball.is_file() and (dist / f"failover_engine-{version}.tar.gz").is_file(), \
        sorted(p.name for p in dist.iterdir())
    timings["make dist"] = time.monotonic() - started

    started = time.monotonic()
    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, show(made)
    freeze = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"])
    assert freeze.returncode == 0, show(freeze)
    constraints = root / "constraints.txt"
    constraints.write_text("".join(line + "\n" for line in freeze.stdout.splitlines()
                                   if line and not line.startswith(("-e", "#", "failover-engine", "failover_engine"))))
    WHEELHOUSE.mkdir(exist_ok=True)
    _pip_install(venv, f"{wheel}[{FIRST_EXTRAS}]", constraints)
    timings["venv + first install"] = time.monotonic() - started

    home = root / "home"
    home.mkdir()
    inst = Install(root, venv, home, wheel, tarball, timings)
    # before the collection and the extras are there: what each drill says
    for cloud in ("gcp", "azure", "terraform", "aws"):
        inst.before[cloud] = inst.failover("drill", "--cloud", cloud, cwd=inst.empty_dir(f"before-{cloud}"),
                                           timeout=120)

    started = time.monotonic()
    _pip_install(venv, f"{wheel}[{ALL_EXTRAS}]", constraints)
    galaxy = run([venv / "bin" / "ansible-galaxy", "collection", "install", tarball], cwd=inst.empty_dir("galaxy"),
                 env=inst.env())
    assert galaxy.returncode == 0, show(galaxy)
    assert (inst.collection / "MANIFEST.json").is_file(), show(galaxy)
    timings["other extras + collection"] = time.monotonic() - started
    return inst


def test_the_wheel_is_installed_not_linked(installed: Install) -> None:
    proc = run([installed.venv / "bin" / "python", "-c",
                "import failover_engine, failover_engine.lab.emulators.clouddns as c; "
                "print(failover_engine.__file__); print(c.__file__)"], cwd=installed.empty_dir("import"),
               env=installed.env())
    assert proc.returncode == 0, show(proc)
    for line in proc.stdout.split():
        assert Path(line).is_relative_to(installed.venv), line  # site-packages of the new venv, not src/
    assert not list((installed.venv / "lib").glob("python*/site-packages/__editable__*"))


@pytest.mark.parametrize("cloud, extra", [("gcp", "gcp"), ("azure", "azure"), ("terraform", "terraform")])
def test_a_missing_extra_is_one_line_naming_it(installed: Install, cloud: str, extra: str) -> None:
    proc = installed.before[cloud]
    assert proc.returncode == 1, show(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, show(proc)
    assert f"pip install 'failover-engine[{extra}]'" in lines[0], show(proc)


def test_a_missing_collection_is_one_line_saying_how_to_install_it(installed: Install) -> None:
    proc = installed.before["aws"]
    assert proc.returncode == 1, show(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, show(proc)
    assert "resilience.failover is not installed" in lines[0], show(proc)
    assert "ansible-galaxy collection install resilience-failover-" in lines[0], show(proc)
    assert str(installed.home / ".ansible" / "collections") in lines[0], show(proc)  # where it looked


PLAYBOOK = """\
- name: The installed collection against moto
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/resilience.failover.failover:
      strategy_file: "{strategy}"
  tasks:
    - name: Steady state
      resilience.failover.service_info:
        service: shop
      register: steady

    - name: Fail over
      resilience.failover.service_failover:
        service: shop
        action: failover
      register: failover

    - name: State after the failover
      resilience.failover.service_info:
        service: shop
        probe: false
      register: after

    - name: Fail back (within the cooldown, so forced)
      resilience.failover.service_failover:
        service: shop
        action: failback
        force: true
      register: failback

    - name: Results
      ansible.builtin.copy:
        dest: "{results}"
        content: "{{{{ {{'steady': steady, 'failover': failover, 'after': after, 'failback': failback}} | to_json }}}}"
        mode: "0600"
"""


def test_a_playbook_with_the_modules_against_moto(installed: Install) -> None:
    work = installed.empty_dir("playbook")
    results = work / "results.json"
    with Lab(work / "lab", cloud="aws") as lab:
        (work / "play.yml").write_text(PLAYBOOK.format(strategy=lab.strategy_path, results=results))
        (work / "inventory.ini").write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={installed.venv / 'bin' / 'python'}\n")
        env = lab.child_env(installed.env(ANSIBLE_COLLECTIONS_PATH=str(installed.collection.parents[2]),
                                          ANSIBLE_LOCAL_TEMP=str(work / "tmp")))
        proc = run([installed.venv / "bin" / "ansible-playbook", "-i", "inventory.ini", "play.yml"], cwd=work,
                   env=env, timeout=600)
    assert proc.returncode == 0, show(proc)
    data = json.loads(results.read_text())
    assert not data["steady"]["services"][0]["failed_over"]
    assert data["failover"]["changed"] and data["failover"]["status"] == "succeeded", data["failover"]
    assert data["after"]["services"][0]["failed_over"]
    assert data["failback"]["changed"] and data["failback"]["status"] == "succeeded", data["failback"]


def _drill(installed: Install, cloud: str) -> tuple[str, subprocess.CompletedProcess[str], float, Path]:
    work = installed.empty_dir(f"drill-{cloud}")
    started = time.monotonic()
    proc = installed.failover("drill", "--cloud", cloud, cwd=work)
    return cloud, proc, time.monotonic() - started, work


def _check_drill(cloud: str, proc: subprocess.CompletedProcess[str], work: Path, installed: Install) -> str | None:
    """What is wrong with a drill run (None: it succeeded, from the installed collection)."""
    if proc.returncode != 0:
        return show(proc)
    report = work / ".drill" / "drill-report.json"
    if not report.is_file():
        return f"{cloud}: no report\n{show(proc)}"
    data = json.loads(report.read_text())
    if data.get("result") != "succeeded":
        return f"{cloud}: {data.get('result')} {data.get('error')}"
    used = [line for line in proc.stderr.splitlines() if line.startswith("lab: collection")]
    if [line.split()[-1] for line in used] != [str(installed.collection.resolve())]:
        return f"{cloud}: the playbook did not come from the installed collection\n{proc.stderr[-2000:]}"
    return None


def test_drill_on_aws_from_an_empty_directory(installed: Install) -> None:
    before = _tree(installed.collection)
    cloud, proc, took, work = _drill(installed, "aws")
    installed.timings["drill aws"] = took
    assert _check_drill(cloud, proc, work, installed) is None, _check_drill(cloud, proc, work, installed)
    assert "failover: succeeded, RTO" in proc.stdout and "failback: succeeded, RTO" in proc.stdout
    assert sorted(p.name for p in work.iterdir()) == [".drill"]  # everything it wrote is in its run dir
    assert _tree(installed.collection) == before  # nothing written into the installed collection


@pytest.mark.timeout(1800)
def test_drill_on_every_other_cloud_from_an_empty_directory(installed: Install) -> None:
    """gcp, azure, multi (the emulators shipped in the wheel), zone, weighted and terraform, two at
    a time; each from its own empty directory."""
    before = _tree(installed.collection)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda c: _drill(installed, c), OTHER_CLOUDS))
    problems = {}
    for cloud, proc, took, work in runs:
        installed.timings[f"drill {cloud}"] = took
        problem = _check_drill(cloud, proc, work, installed)
        if problem:
            problems[cloud] = problem
    print("timings (s):", {k: round(v, 1) for k, v in installed.timings.items()})
    assert not problems, "\n\n".join(f"=== {c}\n{p}" for c, p in problems.items())
    assert _tree(installed.collection) == before


# --------------------------------------------------------------------------- execution environment
def test_the_execution_environment_files_are_the_roots(installed: Install) -> None:
    """ansible-builder reads meta/execution-environment.yml's files from the collection's root when
    it builds an EE holding the collection, and from meta/ when that file is the definition."""
    for name in ("requirements.txt", "bindep.txt"):
        assert filecmp.cmp(REPO / name, REPO / "meta" / name, shallow=False), f"meta/{name} differs from {name}"
    ee = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    files = [Path(f["src"]).name for f in ee["additional_build_files"]]
    assert files == [installed.tarball.name, installed.wheel.name]  # the versions `make dist` builds
    assert ee["dependencies"]["galaxy"]["collections"] == [
        {"name": f"collections/{installed.tarball.name}", "type": "file"}]


def test_ansible_builder_create_makes_a_context_from_meta_execution_environment(installed: Install,
                                                                                tmp_path: Path) -> None:
    builder = BIN / "ansible-builder"
    if not builder.exists():  # pragma: no cover - a venv made before ansible-builder joined the dev extra
        pytest.skip(f"ansible-builder not found next to {sys.executable}; install '.[dev]'")
    # the checkout's files as `make dist` leaves them: meta/, the requirement files, dist/
    project = tmp_path / "project"
    shutil.copytree(REPO / "meta", project / "meta")
    (project / "dist").mkdir()
    for f in (installed.wheel, installed.tarball):
        shutil.copy(f, project / "dist")
    context = tmp_path / "context"
    proc = run([builder, "create", "-f", project / "meta" / "execution-environment.yml", "-c", context,
                "--output-filename", "Containerfile"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, show(proc)
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == (REPO / "requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (REPO / "bindep.txt").read_text()
    assert (build / "collections" / installed.tarball.name).is_file()
    assert (build / "wheels" / installed.wheel.name).is_file()
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile
    assert "ENV PIP_FIND_LINKS=/build/wheels" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile

    # and an EE that holds the installed collection gets its requirements from it
    intro = run([builder, "introspect", "--sanitize", installed.collection.parents[2]], timeout=120)
    assert intro.returncode == 0, show(intro)
    deps = yaml.safe_load(intro.stdout.split("\n", 1)[1])
    assert any(line.startswith("failover-engine[") for line in deps["python"]), intro.stdout
    assert any(line.startswith("ca-certificates") for line in deps["system"]), intro.stdout
