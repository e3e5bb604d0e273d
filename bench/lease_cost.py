"""Benchmark: what DynamoDB coordination adds to one failover (leases with fencing) vs file locks.

Both run in one process against the same lab (moto over HTTP plays Route 53 and DynamoDB, local
servers play the regions), interleaved run by run (file, dynamodb, file, dynamodb, ...) so a noisy
machine slows both alike. Each run is a full applied failover or failback of the lab's service
`shop` (observe, probe, plan, journal, write, read-back, probe validation). For the dynamodb runs
the table's own counter gives the DynamoDB calls and the time spent in them; the records are read
back with an independent client after each run and must hold the target, else the run exits 1.

    .venv/bin/python bench/lease_cost.py                 # 20 runs of each
    .venv/bin/python bench/lease_cost.py --runs 50 --json /tmp/lease.json

Exit status: 0 every run succeeded and read back right, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from failover_engine.config.loader import load_strategy
from failover_engine.coordination.dynamodb import DynamoLock, DynamoTable
from failover_engine.core.model import DynamoDbCoordination
from failover_engine.engine.failover import FailoverEngine
from failover_engine.lab.lab import Lab

ZONE, RECORD = "drill.example.", "shop.drill.example."


def primary_of(lab: Lab) -> str:
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return next(r["SetIdentifier"] for r in sets if r["Name"] == RECORD and r.get("Failover") == "PRIMARY")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--runs", type=int, default=20, help="runs of each kind (default 20)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp) / "lab") as lab:
        for key, value in lab.env().items():
            if key.startswith("AWS_") or key.lower() == "no_proxy":
                os.environ[key] = value
        os.environ.pop("AWS_PROFILE", None)
        cfg = DynamoDbCoordination(table="bench-coordination", endpoint_url=lab.moto_url)
        DynamoTable(cfg).create()
        data = yaml.safe_load(lab.strategy_path.read_text())
        data["services"]["shop"].setdefault("policy", {})["cooldown"] = "0s"  # back and forth, run after run
        paths = {}
        for kind in ("file", "dynamodb"):
            data["coordination"] = ({"type": "file"} if kind == "file" else
                                    {"type": "dynamodb", "table": cfg.table, "endpoint_url": lab.moto_url})
            paths[kind] = Path(tmp) / f"{kind}.yaml"
            paths[kind].write_text(yaml.safe_dump(data, sort_keys=False))
        engines = {k: FailoverEngine(load_strategy(p, state_dir=Path(tmp) / f"state-{k}")) for k, p in paths.items()}
        times: dict[str, list[float]] = {"file": [], "dynamodb": []}
        calls: list[int] = []
        ddb_seconds: list[float] = []
        failures = 0
        for i in range(args.runs * 2):
            kind = "file" if i % 2 == 0 else "dynamodb"
            engine = engines[kind]
            action = "failover" if primary_of(lab) == "use1-primary" else "failback"
            want = "usw2-standby" if action == "failover" else "use1-primary"
            lock = engine.lock
            before = (lock.leases.table.calls, lock.leases.table.seconds) if isinstance(lock, DynamoLock) else (0, 0.0)
            start = time.perf_counter()
            out = engine.run("shop", action, apply=True)
            times[kind].append(time.perf_counter() - start)
            if isinstance(lock, DynamoLock):
                calls.append(lock.leases.table.calls - before[0])
                ddb_seconds.append(lock.leases.table.seconds - before[1])
            if out.status != "succeeded" or primary_of(lab) != want:
                failures += 1
                print(f"run {i} ({kind} {action}): {out.status} {out.errors}; primary now {primary_of(lab)}",
                      file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    figures: dict[str, Any] = {
        "runs_each": args.runs, "python": platform.python_version(), "cpus": os.cpu_count(),
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "p90_s": {k: round(sorted(v)[int(len(v) * 0.9) - 1], 4) for k, v in times.items()},
        "added_median_ms": round((med["dynamodb"] - med["file"]) * 1000, 1),
        "ratio": round(med["dynamodb"] / med["file"], 3),
        "dynamodb_calls_per_run": {"min": min(calls), "median": statistics.median(calls), "max": max(calls)},
        "dynamodb_time_per_run_ms": round(statistics.median(ddb_seconds) * 1000, 1),
        "failures": failures,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
