"""Benchmark: detection latency of the ProbeScheduler + SignalTracker path under full load.

Target (issue "Detection engine at scale"): a failure injected at a known instant; the time
until the verdict, minus interval x threshold. p99 of that overhead under 100 ms with 1,000
endpoints at a 1 s interval, so that a 250 ms interval and threshold 3 detects in under 1 s.

Local servers run in separate processes (as in ``probe_throughput.py``): a minimal asyncio
HTTP/1.1 keep-alive responder answering ``GET /e/<i>`` with 200 ``ok``. Each server holds a
schedule of failure windows ``(path, T_inject, T_heal)`` sent over a pipe ahead of time; a
request received in its endpoint's window is answered 503 (``--failure status``) or has its
connection closed (``--failure close``). All processes read the same wall clock, so T_inject
is known exactly.

The prober is this process: one :class:`~failover_engine.detection.scheduler.ProbeScheduler` (default
concurrency, jitter from :class:`~failover_engine.core.model.Detection`) probing every endpoint, and
one :class:`~failover_engine.detection.signals.SignalTracker` per endpoint fed from ``on_result``, as
``failover monitor`` does (``--with-metrics`` adds its Prometheus update per result). After a
warm-up every tracker is healthy; then each round picks ``--failing`` healthy endpoints at
random, fails them from T_inject until T_heal (long enough to detect), and waits for them to
recover; the other endpoints stay healthy and keep the prober at full load.

Per detection (the tracker's effective health turning unhealthy; times are wall clock):

* detection = ``detected_at`` - T_inject, and the issue's overhead = detection - interval x
  threshold. With a random probe phase the first failing probe comes on average interval / 2
  after T_inject, so the overhead of a perfect engine is negative on average; its p99 is not 0
  either, because each start moves by up to +-jitter x interval. The *ideal* row is a Monte
  Carlo of the scheduler's cadence with zero cost (same interval, jitter, threshold): the
  engine's share is the difference between the measured row and that one.
* engine delay = ``detected_at`` - ``first_failure_at`` - (threshold - 1) x interval (the first
  failing probe's start to the verdict); it still holds the jitter of two starts.
* own delay = lateness of the detecting probe (its start minus the time the scheduler had
  planned for it; read by overriding the scheduler's private ``_start``) + verdict delay (the
  detecting probe's start to the tracker's verdict: probe time, waiting for the event loop,
  tracker). This is the engine's own cost, free of phase and jitter.

False positives: an unhealthy verdict whose deciding probe (the one that reached the
threshold) did not start inside an injection window of that endpoint (must be 0). Also counted:
detections missed before T_heal, endpoints not healthy again after their window, failed probes
outside any window (by kind), and true detections whose streak began with such a stray failure
just before the window (left out of the rows that start from the first failing probe).

    .venv/bin/python bench/detection_latency.py                        # 1,000 endpoints at 1 s, then at 0.25 s
    .venv/bin/python bench/detection_latency.py --interval 0.25 --endpoints 2000 --json /tmp/d.json

Exit status: 0 when every case has p99 overhead under 100 ms, p99 detection under 1 s for a case
whose interval x threshold is under 1 s, no false positive, no missed detection and every healed
endpoint healthy again; 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from failover_engine.detection.health import Health  # noqa: E402
from failover_engine.core.model import Detection, HttpProbe  # noqa: E402
from failover_engine.detection.results import ProbeResult  # noqa: E402
from failover_engine.detection.scheduler import ProbeScheduler, ScheduledProbe  # noqa: E402
from failover_engine.detection.signals import SignalTracker  # noqa: E402
from probe_throughput import machine, machine_busy  # noqa: E402

TARGET_OVERHEAD_P99 = 0.100
TARGET_DETECTION_P99 = 1.0
SERVICE = "bench"
STALL_EVERY = 2.5
BUSY_MACHINE = 0.5
"""Other jobs using this much of a core during a case get a note under its figures."""

# --------------------------------------------------------------------------- local servers
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_DOWN = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\ndown"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"


class _Responder(asyncio.Protocol):
    """HTTP/1.1 keep-alive for bodiless GETs; fails a path inside one of its windows."""

    windows: dict[bytes, tuple[tuple[float, float], ...]] = {}  # replaced whole by the control thread
    close_on_failure = False
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
        now, windows, out = time.time(), _Responder.windows, []
        for request in requests:
            if not request.startswith(b"GET /e/"):
                out.append(_NOT_FOUND)
                continue
            spans = windows.get(request[4:request.find(b" ", 4)])
            if spans and any(start <= now < end for start, end in spans):
                if _Responder.close_on_failure:
                    self.transport.write(b"".join(out))
                    self.transport.close()
                    return
                out.append(_DOWN)
            else:
                out.append(_OK)
        self.transport.write(b"".join(out))


def _serve(ports: list[int], control: Any, close_on_failure: bool) -> None:
    """Child process: serve ``ports``; on ``control`` take ('fail', [(path, start, end)]) (answered
    'ok'), 'stats' (answered with CPU seconds used and connections accepted), anything else: exit."""
    _Responder.close_on_failure = close_on_failure

    def listen() -> None:
        while True:
            try:
                message = control.recv()
            except EOFError:
                os._exit(0)
            if message == "stats":
                control.send((time.process_time(), _Responder.connections))
            elif isinstance(message, tuple) and message[0] == "fail":
                windows = dict(_Responder.windows)
                for path, start, end in message[1]:
                    windows[path] = windows.get(path, ()) + ((start, end),)
                _Responder.windows = windows
                control.send("ok")
            else:
                os._exit(0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for port in ports:
            await loop.create_server(_Responder, "127.0.0.1", port, backlog=4096, reuse_address=True)
        control.send("ready")
        threading.Thread(target=listen, daemon=True).start()
        await asyncio.Event().wait()

    asyncio.run(main())


class Servers:
    """The server processes; each serves every ``procs``-th port and knows every window."""

    def __init__(self, procs: int, ports_per_proc: int, base_port: int, close_on_failure: bool):
        self.ports = [base_port + i for i in range(procs * ports_per_proc)]
        self._children: list[tuple[mp.Process, Any]] = []
        context = mp.get_context("spawn")
        for p in range(procs):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(self.ports[p::procs], child, close_on_failure),
                                      daemon=True)
            process.start()
            self._children.append((process, parent))
        for _unused, parent in self._children:
            if not parent.poll(30) or parent.recv() != "ready":
                raise SystemExit("a local server did not start")

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i % len(self.ports)]}/e/{i}"

    def fail(self, windows: list[tuple[int, float, float]]) -> None:
        """Schedule failure windows (endpoint index, start, end); returns once every server has them."""
        message = ("fail", [(f"/e/{i}".encode(), start, end) for i, start, end in windows])
        for _unused, parent in self._children:
            parent.send(message)
        for _unused, parent in self._children:
            if not parent.poll(10) or parent.recv() != "ok":
                raise SystemExit("a local server did not take its failure schedule")

    def stats(self) -> tuple[float, int]:
        """(CPU seconds, connections accepted), summed over the server processes."""
        cpu, connections = 0.0, 0
        for _unused, parent in self._children:
            parent.send("stats")
            c, n = parent.recv()
            cpu, connections = cpu + c, connections + n
        return cpu, connections

    def stop(self) -> None:
        for process, parent in self._children:
            try:
                parent.send("stop")
            except OSError:
                pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


# --------------------------------------------------------------------------- the prober side
class _TimedScheduler(ProbeScheduler):
    """A ProbeScheduler that remembers, per key, the loop time its running probe was due.

    Overrides the private ``_start`` (bench only): the lateness of a probe is its
    ``ProbeResult.at`` minus that planned start (converted to wall clock)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.planned: dict[str, float] = {}

    def _start(self, target: Any, start_at: float, now: float) -> None:  # type: ignore[override]
        self.planned[target.probe.key] = start_at
        super()._start(target, start_at, now)


