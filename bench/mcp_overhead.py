"""Benchmark: the MCP server's overhead on a failover, against the same playbook run by hand.

Target (issue "MCP server"): the shim (MCP call, token, lock, ansible-runner, result) adds less
than 0.5 s to a failover, compared with running the collection's playbook directly.

One lab (moto for Route 53, two local HTTP servers playing us-east-1 and us-west-2: the drill's
strategy, service ``shop``) and one ``failover-mcp`` server over stdio with a real MCP client,
started once and kept for the whole run, as a client keeps it. Each round measures, from the
lab's steady state (``lab.reset()``: every region up, moto cleared and seeded with the primary
active):

* *MCP apply*: ``failover.trigger(condition={region: us-east-1}, confirm=token)``, from the
  client's ``call_tool`` to its result (with a progress callback, as a client has). The token
  comes from the dry run just before, which is timed too (*MCP plan*, the dry-run latency).
* *playbook alone*: what a person runs from the repository root with the same environment,
  ``ansible-playbook playbooks/region_failover.yml -e strategy_file=... -e region=us-east-1``,
  timed as a subprocess from start to exit.
* *playbook --check* (the reference for the dry run): the same command with ``--check``, which
  only plans.

The arms alternate within every round, and which goes first alternates from round to round
(A B, B A, ...), so drift on the shared machine hits both alike; overheads and ratios are paired
within a round. After each apply the routing state is read back from moto: ``usw2`` must be the
only active endpoint, and each arm's own report must say succeeded.

The cooldown of the drill's strategy is 1 s and the engine refuses a switch within it. The
direct playbook runs get a fresh copy of the strategy with a fresh state dir each round; the
server keeps its own state dir (``HOME/state``) as a real server does, so before each MCP dry run
the benchmark waits, if need be, until the last switch recorded there is older than the cooldown
(not timed; in practice the other arm's run already took longer).

    .venv/bin/python bench/mcp_overhead.py                         # 5 rounds, ~40 s
    .venv/bin/python bench/mcp_overhead.py --rounds 10 --json /tmp/mcp_overhead.json

Exit status: 0 when every run succeeded and the median overhead (MCP apply - playbook alone,
paired per round) is under 0.5 s; 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import anyio  # noqa: E402
import yaml  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from failover_engine.cli.drill import ansible_playbook
from failover_engine.config.collection import link_collection  # noqa: E402
from failover_engine.engine.failover import FailoverEngine  # noqa: E402
from failover_engine.lab.lab import Lab  # noqa: E402
from failover_engine.config.loader import load_strategy  # noqa: E402
from failover_engine.engine.state import StateStore  # noqa: E402

TARGET_OVERHEAD_S = 0.5
SERVICE, REGION, STANDBY = "shop", "us-east-1", "usw2"
PLAYBOOK = "playbooks/region_failover.yml"


@dataclass
class Round:
    index: int
    order: str                      # "mcp first" or "playbook first"
    mcp_plan_s: float = 0.0
    mcp_apply_s: float = 0.0
    mcp_runner_s: float | None = None   # the server's own ansible-runner duration (RunOutcome.duration_s)
    mcp_rto_s: float | None = None
    mcp_progress: int = 0
    alone_s: float = 0.0
    alone_rto_s: float | None = None
    check_s: float = 0.0
    cooldown_wait_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def overhead_s(self) -> float:
        return self.mcp_apply_s - self.alone_s

    @property
    def ratio(self) -> float:
        return self.mcp_apply_s / self.alone_s if self.alone_s else float("nan")


def p90(values: list[float]) -> float:
    """90th percentile, linear interpolation between the closest ranks (inclusive)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "mcp": version("mcp"), "ansible_core": version("ansible-core"),
            "ansible_runner": version("ansible-runner")}


def server_command() -> tuple[str, list[str]]:
    """The console script a client registers (``failover-mcp``), next to this Python."""
    script = Path(sys.executable).with_name("failover-mcp")
    if script.exists():
        return str(script), []
    return sys.executable, ["-m", "failover_engine.mcp.server"]


