"""Private files and directories of the engine's state: created 0700/0600, tightened when they
exist with group or other bits."""
from __future__ import annotations

import os
import stat
from pathlib import Path


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | Path) -> Path:
    """``path`` as a directory only this user can enter: created 0700 (with any missing parents,
    0700 too), or tightened when it exists with group or other bits (and belongs to this user)."""
    p = Path(path)
    missing: list[Path] = []
    q = p
    while not q.exists() and q != q.parent:
        missing.append(q)
        q = q.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass  # a concurrent writer made it: tightened below like any existing one
        else:
            os.chmod(d, PRIVATE_DIR)  # exact, whatever the umask
    tighten(p)
    return p


def tighten(path: str | Path, fd: int | None = None) -> None:
    """Drop the group and other bits of an existing file or directory of this user's."""
    try:
        st = os.fstat(fd) if fd is not None else os.stat(path)
    except OSError:
        return
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose and st.st_uid == os.getuid():
        mode = stat.S_IMODE(st.st_mode) & ~0o077
        try:
            os.fchmod(fd, mode) if fd is not None else os.chmod(path, mode)
        except OSError:
            pass  # a file system without modes: nothing to tighten
