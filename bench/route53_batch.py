"""Benchmark: fail over N services in ONE Route 53 hosted zone, batched vs one call per record.

Requirement: API calls grow with hosted zones, not records (at most 2 change calls at N = 1000),
and the batched path is at least 10x faster than one call per record at N = 1000.

Both paths run against the same moto server (one for the whole run, reset between cases) and
start from the same seeded zone (every primary active). For each N and record mode:

* batched (the product's path): ``engine.observe_many`` -> ``engine.plan`` per service ->
  ``engine.apply_batched`` (one ChangeResourceRecordSets per 1,000 ResourceRecord elements).
* naive (the baseline): ``engine.observe`` per service -> the same ``engine.plan`` -> one
  ``adapter.apply`` per record name (one ChangeResourceRecordSets + one GetChange each).

API calls are counted twice, and the two counts must agree: by the adapter's own ``calls``
counter and by botocore event hooks on the adapter's client (per operation, and per HTTP
attempt so that botocore's internal retries would show). After each path every record is read
back with a separate boto3 client and must hold the standby; if not, the run exits 1.

    .venv/bin/python bench/route53_batch.py                       # sizes 1,100,1000; simple+failover
    .venv/bin/python bench/route53_batch.py --sizes 1000 --repeat 5 --json /tmp/r53.json

Exit status: 0 all checks and expectations met, 1 a wrong result or a missed expectation.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ZONE = "bench.example."
PRIMARY, STANDBY = "primary", "standby"
CONNECTION = "moto"
EXPECT_N = 1000           # the size the expectations are stated for
EXPECT_MAX_CHANGE_CALLS = 2
EXPECT_MIN_SPEEDUP = 10.0
READ_OPS = ("ListResourceRecordSets", "ListHostedZonesByName", "ListHostedZones", "GetHostedZone")


# --------------------------------------------------------------------------- the fixture (pure)
def record_name(i: int) -> str:
    return f"svc{i:04d}.{ZONE}"


def primary_ip(i: int) -> str:
    return f"10.0.{i // 256}.{i % 256}"


def standby_ip(i: int) -> str:
    return f"10.1.{i // 256}.{i % 256}"


def strategy_text(n: int, mode: str, endpoint_url: str) -> str:
    """A strategy with N active_passive services, each routed by one record in ONE hosted zone."""
    services = {}
    for i in range(n):
        endpoints = {PRIMARY: {"values": [primary_ip(i)]}, STANDBY: {"values": [standby_ip(i)]}}
        if mode == "failover":
            endpoints[PRIMARY]["set_identifier"] = f"svc{i:04d}-primary"
            endpoints[STANDBY]["set_identifier"] = f"svc{i:04d}-standby"
        services[f"svc{i:04d}"] = {
            "strategy": "active_passive",
            "scope": "region",
            "endpoints": [{"name": PRIMARY, "role": "primary", "region": "us-east-1", "probe": None},
                          {"name": STANDBY, "role": "standby", "region": "us-west-2", "probe": None}],
            "routing": [{"adapter": "route53", "connection": CONNECTION, "hosted_zone": ZONE,
                         "record": record_name(i), "type": "A", "ttl": 60, "mode": mode,
                         "endpoints": endpoints}],
        }
    doc = {"version": 1, "state_dir": "state",
           "connections": {CONNECTION: {"type": "route53", "endpoint_url": endpoint_url, "region": "us-east-1"}},
           "services": services}
    return yaml.safe_dump(doc, sort_keys=False)


def steady_rrsets(i: int, mode: str) -> list[dict[str, Any]]:
    """The record sets of service i with the primary active."""
    name = record_name(i)
    if mode == "simple":
        return [{"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": primary_ip(i)}]}]
    return [{"Name": name, "Type": "A", "TTL": 60, "SetIdentifier": f"svc{i:04d}-{ep}", "Failover": role,
             "ResourceRecords": [{"Value": ip}]}
            for ep, role, ip in ((PRIMARY, "PRIMARY", primary_ip(i)), (STANDBY, "SECONDARY", standby_ip(i)))]


def failed_over(i: int, mode: str, by_key: dict[tuple[str, str | None], dict[str, Any]]) -> str | None:
    """None when service i's records hold the standby as the active endpoint, else what is wrong."""
    name = record_name(i)
    if mode == "simple":
        rrs = by_key.get((name, None))
        got = [r["Value"] for r in (rrs or {}).get("ResourceRecords", [])]
        return None if got == [standby_ip(i)] else f"{name} holds {got}, want [{standby_ip(i)}]"
    want = {f"svc{i:04d}-{STANDBY}": ("PRIMARY", standby_ip(i)), f"svc{i:04d}-{PRIMARY}": ("SECONDARY", primary_ip(i))}
    for sid, (role, ip) in want.items():
        rrs = by_key.get((name, sid)) or {}
        got = (rrs.get("Failover"), [r["Value"] for r in rrs.get("ResourceRecords", [])])
        if got != (role, [ip]):
            return f"{name}[{sid}] is {got}, want {(role, [ip])}"
    return None