@dataclass
class Detected:
    endpoint: str
    injected_at: float
    detected_at: float
    first_failure_at: float
    detecting_probe_at: float
    lateness: float | None
    early_streak: bool  # the failure streak began with a failure before the window (not the injection)


class Recorder:
    """The on_result callback: one SignalTracker per endpoint, plus what the benchmark needs."""

    def __init__(self, keys: list[str], detection: Detection, metrics: Any = None):
        self.detection = detection
        self.trackers = {key: SignalTracker(key, detection) for key in keys}
        self.health = dict.fromkeys(keys, Health.unknown)
        self.windows: dict[str, list[tuple[float, float]]] = {}
        self.planned: dict[str, float] = {}  # the _TimedScheduler's planned starts (loop clock)
        self.offset = time.time() - time.monotonic()  # wall - loop clock, refreshed by the case
        self.metrics = metrics
        self.measuring = False
        self.probes = 0
        self.lateness = array("d")
        self.detected: list[Detected] = []
        self.false_positives: list[dict[str, Any]] = []
        self.recovered: dict[tuple[str, float], float] = {}
        self.unexpected_failures: dict[str, int] = {}  # failed probes outside any window, by kind
        self.in_flight = array("i")  # probes in flight + queued, sampled every 10 ms
        self.loop_lag = array("d")  # how late a 10 ms sleep woke up

    def _window(self, key: str, at: float) -> tuple[float, float] | None:
        slack = self.detection.timeout  # a probe started just before T_inject may be answered after it
        for start, end in self.windows.get(key, ()):
            if start - slack <= at < end:
                return start, end
        return None

    def __call__(self, key: str, result: ProbeResult) -> None:
        verdict = self.trackers[key].observe(result)
        if self.metrics is not None:
            self.metrics.observe_probe(key, "local", result, verdict)
        lateness = None
        planned = self.planned.get(key)  # None if the scheduler's private hook went away
        if planned is not None:
            lateness = result.at - (planned + self.offset)
            if self.measuring:
                self.lateness.append(lateness)
        if self.measuring:
            self.probes += 1
        if not result.ok and self._window(key, result.at) is None:
            self.unexpected_failures[result.kind.value] = self.unexpected_failures.get(result.kind.value, 0) + 1
        if verdict.health is self.health[key]:
            return
        before, self.health[key] = self.health[key], verdict.health
        if verdict.health is Health.unhealthy:
            self._on_unhealthy(key, verdict, lateness)
        elif verdict.health is Health.healthy and before is Health.unhealthy:
            ended = [span for span in self.windows.get(key, ()) if span[1] <= result.at]
            if ended:  # the window that just ended
                self.recovered[(key, ended[-1][0])] = verdict.recovered_at - ended[-1][1]

    def _on_unhealthy(self, key: str, verdict: Any, lateness: float | None) -> None:
        """A verdict is true when the probe that reached the threshold fell in a failure window."""
        window = self._window(key, verdict.last.at)
        if window is None:
            self.false_positives.append({"endpoint": key, "detected_at": verdict.detected_at,
                                         "first_failure_at": verdict.first_failure_at, "reason": verdict.reason})
            return
        early = verdict.first_failure_at < window[0] - self.detection.timeout  # a stray failure began the streak
        self.detected.append(Detected(key, window[0], verdict.detected_at, verdict.first_failure_at,
                                      verdict.last.at, lateness, early))


