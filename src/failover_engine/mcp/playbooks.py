"""Run the collection's own playbooks through ansible-runner, and nothing else.

* An allowlist maps an operation to one playbook of the collection; a client names operations,
  never paths, and the extra vars are built here from validated input.
* Each run gets a fresh private data dir (``home/runs/<run id>``) with env files suppressed.
* Secrets never reach the run's recorded environment: ansible-runner writes the whole child
  environment to ``artifacts/<id>/command``, so variables that look secret (keys, tokens,
  passwords, credentials) are taken out of the child's environment and handed over by
  reference: a 0600 JSON file outside the run dir, named by FAILOVER_SECRETS_FILE, read by the
  modules (module_utils.failover_common.load_secrets_file) and deleted when the run ends.
* Task events become progress messages; the failover module's result becomes the outcome.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..drill import find_repo_root, link_collection

# operation -> playbook of the collection (the allowlist)
ALLOWED = {"failover": "failover.yml", "failback": "failback.yml", "region": "region_failover.yml"}
# modules whose result is the run's outcome
RESULT_MODULES = ("service_failover", "region_failover")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|AUTHORIZATION|API_?KEY|PRIVATE|ACCESS_KEY)", re.I)
# variables of the server's environment a playbook run never inherits (they would steer it)
DROPPED = ("ANSIBLE_", "FAILOVER_STRATEGY", "PYTHONSTARTUP", "PYTHONINSPECT")

Progress = Callable[[str], None]


class PlaybookError(Exception):
    pass


@dataclass
class PlaybookRun:
    playbook: str
    run_id: str
    private_data_dir: str
    rc: int | None = None
    status: str = "unknown"  # ansible-runner's: successful, failed, timeout, canceled
    duration_s: float = 0.0
    result: dict[str, Any] | None = None  # the failover module's result
    failed_tasks: list[str] = field(default_factory=list)
    stdout_tail: list[str] = field(default_factory=list)


def collection_root() -> Path:
    """The checkout (or installed collection) holding playbooks/ and ansible.cfg."""
    here = Path(__file__).resolve()
    for start in (here.parent, Path.cwd()):
        root = find_repo_root(start)
        if root is not None:
            return root
    raise PlaybookError("cannot find the resilience.failover playbooks (run the server from a checkout of "
                        "failover-engine, or give --collection-root)")


def split_environment(environ: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret): what a run may inherit, and what goes by reference only."""
    plain, secret = {}, {}
    for k, v in environ.items():
        if k.startswith(DROPPED):
            continue
        (secret if SECRET_NAME.search(k) else plain)[k] = v
    return plain, secret


class PlaybookRunner:
    def __init__(self, home: Path, *, root: Path | None = None, timeout: int = 900,
                 environ: dict[str, str] | None = None):
        self.home = Path(home)
        self.root = (root or collection_root()).resolve()
        self.timeout = timeout
        self._environ = environ  # None: os.environ at each run
        for name in ALLOWED.values():
            if not (self.root / "playbooks" / name).is_file():
                raise PlaybookError(f"playbook {name} is missing under {self.root / 'playbooks'}")

    def run(self, operation: str, extravars: dict[str, Any], *, progress: Progress | None = None) -> PlaybookRun:
        """Run the allowlisted playbook of ``operation`` with ``extravars``; blocks until done."""
        import ansible_runner

        if operation not in ALLOWED:
            raise PlaybookError(f"operation {operation!r} is not allowed (allowed: {', '.join(sorted(ALLOWED))})")
        progress = progress or (lambda msg: None)
        link_collection(self.root)
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        pdd = self.home / "runs" / run_id
        pdd.mkdir(parents=True)
        os.chmod(pdd, 0o700)
        run = PlaybookRun(ALLOWED[operation], run_id, str(pdd))
        plain, secret = split_environment(dict(os.environ if self._environ is None else self._environ))
        secrets_dir = Path(tempfile.mkdtemp(prefix="failover-mcp-secrets-"))
        secrets_file = secrets_dir / "secrets.json"
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(secret, fh)
        bindir = str(Path(sys.executable).parent)
        env = {**plain,
               "PATH": bindir + os.pathsep + plain.get("PATH", os.defpath),
               "ANSIBLE_CONFIG": str(self.root / "ansible.cfg"),
               "ANSIBLE_COLLECTIONS_PATH": str(self.root / "collections"),
               "ANSIBLE_LOCAL_TEMP": str(pdd / "tmp"), "ANSIBLE_REMOTE_TMP": str(pdd / "tmp"),
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "FAILOVER_SECRETS_FILE": str(secrets_file)}
        handler = _EventHandler(progress, run)
        started = time.monotonic()
        try:
            r = ansible_runner.interface.init_runner(
                private_data_dir=str(pdd), ident="run", project_dir=str(self.root / "playbooks"),
                playbook=ALLOWED[operation], inventory=str(self.root / "playbooks" / "inventory.yml"),
                extravars=extravars, suppress_env_files=True, quiet=True, timeout=self.timeout,
                event_handler=handler, json_mode=False)
            # ansible-runner seeds the child's environment with the whole server environment and
            # records it in artifacts/<id>/command: keep only what it added itself (its event
            # callback settings), then the filtered environment, before the run starts
            added = {k: v for k, v in r.config.env.items() if os.environ.get(k) != v}
            r.config.env = {**plain, **added, **env}
            r.run()
            run.rc, run.status = r.rc, r.status
        finally:
            shutil.rmtree(secrets_dir, ignore_errors=True)
            run.duration_s = round(time.monotonic() - started, 3)
        return run


class _EventHandler:
    """ansible-runner event -> progress message; keeps the failover module's result."""

    def __init__(self, progress: Progress, run: PlaybookRun):
        self.progress = progress
        self.run = run
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        task = data.get("task") or ""
        action = str(data.get("resolved_action") or data.get("task_action") or "")
        try:
            if kind == "playbook_on_task_start":
                self.progress(f"task started: {task}")
            elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                res = data.get("res") or {}
                if action.endswith(RESULT_MODULES):
                    self.run.result = {k: v for k, v in res.items() if k not in ("invocation", "_ansible_no_log")}
                if kind != "runner_on_ok" and not data.get("ignore_errors"):
                    self.run.failed_tasks.append(f"{task}: {res.get('msg', kind)}")
                self.progress(f"task {'ok' if kind == 'runner_on_ok' else 'FAILED'}: {task}"
                              + (f" ({res['status']})" if isinstance(res.get("status"), str) else ""))
            elif kind == "playbook_on_stats":
                self.progress("playbook finished")
            stdout = event.get("stdout")
            if stdout:
                self.run.stdout_tail = (self.run.stdout_tail + stdout.splitlines())[-40:]
        except Exception:  # progress must never break the run
            pass
        return True
