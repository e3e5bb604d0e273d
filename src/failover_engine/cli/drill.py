"""`failover drill` (what `make drill` runs): the lab, playbooks/drill.yml, then a summary.

Starts the local lab for one cloud (``--cloud``: aws = moto for Route 53, gcp = the Cloud DNS
emulator, azure = the Traffic Manager emulator, multi = one service steered by all three; two
local HTTP servers play the regions; zone = the ARC zonal shift emulator and three local servers
playing the zones of an active-active service), runs the drill playbook (playbooks/drill.yml, or
playbooks/zone_drill.yml for the zone drill) with ansible-playbook against it,
prints a readable summary (phases, RTO, records before/after) and the path of the JSON report,
and stops everything it started, also on failure or Ctrl-C.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from failover_engine.cli.reporting import render_drill
from failover_engine.config.collection import find_repo_root, link_collection

# the playbook of a drill, by cloud (default playbooks/drill.yml)
PLAYBOOKS = {"zone": "zone_drill.yml", "weighted": "zone_drill.yml"}
# the member the drill takes out and back (zone_drill.yml's `zone`), when not the playbook's default
CLOUD_VARS = {"weighted": ["zone=usw2"]}


def ansible_playbook() -> str:
    local = Path(sys.executable).with_name("ansible-playbook")
    return str(local) if local.exists() else (shutil.which("ansible-playbook") or "ansible-playbook")


def run_drill(run_dir: Path, *, cloud: str = "aws", extra_vars: list[str] | None = None,
              verbose: bool = False) -> int:
    """Run the drill of ``cloud`` (one of failover_engine.lab.lab.CLOUDS); the exit code."""
    from failover_engine.core.errors import FailoverError
    from failover_engine.lab.lab import Lab

    root = find_repo_root()
    if root is None:
        print("failover drill: run it from a checkout of failover-engine (playbooks/drill.yml not found)",
              file=sys.stderr)
        return 1
    link_collection(root)
    run_dir = run_dir.resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a drill starts from nothing: no state or report of an earlier run
    run_dir.mkdir(parents=True)
    report = run_dir / "drill-report.json"
    try:
        lab = Lab(run_dir, cloud=cloud).start()
    except (FailoverError, OSError) as exc:
        print(f"failover drill: cannot start the lab: {exc}", file=sys.stderr)
        return 1
    with lab:
        # child_env: no real cloud's settings (AWS_PROFILE, AZURE_*, GOOGLE_*) reach the playbook
        env = {**lab.child_env(), "FAILOVER_DRILL_REPORT": str(report),
               "ANSIBLE_CONFIG": str(root / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(run_dir / "ansible-tmp"),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        print(f"lab: drill on {cloud} ({lab.template_name})", file=sys.stderr)
        for name, url in lab.servers():
            print(f"lab: {name:<16} {url}", file=sys.stderr)
        print(f"lab: {'strategy':<16} {lab.strategy_path}", file=sys.stderr, flush=True)
        cmd = [ansible_playbook(), str(root / "playbooks" / PLAYBOOKS.get(cloud, "drill.yml"))]
        for ev in CLOUD_VARS.get(cloud, []) + list(extra_vars or []):
            cmd += ["-e", ev]
        if verbose:
            cmd.append("-v")
        rc = subprocess.call(cmd, cwd=root, env=env)
    if report.exists():
        data = json.loads(report.read_text())
        print("\n" + render_drill(data))
        print(f"\nJSON report: {report}")
        if data.get("result") != "succeeded":
            rc = rc or 1
    else:
        print(f"failover drill: no report was written (ansible-playbook exit {rc})", file=sys.stderr)
        rc = rc or 1
    return rc
