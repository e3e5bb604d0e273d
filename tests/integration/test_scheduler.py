"""ProbeScheduler against real local servers: cadence, spread, no doubling, retargeting while
running, bounded concurrency with connection reuse, prompt stop, and scale without a task per target."""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from failover_engine.core.model import HttpProbe, PythonProbe, TcpProbe
from failover_engine.detection.results import FailureKind, ProbeResult
from failover_engine.detection import scheduler as scheduler_module
from failover_engine.detection.scheduler import ProbeScheduler, ScheduledProbe

pytestmark = pytest.mark.integration

SLACK = 0.03  # event-loop and thread-server latency allowed on top of the jitter (the machine is shared)


class Recorder:
    """on_result: every (key, result, time of the callback)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ProbeResult, float]] = []

    def __call__(self, key: str, result: ProbeResult) -> None:
        self.calls.append((key, result, time.time()))

    def starts(self, key: str) -> list[float]:
        return [r.at for k, r, _unused in self.calls if k == key]

    def keys(self) -> set[str]:
        return {k for k, _unused, _unused in self.calls}


def run_scheduler(scheduler: ProbeScheduler, seconds: float,
                  during: Callable[[ProbeScheduler], Awaitable[None]] | None = None) -> float:
    """Run ``scheduler`` for ``seconds`` (or while ``during`` runs); return when it started (time.time())."""

    async def main() -> float:
        stop = asyncio.Event()
        started = time.time()
        task = asyncio.create_task(scheduler.run(stop))
        if during is not None:
            await during(scheduler)
        else:
            await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait_for(task, 2.0)
        return started

    return asyncio.run(main())


def target(key: str, url: str, interval: float, *, timeout: float = 1.0, jitter: float = 0.0) -> ScheduledProbe:
    return ScheduledProbe(key, HttpProbe(url=url), interval, timeout, jitter=jitter)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


# --------------------------------------------------------------------------- cadence
def test_cadence_keeps_the_interval_without_drift(local_http_server):
    server = local_http_server()
    interval, jitter = 0.2, 0.1
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)
    scheduler.set_targets([target("a", server.url, interval, jitter=jitter), target("b", server.url + "/b", interval)])
    run_scheduler(scheduler, 2.3)
    for key in ("a", "b"):
        starts = recorder.starts(key)
        assert len(starts) >= 9, key
        # the jitter is a fixed offset per target: every gap is the interval, on a grid without drift
        assert all(abs(g - interval) <= SLACK for g in gaps(starts)), (key, gaps(starts))
        assert all(abs(t - starts[0] - k * interval) <= SLACK for k, t in enumerate(starts)), key
    assert all(r.ok for _unused, r, _unused in recorder.calls)
    assert scheduler.late == 0 and scheduler.probes_done == len(recorder.calls)


def test_jitter_offsets_differ_between_targets_and_stay_within_bounds():
    """Each target draws its own offset once (within ±jitter x interval): targets stay apart."""
    from failover_engine.detection.scheduler import _Target

    scheduler = ProbeScheduler(lambda key, result: None)
    spec = HttpProbe(url="http://127.0.0.1:9/")
    targets = [_Target(ScheduledProbe(f"t{i}", spec, 1.0, 0.5, jitter=0.2)) for i in range(200)]
    for t in targets:
        scheduler._schedule_first(t, 100.0)
    offsets = [t.offset for t in targets]
    assert all(-0.2 <= o <= 0.2 for o in offsets) and len(set(offsets)) > 150


def test_first_starts_are_spread_over_the_interval(local_http_server):
    server = local_http_server()
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)
    scheduler.set_targets([target(f"t{i}", f"{server.url}/{i}", 1.0) for i in range(60)])
    started = run_scheduler(scheduler, 1.1)
    firsts = [min(recorder.starts(f"t{i}")) - started for i in range(60)]
    assert all(-0.01 <= f <= 1.0 + SLACK for f in firsts)
    assert len({int(f * 10) for f in firsts}) >= 7  # 60 uniform starts leave at most a few tenths empty
    assert max(firsts) - min(firsts) > 0.6


def test_a_slow_probe_is_not_doubled(local_http_server):
    server = local_http_server(delay=0.45)
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)
    scheduler.set_targets([target("slow", server.url, 0.1, timeout=2.0)])
    run_scheduler(scheduler, 1.3)
    assert server.max_in_flight == 1
    assert 2 <= len(server.requests) <= 3
    assert scheduler.skipped >= 6 and scheduler.late == scheduler.skipped
    assert all(r.ok for _unused, r, _unused in recorder.calls)


def test_rounds_that_start_more_than_an_interval_late_count_as_late(local_http_server):
    server = local_http_server()
    blocked: list[bool] = []

    def block_once(key: str, result: ProbeResult) -> None:
        if not blocked:
            blocked.append(True)
            time.sleep(0.35)  # a callback that blocks the loop (which it must not do)

    scheduler = ProbeScheduler(block_once)
    scheduler.set_targets([target("a", server.url, 0.1)])
    run_scheduler(scheduler, 0.9)
    assert scheduler.late > scheduler.skipped  # one round ran late, the ones behind it were skipped
    assert scheduler.skipped >= 1


# --------------------------------------------------------------------------- targets while running
def test_set_targets_adds_removes_and_replaces_while_running(local_http_server):
    server = local_http_server()
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)
    interval = 0.1
    a, b, c = (target(k, f"{server.url}/{k}", interval) for k in "abc")
    b2 = target("b", f"{server.url}/b2", interval)
    marks: dict[str, float] = {}

    async def retarget(s: ProbeScheduler) -> None:
        await asyncio.sleep(0.5)
        marks["switch"] = time.time()
        s.set_targets([b, c])
        await asyncio.sleep(0.5)
        marks["replace"] = time.time()
        s.set_targets([b2, c])
        await asyncio.sleep(0.5)

    scheduler.set_targets([a, b])
    run_scheduler(scheduler, 0, retarget)
    assert [t for k, _unused, t in recorder.calls if k == "a"] and all(
        t < marks["switch"] for k, _unused, t in recorder.calls if k == "a")
    c_starts = recorder.starts("c")
    assert c_starts and marks["switch"] <= c_starts[0] <= marks["switch"] + interval + SLACK
    assert len(c_starts) >= 8
    b_starts = recorder.starts("b")
    assert len(b_starts) >= 12 and max(gaps(b_starts)) <= interval + SLACK  # b kept its cadence throughout
    b_paths = [path for _unused, path, _unused in server.requests if path in ("/b", "/b2")]
    switched = b_paths.index("/b2")
    assert set(b_paths[:switched]) == {"/b"} and set(b_paths[switched:]) == {"/b2"}  # the new URL from then on
    assert b_paths.count("/b2") >= 4
    assert sorted(scheduler.targets) == ["b", "c"] and scheduler.targets["b"] == b2


def test_unchanged_targets_keep_their_schedule_on_reload(local_http_server):
    server = local_http_server()
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)
    probe = target("a", server.url, 0.3)

    async def reload_often(s: ProbeScheduler) -> None:
        for _i in range(20):
            await asyncio.sleep(0.05)
            s.set_targets([probe])  # what a strategy reload with no change does

    scheduler.set_targets([probe])
    run_scheduler(scheduler, 0, reload_often)
    starts = recorder.starts("a")
    assert 3 <= len(starts) <= 4 and all(abs(g - 0.3) <= SLACK for g in gaps(starts))


def test_results_of_removed_targets_are_dropped(local_http_server):
    server = local_http_server(delay=0.3)
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)

    async def remove_while_in_flight(s: ProbeScheduler) -> None:
        while s.in_flight == 0:
            await asyncio.sleep(0.01)
        s.set_targets([])
        await asyncio.sleep(0.5)

    scheduler.set_targets([target("gone", server.url, 1.0)])
    run_scheduler(scheduler, 0, remove_while_in_flight)
    assert scheduler.probes_done == 1 and recorder.calls == []


def test_duplicate_keys_and_invalid_targets_are_refused():
    scheduler = ProbeScheduler(Recorder())
    spec = TcpProbe(host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="duplicate scheduled probe key 'x'"):
        scheduler.set_targets([ScheduledProbe("x", spec, 1, 1), ScheduledProbe("x", spec, 2, 1)])
    with pytest.raises(ValueError, match="interval must be positive.*jitter must be between"):
        ScheduledProbe("y", spec, 0, 1, jitter=0.7)
    with pytest.raises(ValueError, match="concurrency"):
        ProbeScheduler(Recorder(), concurrency=0)


# --------------------------------------------------------------------------- concurrency, connections
def test_concurrency_is_bounded_and_connections_are_reused(local_http_server):
    server = local_http_server(delay=0.1)
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder, concurrency=4)
    seen = {"in_flight": 0, "queued": 0}

    async def watch(s: ProbeScheduler) -> None:
        deadline = time.monotonic() + 1.6
        while time.monotonic() < deadline:
            seen["in_flight"] = max(seen["in_flight"], s.in_flight)
            seen["queued"] = max(seen["queued"], s.queued)
            await asyncio.sleep(0.005)

    scheduler.set_targets([target(f"t{i}", f"{server.url}/{i}", 0.5, timeout=2.0) for i in range(24)])
    run_scheduler(scheduler, 0, watch)
    assert server.max_in_flight <= 4 and seen["in_flight"] <= 4
    assert seen["queued"] > 0  # 24 probes of 0.1 s every 0.5 s through 4 slots: some wait
    assert len(server.connections) <= 4  # one shared keep-alive pool
    assert len(recorder.calls) >= 40 and all(r.ok for _unused, r, _unused in recorder.calls)


def test_source_address_binds_every_connection(local_http_server):
    server = local_http_server()
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder, source_address="127.0.0.2")
    scheduler.set_targets([target(f"t{i}", f"{server.url}/{i}", 0.2) for i in range(5)])
    run_scheduler(scheduler, 0.5)
    assert recorder.calls and all(r.ok for _unused, r, _unused in recorder.calls)
    assert {ip for ip, _unused in server.connections} == {"127.0.0.2"}


# --------------------------------------------------------------------------- stop, errors
def test_stop_is_prompt_with_probes_in_flight(local_http_server):
    server = local_http_server(delay=5.0)
    scheduler = ProbeScheduler(Recorder())
    timing: dict[str, float] = {}

    async def stop_mid_probe() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        while scheduler.in_flight < 3:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        stop.set()
        await asyncio.wait_for(task, 2.0)
        timing["stop"] = time.perf_counter() - started

    scheduler.set_targets([target(f"t{i}", f"{server.url}/{i}", 0.3, timeout=10.0) for i in range(3)])
    asyncio.run(stop_mid_probe())
    assert timing["stop"] < 0.3
    assert (scheduler.in_flight, scheduler.probes_done, scheduler.queued) == (0, 0, 0)


def test_stop_while_idle_is_prompt():
    scheduler = ProbeScheduler(Recorder())
    scheduler.set_targets([ScheduledProbe("x", TcpProbe(host="127.0.0.1", port=1), 60.0, 1.0)])
    started = time.perf_counter()
    run_scheduler(scheduler, 0.1)
    assert time.perf_counter() - started < 0.4


def test_a_failing_callback_does_not_stop_probing(local_http_server):
    server = local_http_server()

    def broken(key: str, result: ProbeResult) -> None:
        raise RuntimeError("consumer bug")

    scheduler = ProbeScheduler(broken)
    scheduler.set_targets([target("a", server.url, 0.1)])
    run_scheduler(scheduler, 0.6)
    assert scheduler.probes_done >= 4 and scheduler.callback_errors == scheduler.probes_done


# --------------------------------------------------------------------------- kinds and scale
def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"sched_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_mixed_probe_kinds(silent_tcp_server, closed_port, tmp_path, monkeypatch):
    module = _module(tmp_path, monkeypatch, "def lag(limit):\n    return 3 <= limit, 'lag 3s'\n")
    host, port = silent_tcp_server
    recorder = Recorder()
    scheduler = ProbeScheduler(recorder)
    scheduler.set_targets([
        ScheduledProbe("tcp-up", TcpProbe(host=host, port=port), 0.2, 0.5),
        ScheduledProbe("tcp-down", TcpProbe(host="127.0.0.1", port=closed_port), 0.2, 0.5),
        ScheduledProbe("lag-ok", PythonProbe(entry_point=f"{module}:lag", args={"limit": 5}), 0.2, 0.5),
        ScheduledProbe("lag-bad", PythonProbe(entry_point=f"{module}:lag", args={"limit": 1}), 0.2, 0.5),
    ])
    run_scheduler(scheduler, 0.5)
    kinds = {k: r.kind for k, r, _unused in recorder.calls}
    assert kinds == {"tcp-up": FailureKind.none, "tcp-down": FailureKind.refused, "lag-ok": FailureKind.none,
                     "lag-bad": FailureKind.check}


def test_ten_thousand_targets_without_a_task_each(tmp_path, monkeypatch):
    module = _module(tmp_path, monkeypatch, "async def ok():\n    return True\n")
    spec = PythonProbe(entry_point=f"{module}:ok")
    counts: dict[str, int] = {}

    def count(key: str, result: ProbeResult) -> None:
        counts[key] = counts.get(key, 0) + 1

    scheduler = ProbeScheduler(count)
    scheduler.set_targets([ScheduledProbe(f"t{i}", spec, 2.0, 1.0) for i in range(10_000)])
    tasks_seen: list[int] = []

    async def sample(s: ProbeScheduler) -> None:
        for _i in range(25):
            await asyncio.sleep(0.1)
            tasks_seen.append(len(asyncio.all_tasks()))

    run_scheduler(scheduler, 0, sample)
    assert max(tasks_seen) < 600  # the dispatcher and the probes in flight, not one task per target
    assert len(counts) >= 9_500  # nearly every target started within 2.5 s (first starts spread over 2 s)
    assert scheduler.late == 0 and scheduler.callback_errors == 0


def test_a_timeout_that_fires_late_on_a_starved_loop_is_not_counted(silent_tcp_server, monkeypatch):
    """An endpoint that never answers times out normally; the same timeout firing long after it was
    due (the loop blocked) is dropped as `starved` instead of counted against the endpoint."""
    host, port = silent_tcp_server  # accepts, never answers: an HTTP probe times out
    results: list[ProbeResult] = []
    waiting = [0]  # probes inside run_probe now (their start time already taken by the scheduler)
    real_run_probe = scheduler_module.run_probe

    async def counted(spec, *, timeout, **kwargs):
        waiting[0] += 1
        try:
            return await real_run_probe(spec, timeout=timeout, **kwargs)
        finally:
            waiting[0] -= 1

    monkeypatch.setattr(scheduler_module, "run_probe", counted)

    def on_result(key: str, result: ProbeResult) -> None:
        results.append(result)

    async def starve(scheduler: ProbeScheduler) -> None:
        await asyncio.sleep(0.45)        # normal rounds: real timeouts (0.1 s) are delivered
        delivered = len(results)
        assert delivered >= 1 and all(r.kind is FailureKind.timeout for r in results)
        while waiting[0] == 0:           # a probe is waiting for its timeout...
            await asyncio.sleep(0.002)
        time.sleep(0.6)                  # ...and the loop is blocked: that timeout fires ~0.5 s late
        await asyncio.sleep(0.02)
        assert scheduler.starved >= 1

    scheduler = ProbeScheduler(on_result)
    scheduler.set_targets([ScheduledProbe("silent", HttpProbe(url=f"http://{host}:{port}/"), 0.15, 0.1)])
    run_scheduler(scheduler, 0, during=starve)
    assert scheduler.stats()["starved"] == scheduler.starved >= 1
    assert scheduler.probes_done == len(results) + scheduler.starved
