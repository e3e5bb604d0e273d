"""Benchmark: HTTP probe throughput of the ProbeScheduler over 1,000 and 10,000 local endpoints.

Target (issue "Detection engine at scale"): at least 2,000 HTTP probes/s sustained on this
2-core machine, local servers included, with 10,000 endpoints watched.

Local servers run in separate processes (``--server-procs``, each listening on
``--ports-per-proc`` ports): a minimal asyncio HTTP/1.1 keep-alive responder answering
``GET /e/<i>`` with 200 ``ok`` (anything else: 404). Endpoint ``i`` is
``http://127.0.0.1:<port i mod ports>/e/<i>``. The prober is this process: one
:class:`~failover_engine.detection.scheduler.ProbeScheduler` (one event loop, one shared session) whose
targets are plain :class:`~failover_engine.core.model.HttpProbe` s (status 200 expected).

Each case (endpoints N, interval T; offered rate N / T) runs a warm-up (at least 1.5
intervals, so that every target has started its cadence and opened its connections), then a
measured window of ``--duration`` seconds. Reported for the window: probes/s completed, failed
probes, p50/p99/max latency of successful probes (``ProbeResult.latency_ms``), late rounds
(skipped or started more than one interval late), CPU as a fraction of one core: the prober's
(``os.times``, user + system; also per probe), the servers' (each server process reports its
own ``time.process_time``) and everything else on the machine (``/proc/stat`` busy time minus
both: other work sharing the two cores, which the figures should be read against).

    .venv/bin/python bench/probe_throughput.py                                  # 1,000@0.4s and 10,000@4s
    .venv/bin/python bench/probe_throughput.py --endpoints 10000 --interval 2 --duration 20 --json /tmp/p.json

Exit status: 0 when every case with an offered rate of at least 2,000/s completed at least
2,000 probes/s with no failed probe; 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from failover_engine.core.model import HttpProbe  # noqa: E402
from failover_engine.detection.results import ProbeResult  # noqa: E402
from failover_engine.detection.scheduler import ProbeScheduler, ScheduledProbe  # noqa: E402

TARGET_RATE = 2000.0
TIMEOUT = 2.0

# --------------------------------------------------------------------------- local servers
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"


class _Responder(asyncio.Protocol):
    """HTTP/1.1 keep-alive, bodiless requests only (enough for GET probes); pipelining works."""

    served = 0
    connections = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""
        _Responder.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        *requests, self.buffer = self.buffer.split(b"\r\n\r\n")
        out = [(_OK if request.startswith(b"GET /e/") else _NOT_FOUND) for request in requests]
        _Responder.served += len(out)
        self.transport.write(b"".join(out))


def _serve(ports: list[int], control: Any) -> None:
    """Child process: serve ``ports``; answer 'stats' on ``control`` with (cpu seconds, requests,
    connections accepted)."""

    def answer() -> None:
        while True:
            try:
                message = control.recv()
            except EOFError:
                os._exit(0)
            if message == "stats":
                control.send((time.process_time(), _Responder.served, _Responder.connections))
            else:
                os._exit(0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for port in ports:
            await loop.create_server(_Responder, "127.0.0.1", port, backlog=4096, reuse_address=True)
        control.send("ready")
        threading.Thread(target=answer, daemon=True).start()
        await asyncio.Event().wait()

    asyncio.run(main())


class Servers:
    def __init__(self, procs: int, ports_per_proc: int, base_port: int):
        self.ports = [base_port + i for i in range(procs * ports_per_proc)]
        self._children: list[tuple[mp.Process, Any]] = []
        context = mp.get_context("spawn")
        for p in range(procs):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(self.ports[p::procs], child), daemon=True)
            process.start()
            self._children.append((process, parent))
        for _unused, parent in self._children:
            if not parent.poll(30) or parent.recv() != "ready":
                raise SystemExit("a local server did not start")

    def stats(self) -> tuple[float, int, int]:
        """(CPU seconds, requests served, connections accepted) summed over the server processes."""
        cpu, served, connections = 0.0, 0, 0
        for _unused, parent in self._children:
            parent.send("stats")
            c, s, n = parent.recv()
            cpu, served, connections = cpu + c, served + s, connections + n
        return cpu, served, connections

    def stop(self) -> None:
        for process, parent in self._children:
            try:
                parent.send("stop")
            except OSError:
                pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


# --------------------------------------------------------------------------- one case
@dataclass
class CaseResult:
    endpoints: int
    interval: float
    offered_per_s: float
    duration: float
    probes: int
    probes_per_s: float
    failed: int
    failure_kinds: dict[str, int]
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    late: int
    skipped: int
    prober_cpu: float
    prober_cpu_system: float
    prober_cpu_us_per_probe: float
    server_cpu: float
    other_cpu: float | None
    server_requests_per_s: float
    new_connections: int
    met: bool


class Collector:
    """The on_result callback: counts and latencies, only inside the measured window."""

    def __init__(self) -> None:
        self.measuring = False
        self.probes = 0
        self.failed = 0
        self.kinds: dict[str, int] = {}
        self.latencies = array("d")

    def __call__(self, key: str, result: ProbeResult) -> None:
        if not self.measuring:
            return
        self.probes += 1
        if result.ok:
            self.latencies.append(result.latency_ms)  # type: ignore[arg-type]
        else:
            self.failed += 1
            self.kinds[result.kind.value] = self.kinds.get(result.kind.value, 0) + 1


def machine_busy() -> float | None:
    """CPU seconds every process of the machine has used (Linux /proc/stat), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _percentile(values: array, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run_case(servers: Servers, endpoints: int, interval: float, duration: float, warmup: float,
                   concurrency: int) -> CaseResult:
    collector = Collector()
    scheduler = ProbeScheduler(collector, concurrency=concurrency)
    ports = servers.ports
    scheduler.set_targets([
        ScheduledProbe(f"e{i}", HttpProbe(url=f"http://127.0.0.1:{ports[i % len(ports)]}/e/{i}"), interval, TIMEOUT)
        for i in range(endpoints)
    ])
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(max(warmup, interval * 1.5))
    server_cpu0, served0, connections0 = await asyncio.to_thread(servers.stats)  # a thread: the loop keeps probing
    late0, skipped0 = scheduler.late, scheduler.skipped
    cpu0, busy0, wall0 = os.times(), machine_busy(), time.perf_counter()
    collector.measuring = True
    await asyncio.sleep(duration)
    collector.measuring = False
    elapsed = time.perf_counter() - wall0
    cpu1, busy1 = os.times(), machine_busy()
    server_cpu1, served1, connections1 = await asyncio.to_thread(servers.stats)
    late, skipped = scheduler.late - late0, scheduler.skipped - skipped0
    stop.set()
    await runner
    offered = endpoints / interval
    rate = collector.probes / elapsed
    prober = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    server = server_cpu1 - server_cpu0
    other = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - prober - server) / elapsed
    return CaseResult(
        endpoints=endpoints, interval=interval, offered_per_s=round(offered, 1), duration=round(elapsed, 3),
        probes=collector.probes, probes_per_s=round(rate, 1), failed=collector.failed,
        failure_kinds=collector.kinds,
        latency_p50_ms=round(_percentile(collector.latencies, 50), 3),
        latency_p99_ms=round(_percentile(collector.latencies, 99), 3),
        latency_max_ms=round(max(collector.latencies, default=float("nan")), 3),
        late=late, skipped=skipped,
        prober_cpu=round(prober / elapsed, 3),
        prober_cpu_system=round((cpu1.system - cpu0.system) / elapsed, 3),
        prober_cpu_us_per_probe=round(prober / max(collector.probes, 1) * 1e6, 1),
        server_cpu=round(server / elapsed, 3),
        other_cpu=None if other is None else round(other, 2),
        server_requests_per_s=round((served1 - served0) / elapsed, 1),
        new_connections=connections1 - connections0,
        met=offered < TARGET_RATE or (rate >= TARGET_RATE and collector.failed == 0),
    )


