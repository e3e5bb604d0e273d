"""Benchmark: a region failover of N services in ONE Route 53 hosted zone, as a user runs it.

Targets (issue 11, at N = 1000, primary region refusing and also hanging): under 15 s wall through
``ansible-playbook playbooks/region_failover.yml`` (Ansible start-up included), at most 4
ChangeResourceRecordSets calls, the first record changed within 5 s, every record verified, and
at least 60x faster than the per-service path in the same run.

The lab's pieces (``failover_engine.lab``): one moto server plays Route 53 for the whole run
(reset and re-seeded before every case), two ``RegionServer`` s play the regions. N
active_passive services (``svc0000``...), primary in us-east-1 (region server A), standby in
us-west-2 (region server B), each routed by a PRIMARY/SECONDARY failover record pair in the
zone ``bench.example.``; detection, validation and policy are the strategy defaults, as a user
who writes no tuning gets them. Region A is then taken down one of two ways: ``refuse`` (its
listening socket closed: connections are refused) or ``hang`` (connections accepted, never
answered: probes time out). Three paths, interleaved (the order rotates from case to case):

* playbook: ``ansible-playbook playbooks/region_failover.yml -e strategy_file=S -e region=us-east-1``;
* cli: ``failover region us-east-1 -f S --yes``;
* per-service: ``failover apply SVC --to standby -f S --yes``, one process per service, one after
  the other. Above ``--sample`` services only a random sample of k services is run and timed; its
  wall time is extrapolated (mean per service x N). The table marks such rows ``~`` and says so.

Every engine call goes through a counting HTTP proxy in front of moto (API calls per operation,
the time the first ChangeResourceRecordSets answered); moto's own request recorder counts the same
calls again and the two must agree. A thread with its own boto3 client polls one record straight
from moto, as a second clock for the first change. After each path every record is read back
with an independent boto3 client: the standby must hold PRIMARY for every service that path moved.

    .venv/bin/python bench/region_failover.py --sizes 10 --modes refuse       # ~1 min
    .venv/bin/python bench/region_failover.py --json /tmp/region_failover.json

Exit status: 0 when every record was right and, at N = 1000, every target was met; 1 otherwise.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BIN = Path(sys.executable).parent
ZONE, REGION_A, REGION_B = "bench.example.", "us-east-1", "us-west-2"
PLAYBOOK = "playbooks/region_failover.yml"
PATHS = ("playbook", "cli", "per-service")
EXPECT_N, EXPECT_WALL_S, EXPECT_CHANGE_CALLS, EXPECT_FIRST_CHANGE_S, EXPECT_SPEEDUP = 1000, 15.0, 4, 5.0, 60.0
POLLER_HEADER = "X-Bench-Poller"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the fixture (pure)
def svc_name(i: int) -> str:
    return f"svc{i:04d}"


def record_name(i: int) -> str:
    return f"{svc_name(i)}.{ZONE}"


def strategy_doc(n: int, route53_url: str, a_port: int, b_port: int, state_dir: Path) -> dict[str, Any]:
    """N active_passive services, primary in region A, standby in B, failover pairs in ONE zone."""
    services = {}
    for i in range(n):
        services[svc_name(i)] = {
            "strategy": "active_passive", "scope": "region",
            "endpoints": [
                {"name": "primary", "role": "primary", "region": REGION_A,
                 "probe": {"type": "http", "url": f"http://127.0.0.1:{a_port}/health", "body_contains": "ok"}},
                {"name": "standby", "role": "standby", "region": REGION_B,
                 "probe": {"type": "http", "url": f"http://127.0.0.1:{b_port}/health", "body_contains": "ok"}}],
            "routing": [{"adapter": "route53", "connection": "moto", "hosted_zone": ZONE, "record": record_name(i),
                         "type": "A", "ttl": 60, "mode": "failover", "endpoints": {
                             "primary": {"values": [f"10.0.{i // 256}.{i % 256}"], "set_identifier": f"{svc_name(i)}-a"},
                             "standby": {"values": [f"10.1.{i // 256}.{i % 256}"], "set_identifier": f"{svc_name(i)}-b"}}}],
        }
    return {"version": 1, "state_dir": str(state_dir),
            "connections": {"moto": {"type": "route53", "endpoint_url": route53_url, "region": "us-east-1"}},
            "services": services}


def wrong_records(by_key: dict[tuple[str, str], dict[str, Any]], moved: list[int]) -> list[str]:
    """What is wrong with the failover pairs of the moved services (empty: all on the standby)."""
    bad = []
    for i in moved:
        for sid, role in ((f"{svc_name(i)}-b", "PRIMARY"), (f"{svc_name(i)}-a", "SECONDARY")):
            got = (by_key.get((record_name(i), sid)) or {}).get("Failover")
            if got != role:
                bad.append(f"{record_name(i)}[{sid}] is {got}, want {role}")
    return bad


_OPS = [("POST", r"/hostedzone/[^/]+/rrset/?", "ChangeResourceRecordSets"),
        ("GET", r"/hostedzone/[^/]+/rrset/?", "ListResourceRecordSets"),
        ("GET", r"/change/[^/]+", "GetChange"),
        ("GET", r"/hostedzonesbyname", "ListHostedZonesByName"),
        ("GET", r"/hostedzone/[^/]+", "GetHostedZone"),
        ("GET", r"/hostedzone", "ListHostedZones"),
        ("GET", r"/healthcheck/[^/]+/status", "GetHealthCheckStatus"),
        ("GET", r"/healthcheck/[^/]+", "GetHealthCheck")]


def route53_operation(method: str, url: str) -> str:
    """The Route 53 operation of a REST request (``METHOD /path`` when not one of ours)."""
    path = re.sub(r"^/\d{4}-\d{2}-\d{2}", "", urlsplit(url).path)
    for verb, pattern, name in _OPS:
        if method == verb and re.fullmatch(pattern, path):
            return name
    return f"{method} {path}"


# --------------------------------------------------------------------------- counting proxy
class CountingProxy:
    """An HTTP proxy in front of moto: counts Route 53 operations and the Change elements sent,
    and keeps the time the first ChangeResourceRecordSets was answered."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        self.reset()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                proxy.forward(self)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._local = threading.local()
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.ops: Counter[str] = Counter()
            self.actions: Counter[str] = Counter()
            self.first_change_at: float | None = None

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        op = route53_operation(handler.command, handler.path)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("connection", "keep-alive")}
        for attempt in (1, 2):  # a kept-alive upstream connection moto closed: reconnect once
            conn = getattr(self._local, "conn", None) or http.client.HTTPConnection(
                self.upstream.hostname, self.upstream.port, timeout=300)
            self._local.conn = conn
            try:
                conn.request(handler.command, handler.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        with self.lock:
            self.ops[op] += 1
            if op == "ChangeResourceRecordSets":
                self.actions.update(re.findall(rb"<Action>(\w+)</Action>", body))
                if self.first_change_at is None and resp.status < 300:
                    self.first_change_at = time.time()
        handler.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"):
                handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], float | None]:
        with self.lock:
            return dict(self.ops), {k.decode(): v for k, v in self.actions.items()}, self.first_change_at

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- moto's side
class Moto:
    """The lab's moto server (one for the run), its request recorder, and independent clients."""

    def __init__(self, workdir: Path):
        os.environ["MOTO_RECORDER_FILEPATH"] = str(workdir / "moto-recording.jsonl")  # read when moto loads
        from failover_engine.lab.lab import start_moto

        self.aws_config = workdir / "aws-config"
        self.aws_config.write_text("")
        self.server, self.url = start_moto()

    def client(self, poller: bool = False) -> Any:
        from failover_engine.lab.lab import lab_route53_client

        client = lab_route53_client(self.url, self.aws_config)
        if poller:  # marked, so that moto's recording of the engine's calls can leave it out
            client.meta.events.register("before-sign.route53", lambda request, **_unused: request.headers.add_header(
                POLLER_HEADER, "1"))
        return client

    def api(self, path: str, method: str = "POST") -> bytes:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(urllib.request.Request(self.url + path, method=method), timeout=60) as resp:
            return resp.read()

    def reset_and_seed(self, strategy_path: Path) -> str:
        """Empty moto, create the zone and write every service's steady state (primary active)."""
        from failover_engine.lab.lab import ensure_hosted_zone, reset_moto, steady_state_records
        from failover_engine.config.loader import load_strategy

        reset_moto(self.url)
        strategy = load_strategy(strategy_path).strategy
        client, zone_id, changes = self.client(), None, []
        for service in strategy.services.values():
            binding = service.routing[0]
            zone_id = zone_id or ensure_hosted_zone(client, binding)
            changes += [{"Action": "UPSERT", "ResourceRecordSet": rr} for rr in steady_state_records(binding, service)]
        for start in range(0, len(changes), 500):  # 500 UPSERTs of one value = 1,000 elements
            client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes[start:start + 500]})
        return zone_id

    def records(self, zone_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for page in self.client().get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
            for rr in page["ResourceRecordSets"]:
                out[(rr["Name"], rr.get("SetIdentifier", ""))] = rr
        return out

    def start_recording(self) -> None:
        self.api("/moto-api/recorder/reset-recording")
        self.api("/moto-api/recorder/start-recording")

    def stop_recording(self) -> dict[str, int]:
        """Route 53 operations moto received since start_recording, the poller's left out."""
        self.api("/moto-api/recorder/stop-recording")
        ops: Counter[str] = Counter()
        for line in self.api("/moto-api/recorder/download-recording", "GET").decode().splitlines():
            entry = json.loads(line)
            if POLLER_HEADER.lower() not in {k.lower() for k in entry.get("headers", {})}:
                ops[route53_operation(entry["method"], entry["url"])] += 1
        return dict(ops)


class FirstChangePoller:
    """Polls one record pair straight from moto until its standby holds PRIMARY (a second clock)."""

    def __init__(self, moto: Moto, zone_id: str, i: int, interval: float = 0.1):
        self.client, self.zone_id, self.i, self.interval = moto.client(poller=True), zone_id, i, interval
        self.seen_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            got = self.client.list_resource_record_sets(HostedZoneId=self.zone_id, StartRecordName=record_name(self.i),
                                                        StartRecordType="A", MaxItems="2")["ResourceRecordSets"]
            if not wrong_records({(r["Name"], r.get("SetIdentifier", "")): r for r in got}, [self.i]):
                self.seen_at = time.time()
                return
            self._stop.wait(self.interval)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(5)
        return self.seen_at


# --------------------------------------------------------------------------- one case
@dataclass
class Sample:
    n: int
    mode: str
    path: str
    rc: int = 0
    wall_s: float = 0.0                 # measured wall time (per-service: of the runs made)
    services_run: int = 0               # per-service: how many services were run (k of N)
    extrapolated_s: float | None = None  # per-service path: mean per service x N
    first_change_s: float | None = None  # from the start to the first ChangeResourceRecordSets answered
    first_change_poll_s: float | None = None  # from the start to the poller seeing the watched record moved
    ops: dict[str, int] = field(default_factory=dict)
    moto_ops: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    expected: int = 0
    zone_pages: int = 0                 # pages of one full zone listing (300 record sets a page)
    wrong: list[str] = field(default_factory=list)
    progress_lines: int = 0             # playbook: progress lines printed before the task result
    first_progress_s: float | None = None
    output_tail: list[str] = field(default_factory=list)

    @property
    def path_wall_s(self) -> float:
        """What the path costs for all N services (measured, or extrapolated from the sample)."""
        return self.extrapolated_s if self.extrapolated_s is not None else self.wall_s


class Bench:
    def __init__(self, workdir: Path, sample: int, seed: int):
        from failover_engine.config.collection import link_collection
        from failover_engine.lab import regions
        from failover_engine.lab.lab import CLOUD_ENV_PREFIXES

        # the lab's region servers stand in for N services' hosts: give them a listen backlog for
        # N concurrent probes (the stdlib default of 5 drops SYNs: 1 s retransmits, a lab artefact)
        regions._RegionHTTPServer.request_queue_size = 1024
        link_collection(ROOT)
        self.workdir, self.sample, self.rng = workdir, sample, random.Random(seed)
        self.moto = Moto(workdir)
        self.proxy = CountingProxy(self.moto.url)
        self.a = regions.RegionServer("A").start()
        self.b = regions.RegionServer("B").start()
        (workdir / "ansible-tmp").mkdir()
        base = {k: v for k, v in os.environ.items()
                if not k.upper().startswith(CLOUD_ENV_PREFIXES + ("ANSIBLE_", "FAILOVER_", "MOTO_"))}
        self.env = {**base, "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                    "AWS_CONFIG_FILE": str(self.moto.aws_config), "AWS_SHARED_CREDENTIALS_FILE": str(self.moto.aws_config),
                    "AWS_ENDPOINT_URL": self.proxy.url, "AWS_EC2_METADATA_DISABLED": "true",
                    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_HOME": str(workdir / "ansible-home"),
                    "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"), "ANSIBLE_REMOTE_TMP": str(workdir / "ansible-tmp"),
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}

    def close(self) -> None:
        from failover_engine.lab.lab import stop_moto

        for region in (self.a, self.b):
            region.stop()
        self.proxy.stop()
        stop_moto(self.moto.server)

    def commands(self, path: str, strategy: Path, services: list[int]) -> list[list[str]]:
        if path == "playbook":
            return [[str(BIN / "ansible-playbook"), PLAYBOOK, "-e", f"strategy_file={strategy}", "-e", f"region={REGION_A}"]]
        if path == "cli":
            return [[str(BIN / "failover"), "region", REGION_A, "-f", str(strategy), "--yes"]]
        return [[str(BIN / "failover"), "apply", svc_name(i), "--to", "standby", "-f", str(strategy), "--yes"]
                for i in services]

    def run(self, n: int, mode: str, path: str) -> Sample:
        """One case from a fresh state: moto reset and seeded, a fresh state dir, region A down."""
        case = self.workdir / f"n{n}-{mode}-{path}-{time.time_ns()}"
        case.mkdir()
        strategy = case / "strategy.yaml"
        strategy.write_text(yaml.safe_dump(strategy_doc(n, self.proxy.url, self.a.port, self.b.port, case / "state"),
                                           sort_keys=False))
        self.a.set_mode("up")  # releases connections a previous hang held
        zone_id = self.moto.reset_and_seed(strategy)
        self.a.set_mode("down" if mode == "refuse" else "hang")
        services = list(range(n))
        if path == "per-service" and n > self.sample:
            services = sorted(self.rng.sample(services, self.sample))
        s = Sample(n, mode, path, services_run=len(services), expected=len(services))
        self.proxy.reset()
        self.moto.start_recording()
        poller = FirstChangePoller(self.moto, zone_id, services[0])
        start = time.time()
        lines: list[tuple[float, str]] = []
        for cmd in self.commands(path, strategy, services):
            s.rc = s.rc or self.execute(cmd, case, lines)
        s.wall_s = time.time() - start
        seen = poller.stop()
        s.moto_ops = self.moto.stop_recording()
        s.ops, s.actions, first = self.proxy.snapshot()
        s.first_change_s = None if first is None else first - start
        s.first_change_poll_s = None if seen is None else seen - start
        if path == "per-service" and len(services) < n:
            s.extrapolated_s = s.wall_s / len(services) * n
        records = self.moto.records(zone_id)
        s.zone_pages = -(-len(records) // 300)
        s.wrong = wrong_records(records, services)
        s.verified = len(services) - len({w.split("[")[0] for w in s.wrong})
        if path == "playbook":
            s.progress_lines, s.first_progress_s = progress_before_result(lines, start)
        s.output_tail = [text for _unused, text in lines[-15:]]
        return s

    def execute(self, cmd: list[str], case: Path, lines: list[tuple[float, str]]) -> int:
        """Run one command from the repo root; keep each output line with the time it came."""
        with open(case / "output.log", "a") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, bufsize=1)
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append((time.time(), line.rstrip("\n")))
                out.write(line)
            return proc.wait()


