"""The repo as the Ansible collection resilience.failover: build, docs, action group, lint.

Real tools only: ``ansible-galaxy collection build``/``install`` and ``ansible-doc`` from this
interpreter's venv. The argument spec each module really uses is captured by running the
module's ``main()`` with ``AnsibleModule`` replaced by a stand-in that records its arguments
(the way ``ansible-test sanity --test validate-modules`` does it; ansible-test itself needs
the network to bootstrap).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover_engine.config.collection import link_collection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
NAMESPACE, NAME = "resilience", "failover"
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FQCNS = [f"{NAMESPACE}.{NAME}.{m}" for m in MODULES]

if not (BIN / "ansible-galaxy").exists():  # pragma: no cover - environment problem
    pytest.skip(f"ansible-core not installed next to {sys.executable}", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def collection_link() -> None:
    link_collection(REPO)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ansible-tmp").mkdir()
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run(cmd: list[str], env: dict[str, str], cwd: Path = REPO, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(map(str, proc.args))}\nrc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


# --------------------------------------------------------------------------- build and install
def test_built_collection_holds_the_collection_and_nothing_of_the_library(tmp_path: Path,
                                                                          env: dict[str, str]) -> None:
    out = tmp_path / "dist"
    build = run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out)], env)
    assert build.returncode == 0, show(build)
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    tarball = out / f"{NAMESPACE}-{NAME}-{galaxy['version']}.tar.gz"
    assert tarball.is_file(), sorted(p.name for p in out.iterdir())

    with tarfile.open(tarball) as tar:
        names = {m.name.removeprefix("./").rstrip("/") for m in tar.getmembers()}
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]

    expected = {f"plugins/modules/{m}.py" for m in MODULES} | {
        "plugins/module_utils/failover_common.py", "plugins/doc_fragments/strategy.py",
        "meta/runtime.yml", "playbooks/drill.yml", "playbooks/failover.yml", "playbooks/failback.yml",
        "playbooks/inventory.yml", "MANIFEST.json", "FILES.json", "README.md"}
    assert expected <= names, sorted(expected - names)
    excluded = ("src", "tests", ".venv", "collections/ansible_collections", "bench", ".drill", ".git",
                ".ansible", ".pytest_cache", ".failover-state", "providers", "build")
    leaked = sorted(n for n in names if any(n == e or n.startswith(e + "/") for e in excluded)
                    or "__pycache__" in n or n.endswith((".pyc", ".tar.gz", ".egg-info")))
    assert not leaked, leaked
    # nothing but what a user of the collection needs (galaxy.yml's build_ignore): no development
    # files (.gitignore, .ansible-lint, ansible.cfg, collections/, Makefile, pyproject.toml),
    # caches, decisions, examples or benchmark figures
    user_files = ("plugins/", "playbooks/", "meta/", "changelogs/changelog.yaml", "changelogs/config.yaml",
                  "docs/architecture.md", "docs/mcp.md", "docs/monitoring.md", "docs/terraform.md",
                  "docs/drill-report.md", "docs/validation.md")
    top_files = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.rst", "requirements.txt",
                 "bindep.txt", "plugins", "playbooks", "meta", "changelogs", "docs"}
    clutter = sorted(n for n in names if n not in top_files and not n.startswith(user_files))
    assert not clutter, clutter
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (NAMESPACE, NAME, galaxy["version"])

    # the artifact installs, and ansible finds its modules where it was installed
    # (only there: the repo's ./collections link would otherwise count as "already installed")
    installed = tmp_path / "installed"
    only_installed = {**env, "ANSIBLE_COLLECTIONS_PATH": str(installed)}
    inst = run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(installed)],
               only_installed, cwd=tmp_path)
    assert inst.returncode == 0, show(inst)
    assert (installed / "ansible_collections" / NAMESPACE / NAME / "MANIFEST.json").is_file(), show(inst)
    listing = run([str(BIN / "ansible-doc"), "-t", "module", "-l", f"{NAMESPACE}.{NAME}"],
                  only_installed, cwd=tmp_path)
    assert listing.returncode == 0, show(listing)
    assert {line.split()[0] for line in listing.stdout.splitlines() if line.strip()} == set(FQCNS)


# --------------------------------------------------------------------------- documentation
@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``ansible-doc --json`` of every module, in one run."""
    tmp = tmp_path_factory.mktemp("doc")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp),
           "ANSIBLE_HOME": str(tmp / "home"), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = run([str(BIN / "ansible-doc"), "--json", *FQCNS], env)
    assert proc.returncode == 0, show(proc)
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, show(proc)
    data = json.loads(proc.stdout)
    assert sorted(data) == sorted(FQCNS)
    return data


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, Any]]:
    """The argument spec (and other AnsibleModule arguments) each module's main() really passes."""
    script = textwrap.dedent("""\
        import importlib, json, sys
        sys.path.insert(0, "collections")
        from ansible.module_utils import basic

        class Captured(Exception):
            pass

        def capture(self, argument_spec=None, **kwargs):
            raise Captured(argument_spec, kwargs)

        basic.AnsibleModule.__init__ = capture
        out = {}
        for name in sys.argv[1:]:
            mod = importlib.import_module("ansible_collections.resilience.failover.plugins.modules." + name)
            try:
                mod.main()
            except Captured as exc:
                spec, kwargs = exc.args
                out[name] = {"argument_spec": spec, **kwargs}
            else:
                raise SystemExit(name + ": main() did not create an AnsibleModule")
        print(json.dumps(out, default=lambda o: o.__name__))  # a fallback names its function
        """)
    proc = subprocess.run([sys.executable, "-c", script, *MODULES], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, show(proc)
    return json.loads(proc.stdout)


def test_ansible_doc_renders_every_module(env: dict[str, str]) -> None:
    proc = run([str(BIN / "ansible-doc"), *FQCNS], env)
    assert proc.returncode == 0, show(proc)
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, show(proc)
    for fqcn in FQCNS:
        assert f"> MODULE {fqcn}" in proc.stdout, show(proc)
    assert proc.stdout.count("EXAMPLES:") == len(FQCNS)
    assert proc.stdout.count("RETURN VALUES:") == len(FQCNS)


@pytest.mark.parametrize("module", MODULES)
def test_every_option_of_the_argument_spec_is_documented_as_it_is(module: str, docs: dict[str, Any],
                                                                  specs: dict[str, Any]) -> None:
    doc = docs[f"{NAMESPACE}.{NAME}.{module}"]["doc"]
    spec = specs[module]["argument_spec"]
    options = doc["options"]
    assert doc["module"] == module
    assert doc["short_description"]
    assert sorted(options) == sorted(spec), "documented options differ from the argument_spec"
    assert spec["strategy_file"].get("fallback") == ["env_fallback", ["FAILOVER_STRATEGY"]]
    for name, arg in spec.items():
        opt = options[name]
        where = f"{module}.{name}"
        assert opt.get("description"), f"{where}: no description"
        assert opt.get("type", "str") == arg.get("type", "str"), where
        assert bool(opt.get("required", False)) == bool(arg.get("required", False)), where
        assert opt.get("default") == arg.get("default"), where  # 60 == 60.0 holds
        assert opt.get("choices") == arg.get("choices"), where
        assert opt.get("elements") == arg.get("elements"), where
    assert specs[module].get("supports_check_mode") is True, f"{module} must support check mode"


def _is_text(value: Any) -> bool:
    """A doc text field: a string or a list of strings (YAML turns `a: b` in a plain item into a dict)."""
    return isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)