# --------------------------------------------------------------------------- report
def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import aiohttp

    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "aiohttp": aiohttp.__version__}


def render(results: list[CaseResult], header: bool = True) -> str:
    lines = [f"{'endpoints':>9} {'interval':>8} {'offered/s':>9} {'probes/s':>8} {'failed':>6} {'p50 ms':>7} "
             f"{'p99 ms':>7} {'late':>6} {'new conns':>9} {'prober cpu':>10} {'us/probe':>8} {'server cpu':>10} "
             f"{'other cpu':>9} {'target':>6}"] if header else []
    for r in results:
        other = "-" if r.other_cpu is None else f"{r.other_cpu:.2f}"
        lines.append(f"{r.endpoints:>9} {r.interval:>8g} {r.offered_per_s:>9.0f} {r.probes_per_s:>8.0f} {r.failed:>6} "
                     f"{r.latency_p50_ms:>7.2f} {r.latency_p99_ms:>7.2f} {r.late:>6} {r.new_connections:>9} "
                     f"{r.prober_cpu:>10.2f} {r.prober_cpu_us_per_probe:>8.0f} {r.server_cpu:>10.2f} {other:>9} "
                     f"{'met' if r.met else 'MISSED':>6}")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--endpoints", default="1000,10000", help="comma list of endpoint counts (one case each)")
    parser.add_argument("--interval", default="0.4,4", help="comma list of probe intervals in seconds, one per "
                        "endpoint count (or one for all)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (at least 1.5 intervals)")
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--server-procs", type=int, default=1)
    parser.add_argument("--ports-per-proc", type=int, default=4)
    parser.add_argument("--base-port", type=int, default=18400)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in _floats(args.endpoints)]
    intervals = _floats(args.interval)
    if len(intervals) == 1:
        intervals *= len(counts)
    if len(intervals) != len(counts):
        parser.error("--interval needs one value, or one per --endpoints value")
    servers = Servers(args.server_procs, args.ports_per_proc, args.base_port)
    results: list[CaseResult] = []
    try:
        for endpoints, interval in zip(counts, intervals):
            gc.collect()
            results.append(asyncio.run(run_case(servers, endpoints, interval, args.duration, args.warmup,
                                                args.concurrency)))
            print(render(results[-1:], header=len(results) == 1), flush=True)
    finally:
        servers.stop()
    info = machine()
    print(f"\nmachine: {info['cpus']} CPU(s), {info['cpu_model']}; Python {info['python']}, aiohttp {info['aiohttp']}")
    print(f"command: {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "target_probes_per_s": TARGET_RATE,
                                         "cases": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