def progress_before_result(lines: list[tuple[float, str]], start: float) -> tuple[int, float | None]:
    """(progress lines printed before the region task's result, time of the first one)."""
    in_task, count, first = False, 0, None
    for at, text in lines:
        if text.startswith("TASK [Fail over every service"):
            in_task = True
        elif in_task and re.match(r"^(ok|changed|fatal|failed): \[", text):
            break
        elif in_task and text.startswith("[localhost] "):
            count += 1
            first = first if first is not None else at - start
    return count, first


# --------------------------------------------------------------------------- the run
def expectations(rows: list[Sample]) -> list[str]:
    misses = [f"N={s.n} {s.mode} {s.path}: {len(s.wrong)} record(s) wrong, e.g. {s.wrong[0]}" for s in rows if s.wrong]
    misses += [f"N={s.n} {s.mode} {s.path}: exit status {s.rc}" for s in rows if s.rc]
    misses += [f"N={s.n} {s.mode} {s.path}: proxy counted {s.ops}, moto recorded {s.moto_ops}"
               for s in rows if s.ops != s.moto_ops]
    for s in rows:
        if s.n != EXPECT_N or s.path == "per-service":
            continue
        what = f"N={s.n} {s.mode} {s.path}"
        if s.path == "playbook" and s.wall_s >= EXPECT_WALL_S:
            misses.append(f"{what}: {s.wall_s:.1f} s wall (want < {EXPECT_WALL_S:.0f} s)")
        if s.ops.get("ChangeResourceRecordSets", 0) > EXPECT_CHANGE_CALLS:
            misses.append(f"{what}: {s.ops['ChangeResourceRecordSets']} ChangeResourceRecordSets calls "
                          f"(want <= {EXPECT_CHANGE_CALLS})")
        if s.first_change_s is None or s.first_change_s > EXPECT_FIRST_CHANGE_S:
            misses.append(f"{what}: first change at {fmt(s.first_change_s)} s (want <= {EXPECT_FIRST_CHANGE_S:.0f} s)")
        ratio = speedup(rows, s)
        if s.path == "playbook" and (ratio is None or ratio < EXPECT_SPEEDUP):
            misses.append(f"{what}: {fmt(ratio, 1)}x faster than per-service (want >= {EXPECT_SPEEDUP:.0f}x)")
    return misses


