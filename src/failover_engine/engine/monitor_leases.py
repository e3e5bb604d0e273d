"""What a monitor does with leases (``coordination: {type: dynamodb}``), beside deciding.

- A run refused because another holder has the service's lease is tried again at the next tick:
  that holder may be a leader that died or stopped mid-run, whose leader lease lapsed a little
  before its service lease (``retry_after`` would add up to 30 s to the hand-over).
- A new leader (and every reconcile) looks for service leases that a holder left lapsed (it died
  or stopped mid-run, maybe in another region, where its journal is) and adopts each
  (:func:`~failover_engine.engine.adoption.adopt`): nothing is decided for the service until the
  records are read and what is active is probed; an ``adopted`` event says what was found.

:class:`LeaseDuties` is a mixin of :class:`~failover_engine.engine.monitor.Monitor`; it uses the
monitor's ``engine``, ``events``, ``log``, ``watches``, ``pool``, ``leadership``, ``loaded``,
``retry_after``, ``tick_interval`` and ``_coordination``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import TYPE_CHECKING, Any, Callable

from failover_engine.core.errors import CoordinationError, LockHeld
from failover_engine.detection.quorum import ObserverReport, endpoint_key

if TYPE_CHECKING:
    from failover_engine.engine.monitor import ServiceWatch


class LeaseDuties:
    """The monitor's lease duties (a mixin: the attributes below are the monitor's)."""

    engine: Any
    events: Any
    loaded: Any
    leadership: Any
    pool: concurrent.futures.ThreadPoolExecutor
    watches: dict[str, "ServiceWatch"]
    retry_after: float
    log: Any
    tick_interval: float
    observers: list[Any]
    exchange: Any
    metrics: Any
    leading: bool
    _coordination_down: str | None
    _read_active_all: Callable[[], None]
    _recover_interrupted: Callable[[], None]
    _adopt_due = False  # look for lapsed service leases at the next tick (set on election and reconcile)

    def _lock_held(self, name: str, action: str, watch: "ServiceWatch", exc: LockHeld) -> None:
        """Another holder has the service's lock. With leases that holder may be one whose lease is
        lapsing (a leader that died or stopped mid-run: its leader lease can lapse a little before its
        service lease): try again at the next tick, not after ``retry_after``, and say so once per
        holder. A file lock's holder is a live process: ``retry_after`` as for any error."""
        if self.leadership is None:
            self.events.append("monitor_run_error", name, action=action, error=str(exc))
            self.log(f"{name}: {action} could not run: {exc}")
            return
        if watch.lock_wait != exc.holder.split(" (")[0]:
            watch.lock_wait = exc.holder.split(" (")[0]
            self.events.append("lock_held", name, action=action, holder=exc.holder)
            self.log(f"{name}: {action} waits for the lease: {exc.holder}")
        if watch.last_attempt is not None:  # the same decision again after one tick
            watch.last_attempt = (watch.last_attempt[0], time.time() - self.retry_after + self.tick_interval)

    def _adopt_lapsed(self, reports: list[ObserverReport], now: float) -> None:
        """Services whose lease another holder left lapsed (it died or stopped, maybe mid-run in
        another region, where its journal is): take each over, read the records and probe what is
        active (:func:`~failover_engine.engine.adoption.adopt`) in a worker; nothing is decided for
        the service until that is done."""
        from failover_engine.engine.adoption import adopt, first_failure

        services = self.loaded.strategy.services
        idle = [n for n, w in self.watches.items() if w.running is None and n in services]
        try:
            lapsed = self.engine.lock.lapsed(idle)
        except CoordinationError as exc:
            self._coordination(str(exc))
            return  # tried again at the next tick
        self._adopt_due = False
        loop = asyncio.get_event_loop()
        for name, previous in sorted(lapsed.items()):
            first = first_failure(reports, endpoint_key(name, services[name].primary.name))
            self.log(f"{name}: the lease of {previous['holder']} ({previous['purpose']}) lapsed; adopting what it left")
            watch = self.watches[name]
            watch.running = self.pool.submit(adopt, self.engine, name, by=self.leadership.name)
            watch.running.add_done_callback(
                lambda f, n=name, t=first: loop.call_soon_threadsafe(self._adopted, n, f, t))

    def _adopted(self, name: str, fut: concurrent.futures.Future[Any], first_failure: float | None) -> None:
        watch = self.watches.get(name)
        if watch is None:
            return
        watch.running = None
        try:
            found = fut.result()
        except LockHeld:
            return  # its holder renewed it, or another took it: a live holder acts
        except Exception as exc:  # noqa: BLE001 - the next reconcile tries again
            self.events.append("monitor_run_error", name, action="adopt", error=str(exc))
            self.log(f"{name}: adopting failed: {exc}")
            return
        if found.previous is None:
            return
        svc = self.loaded.strategy.services.get(name)
        fields = found.event_fields(svc.primary.name if svc else None, first_failure, time.time())
        self.events.append("adopted", name, **fields)
        self.log(f"{name}: {found.summary(fields.get('rto_s'))}")
        if found.active is not None:
            watch.active, watch.last_attempt = found.active, None

    # ------------------------------------------------------------------ the exchange round and leadership
    def _exchange_round(self, local: list[ObserverReport], now: float) -> tuple[Any, Any, Any]:
        """The coordination I/O of one tick: publish our reports, hold or try the leader lease,
        collect everyone's reports. Returns (reports or None, leading or None, error or None); run in
        a worker thread by :meth:`run` when the exchange is remote."""
        error = None
        try:
            for report in local:
                self.exchange.publish(report)
        except CoordinationError as exc:
            error = str(exc)
        leading = self.leadership.leading() if self.leadership is not None else None
        if self.leadership is not None and self.leadership.error:
            error = error or self.leadership.error
        try:
            reports = self.exchange.collect(now)
        except CoordinationError as exc:
            error, reports = str(exc), None
        return reports, leading, error

    def _lead(self, leading: bool | None) -> None:
        """Whether this monitor acts: always with file coordination; with dynamodb, while it holds
        the group's leader lease (taken when free or lapsed, renewed every exchange round; None: no
        round finished this tick, nothing changes)."""
        if self.leadership is None:
            return
        was = self.leading
        if leading is not None:
            self.leading = leading
        for change in self.leadership.changes:
            event = change.pop("event")
            self.events.append(event, None, **change)
            self.log(f"{event.replace('_', ' ')}: {change.get('observer')} at epoch {change.get('epoch')}"
                     + (f" (after {change['previous']['holder']}, whose lease lapsed)" if change.get("previous") else ""))
        self.leadership.changes.clear()
        self.metrics.set_leader(self.leading)
        if self.leading and not was:
            self._read_active_all()  # what the previous leader left: act on the truth, not a cache
            self._recover_interrupted()
            self._adopt_due = True  # and the leases it left lapsed mid-run (its journal is on its host)

    def _coordination(self, error: str | None) -> None:
        """Log the coordination table going away and coming back, once each."""
        if error and self._coordination_down is None:
            self.events.append("coordination_unreachable", None, error=error)
            self.log(f"coordination table unreachable: {error}; observing and alerting, acting only with a lease")
        elif error is None and self._coordination_down is not None:
            self.events.append("coordination_restored", None)
        self._coordination_down = error if error else None
