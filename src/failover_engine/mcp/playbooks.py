"""Run the collection's own playbooks through ansible-runner, and nothing else.

* An allowlist maps an operation to one playbook of the collection; a client names operations,
  never paths.
* **No client value is ever templated.** Ansible templates extra vars, so a client's string in
  one (a region ``{{ lookup('pipe', ...) }}``) would run on this host. The run's request (the
  operation, service or region, action, target, force, the confirmed plan fingerprints and the
  strategy file) is written as a 0600 JSON file in the run's private dir; the only extra var is
  that file's path, made here and marked ``!unsafe``; the modules read the request from the file
  (their ``request_file`` option), as plain data.
* Each run gets a fresh private data dir (``home/runs/<run id>``, 0700) with env files suppressed.
* **The run's environment is an allowlist**: what Ansible needs (PATH, HOME, LANG/LC_*, TMPDIR,
  the venv, CA bundles, NO_PROXY) and the variables of the cloud families the strategy's
  connections use (AWS_* for Route 53 and the other AWS adapters, GOOGLE_*/CLOUDSDK_* for Cloud
  DNS, AZURE_* and each connection's ``token_env_var`` for Traffic Manager). Nothing else of the
  server's environment reaches the run. ansible-runner records the child's whole environment in
  ``artifacts/<id>/command``, so every cloud variable (and proxy settings, which may carry a
  password) goes by reference: a 0600 JSON file outside the run dir, named by
  FAILOVER_SECRETS_FILE, read by the modules (module_utils.failover_common.load_secrets_file) and
  deleted when the run ends.
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

from failover_engine.config.collection import (
    NAME, NAMESPACE, Collection, collections_path_for, find_collection, write_ansible_config)
from failover_engine.core.errors import FailoverError

# operation -> playbook of the collection (the allowlist)
ALLOWED = {"failover": "failover.yml", "failback": "failback.yml", "region": "region_failover.yml"}
# modules whose result is the run's outcome
RESULT_MODULES = ("service_failover", "region_failover")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|AUTHORIZATION|API_?KEY|PRIVATE|ACCESS_KEY)", re.I)
# what Ansible and the modules need of the server's environment (names, and name prefixes)
ANSIBLE_NEEDS = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "USER", "LOGNAME",
                 "VIRTUAL_ENV", "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "NO_PROXY", "no_proxy")
ANSIBLE_NEEDS_PREFIXES = ("LC_",)
# proxies may carry a user and password: by reference
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
# cloud family -> variables its SDK reads (name prefixes, or whole names)
FAMILY_VARIABLES = {
    "aws": ("AWS_",),
    "gcp": ("GOOGLE_", "CLOUDSDK_"),
    "azure": ("AZURE_", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
              "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"),
}
ADAPTER_FAMILY = {"route53": "aws", "zonalshift": "aws", "elb": "aws", "elbv2": "aws", "clouddns": "gcp",
                  "trafficmanager": "azure"}


def split_environment(environ: dict[str, str], *, families: tuple[str, ...] | list[str] = (),
                      token_vars: tuple[str, ...] | list[str] = ()) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, by_reference): what a run may see in its recorded environment, and what it gets
    only through the secrets file. Everything else of ``environ`` is left out."""
    plain, secret = {}, {}
    cloud = tuple(p for f in families for p in FAMILY_VARIABLES.get(f, ()))
    for k, v in environ.items():
        if k in token_vars or k in PROXIES or (cloud and k.startswith(cloud)):
            secret[k] = v
        elif k in ANSIBLE_NEEDS or k.startswith(ANSIBLE_NEEDS_PREFIXES):
            (secret if SECRET_NAME.search(k) else plain)[k] = v
    return plain, secret


def credential_needs(strategy: Any) -> tuple[list[str], list[str]]:
    """(cloud families, token variables) of a strategy: its connections' types, its routing's
    adapters (a binding without a connection uses the adapter's default credentials), and
    every Traffic Manager connection's token_env_var."""
    families = {ADAPTER_FAMILY.get(c.type) for c in strategy.connections.values()}
    families |= {ADAPTER_FAMILY.get(b.adapter) for svc in strategy.services.values() for b in svc.routing}
    tokens = {c.token_env_var for c in strategy.connections.values() if getattr(c, "token_env_var", None)}
    return sorted(f for f in families if f), sorted(tokens)