# --------------------------------------------------------------------------- one case
@dataclass
class CaseSpec:
    endpoints: int
    failing: int
    interval: float
    threshold: int
    timeout: float
    jitter: float
    rounds: int
    warmup: float
    concurrency: int
    with_metrics: bool
    stall: float = 0.0  # block the prober's loop this long every STALL_EVERY seconds (0: never)

    @property
    def hold(self) -> float:
        """How long an injected failure lasts: detection needs at most threshold x interval plus
        jitter, lateness and one probe; twice the interval more is margin."""
        return (self.threshold + 2) * self.interval + self.timeout

    @property
    def settle(self) -> float:
        """Time for a healed endpoint to be healthy again (recovery_threshold probes), + margin."""
        return (Detection().recovery_threshold + 2) * self.interval + self.timeout

    def estimate(self) -> float:
        warm = max(self.warmup, 3 * self.interval + self.timeout)
        return warm + self.rounds * (0.3 + self.interval + self.hold + self.settle)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p90/p99 and max, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def rank(q: float) -> float:
        return round(ordered[max(0, -(-len(ordered) * q // 100) - 1)] * 1000, 1)

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": round(ordered[-1] * 1000, 1)}


def ideal_overhead(interval: float, jitter: float, threshold: int, samples: int = 100_000,
                   seed: int = 1) -> list[float]:
    """Overheads of a zero-cost engine with the scheduler's cadence: a grid ``interval`` apart
    at a uniformly random phase, each start moved by up to +-jitter x interval."""
    rng = random.Random(seed)
    out = []
    for _i in range(samples):
        phase = rng.random() * interval
        starts = [phase + k * interval + (rng.random() * 2 - 1) * jitter * interval for k in range(-1, threshold + 2)]
        out.append([s for s in starts if s >= 0][threshold - 1] - threshold * interval)
    return out


@dataclass
class CaseResult:
    spec: dict[str, Any]
    duration: float
    injected: int
    detected: int
    early_streaks: int
    missed: int
    not_recovered: int
    not_healthy_after_warmup: int
    false_positives: list[dict[str, Any]]
    unexpected_failed_probes: dict[str, int]
    probes_per_s: float
    late: int
    skipped: int
    new_connections: int
    in_flight_max: int
    gc_collections: int
    gc_pause_max_ms: float
    prober_cpu: float
    server_cpu: float
    other_cpu: float | None
    ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, bool] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return (all(self.targets.values()) and not self.false_positives and not self.missed
                and not self.not_recovered and not self.not_healthy_after_warmup)


class Diagnostics:
    """What a case measures around its rounds: CPU (prober, servers, other jobs), late rounds, new
    connections, GC pauses, and every 10 ms the probes in flight + queued and the loop's lag (how
    late a 10 ms sleep wakes). Also refreshes the recorder's wall - loop clock offset, and blocks the
    loop for ``stall`` seconds every STALL_EVERY s when asked (as a preempted process would)."""

    def __init__(self, scheduler: ProbeScheduler, servers: Servers, recorder: Recorder, stall: float):
        self.scheduler, self.servers, self.recorder, self.stall = scheduler, servers, recorder, stall
        self.gc_pauses: list[float] = []
        self._gc_start = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._before: tuple[Any, ...] = ()

    def watch_clock(self) -> None:
        self._tasks.append(asyncio.create_task(self._sample()))

    async def start(self) -> None:
        cpu = await asyncio.to_thread(self.servers.stats)
        self._before = (self.scheduler.late, self.scheduler.skipped, *cpu, os.times(), machine_busy(),
                        time.perf_counter())
        gc.callbacks.append(self._on_gc)
        if self.stall > 0:
            self._tasks.append(asyncio.create_task(self._block()))
        self.recorder.measuring = True

    async def stop(self) -> dict[str, Any]:
        self.recorder.measuring = False
        late0, skipped0, server0, connections0, cpu0, busy0, wall0 = self._before
        elapsed, cpu1, busy1 = time.perf_counter() - wall0, os.times(), machine_busy()
        gc.callbacks.remove(self._on_gc)
        server1, connections1 = await asyncio.to_thread(self.servers.stats)
        for task in self._tasks:
            task.cancel()
        prober, server = cpu1.user + cpu1.system - cpu0.user - cpu0.system, server1 - server0
        other = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - prober - server) / elapsed
        return dict(duration=round(elapsed, 1), probes_per_s=round(self.recorder.probes / elapsed, 1),
                    late=self.scheduler.late - late0, skipped=self.scheduler.skipped - skipped0,
                    new_connections=connections1 - connections0,
                    in_flight_max=max(self.recorder.in_flight, default=0), gc_collections=len(self.gc_pauses),
                    gc_pause_max_ms=round(max(self.gc_pauses, default=0.0) * 1000, 1),
                    prober_cpu=round(prober / elapsed, 3), server_cpu=round(server / elapsed, 3),
                    other_cpu=None if other is None else round(other, 2))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_start)

    async def _sample(self) -> None:
        loop, recorder = asyncio.get_running_loop(), self.recorder
        while True:
            recorder.offset = time.time() - loop.time()
            if recorder.measuring:
                recorder.in_flight.append(self.scheduler.in_flight + self.scheduler.queued)
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            if recorder.measuring:
                recorder.loop_lag.append(loop.time() - due)

    async def _block(self) -> None:
        while True:
            await asyncio.sleep(STALL_EVERY)
            time.sleep(self.stall)


async def _rounds(spec: CaseSpec, servers: Servers, recorder: Recorder, keys: list[str], rng: random.Random) -> int:
    """Inject, wait for detection and recovery, ``spec.rounds`` times; returns endpoints injected."""
    injected = 0
    for _i in range(spec.rounds):
        busy = {k for k, spans in recorder.windows.items() if spans and spans[-1][1] > time.time()}
        pool = [i for i, k in enumerate(keys) if recorder.health[k] is Health.healthy and k not in busy]
        sample = rng.sample(pool, min(spec.failing, len(pool)))
        start = time.time() + 0.3 + rng.random() * spec.interval
        end = start + spec.hold
        for i in sample:
            recorder.windows.setdefault(keys[i], []).append((start, end))
        await asyncio.to_thread(servers.fail, [(i, start, end) for i in sample])
        injected += len(sample)
        await asyncio.sleep(end + spec.settle - time.time())
    return injected


async def run_case(spec: CaseSpec, servers: Servers, seed: int) -> CaseResult:
    detection = Detection(interval=spec.interval, timeout=spec.timeout, failure_threshold=spec.threshold,
                          jitter=spec.jitter)
    keys = [f"{SERVICE}/e{i}" for i in range(spec.endpoints)]
    metrics = None
    if spec.with_metrics:
        from failover_engine.engine.monitor_metrics import MonitorMetrics

        metrics = MonitorMetrics()
    recorder = Recorder(keys, detection, metrics)
    scheduler = _TimedScheduler(recorder, concurrency=spec.concurrency)
    recorder.planned = scheduler.planned
    scheduler.set_targets([ScheduledProbe(key, HttpProbe(url=servers.url(i)), detection.interval, detection.timeout,
                                          detection.latency_limit, detection.jitter) for i, key in enumerate(keys)])
    gc.collect()
    gc.freeze()  # as `failover monitor` does once its targets are loaded
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduler.run(stop))
    diagnostics = Diagnostics(scheduler, servers, recorder, spec.stall)
    diagnostics.watch_clock()
    await asyncio.sleep(max(spec.warmup, 3 * spec.interval + spec.timeout))
    not_healthy = sum(h is not Health.healthy for h in recorder.health.values())
    await diagnostics.start()
    injected = await _rounds(spec, servers, recorder, keys, random.Random(seed))
    measured = await diagnostics.stop()
    stop.set()
    await runner
    gc.unfreeze()
    windows = {(k, s[0]) for k, spans in recorder.windows.items() for s in spans}
    result = CaseResult(
        spec=asdict(spec), injected=injected, detected=len(recorder.detected),
        early_streaks=sum(x.early_streak for x in recorder.detected),
        missed=injected - len({(d.endpoint, d.injected_at) for d in recorder.detected}),
        not_recovered=len(windows - set(recorder.recovered)), not_healthy_after_warmup=not_healthy,
        false_positives=recorder.false_positives, unexpected_failed_probes=recorder.unexpected_failures, **measured)
    summarise(result, recorder, spec)
    return result


