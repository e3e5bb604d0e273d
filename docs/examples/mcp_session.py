"""An MCP session with failover-mcp, end to end, against the local lab (no cloud account).

Starts the drill's lab (moto plays Route 53, two local HTTP servers play us-east-1 and
us-west-2), starts ``failover-mcp`` over stdio the way an MCP client does, and then, as a client:
defines the lab's strategy, asks for a region failover of us-east-1 (dry run: plan, blast radius,
token), confirms it with the token (progress while the playbook runs, then the RTO), shows that
the token cannot be used twice, and calls failover.monitor.

    .venv/bin/python docs/examples/mcp_session.py        # from the repository root; ~5 s
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import anyio
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from failover_engine.lab.lab import Lab


def server_params(home: Path, connections: Path, env: dict[str, str]) -> StdioServerParameters:
    """The server as a client registers it: the `failover-mcp` command with --home, the
    operator's --connections (clients name connections, they never define where credentials go),
    and the operator's policy: the zone clients may touch and where their probes may go (the
    lab's regions listen on loopback, which clients may only probe when allowed explicitly)."""
    script = Path(sys.executable).with_name("failover-mcp")
    command, args = (str(script), []) if script.exists() else (sys.executable, ["-m", "failover_engine.mcp.server"])
    return StdioServerParameters(command=command, args=[*args, "--home", str(home), "--connections", str(connections),
                                                        "--allow-zone", "drill.example.", "--allow-probe", "127.0.0.1"],
                                 env=env)


async def session(lab: Lab, home: Path, errlog) -> int:
    strategy = yaml.safe_load(Path(lab.strategy_path).read_text())
    strategy.pop("state_dir", None)  # the server keeps its state in its home: a client may not set it
    connections = home.parent / "connections.yaml"  # the operator's file: the lab's moto connection
    connections.write_text(yaml.safe_dump(strategy.pop("connections")))
    env = lab.child_env()            # the lab's fake AWS credentials and moto URL (never a real cloud)
    env.pop("FAILOVER_STRATEGY", None)

    async with stdio_client(server_params(home, connections, env), errlog=errlog) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            tools = await s.list_tools()
            print(f"server {init.server_info.name} {init.server_info.version}; tools: "
                  f"{', '.join(t.name for t in tools.tools)}")

            # 1. define: validated as a whole, stored in HOME/strategy.yaml
            res = await s.call_tool("failover.define", {"strategy": strategy})
            print(f"\n> failover.define -> stored={res.structured_content['stored']} "
                  f"services={res.structured_content['services']}")

            # 2. trigger without confirm: the dry run (nothing changes)
            cond = {"region": "us-east-1", "reason": "us-east-1 is degraded (example session)"}
            res = await s.call_tool("failover.trigger", {"condition": cond})
            plan = res.structured_content
            print(f"\n> failover.trigger(condition) -> stage {plan['stage']}")
            print(f"  summary: {plan['summary']}")
            radius = plan["blast_radius"]
            print(f"  blast radius: services {radius['services']}, providers {radius['providers']}, "
                  f"in {radius['endpoints_in']}, out {radius['endpoints_out']}")
            for p in plan["plans"]:
                print(f"  plan of {p['service']} (fingerprint {p['fingerprint']}):")
                for step in p["steps"]:
                    for ch in step["changes"]:
                        print(f"    {ch['resource']}: {_attrs(ch['before'])} -> {_attrs(ch['after'])}")
            print(f"  token {plan['token'][:24]}... (expires {plan['expires_at']})")
            if plan["stage"] != "planned":
                return 1

            # 3. trigger with confirm: runs playbooks/region_failover.yml through ansible-runner
            async def progress(done: float, total: float | None, message: str | None) -> None:
                print(f"  progress {done:.0f}: {message}")

            print("\n> failover.trigger(condition, confirm=token)")
            res = await s.call_tool("failover.trigger", {"condition": cond, "confirm": plan["token"]},
                                    progress_callback=progress)
            out = res.structured_content
            print(f"  stage {out['stage']}: {out['summary']}")
            for svc in out["outcome"]["services"]:
                print(f"  {svc['service']}: {svc['status']}, active {svc['active']}, RTO {svc['rto_s']:.3f} s, "
                      f"phases {json.dumps(svc['phases_s'])}")
            print(f"  run {out['outcome']['run_id']} (HOME/runs/<id>), playbook {out['outcome']['playbook']}, "
                  f"rc {out['outcome']['rc']}")
            applied = out["stage"] == "applied"

            # 4. the same token again: refused (single use)
            res = await s.call_tool("failover.trigger", {"condition": cond, "confirm": plan["token"]})
            print(f"\n> the same token again -> is_error={res.is_error}: {res.structured_content['summary']}")

            # 5. monitor (probe=true probes every endpoint now)
            res = await s.call_tool("failover.monitor", {"service": "shop", "events": 5})
            mon = res.structured_content
            print(f"\n> failover.monitor(shop) -> active {mon['active']}, failed_over {mon['failed_over']}, "
                  f"primary {mon['primary']}")
            verdicts = ", ".join(f"{n}: {v['health']}" for n, v in mon["verdicts"].items())
            print(f"  verdicts: {verdicts}")
            m = mon["metrics"]
            print(f"  metrics: runs {m['runs']}, succeeded {m['succeeded']}, last RTO {m['last_rto_s']} s")
            print(f"  recent events: {', '.join(e['event'] for e in mon['recent_events'])}")
            return 0 if applied and mon["failed_over"] else 1


def _attrs(a) -> str:
    if not a:
        return "(none)"
    return " ".join(f"{k}={v}" for k, v in a.items() if k in ("values", "failover"))


def main() -> int:
    run = Path(tempfile.mkdtemp(prefix="mcp-session-"))
    try:
        with Lab(run / "lab") as lab, open(run / "server.log", "w") as errlog:
            rc = anyio.run(session, lab, run / "home", errlog)
        if rc:
            print((run / "server.log").read_text(), file=sys.stderr)
        return rc
    finally:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
