"""Probe thousands of endpoints, each on its own cadence, with bounded concurrency.

:class:`ProbeScheduler` keeps one heap of next start times for every target (a timer wheel in
spirit: one dispatcher task sleeps until the earliest start, not one sleeping task per target)
and starts each due probe as a task, at most ``concurrency`` at once; the others wait in a FIFO
queue for a free slot. Every HTTP probe goes through one shared aiohttp session (keep-alive
pool of ``concurrency`` connections), so a target probed every few seconds reuses its connection.

Cadence: a target's rounds are ``interval`` apart on a fixed grid (the next round is the
previous *scheduled* start plus ``interval``, whatever the probe took), the first round falls
at a random point of the first interval (so that targets added together do not probe together),
and each start is moved by up to ±``jitter`` × ``interval`` around its grid point (the jitter
does not accumulate). A target whose previous probe is still running (or still waiting for a
slot) when its next round is due is not probed twice: that round is skipped and counted in
``late``, like a round that started more than one interval after its scheduled time.

A timeout that fires long after it was due (a starved event loop: CPU, a blocking callback) is
not the endpoint's fault: such a result is dropped and counted in ``starved``, so an overloaded
prober does not call healthy endpoints down.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Callable

import aiohttp

from failover_engine.detection.probes import AnyProbe, probe_session, run_probe
from failover_engine.detection.results import FailureKind, ProbeResult

log = logging.getLogger(__name__)

ResultCallback = Callable[[str, ProbeResult], None]

_BATCH_WINDOW = 0.001
"""Starts due within this many seconds of now are dispatched in the same pass."""
STARVED_FACTOR, STARVED_SLACK = 1.5, 0.1
"""A timeout result that took longer than timeout x FACTOR + SLACK seconds fired late: the loop was
starved, and the result is not counted against the endpoint (``starved`` in the stats)."""


@dataclass(frozen=True)
class ScheduledProbe:
    """One target: probe ``spec`` every ``interval`` seconds, each probe bounded by ``timeout``.

    ``key`` names the target in results (unique within a scheduler); ``latency_limit`` makes a
    slower answer a failure (kind ``slow``); ``jitter`` is the fraction of the interval by which
    each start may move either way (0 to 0.5).
    """

    key: str
    spec: AnyProbe
    interval: float
    timeout: float
    latency_limit: float | None = None
    jitter: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if math.isnan(self.interval) or self.interval <= 0:
            problems.append(f"interval must be positive (got {self.interval})")
        if math.isnan(self.timeout) or self.timeout <= 0:
            problems.append(f"timeout must be positive (got {self.timeout})")
        if not 0 <= self.jitter <= 0.5:
            problems.append(f"jitter must be between 0 and 0.5 (got {self.jitter})")
        if problems:
            raise ValueError(f"scheduled probe {self.key!r}: " + "; ".join(problems))


class _Target:
    """Scheduling state of one key. ``generation`` changes when the target is replaced or
    removed: heap entries and results of an older generation are then ignored."""

    __slots__ = ("probe", "generation", "busy", "removed", "grid", "offset")

    def __init__(self, probe: ScheduledProbe):
        self.probe = probe
        self.generation = 0
        self.busy = False  # a probe is running or waiting for a slot
        self.removed = False
        self.grid: float | None = None  # grid point of the pending round
        self.offset = 0.0  # this target's jitter: drawn once, so its cadence stays exact


# heap entry: (start at, sequence, grid point, target, generation); the sequence breaks ties
_Entry = tuple[float, int, float, _Target, int]


class ProbeScheduler:
    """Runs :class:`ScheduledProbe` s until stopped and hands every result to ``on_result``.

    ``on_result(key, result)`` is called in the event loop thread after each probe (not for
    targets removed or replaced meanwhile); it must be cheap and must not block. An exception
    it raises is logged and counted in ``callback_errors``, and probing goes on.

    Stats (read at any time): ``probes_done``, ``in_flight``, ``queued`` (due, waiting for a
    slot), ``late`` (rounds skipped because the previous probe still ran, plus rounds that
    started more than one interval late), ``skipped`` (the first part of ``late``).
    """

    def __init__(self, on_result: ResultCallback, *, concurrency: int = 512, source_address: str | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.on_result = on_result
        self.concurrency = concurrency
        self.source_address = source_address
        self.probes_done = 0
        self.in_flight = 0
        self.late = 0
        self.skipped = 0
        self.starved = 0  # timeouts that fired long after due (a starved loop): not delivered
        self.callback_errors = 0
        self._targets: dict[str, _Target] = {}
        self._heap: list[_Entry] = []
        self._ready: deque[tuple[_Target, float]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = 0
        self._random = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wakeup: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ targets
    @property
    def targets(self) -> dict[str, ScheduledProbe]:
        return {key: target.probe for key, target in self._targets.items()}

    @property
    def queued(self) -> int:
        return len(self._ready)

    def stats(self) -> dict[str, int]:
        return {"targets": len(self._targets), "probes_done": self.probes_done, "in_flight": self.in_flight,
                "queued": self.queued, "late": self.late, "skipped": self.skipped, "starved": self.starved,
                "callback_errors": self.callback_errors}

    def set_targets(self, probes: list[ScheduledProbe]) -> None:
        """Make ``probes`` the watched set: new keys start (spread over their first interval),
        missing keys stop, changed ones take effect from their next round (a changed interval
        re-spreads the target). Unchanged targets keep their cadence. Call it before :meth:`run`
        or from the event loop thread while it runs."""
        wanted: dict[str, ScheduledProbe] = {}
        for probe in probes:
            if probe.key in wanted:
                raise ValueError(f"duplicate scheduled probe key {probe.key!r}")
            wanted[probe.key] = probe
        for key in [k for k in self._targets if k not in wanted]:
            target = self._targets.pop(key)
            target.removed = True
            target.generation += 1
        now = self._loop.time() if self._loop is not None else None
        for key, probe in wanted.items():
            target = self._targets.get(key)
            if target is None:
                target = self._targets[key] = _Target(probe)
                if now is not None:
                    self._schedule_first(target, now)
            elif target.probe != probe:
                old, target.probe = target.probe, probe
                target.generation += 1
                if now is not None:
                    self._reschedule(target, old, now)
        self._wake()

    def _schedule_first(self, target: _Target, now: float) -> None:
        probe = target.probe
        grid = now + self._random.random() * probe.interval
        # jitter drawn once per target (not per round): targets stay spread apart while each keeps
        # an exact interval, so detection time is not stretched by a fresh draw every round
        target.offset = (self._random.random() * 2 - 1) * probe.jitter * probe.interval
        self._push(target, grid, not_before=now)

    def _reschedule(self, target: _Target, old: ScheduledProbe, now: float) -> None:
        if target.grid is None or old.interval != target.probe.interval:
            self._schedule_first(target, now)
        else:
            self._push(target, target.grid, not_before=now)

    def _push(self, target: _Target, grid: float, not_before: float = float("-inf")) -> None:
        start = grid + target.offset
        self._sequence += 1
        target.grid = grid
        heapq.heappush(self._heap, (max(start, not_before), self._sequence, grid, target, target.generation))

    # ------------------------------------------------------------------ running
    async def run(self, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set; then cancel the probes in flight and close the session."""
        if self._loop is not None:
            raise RuntimeError("this ProbeScheduler is already running")
        loop = self._loop = asyncio.get_running_loop()
        self._session = probe_session(self.concurrency, self.source_address)
        self._heap.clear()
        now = loop.time()
        for target in self._targets.values():
            target.generation += 1
            self._schedule_first(target, now)
        stop_watch = loop.create_task(stop.wait())
        stop_watch.add_done_callback(lambda _unused: self._wake())
        try:
            while not stop.is_set():
                self._dispatch(loop.time())
                await self._sleep(loop)
        finally:
            stop_watch.cancel()
            await self._shutdown()

    async def _sleep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until the earliest start, or until woken (targets changed, stop)."""
        self._wakeup = loop.create_future()
        timer = loop.call_at(self._heap[0][0], self._wake) if self._heap else None
        try:
            await self._wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _dispatch(self, now: float) -> None:
        """Start (or queue) every probe due now and schedule each target's next round."""
        heap = self._heap
        horizon = now + _BATCH_WINDOW
        while heap and heap[0][0] <= horizon:
            start_at, _unused, grid, target, generation = heapq.heappop(heap)
            if generation != target.generation:
                continue  # removed or replaced since
            if target.busy:
                self.late += 1
                self.skipped += 1
            else:
                target.busy = True
                if self.in_flight < self.concurrency:
                    self._start(target, start_at, now)
                else:
                    self._ready.append((target, start_at))
            self._push(target, grid + target.probe.interval)

    def _start(self, target: _Target, start_at: float, now: float) -> None:
        if now - start_at > target.probe.interval:
            self.late += 1
        self.in_flight += 1
        assert self._loop is not None
        task = self._loop.create_task(self._probe(target, target.generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _free_slot(self) -> None:
        self.in_flight -= 1
        if not self._ready:
            return
        assert self._loop is not None
        now = self._loop.time()
        while self._ready and self.in_flight < self.concurrency:
            target, start_at = self._ready.popleft()
            if target.removed:
                target.busy = False
                continue
            self._start(target, start_at, now)  # with the target's current spec

    async def _probe(self, target: _Target, generation: int) -> None:
        probe = target.probe
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            result = await run_probe(probe.spec, timeout=probe.timeout, latency_limit=probe.latency_limit,
                                     session=self._session, endpoint=probe.key, source_address=self.source_address)
        finally:
            target.busy = False
            self._free_slot()
        self.probes_done += 1
        took = loop.time() - began
        if result.kind is FailureKind.timeout and took > probe.timeout * STARVED_FACTOR + STARVED_SLACK:
            # The timeout fired long after it was due: this prober's event loop was starved (CPU,
            # a blocking callback), so the endpoint never had its time to answer. The result says
            # nothing about the endpoint and is not delivered; the next round probes again.
            self.starved += 1
            if self.starved in (1, 10, 100) or self.starved % 1000 == 0:
                log.warning("probe of %s timed out after %.2fs for a %.2fs timeout: the prober is starved of CPU; "
                            "not counted against the endpoint (%d so far)", probe.key, took, probe.timeout,
                            self.starved)
            return
        if generation == target.generation:
            try:
                self.on_result(probe.key, result)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop probing
                self.callback_errors += 1
                log.exception("on_result failed for %s", probe.key)

    async def _shutdown(self) -> None:
        for target, _unused in self._ready:  # first: a cancelled probe frees a slot, nothing may take it
            target.busy = False
        self._ready.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._loop = None