def min_change_calls(n: int, mode: str) -> int:
    """Fewest ChangeResourceRecordSets calls AWS allows: 1,000 ResourceRecord elements, UPSERT counts twice."""
    elements = n * (1 if mode == "simple" else 2) * 2
    return max(1, math.ceil(elements / 1000))


# --------------------------------------------------------------------------- moto and boto3
class Moto:
    """One ThreadedMotoServer for the whole run; ``reset`` empties it between cases."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._tmp = tempfile.TemporaryDirectory(prefix="bench-r53-aws-")
        for var, fname in (("AWS_CONFIG_FILE", "config"), ("AWS_SHARED_CREDENTIALS_FILE", "credentials")):
            path = Path(self._tmp.name) / fname
            path.write_text("")
            os.environ[var] = str(path)
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION="us-east-1")
        os.environ.pop("AWS_PROFILE", None)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log line: it would be timed
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=30).read()

    def client(self) -> Any:
        import boto3

        return boto3.client("route53", region_name="us-east-1", endpoint_url=self.url)

    def stop(self) -> None:
        self.server.stop()
        self._tmp.cleanup()


def seed_zone(r53: Any, n: int, mode: str) -> str:
    """Create the zone and write the steady state (primary active) in 1,000-element batches."""
    zone_id = r53.create_hosted_zone(Name=ZONE, CallerReference=f"bench-{time.time_ns()}")["HostedZone"]["Id"]
    changes = [{"Action": "UPSERT", "ResourceRecordSet": rrs} for i in range(n) for rrs in steady_rrsets(i, mode)]
    for start in range(0, len(changes), 500):  # 500 UPSERTs x 1 value x 2 = 1,000 elements
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes[start:start + 500]})
    return zone_id


def zone_records(r53: Any, zone_id: str) -> dict[tuple[str, str | None], dict[str, Any]]:
    out = {}
    for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rrs in page["ResourceRecordSets"]:
            out[(rrs["Name"], rrs.get("SetIdentifier"))] = rrs
    return out


class CallCounter:
    """Counts one boto3 client's calls by operation (before-call) and HTTP attempts (before-send)."""

    def __init__(self, client: Any) -> None:
        self.ops: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        client.meta.events.register("before-call.route-53", self._on_call)
        client.meta.events.register("before-send.route-53", self._on_send)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.ops[model.name] += 1

    def _on_send(self, event_name: str, **_: Any) -> None:  # must return None (else it short-circuits)
        self.sends[event_name.rsplit(".", 1)[-1]] += 1


# --------------------------------------------------------------------------- one case
@dataclass
class Sample:
    n: int
    mode: str
    path: str
    wall_s: float
    read_s: float
    plan_s: float
    apply_s: float
    change_calls: int
    get_change_calls: int
    read_calls: int
    total_calls: int
    adapter_calls: int
    http_attempts: int
    ops: dict[str, int] = field(default_factory=dict)


