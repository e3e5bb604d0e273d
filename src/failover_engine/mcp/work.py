"""Bounded work for the MCP tools: lanes of worker threads with queues, deadlines and per-client shares.

Tools block (cloud reads, probes, playbook runs), so they run in worker threads. An unbounded
pool lets one client starve the others (forty probes of a port that never answers held every
thread the SDK had). Here each kind of work has its own :class:`Lane`:

* a lane has ``workers`` threads and at most ``queue`` calls waiting; beyond that a call is
  refused at once (:class:`Busy`), never queued without bound;
* one client runs at most ``per_client`` calls of a lane at a time; its other calls wait while
  other clients' calls go first, so a client cannot take every worker;
* every call has a deadline: a call still waiting then is dropped (it never runs), and a call
  still running is abandoned by its caller (:class:`DeadlineExceeded`); its thread finishes the
  work, which is bounded itself (probe timeouts, connection timeouts, the playbook timeout);
* a caller that is cancelled (the client cancelled the request) drops its waiting call the same way.

Lanes are separate so that slow probes never hold up a define or a monitor without probes.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable


class Busy(Exception):
    """The lane cannot take the call now (its queue is full)."""


class DeadlineExceeded(Exception):
    """The call did not finish within its deadline."""


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple
    client: Hashable
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    dropped: bool = False


@dataclass
class Lane:
    name: str
    workers: int = 4
    queue: int = 32
    per_client: int = 2
    deadline: float = 60.0
    _pending: collections.deque = field(default_factory=collections.deque, init=False, repr=False)
    _running: collections.Counter = field(default_factory=collections.Counter, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue < 0 or self.per_client < 1:
            raise ValueError(f"lane {self.name}: workers and per_client are at least 1, queue at least 0")
        self.per_client = min(self.per_client, self.workers)

    # ------------------------------------------------------------------ the caller's side
    async def run(self, fn: Callable[..., Any], *args: Any, client: Hashable = None,
                  deadline: float | None = None) -> Any:
        """Run ``fn(*args)`` in a worker; raises Busy, DeadlineExceeded or fn's exception."""
        loop = asyncio.get_running_loop()
        job = _Job(fn, args, client, loop.create_future(), loop)
        with self._cond:
            waiting = sum(1 for j in self._pending if not j.dropped)
            if waiting >= self.queue:
                raise Busy(f"the server is busy: {self.name} work has {self.workers} call(s) running and "
                           f"{waiting} waiting; try again shortly")
            self._pending.append(job)
            self._start_threads()
            self._cond.notify_all()
        limit = self.deadline if deadline is None else deadline
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), limit)
        except asyncio.TimeoutError:
            self._drop(job)
            raise DeadlineExceeded(f"{self.name} work did not finish within {limit:g}s (the server's deadline "
                                   "for it); nothing more is waited for") from None
        except asyncio.CancelledError:
            self._drop(job)
            raise

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"running": sum(self._running.values()),
                    "waiting": sum(1 for j in self._pending if not j.dropped), "threads": len(self._threads)}

    # ------------------------------------------------------------------ the workers' side
    def _drop(self, job: _Job) -> None:
        with self._cond:
            job.dropped = True  # a waiting call never runs; a running one is no longer waited for

    def _start_threads(self) -> None:
        while len(self._threads) < self.workers:
            t = threading.Thread(target=self._work, name=f"mcp-{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    def _next(self) -> _Job | None:
        """The oldest waiting call whose client is below its share (called with the lock held)."""
        for job in list(self._pending):
            if job.dropped:
                self._pending.remove(job)
            elif self._running[job.client] < self.per_client:
                self._pending.remove(job)
                return job
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                while job is None:
                    self._cond.wait(timeout=5.0)
                    job = self._next()
                self._running[job.client] += 1
            try:
                value, error = job.fn(*job.args), None
            except BaseException as exc:  # handed to the caller
                value, error = None, exc
            finally:
                with self._cond:
                    self._running[job.client] -= 1
                    if self._running[job.client] <= 0:
                        del self._running[job.client]
                    self._cond.notify_all()
            try:
                job.loop.call_soon_threadsafe(_settle, job, value, error)
            except RuntimeError:  # the caller's event loop is gone (server shutting down)
                pass


def _settle(job: _Job, value: Any, error: BaseException | None) -> None:
    future = job.future
    if future.done():
        return
    if job.dropped:  # nobody waits for it any more: no "exception never retrieved" noise
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
