"""Where the collection resilience.failover and its playbooks are.

``failover drill`` and the MCP server run the collection's playbooks. They find it, in this order:

1. the checkout of failover-engine holding the working directory (its root is the collection);
2. an installed collection: ``ansible_collections/resilience/failover`` under each directory of
   ``ANSIBLE_COLLECTIONS_PATH`` (or the older ``ANSIBLE_COLLECTIONS_PATHS``), then Ansible's own
   collection paths (its ``collections_path`` setting, by default ``~/.ansible/collections`` and
   ``/usr/share/ansible/collections``, as ``ansible-galaxy collection list`` searches them), then
   ``sys.path`` (Ansible scans it too);
3. the checkout holding this package, when it is an editable install.

The collection found is never written to: Ansible is pointed at it through a collections path
(:func:`collections_path_for`), which for a checkout is a link made in a scratch directory.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from failover_engine import __version__
from failover_engine.core.errors import FailoverError

NAMESPACE, NAME = "resilience", "failover"
DEFAULT_PATHS = ("~/.ansible/collections", "/usr/share/ansible/collections")


class CollectionNotFound(FailoverError):
    """The collection resilience.failover (with the playbook asked for) is nowhere to be found."""


@dataclass(frozen=True)
class Collection:
    """A copy of resilience.failover: ``root`` holds playbooks/, plugins/, meta/.

    ``search_path`` is the directory Ansible finds it in (``search_path/ansible_collections/
    resilience/failover`` is ``root``); None for a checkout, whose root is not laid out that way.
    """

    root: Path
    search_path: Path | None = None

    @property
    def checkout(self) -> bool:
        return self.search_path is None

    def playbook(self, name: str) -> Path:
        return self.root / "playbooks" / name


def find_repo_root(start: Path | None = None) -> Path | None:
    """The checkout holding playbooks/drill.yml and ansible.cfg (cwd or one of its parents)."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "playbooks" / "drill.yml").is_file() and (d / "ansible.cfg").is_file():
            return d
    return None


def link_collection(root: Path) -> Path:
    """Make the checkout visible as resilience.failover under ./collections (idempotent).

    What ``make collections`` does, for the checkout's own ansible.cfg; the drill and the MCP
    server do not need it (:func:`collections_path_for`)."""
    ns = root / "collections" / "ansible_collections" / "resilience"
    ns.mkdir(parents=True, exist_ok=True)
    link = ns / "failover"
    if not link.is_symlink():
        if link.exists():
            shutil.rmtree(link)
        link.symlink_to(Path("..", "..", ".."), target_is_directory=True)
    return link


def _ansible_configured_paths() -> list[str]:
    """Ansible's collections_path setting (ansible.cfg, its environment variable, its default)."""
    try:
        from ansible import constants

        return [str(p) for p in constants.COLLECTIONS_PATHS or []]
    except Exception:  # ansible-core not installed, or a broken ansible.cfg: its defaults
        return list(DEFAULT_PATHS)


def collection_search_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The directories searched for ``ansible_collections/resilience/failover``, in order, once each."""
    env = os.environ if environ is None else environ
    raw: list[str] = []
    for var in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        raw += [p for p in env.get(var, "").split(os.pathsep) if p]
    raw += _ansible_configured_paths()
    raw += [p for p in sys.path if p and Path(p, "ansible_collections").is_dir()]
    seen: list[Path] = []
    for p in raw:
        path = Path(os.path.expandvars(p)).expanduser()
        if path.name == "ansible_collections":  # Ansible accepts the ansible_collections folder itself
            path = path.parent
        if path not in seen:
            seen.append(path)
    return seen


def find_collection(playbook: str = "drill.yml", *, cwd: Path | None = None,
                    environ: Mapping[str, str] | None = None) -> Collection:
    """The collection to run ``playbooks/<playbook>`` from (the module docstring says the order).

    Raises :class:`CollectionNotFound` with one line saying where it looked and how to install it."""
    root = find_repo_root(cwd)
    if root is not None and (root / "playbooks" / playbook).is_file():
        return Collection(root)
    paths = collection_search_paths(environ)
    without_playbook = []
    for path in paths:
        candidate = path / "ansible_collections" / NAMESPACE / NAME
        if (candidate / "playbooks" / playbook).is_file():
            return Collection(candidate.resolve(), path.resolve())
        if candidate.is_dir():
            without_playbook.append(str(candidate))
    root = find_repo_root(Path(__file__).resolve().parent)
    if root is not None and (root / "playbooks" / playbook).is_file():
        return Collection(root)
    found = f"; found without playbooks/{playbook}: {', '.join(without_playbook)}" if without_playbook else ""
    raise CollectionNotFound(
        f"the Ansible collection {NAMESPACE}.{NAME} is not installed (searched {os.pathsep.join(map(str, paths))}"
        f"{found}): install it with 'ansible-galaxy collection install {NAMESPACE}-{NAME}-{__version__}.tar.gz' "
        "(make dist builds it into dist/ of a checkout), or run from a checkout of failover-engine")


def collections_path_for(collection: Collection, scratch: Path) -> Path:
    """A directory to give Ansible as its collections path so that resilience.failover is
    ``collection.root``. An installed collection's own search path; for a checkout, a link to it
    made under ``scratch`` (the checkout itself is not written to)."""
    if collection.search_path is not None:
        return collection.search_path
    link = scratch / "collections" / "ansible_collections" / NAMESPACE / NAME
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() != collection.root.resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(collection.root, target_is_directory=True)
    return scratch / "collections"


def write_ansible_config(path: Path, collection: Collection, collections_path: Path, local_tmp: Path) -> Path:
    """Write an ansible.cfg at ``path`` for running the collection's playbooks, and nothing of the
    checkout's or the working directory's: the collections path, the collection's inventory,
    temporary files in ``local_tmp``."""
    inventory = collection.root / "playbooks" / "inventory.yml"
    path.write_text("[defaults]\n"
                    f"collections_path = {collections_path}\n"
                    + (f"inventory = {inventory}\n" if inventory.is_file() else "")
                    + f"local_tmp = {local_tmp}\n"
                    "retry_files_enabled = False\n"
                    "interpreter_python = auto_silent\n"
                    "callback_result_format = yaml\n", encoding="utf-8")
    return path