def write_private(path: Path, text: str) -> None:
    """Create ``path`` (0600, never an existing file) holding ``text``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


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


def find_playbooks(root: Path | None = None) -> Collection:
    """The collection whose playbooks the server runs: ``root`` (--collection-root: a checkout or
    an installed collection's directory), else the one :func:`find_collection` finds."""
    if root is not None:
        root = root.resolve()
        installed = root.parts[-3:] == ("ansible_collections", NAMESPACE, NAME)
        return Collection(root, root.parents[2] if installed else None)
    try:
        return find_collection(ALLOWED["failover"])
    except FailoverError as exc:
        raise PlaybookError(f"{exc}; or give --collection-root") from None


class PlaybookRunner:
    def __init__(self, home: Path, *, root: Path | None = None, timeout: int = 900,
                 environ: dict[str, str] | None = None):
        self.home = Path(home)
        self.collection = find_playbooks(root)
        self.root = self.collection.root
        self.timeout = timeout
        self._environ = environ  # None: os.environ at each run
        for name in ALLOWED.values():
            if not (self.root / "playbooks" / name).is_file():
                raise PlaybookError(f"playbook {name} is missing under {self.root / 'playbooks'}")

    def run(self, operation: str, request: dict[str, Any], *, progress: Progress | None = None,
            families: list[str] | tuple[str, ...] = (), token_vars: list[str] | tuple[str, ...] = ()) -> PlaybookRun:
        """Run the allowlisted playbook of ``operation`` for ``request`` (plain data: service or
        region, action, target, force, expected plan(s), strategy_file); blocks until done.
        ``families`` and ``token_vars`` name the credentials the run may have (credential_needs)."""
        import ansible_runner

        if operation not in ALLOWED:
            raise PlaybookError(f"operation {operation!r} is not allowed (allowed: {', '.join(sorted(ALLOWED))})")
        progress = progress or (lambda msg: None)
        # the collection is never written to: a checkout is linked under home/collections
        collections_path = collections_path_for(self.collection, self.home)
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        runs = self.home / "runs"
        runs.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(runs, 0o700)
        pdd = runs / run_id
        pdd.mkdir(mode=0o700)
        os.chmod(pdd, 0o700)
        run = PlaybookRun(ALLOWED[operation], run_id, str(pdd))
        request_file = pdd / "request.json"
        write_private(request_file, json.dumps({"operation": operation, **request}, sort_keys=True))
        # the only extra var: a path made here, and marked unsafe all the same
        extravars = pdd / "extravars.yml"
        write_private(extravars, f"request_file: !unsafe {json.dumps(str(request_file))}\n")
        plain, secret = split_environment(dict(os.environ if self._environ is None else self._environ),
                                          families=families, token_vars=token_vars)
        secrets_dir = Path(tempfile.mkdtemp(prefix="failover-mcp-secrets-"))
        secrets_file = secrets_dir / "secrets.json"
        write_private(secrets_file, json.dumps(secret))
        bindir = str(Path(sys.executable).parent)
        env = {**plain,
               "PATH": bindir + os.pathsep + plain.get("PATH", os.defpath),
               "ANSIBLE_CONFIG": str(write_ansible_config(pdd / "ansible.cfg", self.collection, collections_path,
                                                          pdd / "tmp")),
               "ANSIBLE_COLLECTIONS_PATH": str(collections_path),
               "ANSIBLE_LOCAL_TEMP": str(pdd / "tmp"), "ANSIBLE_REMOTE_TMP": str(pdd / "tmp"),
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "FAILOVER_SECRETS_FILE": str(secrets_file)}
        handler = _EventHandler(progress, run)
        started = time.monotonic()
        try:
            r = ansible_runner.interface.init_runner(
                private_data_dir=str(pdd), ident="run", project_dir=str(self.root / "playbooks"),
                playbook=ALLOWED[operation], inventory=str(self.root / "playbooks" / "inventory.yml"),
                extravars=str(extravars), suppress_env_files=True, quiet=True, timeout=self.timeout,
                event_handler=handler, json_mode=False)
            # ansible-runner seeds the child's environment with the whole server environment and
            # records it in artifacts/<id>/command: keep only what it added itself (its event
            # callback settings), then the allowlisted environment, before the run starts
            added = {k: v for k, v in r.config.env.items() if os.environ.get(k) != v and k not in secret}
            r.config.env = {**added, **env}
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