def summarise(result: CaseResult, recorder: Recorder, spec: CaseSpec) -> None:
    """Fill the percentiles (ms), the samples and the targets of ``result``."""
    d = recorder.detected
    budget, streak = spec.interval * spec.threshold, (spec.threshold - 1) * spec.interval
    rows: dict[str, list[float]] = {
        "detection": [x.detected_at - x.injected_at for x in d],
        "overhead": [x.detected_at - x.injected_at - budget for x in d],
        "ideal_overhead": ideal_overhead(spec.interval, spec.jitter, spec.threshold),
        "first_failure_after_injection": [x.first_failure_at - x.injected_at for x in d if not x.early_streak],
        "engine_delay": [x.detected_at - x.first_failure_at - streak for x in d if not x.early_streak],
        "verdict_delay": [x.detected_at - x.detecting_probe_at for x in d],
        "recovery": list(recorder.recovered.values()),
        "own_delay": [x.detected_at - x.detecting_probe_at + x.lateness for x in d if x.lateness is not None],
        "lateness_detecting_probe": [x.lateness for x in d if x.lateness is not None],
        "lateness_every_probe": list(recorder.lateness),
        "loop_lag": list(recorder.loop_lag),
    }
    result.ms = {name: percentiles(values) for name, values in rows.items()}
    result.samples = [asdict(x) for x in d]
    overhead_p99, detection_p99 = result.ms["overhead"]["p99"], result.ms["detection"]["p99"]
    result.targets["overhead_p99_under_100ms"] = overhead_p99 is not None and overhead_p99 < TARGET_OVERHEAD_P99 * 1000
    if budget < TARGET_DETECTION_P99:
        result.targets["detection_p99_under_1s"] = (detection_p99 is not None
                                                    and detection_p99 < TARGET_DETECTION_P99 * 1000)