def speedup(rows: list[Sample], s: Sample) -> float | None:
    base = next((r for r in rows if (r.n, r.mode, r.path) == (s.n, s.mode, "per-service")), None)
    return None if base is None or s.path == "per-service" else base.path_wall_s / s.wall_s


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[Sample], sample: int) -> None:
    head = (f"{'N':>5} {'mode':6} {'path':11} {'wall s':>9} {'1st chg s':>9} {'change':>6} {'list/pages':>10} "
            f"{'getchg':>6} {'other':>5} {'verified':>11} {'x faster':>8} {'progress':>8}")
    print("\nwall: from launch to exit (Ansible start-up included); 1st chg: launch -> first "
          "ChangeResourceRecordSets answered;\ncalls: counted by the proxy (equal to moto's recording); "
          "list/pages: ListResourceRecordSets calls / pages of one zone listing;\n"
          "x faster: per-service wall (measured or ~extrapolated) / this path's wall")
    print(head)
    print("-" * len(head))
    known = {"ChangeResourceRecordSets", "ListResourceRecordSets", "GetChange"}
    for s in rows:
        wall = f"{s.wall_s:9.1f}" if s.extrapolated_s is None else f"{'~' + format(s.extrapolated_s, '.0f'):>9}"
        other = sum(v for k, v in s.ops.items() if k not in known)
        lists = f"{s.ops.get('ListResourceRecordSets', 0)}/{s.zone_pages}"
        print(f"{s.n:>5} {s.mode:6} {s.path:11} {wall} {fmt(s.first_change_s, 1):>9} "
              f"{s.ops.get('ChangeResourceRecordSets', 0):>6} {lists:>10} "
              f"{s.ops.get('GetChange', 0):>6} {other:>5} {f'{s.verified}/{s.expected}':>11} "
              f"{fmt(speedup(rows, s), 1):>8} {str(s.progress_lines) if s.path == 'playbook' else '':>8}")
    extrapolated = [s for s in rows if s.extrapolated_s is not None]
    if extrapolated:
        print("\n~ per-service rows are EXTRAPOLATED: " + "; ".join(
            f"N={s.n} {s.mode}: {s.services_run} random services run in {s.wall_s:.1f} s "
            f"({s.wall_s / s.services_run:.2f} s each) x {s.n}; calls shown are for those {s.services_run}"
            for s in extrapolated))
    print(f"(per-service sample size --sample {sample}; the poller's first-change clock is in the JSON; "
          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}: other work on the machine slows every path)")


