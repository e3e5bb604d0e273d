"""The documentation of every plugin parses into what it says: no entry without a description.

A YAML slip in DOCUMENTATION or RETURN (an unquoted ``: `` or comma in a description, a wrong
indent) does not fail ``ansible-doc``: it turns the rest of the line into a key whose value is
``null`` (the ``service_info`` RETURN once printed ``per routing binding.: null``). Here every
option, sub-option, return value and ``contains`` entry of every module and lookup, as
``ansible-doc --json`` reads it, must be a mapping with a description.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from failover_engine.config.collection import link_collection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv python is a symlink)
PREFIX = "resilience.failover."
FIELD = re.compile(r"[a-z][a-z0-9_]*")  # description, type, elements, suboptions, sample, ...
PLUGINS = {
    kind: sorted(PREFIX + p.stem for p in (REPO / "plugins" / folder).glob("*.py") if p.stem != "__init__")
    for kind, folder in (("module", "modules"), ("lookup", "lookup"))
}

if not (BIN / "ansible-doc").exists():  # pragma: no cover - environment problem
    pytest.skip(f"ansible-core not installed next to {sys.executable}", allow_module_level=True)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``ansible-doc --json`` of every plugin, one run per plugin type."""
    link_collection(REPO)
    tmp = tmp_path_factory.mktemp("doc")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp),
           "ANSIBLE_HOME": str(tmp / "home"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    found: dict[str, dict[str, Any]] = {}
    for kind, names in PLUGINS.items():
        proc = subprocess.run([str(BIN / "ansible-doc"), "-t", kind, "--json", *names], check=False, cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=90)
        assert proc.returncode == 0, proc.stderr
        assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
        found.update(json.loads(proc.stdout))
    return found


def entries(tree: Any, where: str, nested: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of every entry of an options or return mapping, its nested ones included."""
    assert isinstance(tree, dict), f"{where}: expected a mapping, got {tree!r}"
    for key, value in tree.items():
        path = f"{where}.{key}"
        yield path, value
        if isinstance(value, dict) and isinstance(value.get(nested), dict):
            yield from entries(value[nested], f"{path}.{nested}", nested)


def test_every_plugin_is_documented(docs: dict[str, dict[str, Any]]) -> None:
    assert sorted(docs) == sorted(name for names in PLUGINS.values() for name in names)
    assert len(PLUGINS["module"]) >= 4 and PLUGINS["lookup"]


@pytest.mark.parametrize("name", [name for names in PLUGINS.values() for name in names])
def test_every_option_and_return_value_is_a_described_entry(name: str, docs: dict[str, dict[str, Any]]) -> None:
    doc = docs[name]
    found = [*entries(doc["doc"].get("options") or {}, "options", "suboptions"),
             *entries(doc.get("return") or {}, "RETURN", "contains")]
    assert found, f"{name}: no options and no return values"
    broken = [path for path, value in found if not (isinstance(value, dict) and value.get("description"))]
    assert not broken, f"{name}: entries that are not a described mapping (a YAML slip?): {broken}"
    # a slip inside an entry's flow mapping adds a key like "per routing binding." with no value
    slips = [f"{path}[{key!r}]" for path, value in found for key, field in value.items()
             if not FIELD.fullmatch(key) or (field is None and key not in ("default", "sample"))]
    assert not slips, f"{name}: fields that are no documentation field or are null (a YAML slip?): {slips}"
    assert all(isinstance(a, str) and a.endswith(")") and "(@" in a for a in doc["doc"]["author"]), \
        f"{name}: author lines must read 'Name (@handle)': {doc['doc']['author']}"