class Bench:
    def __init__(self, lab: Lab, run_dir: Path, env: dict[str, str]):
        self.lab = lab
        self.run_dir = run_dir
        self.env = env
        self.home = run_dir / "home"
        self.doc = yaml.safe_load(Path(lab.strategy_path).read_text())
        self.doc.pop("state_dir", None)
        self.cooldown = lab.loaded.service(SERVICE).policy.cooldown

    # ------------------------------------------------------------------ checks
    def active(self) -> dict[str, int] | None:
        return FailoverEngine(load_strategy(self.lab.strategy_path, state_dir=self.run_dir / "observer")).observe(
            SERVICE).active

    def check_moved(self, arm: str, rnd: Round) -> None:
        active = self.active()
        if active != {STANDBY: 100} and set(active or {}) != {STANDBY}:
            rnd.errors.append(f"{arm}: routing after the run is {active}, expected {STANDBY} only")

    # ------------------------------------------------------------------ the direct playbook
    def playbook(self, rnd: Round, *, check: bool) -> float:
        d = self.run_dir / f"round{rnd.index}-{'check' if check else 'alone'}"
        d.mkdir(parents=True)
        strategy = d / "strategy.yaml"
        strategy.write_text(yaml.safe_dump({**self.doc, "state_dir": "state"}, sort_keys=False))
        cmd = [ansible_playbook(), PLAYBOOK, "-e", f"strategy_file={strategy}", "-e", f"region={REGION}"]
        if check:
            cmd.append("--check")
        started = time.perf_counter()
        proc = subprocess.run(cmd, check=False, cwd=ROOT, env=self.env, capture_output=True, text=True)
        took = time.perf_counter() - started
        (d / "stdout.txt").write_text(proc.stdout + proc.stderr)
        arm = "playbook --check" if check else "playbook alone"
        if proc.returncode != 0:
            rnd.errors.append(f"{arm}: exit {proc.returncode}; see {d / 'stdout.txt'}")
        elif not check:
            reports = sorted((d / "state" / "reports").glob("*.json"))
            data = json.loads(reports[-1].read_text()) if reports else {}
            if data.get("status") != "succeeded":
                rnd.errors.append(f"{arm}: report status {data.get('status')!r}")
            rnd.alone_rto_s = (data.get("timeline") or {}).get("rto_s")
            self.check_moved(arm, rnd)
        return took

    # ------------------------------------------------------------------ the MCP server
    async def mcp(self, session: ClientSession, rnd: Round) -> None:
        last = StateStore(self.home / "state").load(SERVICE).last_switch_at
        if last is not None:
            wait = last + self.cooldown + 0.2 - time.time()
            if wait > 0:
                rnd.cooldown_wait_s = round(wait, 3)
                await anyio.sleep(wait)
        cond = {"region": REGION, "reason": f"mcp overhead benchmark, round {rnd.index}"}
        started = time.perf_counter()
        plan = await session.call_tool("failover.trigger", {"condition": cond})
        rnd.mcp_plan_s = time.perf_counter() - started
        sc = plan.structured_content or {}
        if plan.is_error or sc.get("stage") != "planned":
            rnd.errors.append(f"MCP plan: {sc.get('stage')}: {sc.get('summary') or plan.content}")
            return

        async def progress(_p: float, _t: float | None, _msg: str | None) -> None:
            rnd.mcp_progress += 1

        started = time.perf_counter()
        res = await session.call_tool("failover.trigger", {"condition": cond, "confirm": sc["token"]},
                                      progress_callback=progress)
        rnd.mcp_apply_s = time.perf_counter() - started
        out = res.structured_content or {}
        outcome = out.get("outcome") or {}
        rnd.mcp_runner_s = outcome.get("duration_s")
        services = outcome.get("services") or []
        rnd.mcp_rto_s = services[0].get("rto_s") if services else None
        if res.is_error or out.get("stage") != "applied":
            rnd.errors.append(f"MCP apply: {out.get('stage')}: {out.get('summary') or res.content}")
        else:
            self.check_moved("MCP apply", rnd)

    async def run(self, rounds: int) -> list[Round]:
        cmd, args = server_command()
        connections = self.run_dir / "connections.yaml"  # the operator's connections file
        connections.write_text(yaml.safe_dump(self.doc["connections"]))
        params = StdioServerParameters(command=cmd, args=[*args, "--home", str(self.home), "--connections",
                                                          str(connections), "--allow-zone", "drill.example.",
                                                          "--allow-probe", "127.0.0.1"], env=self.env, cwd=str(ROOT))
        results: list[Round] = []
        with open(self.run_dir / "server.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (r, w):
                async with ClientSession(r, w) as session:
                    await session.initialize()
                    client_doc = {k: v for k, v in self.doc.items() if k != "connections"}  # the operator's, by name
                    defined = await session.call_tool("failover.define", {"strategy": client_doc})
                    if defined.is_error:
                        raise SystemExit(f"failover.define failed: {defined.content}")
                    for i in range(rounds):
                        rnd = Round(i + 1, "mcp first" if i % 2 == 0 else "playbook first")
                        arms = ["mcp", "alone"] if i % 2 == 0 else ["alone", "mcp"]
                        for arm in arms:
                            self.lab.reset()
                            if arm == "mcp":
                                await self.mcp(session, rnd)
                            else:
                                rnd.check_s = self.playbook(rnd, check=True)
                                self.lab.reset()
                                rnd.alone_s = self.playbook(rnd, check=False)
                        print(f"  round {rnd.index} ({rnd.order}): MCP plan {rnd.mcp_plan_s:.3f} s, MCP apply "
                              f"{rnd.mcp_apply_s:.3f} s (runner {rnd.mcp_runner_s} s), playbook alone {rnd.alone_s:.3f} s, "
                              f"--check {rnd.check_s:.3f} s" + (f"  ERRORS: {rnd.errors}" if rnd.errors else ""),
                              file=sys.stderr, flush=True)
                        results.append(rnd)
        return results


def render(rounds: list[Round]) -> tuple[str, dict[str, Any]]:
    ok = [r for r in rounds if not r.errors]
    ran = [r for r in ok if r.mcp_runner_s is not None]
    rows = [
        ("MCP apply (trigger with confirm)", [r.mcp_apply_s for r in ok]),
        ("  of which ansible-runner run", [r.mcp_runner_s for r in ran]),
        ("playbook alone (ansible-playbook)", [r.alone_s for r in ok]),
        ("overhead: MCP apply - playbook alone", [r.overhead_s for r in ok]),
        ("  MCP apply - ansible-runner run", [r.mcp_apply_s - r.mcp_runner_s for r in ran]),
        ("  ansible-runner run - playbook alone", [r.mcp_runner_s - r.alone_s for r in ran]),
        ("MCP plan (dry run, no confirm)", [r.mcp_plan_s for r in ok]),
        ("playbook --check (plan only)", [r.check_s for r in ok]),
        ("RTO inside the run, via MCP", [r.mcp_rto_s for r in ok if r.mcp_rto_s is not None]),
        ("RTO inside the run, playbook alone", [r.alone_rto_s for r in ok if r.alone_rto_s is not None]),
    ]
    width = max(len(n) for n, _unused in rows)
    lines = [f"{'seconds':<{width}} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}"]
    summary: dict[str, Any] = {}
    for name, vals in rows:
        if not vals:
            continue
        med = statistics.median(vals)
        summary[name.strip()] = {"median": med, "p90": p90(vals), "min": min(vals), "max": max(vals)}
        lines.append(f"{name:<{width}} {med:>8.3f} {p90(vals):>8.3f} {min(vals):>8.3f} {max(vals):>8.3f}")
    ratios = [r.ratio for r in ok]
    plan_ratios = [r.mcp_plan_s / r.check_s for r in ok if r.check_s]
    if ratios:
        summary["ratio MCP apply / playbook alone"] = {"median": statistics.median(ratios), "p90": p90(ratios)}
        lines.append(f"{'ratio MCP apply / playbook alone':<{width}} {statistics.median(ratios):>7.2f}x "
                     f"{p90(ratios):>7.2f}x")
    if plan_ratios:
        summary["ratio MCP plan / playbook --check"] = {"median": statistics.median(plan_ratios)}
        lines.append(f"{'ratio MCP plan / playbook --check':<{width}} {statistics.median(plan_ratios):>7.2f}x")
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each with every arm once (default 5)")
    parser.add_argument("--dir", type=Path, help="run directory (default: a new temporary one, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, reports, run artefacts)")
    parser.add_argument("--json", type=Path, help="also write the per-round samples and the summary here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    link_collection(ROOT)
    run_dir = (args.dir or Path(tempfile.mkdtemp(prefix="mcp-overhead-"))).resolve()
    if args.dir and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    print(f"run directory {run_dir}; {args.rounds} round(s)", file=sys.stderr, flush=True)
    try:
        with Lab(run_dir / "lab") as lab:
            env = lab.child_env()
            env.pop("FAILOVER_STRATEGY", None)  # each command names its strategy itself
            env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
            os.environ.update(lab.env())        # the benchmark's own read-back goes to the lab's moto too
            rounds = anyio.run(Bench(lab, run_dir, env).run, args.rounds)
    finally:
        if not (args.keep or args.dir):
            shutil.rmtree(run_dir, ignore_errors=True)
    load_after = os.getloadavg()
    table, summary = render(rounds)
    failed = [r for r in rounds if r.errors]
    print(f"\n{len(rounds) - len(failed)} of {len(rounds)} round(s) ok; service {SERVICE}, region failover of "
          f"{REGION}; arms alternate within each round, order alternates per round")
    print(table)
    for r in failed:
        print(f"round {r.index} FAILED: {'; '.join(r.errors)}")
    info = machine()
    print(f"\nmachine: {info['cpus']} CPU(s), {info['cpu_model']}; Python {info['python']}, mcp {info['mcp']}, "
          f"ansible-core {info['ansible_core']}, ansible-runner {info['ansible_runner']}; load average "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} before, "
          f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} after")
    print(f"command: {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}")
    over = summary.get("overhead: MCP apply - playbook alone", {}).get("median")
    met = not failed and over is not None and over < TARGET_OVERHEAD_S
    ratio = summary.get("ratio MCP apply / playbook alone", {}).get("median", float("nan"))
    print("verdict: " + (f"MET - median shim overhead {over:.3f} s < {TARGET_OVERHEAD_S} s (MCP apply = {ratio:.2f}x "
                         "the playbook alone)" if met else
                         f"MISSED - median overhead {over if over is None else round(over, 3)} s, target < "
                         f"{TARGET_OVERHEAD_S} s, failed rounds {len(failed)}"))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": info, "target_overhead_s": TARGET_OVERHEAD_S, "load_before": load_before,
            "load_after": load_after, "summary": summary,
            "rounds": [{**asdict(r), "overhead_s": r.overhead_s, "ratio": r.ratio} for r in rounds]}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