def machine() -> dict[str, Any]:
    import ansible
    import moto

    return {"nproc": os.cpu_count(), "python": platform.python_version(), "moto": moto.__version__,
            "ansible_core": ansible.__version__, "platform": platform.platform(), "loadavg_end": os.getloadavg()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--sizes", default="10,100,1000", help="comma-separated service counts (default 10,100,1000)")
    ap.add_argument("--modes", default="refuse,hang", help="how region A is down: refuse, hang (default both)")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"paths to run (default {','.join(PATHS)})")
    ap.add_argument("--sample", type=int, default=20, help="per-service path: services run above this N (default 20)")
    ap.add_argument("--seed", type=int, default=11, help="random seed of the per-service sample")
    ap.add_argument("--json", metavar="FILE", help="write every sample to FILE")
    args = ap.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    args.modes = [x.strip() for x in args.modes.split(",") if x.strip()]
    args.paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    if any(n < 1 or n > 9999 for n in args.sizes) or args.sample < 1:
        ap.error("sizes must be 1..9999 and --sample at least 1")
    if set(args.modes) - {"refuse", "hang"} or set(args.paths) - set(PATHS):
        ap.error(f"modes are refuse and hang; paths are {', '.join(PATHS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()
    rows: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="bench-region-") as tmp:
        bench = Bench(Path(tmp), args.sample, args.seed)
        try:
            for path in args.paths:  # warm-up, not reported: first-run caches (Ansible, imports)
                bench.run(2, "refuse", path)
            case = 0
            for n in args.sizes:
                for mode in args.modes:
                    order = args.paths[case % len(args.paths):] + args.paths[:case % len(args.paths)]
                    case += 1
                    for path in order:
                        log(f"N={n} {mode} {path}: running ...")
                        s = bench.run(n, mode, path)
                        rows.append(s)
                        log(f"N={n} {mode} {path}: rc {s.rc}, {s.wall_s:.1f} s"
                            + (f" for {s.services_run} services, ~{s.extrapolated_s:.0f} s for {n}" if s.extrapolated_s else "")
                            + f", first change {fmt(s.first_change_s)} s (poller {fmt(s.first_change_poll_s)} s), "
                            f"{s.ops}, verified {s.verified}/{s.expected}")
                        if s.rc or s.wrong:
                            log("  last output:\n    " + "\n    ".join(s.output_tail))
        finally:
            bench.close()
    rows.sort(key=lambda s: (args.sizes.index(s.n), args.modes.index(s.mode), args.paths.index(s.path)))
    print_table(rows, args.sample)
    misses = expectations(rows)
    print("\ntargets (N = 1000): " + ("met" if not misses and EXPECT_N in args.sizes else
                                      "not measured (N = 1000 not run)" if not misses else "MISSED\n  " + "\n  ".join(misses)))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": {**machine(), "loadavg_start": load_start}, "args": vars(args), "misses": misses,
                                               "samples": [{**asdict(s), "path_wall_s": s.path_wall_s} for s in rows]},
                                              indent=2))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