@pytest.mark.parametrize("module", MODULES)
def test_doc_text_fields_are_text(module: str, docs: dict[str, Any]) -> None:
    doc = docs[f"{NAMESPACE}.{NAME}.{module}"]["doc"]
    for field in ("short_description", "description", "notes", "requirements", "author"):
        if field in doc:
            assert _is_text(doc[field]), f"{module}: {field} holds {doc[field]!r}"
    for name, opt in doc["options"].items():
        assert _is_text(opt["description"]), f"{module}.{name}: description holds {opt['description']!r}"


@pytest.mark.parametrize("module", MODULES)
def test_examples_use_the_module_with_documented_options(module: str, docs: dict[str, Any]) -> None:
    fqcn = f"{NAMESPACE}.{NAME}.{module}"
    entry = docs[fqcn]
    examples = yaml.safe_load(entry["examples"])
    assert isinstance(examples, list) and examples, "EXAMPLES is not a YAML list of tasks"
    used = [task[fqcn] for task in examples if fqcn in task]
    assert used, f"no example uses {fqcn}"
    for args in used:
        unknown = set(args) - set(entry["doc"]["options"])
        assert not unknown, f"example uses undocumented options {sorted(unknown)}"
        assert "service" in args or not entry["doc"]["options"].get("service", {}).get("required")
    returned = entry["return"]
    assert isinstance(returned, dict) and returned, "RETURN is empty or not a mapping"
    for key, value in returned.items():
        assert value.get("description") and value.get("returned") and value.get("type"), f"RETURN {key}"
        assert key not in ("results", "failed", "changed", "skipped", "invocation"), \
            f"RETURN {key!r}: Ansible reserves this key (a module's {key!r} is renamed or dropped)"


# --------------------------------------------------------------------------- meta/runtime.yml
def test_action_group_lists_exactly_the_modules() -> None:
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"][NAME]) == MODULES


def test_runtime_requires_an_ansible_this_venv_satisfies() -> None:
    from ansible.module_utils.compat.version import LooseVersion
    from ansible.release import __version__

    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    spec = runtime["requires_ansible"]
    assert spec.startswith(">="), spec
    assert LooseVersion(__version__) >= LooseVersion(spec.removeprefix(">=").strip())


# --------------------------------------------------------------------------- lint
def test_playbooks_pass_the_syntax_check(env: dict[str, str]) -> None:
    playbooks = sorted(str(p.relative_to(REPO)) for p in (REPO / "playbooks").glob("*.yml") if p.name != "inventory.yml")
    assert playbooks
    proc = run([str(BIN / "ansible-playbook"), "--syntax-check", *playbooks], env)
    assert proc.returncode == 0, show(proc)
    assert "WARNING" not in proc.stderr, show(proc)


def test_ansible_lint_passes_on_the_playbooks(env: dict[str, str]) -> None:
    lint = BIN / "ansible-lint"
    if not lint.exists():
        pytest.skip(f"ansible-lint is not installed in {BIN} (it is not a dependency; pip install ansible-lint)")
    proc = run([str(lint), "--offline", "playbooks/"], env, timeout=120)
    assert proc.returncode == 0, show(proc)


def test_ansible_doc_renders_the_lookup(env: dict[str, str]) -> None:
    fqcn = f"{NAMESPACE}.{NAME}.terraform_outputs"
    proc = run([str(BIN / "ansible-doc"), "-t", "lookup", "--json", fqcn], env)
    assert proc.returncode == 0, show(proc)
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, show(proc)
    doc = json.loads(proc.stdout)[fqcn]
    assert doc["doc"]["short_description"] and doc["examples"] and doc["return"]
    assert set(doc["doc"]["options"]) == {"_terms", "output", "service", "key", "runner"}
    assert all(o.get("description") for o in doc["doc"]["options"].values())