def run_case(moto: Any, n: int, mode: str, path: str, workdir: Path) -> Sample:
    from failover_engine.engine.failover import FailoverEngine
    from failover_engine.config.loader import load_strategy
    from failover_engine.core.selection import SimpleVerdict

    moto.reset()
    r53 = moto.client()
    zone_id = seed_zone(r53, n, mode)
    case_dir = workdir / f"{mode}-{n}-{path}-{time.time_ns()}"
    case_dir.mkdir(parents=True)
    (case_dir / "strategy.yaml").write_text(strategy_text(n, mode, moto.url))
    engine = FailoverEngine(load_strategy(case_dir / "strategy.yaml"))
    names = list(engine.strategy.services)
    binding = engine.loaded.service(names[0]).routing[0]
    adapter = engine.adapter(binding)  # one adapter per connection: every service shares it
    counter = CallCounter(adapter.client)
    healthy = {ep: SimpleVerdict("healthy") for ep in (PRIMARY, STANDBY)}

    t0 = time.perf_counter()
    if path == "batched":
        observed = engine.observe_many(names)
    else:
        observed = {name: engine.observe(name) for name in names}
    t1 = time.perf_counter()
    plans = [engine.plan(name, "failover", verdicts=healthy, observation=observed[name]) for name in names]
    t2 = time.perf_counter()
    if path == "batched":
        engine.apply_batched(plans)
    else:
        for plan in plans:  # one call per record name: a failover pair is one record, flipped together
            for step in plan.steps:
                if step.effective:
                    engine.adapter(engine.loaded.service(plan.service).routing[step.index]).apply(step.effective)
    t3 = time.perf_counter()

    bad = [f"{p.service}: plan {p.current} -> {p.target}, refusals {list(p.refusals)}" for p in plans
           if p.current != {PRIMARY: 100} or p.target != {STANDBY: 100} or p.refusals or p.is_noop]
    records = zone_records(r53, zone_id)
    bad += [msg for i in range(n) if (msg := failed_over(i, mode, records))]
    if bad:
        raise SystemExit(f"FAIL {mode} N={n} {path}: {len(bad)} service(s) wrong, e.g.\n  " + "\n  ".join(bad[:5]))

    ops = dict(counter.ops)
    total = sum(ops.values())
    if total != engine.api_calls():
        raise SystemExit(f"FAIL {mode} N={n} {path}: adapter counted {engine.api_calls()} calls, botocore saw {ops}")
    return Sample(n, mode, path, t3 - t0, t1 - t0, t2 - t1, t3 - t2,
                  change_calls=ops.get("ChangeResourceRecordSets", 0), get_change_calls=ops.get("GetChange", 0),
                  read_calls=sum(ops.get(op, 0) for op in READ_OPS), total_calls=total,
                  adapter_calls=engine.api_calls(), http_attempts=sum(counter.sends.values()), ops=ops)


# --------------------------------------------------------------------------- the run
TIMES = ("wall_s", "read_s", "plan_s", "apply_s")


def median_sample(samples: list[Sample]) -> Sample:
    """Median of each timing over the repeats (call counts are deterministic: checked equal)."""
    calls = {(s.change_calls, s.get_change_calls, s.read_calls) for s in samples}
    if len(calls) != 1:
        raise SystemExit(f"FAIL: call counts differ between repeats: {sorted(calls)}")
    out = Sample(**{**asdict(samples[0]), "ops": dict(samples[0].ops)})
    for attr in TIMES:
        setattr(out, attr, statistics.median(getattr(s, attr) for s in samples))
    return out


@dataclass
class Row:
    """One (mode, N): the median of each path, and naive/batched ratios paired repeat by repeat."""

    batched: Sample
    naive: Sample
    wall_ratio: float   # median over repeats of naive.wall / batched.wall of the same repeat
    apply_ratio: float  # the same for the apply phase alone

    @classmethod
    def of(cls, batched: list[Sample], naive: list[Sample]) -> "Row":
        pairs = list(zip(batched, naive))
        return cls(median_sample(batched), median_sample(naive),
                   statistics.median(nv.wall_s / b.wall_s for b, nv in pairs),
                   statistics.median(nv.apply_s / b.apply_s for b, nv in pairs))


def expectations(row: Row) -> list[str]:
    """What the requirement asks of this case; returns the misses."""
    b, n, mode = row.batched, row.batched.n, row.batched.mode
    misses = []
    least = min_change_calls(n, mode)
    if b.change_calls != least:
        misses.append(f"{mode} N={n}: batched made {b.change_calls} change calls, AWS allows {least}")
    if n == EXPECT_N and mode == "simple" and b.change_calls > EXPECT_MAX_CHANGE_CALLS:
        misses.append(f"{mode} N={n}: {b.change_calls} change calls > {EXPECT_MAX_CHANGE_CALLS}")
    if n == EXPECT_N and row.wall_ratio < EXPECT_MIN_SPEEDUP:
        misses.append(f"{mode} N={n}: batched only {row.wall_ratio:.1f}x faster (want >= {EXPECT_MIN_SPEEDUP:.0f}x)")
    return misses