# --------------------------------------------------------------------------- report
ROWS = [
    ("detection", "detection: verdict - injection"),
    ("overhead", "overhead: detection - interval x threshold"),
    ("ideal_overhead", "  same for a zero-cost engine (model)"),
    ("first_failure_after_injection", "first failing probe - injection"),
    ("engine_delay", "engine delay: verdict - first failing probe - (thr-1) x int"),
    ("own_delay", "own delay: lateness + verdict delay"),
    ("lateness_detecting_probe", "  lateness of the detecting probe"),
    ("verdict_delay", "  verdict delay: detecting probe start - verdict"),
    ("lateness_every_probe", "lateness, every probe"),
    ("loop_lag", "event loop lag (a 10 ms sleep, sampled)"),
    ("recovery", "recovery: healthy verdict - heal"),
]


def render(r: CaseResult) -> str:
    s = r.spec
    stalled = f", loop blocked {s['stall']:g} s every {STALL_EVERY:g} s" if s["stall"] else ""
    lines = [f"{s['endpoints']} endpoints, interval {s['interval']:g} s, threshold {s['threshold']}, timeout "
             f"{s['timeout']:g} s, jitter {s['jitter']:g}; {s['failing']} failing x {s['rounds']} rounds"
             f"{', with metrics' if s['with_metrics'] else ''}{stalled}; {r.duration:g} s measured",
             f"  injected {r.injected}, detected {r.detected} ({r.early_streaks} after a stray failure), missed "
             f"{r.missed}, false positives "
             f"{len(r.false_positives)}, not recovered {r.not_recovered}, not healthy after warm-up "
             f"{r.not_healthy_after_warmup}, failed probes outside windows "
             f"{sum(r.unexpected_failed_probes.values())} {r.unexpected_failed_probes or ''}",
             f"  {r.probes_per_s:g} probes/s, late rounds {r.late} (skipped {r.skipped}), in flight max "
             f"{r.in_flight_max}, new connections {r.new_connections}, GC {r.gc_collections} (longest "
             f"{r.gc_pause_max_ms:g} ms), CPU: prober {r.prober_cpu:.2f} "
             f"({r.prober_cpu / max(r.probes_per_s, 1) * 1e6:.0f} us/probe), servers {r.server_cpu:.2f}, other jobs "
             f"{'-' if r.other_cpu is None else f'{r.other_cpu:.2f}'}",
             f"  {'milliseconds':<62}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"]
    for key, label in ROWS:
        if key in r.ms:
            cells = "".join("        -" if v is None else f"{v:>8.1f}" for v in r.ms[key].values())
            lines.append(f"  {label:<62}{cells}")
    for name, ok in r.targets.items():
        lines.append(f"  target {name}: {'met' if ok else 'MISSED'}")
    if r.other_cpu is not None and r.other_cpu >= BUSY_MACHINE:
        lines.append(f"  note: other jobs used {r.other_cpu:.2f} of a core meanwhile: these figures measure a starved "
                     "prober as much as the engine")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--endpoints", default="1000", help="endpoints per case: one value, or a comma list "
                        "with one value per --interval")
    parser.add_argument("--interval", default="1,0.25", help="comma list of probe intervals in seconds, one case each")
    parser.add_argument("--failing", type=int, default=200, help="endpoints failed per round")
    parser.add_argument("--rounds", type=int, default=5, help="injection rounds per case")
    parser.add_argument("--threshold", type=int, default=3, help="failure_threshold")
    parser.add_argument("--timeout", type=float, help="probe timeout (default: min(0.5, 0.8 x interval))")
    parser.add_argument("--jitter", type=float, default=Detection().jitter, help="Detection.jitter")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the first injection")
    parser.add_argument("--concurrency", type=int, default=512, help="ProbeScheduler concurrency (its default)")
    parser.add_argument("--failure", choices=("status", "close"), default="status",
                        help="how a failing endpoint answers: 503, or closing the connection")
    parser.add_argument("--with-metrics", action="store_true", help="also update the monitor's Prometheus metrics "
                        "per result, as `failover monitor` does")
    parser.add_argument("--stall", type=float, default=0.0, help=f"block the prober's event loop this many seconds "
                        f"every {STALL_EVERY:g} s (default 0: never)")
    parser.add_argument("--server-procs", type=int, default=1)
    parser.add_argument("--ports-per-proc", type=int, default=4)
    parser.add_argument("--base-port", type=int, default=18600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results (with every detection) here")
    return parser


def _specs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[CaseSpec]:
    intervals = _floats(args.interval)
    counts = [int(n) for n in _floats(args.endpoints)]
    if len(counts) == 1:
        counts *= len(intervals)
    if len(counts) != len(intervals):
        parser.error("--endpoints needs one value, or one per --interval value")
    if not 1 <= args.failing or args.rounds < 1:
        parser.error("--failing and --rounds must be at least 1")
    return [CaseSpec(endpoints=n, failing=min(args.failing, n), interval=t, threshold=args.threshold,
                     timeout=args.timeout or round(min(0.5, 0.8 * t), 3), jitter=args.jitter, rounds=args.rounds,
                     warmup=args.warmup, concurrency=args.concurrency, with_metrics=args.with_metrics,
                     stall=args.stall)
            for n, t in zip(counts, intervals)]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    specs = _specs(args, parser)
    print(f"about {sum(s.estimate() for s in specs):.0f} s for {len(specs)} case(s)", file=sys.stderr, flush=True)
    servers = Servers(args.server_procs, args.ports_per_proc, args.base_port, args.failure == "close")
    results: list[CaseResult] = []
    try:
        for n, spec in enumerate(specs):
            case = asyncio.wait_for(run_case(spec, servers, args.seed + n), timeout=2 * spec.estimate() + 30)
            results.append(asyncio.run(case))
            print(render(results[-1]) + "\n", flush=True)
    finally:
        servers.stop()
    info = machine()
    print(f"machine: {info['cpus']} CPU(s), {info['cpu_model']}; Python {info['python']}, aiohttp {info['aiohttp']}")
    print(f"command: {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "failure": args.failure,
                                         "cases": [asdict(r) | {"met": r.met} for r in results]}, indent=2) + "\n")
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
