"""`failover drill` (what `make drill` runs): the lab, the collection's playbooks/drill.yml, then a summary.

Starts the local lab for one cloud (``--cloud``: aws = moto for Route 53, gcp = the Cloud DNS
emulator, azure = the Traffic Manager emulator, multi = one service steered by all three; two
local HTTP servers play the regions; zone = the ARC zonal shift emulator and three local servers
playing the zones of an active-active service), runs the drill playbook (playbooks/drill.yml, or
playbooks/zone_drill.yml for the zone drill) with ansible-playbook against it, prints a readable
summary (phases, RTO, records before/after) and the path of the JSON report, and stops everything
it started, also on failure or Ctrl-C.

During the drill a load client (:mod:`failover_engine.lab.client`) resolves each of the service's
names through the lab's DNS server, like a caching stub, and sends a request every 50 ms to the
answer; the drill's records have a TTL of 1 s (``DRILL_RECORD_TTL``), so that the client moves
within the drill, and the playbook waits (``FAILOVER_DRILL_CLIENT_URL``) until it uses the new answer.
The report gets the client's requests and figures (``client``: the client-observed outage, the
requests failed per phase, :mod:`failover_engine.core.client_log`), and the drill fails when a
client did not reach the new routing within the engine's client RTO + one request interval + the
slack. ``drill-report.html`` (:mod:`failover_engine.cli.report_html`) is written beside the JSON.

The playbook is the checkout's or the installed collection's (:func:`find_collection`); it runs
in the run directory and writes nothing into the collection. A drill whose pip extra is not
installed (gcp, azure, terraform, ...) says so in one line, before anything starts.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from failover_engine.cli.report_html import render_drill_html
from failover_engine.cli.reporting import render_drill
from failover_engine.config.collection import collections_path_for, find_collection, write_ansible_config
from failover_engine.core.client_log import DEFAULT_SLACK_S, client_figures
from failover_engine.core.errors import FailoverError

# the playbook of a drill, by cloud (default playbooks/drill.yml)
PLAYBOOKS = {"zone": "zone_drill.yml", "weighted": "zone_drill.yml"}
# the member the drill takes out and back (zone_drill.yml's `zone`), when not the playbook's default;
# weighted: use1, the member the lab's DNS server answers (the highest weight), so that the drill's
# client is among the clients the failure hits
CLOUD_VARS = {"weighted": ["zone=use1"]}
# the pip extras of failover-engine each drill needs, and the modules each extra brings
CLOUD_EXTRAS = {"aws": ("ansible", "lab"), "gcp": ("ansible", "lab", "gcp"), "azure": ("ansible", "lab", "azure"),
                "multi": ("ansible", "lab", "gcp", "azure"), "zone": ("ansible", "lab"),
                "weighted": ("ansible", "lab"), "terraform": ("ansible", "lab", "terraform")}
# the TTL of the drill's records: short, so that the drill's client moves within the drill
DRILL_RECORD_TTL = 1
EXTRA_MODULES = {"ansible": ("ansible",), "lab": ("moto", "flask", "cryptography"),
                 "gcp": ("google.auth", "google.cloud.dns", "googleapiclient"),
                 "azure": ("azure.identity", "azure.mgmt.trafficmanager"), "terraform": ()}


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ImportError:  # a parent package is missing
        return True


def missing_extra(cloud: str) -> str | None:
    """One line naming the pip extra the drill of ``cloud`` needs and this install lacks, or None."""
    for extra in CLOUD_EXTRAS.get(cloud, ()):
        absent = [m for m in EXTRA_MODULES[extra] if _missing(m)]
        if absent:
            return (f"the {cloud} drill needs failover-engine's extra '{extra}' ({absent[0]} is not installed): "
                    f"pip install 'failover-engine[{extra}]'")
        if extra == "terraform":
            from failover_engine.config.terraform import runner

            try:
                runner()
            except FailoverError as exc:
                return f"the {cloud} drill needs Terraform: {exc}"
    return None


def ansible_playbook() -> list[str]:
    """ansible-playbook of this interpreter (the modules run with it: inventory.yml says
    ansible_playbook_python), as a command."""
    local = Path(sys.executable).with_name("ansible-playbook")
    return [str(local)] if local.exists() else [sys.executable, "-m", "ansible.cli.playbook"]


def run_drill(run_dir: Path, *, cloud: str = "aws", extra_vars: list[str] | None = None,
              verbose: bool = False, client_min_ttl: float = 0.0) -> int:
    """Run the drill of ``cloud`` (one of failover_engine.lab.lab.CLOUDS); the exit code.

    The playbook comes from the collection :func:`find_collection` finds (the checkout, else an
    installed one), which is never written to; everything the run writes goes to ``run_dir``.
    ``client_min_ttl``: the client keeps an answer at least this long (a resolver that clamps TTLs;
    a large value keeps it on the old answer for the whole drill, which then fails)."""
    problem = missing_extra(cloud)
    if problem:
        print(f"failover drill: {problem}", file=sys.stderr)
        return 1
    from failover_engine.lab.client import drill_clients
    from failover_engine.lab.lab import Lab

    playbook = PLAYBOOKS.get(cloud, "drill.yml")
    try:
        collection = find_collection(playbook)
    except FailoverError as exc:
        print(f"failover drill: {exc}", file=sys.stderr)
        return 1
    run_dir = run_dir.resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a drill starts from nothing: no state or report of an earlier run
    run_dir.mkdir(parents=True)
    report = run_dir / "drill-report.json"
    try:
        lab = Lab(run_dir, cloud=cloud, record_ttl=DRILL_RECORD_TTL).start()
    except (FailoverError, OSError) as exc:
        print(f"failover drill: cannot start the lab: {exc}", file=sys.stderr)
        return 1
    with lab, tempfile.TemporaryDirectory(prefix="failover-drill-") as scratch, \
            drill_clients(lab, min_ttl=client_min_ttl) as clients:
        collections_path = collections_path_for(collection, Path(scratch))
        # child_env: no real cloud's settings (AWS_PROFILE, AZURE_*, GOOGLE_*) reach the playbook
        env = {**lab.child_env(), "FAILOVER_DRILL_REPORT": str(report),
               "ANSIBLE_CONFIG": str(write_ansible_config(run_dir / "ansible.cfg", collection, collections_path,
                                                          run_dir / "ansible-tmp")),
               "ANSIBLE_COLLECTIONS_PATH": str(collections_path), "ANSIBLE_LOCAL_TEMP": str(run_dir / "ansible-tmp"),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "FAILOVER_DRILL_CLIENT_URL": clients.url}
        _print_lab(lab, clients, collection.root, cloud)
        cmd = [*ansible_playbook(), str(collection.playbook(playbook))]
        for ev in CLOUD_VARS.get(cloud, []) + list(extra_vars or []):
            cmd += ["-e", ev]
        if verbose:
            cmd.append("-v")
        rc = subprocess.call(cmd, cwd=run_dir, env=env)
        clients.stop()
        recorded = clients.to_dict()
    return _finish(report, recorded, list(lab.actions), rc)


def _print_lab(lab: Any, clients: Any, collection_root: Path, cloud: str) -> None:
    """What the drill started, for people (stderr)."""
    print(f"lab: drill on {cloud} ({lab.template_name})", file=sys.stderr)
    for name, url in lab.servers():
        print(f"lab: {name:<16} {url}", file=sys.stderr)
    print(f"lab: {'strategy':<16} {lab.strategy_path}", file=sys.stderr)
    for client in clients.clients:
        print(f"lab: {'client':<16} {client.target.name} via {lab.dns_address} every "
              f"{clients.interval * 1000:.0f} ms", file=sys.stderr)
    print(f"lab: {'collection':<16} {collection_root}", file=sys.stderr, flush=True)


def _finish(report: Path, recorded: dict[str, Any], actions: list[dict[str, Any]], rc: int) -> int:
    """Complete the playbook's report (the clients, the lab's actions), write it and its page,
    print the summary; the drill's exit code."""
    if not report.exists():
        print(f"failover drill: no report was written (ansible-playbook exit {rc})", file=sys.stderr)
        return rc or 1
    data = complete_report(json.loads(report.read_text()), recorded)
    data["lab_actions"] = actions  # the failures injected (and healed) through the lab
    report.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    page = report.with_name("drill-report.html")
    page.write_text(render_drill_html(data), encoding="utf-8")
    print("\n" + render_drill(data))
    print(f"\nJSON report: {report}\nHTML report: {page}")
    return (rc or 1) if data.get("result") != "succeeded" else rc


def complete_report(data: dict[str, Any], recorded: dict[str, Any], slack: float = DEFAULT_SLACK_S) -> dict[str, Any]:
    """The playbook's report with the clients' requests and figures (``client``); a drill whose
    client did not reach the new routing within the expected client RTO fails (``result``), the
    engine's own verdict kept as ``engine_result``."""
    stages = [(s, data.get(s)) for s in ("failover", "failback")]
    data["client"] = client_figures(recorded, stages, slack)
    if not data["client"]["ok"] and data.get("result") == "succeeded":
        data["engine_result"] = data["result"]
        data["result"] = "failed"
        data["error"] = f"client: {data['client']['verdict']}"
    return data
