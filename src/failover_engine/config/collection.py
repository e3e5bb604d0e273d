"""Where the collection resilience.failover and its playbooks are."""
from __future__ import annotations

import shutil
from pathlib import Path


def find_repo_root(start: Path | None = None) -> Path | None:
    """The checkout holding playbooks/drill.yml and ansible.cfg (cwd or one of its parents)."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "playbooks" / "drill.yml").is_file() and (d / "ansible.cfg").is_file():
            return d
    return None


def link_collection(root: Path) -> Path:
    """Make the checkout visible as resilience.failover under ./collections (idempotent)."""
    ns = root / "collections" / "ansible_collections" / "resilience"
    ns.mkdir(parents=True, exist_ok=True)
    link = ns / "failover"
    if not link.is_symlink():
        if link.exists():
            shutil.rmtree(link)
        link.symlink_to(Path("..", "..", ".."), target_is_directory=True)
    return link