def print_table(rows: list[Row], repeat: int) -> None:
    head = f"{'mode':8} {'N':>5} {'path':8} {'change':>6} {'get_chg':>7} {'reads':>5} {'total':>6} " \
           f"{'read s':>7} {'plan s':>7} {'apply s':>7} {'wall s':>8} {'wall ratio':>10} {'apply ratio':>11}"
    print(f"\nmedian of {repeat} run(s) per row; calls per path; wall = read + plan + apply (seeding not timed);"
          "\nratios: naive/batched paired within each repeat, median over the repeats")
    print(head)
    print("-" * len(head))
    for row in rows:
        for s in (row.batched, row.naive):
            ratio = f"{row.wall_ratio:.1f}x" if s is row.naive else ""
            apply_ratio = f"{row.apply_ratio:.1f}x" if s is row.naive else ""
            print(f"{s.mode:8} {s.n:>5} {s.path:8} {s.change_calls:>6} {s.get_change_calls:>7} {s.read_calls:>5} "
                  f"{s.total_calls:>6} {s.read_s:>7.3f} {s.plan_s:>7.3f} {s.apply_s:>7.3f} {s.wall_s:>8.3f} "
                  f"{ratio:>10} {apply_ratio:>11}")


def machine() -> dict[str, Any]:
    import boto3
    import moto

    return {"nproc": os.cpu_count(), "python": platform.python_version(), "moto": moto.__version__,
            "boto3": boto3.__version__, "platform": platform.platform()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--sizes", default="1,100,1000", help="comma-separated service counts (default 1,100,1000)")
    ap.add_argument("--modes", default="simple,failover", help="record modes: simple, failover (default both)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported (default 3)")
    ap.add_argument("--json", metavar="FILE", help="write every raw sample and the medians to FILE")
    args = ap.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(n < 1 or n > 9999 for n in args.sizes) or args.repeat < 1:
        ap.error("sizes must be 1..9999 and --repeat at least 1")
    if any(m not in ("simple", "failover") for m in args.modes):
        ap.error("modes are simple and failover")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    moto = Moto()
    raw: list[Sample] = []
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-r53-") as tmp:
            for mode in args.modes:  # warm-up, not reported: first-use imports and connection setup
                for path in ("batched", "naive"):
                    run_case(moto, 1, mode, path, Path(tmp))
            for mode in args.modes:
                for n in args.sizes:
                    got: dict[str, list[Sample]] = {"batched": [], "naive": []}
                    for k in range(args.repeat):
                        order = ("batched", "naive") if k % 2 == 0 else ("naive", "batched")  # no order bias
                        for path in order:
                            s = run_case(moto, n, mode, path, Path(tmp))
                            got[path].append(s)
                            raw.append(s)
                            print(f"  {mode:8} N={n:<5} {path:8} run {k + 1}: {s.wall_s:8.3f} s  {s.ops}",
                                  file=sys.stderr, flush=True)
                    rows.append(Row.of(got["batched"], got["naive"]))
    finally:
        moto.stop()
    print_table(rows, args.repeat)
    misses = [m for row in rows for m in expectations(row)]
    for row in rows:
        b, nv = row.batched, row.naive
        if b.n == EXPECT_N:
            print(f"\n{b.mode} N={b.n}: {b.change_calls} change call(s) batched vs {nv.change_calls} naive; "
                  f"{b.total_calls} vs {nv.total_calls} API calls; {row.wall_ratio:.1f}x faster "
                  f"(apply phase alone {row.apply_ratio:.1f}x)")
    print("\nexpectations: " + ("met" if not misses else "MISSED\n  " + "\n  ".join(misses)))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine(), "sizes": args.sizes, "modes": args.modes, "repeat": args.repeat,
            "medians": [asdict(row) for row in rows],
            "samples": [asdict(s) for s in raw], "misses": misses}, indent=2))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
