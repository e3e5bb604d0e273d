"""`failover monitor`: watch every service of a strategy file and act on what the quorum sees.

Per local observer, a :class:`~failover_engine.detection.scheduler.ProbeScheduler` probes every endpoint
(and the control targets) on its own cadence, and a :class:`~failover_engine.detection.signals.SignalTracker`
per endpoint turns results into verdicts. Each tick, every local observer publishes an
:class:`~failover_engine.detection.quorum.ObserverReport` to the verdict exchange (in memory, or a
directory shared with observers in other processes); the decider aggregates the fresh reports
of all observers with the k-of-n rule, asks :func:`~failover_engine.core.selection.select_target`
(``auto``) what to do, and runs the same engine path as the CLI (lock, safety rules, apply,
validation, rollback) in a worker thread so probing never stops.

Safety: one run per service at a time; a decision that was refused is not retried until the
situation changes or ``retry_after`` passes; a flapping endpoint holds automation for its service;
manual-only services get alerts (events), never actions; on SIGTERM no new run starts and the
running ones finish (never half-applied), then the monitor exits.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.outcome import Outcome
from failover_engine.engine.transaction import Request
from failover_engine.core.errors import FailoverError, LockHeld, StrategyError
from failover_engine.engine.events import EventLog
from failover_engine.detection.health import Health
from failover_engine.config.loader import LoadedStrategy, load_strategy
from failover_engine.core.model import Observer
from failover_engine.engine.monitor_leases import LeaseDuties
from failover_engine.engine.monitor_metrics import MonitorMetrics
from failover_engine.detection.quorum import (
    InMemoryExchange,
    ObserverReport,
    VerdictExchange,
    aggregate,
    endpoint_key,
    self_partitioned,
)
from failover_engine.detection.scheduler import ProbeScheduler, ScheduledProbe
from failover_engine.core.selection import SimpleVerdict, select_target
from failover_engine.detection.signals import SignalTracker
from failover_engine.engine.state import record_detection

CONTROL = "_control"


@dataclass
class ServiceWatch:
    """Decision state of one service (kept across ticks and reloads)."""

    health: dict[str, tuple[str, float]] = field(default_factory=dict)  # endpoint -> (health, since)
    active: dict[str, int] | None = None
    running: concurrent.futures.Future[Outcome] | None = None
    last_attempt: tuple[str, float] | None = None  # (situation, when) of the last run or alert
    holding: bool = False  # flapping: automation held
    lock_wait: str | None = None  # the holder of the lock a run last waited for (said once)


class LocalObserver:
    """One vantage point in this process: a scheduler and a tracker per endpoint."""

    def __init__(self, spec: Observer, monitor: "Monitor"):
        self.spec = spec
        self.monitor = monitor
        self.trackers: dict[str, SignalTracker] = {}
        self.control_ok: dict[str, bool] = {}
        # 64 in flight: enough for slow endpoints, and no burst of new connections after a stall
        # (512 made detection latency worse under load: docs/benchmarks.md, detection latency)
        self.scheduler = ProbeScheduler(self.on_result, concurrency=64, source_address=spec.source_address)

    def retarget(self, loaded: LoadedStrategy) -> None:
        targets, keep = [], set()
        for sname, svc in loaded.strategy.services.items():
            det = svc.detection
            for ep in svc.endpoints:
                if ep.probe is None:
                    continue
                key = endpoint_key(sname, ep.name)
                keep.add(key)
                if key not in self.trackers or self.trackers[key].detection != det:
                    self.trackers[key] = SignalTracker(key, det)
                targets.append(ScheduledProbe(key, ep.probe, det.interval, det.timeout, det.latency_limit, det.jitter))
        fastest = min((s.detection for s in loaded.strategy.services.values()), key=lambda d: d.interval)
        for i, spec in enumerate(loaded.strategy.monitoring.control_targets):
            targets.append(ScheduledProbe(f"{CONTROL}/{i}", spec, fastest.interval, fastest.timeout, None, fastest.jitter))
        self.trackers = {k: v for k, v in self.trackers.items() if k in keep}
        self.control_ok = {k: v for k, v in self.control_ok.items() if k.startswith(CONTROL)}
        self.scheduler.set_targets(targets)

    def on_result(self, key: str, result: Any) -> None:
        if key.startswith(CONTROL):
            self.control_ok[key] = bool(result.ok)
            return
        tracker = self.trackers.get(key)
        if tracker is None:
            return
        verdict = tracker.observe(result)
        self.monitor.metrics.observe_probe(key, self.spec.name, result, verdict)

    def report(self, now: float) -> ObserverReport:
        verdicts = {k: t.verdict for k, t in self.trackers.items()}
        # judged on verdicts (thresholds crossed), not on one lost probe, so a single blip on a
        # standby while the primary is down does not make this observer abstain
        judged = {k: SimpleVerdict(v.health.value, v.reason) for k, v in verdicts.items()
                  if v.health is not Health.unknown}
        partitioned = bool(judged) and self_partitioned(judged, list(self.control_ok.values()))
        payload = {k: {"health": v.health.value, "reason": v.reason, "at": v.last.at if v.last else now,
                       "first_failure_at": v.first_failure_at, "detected_at": v.detected_at,
                       "first_success_at": v.first_success_at, "recovered_at": v.recovered_at,
                       "flapping": v.flapping} for k, v in verdicts.items()}
        control = list(self.control_ok.values())
        return ObserverReport(self.spec.name, now, payload, all(control) if control else None, partitioned)


class Monitor(LeaseDuties):
    def __init__(self, strategy_path: str | Path, *, state_dir: str | Path | None = None,
                 observers: list[str] | None = None, exchange: VerdictExchange | None = None,
                 metrics_port: int | None = None, retry_after: float = 30.0,
                 reconcile_interval: float = 30.0, log: Callable[[str], None] | None = None):
        self.path = Path(strategy_path)
        self.state_dir_override = state_dir
        self.loaded = load_strategy(self.path, state_dir=state_dir)
        self.engine = FailoverEngine(self.loaded)
        self.events = EventLog(self.loaded.state_dir / "events.jsonl")
        self.exchange: VerdictExchange = exchange or InMemoryExchange()
        self.retry_after = retry_after
        self.reconcile_interval = reconcile_interval
        self._reconciled_at = time.time()
        self.log = log or (lambda msg: None)
        mon = self.loaded.strategy.monitoring
        wanted = observers or [o.name for o in mon.observers]
        unknown = sorted(set(wanted) - {o.name for o in mon.observers})
        if unknown:
            raise FailoverError(f"unknown observer(s) {', '.join(unknown)}; the strategy has "
                                f"{', '.join(o.name for o in mon.observers)}")
        self.metrics = MonitorMetrics()
        self.metrics_port = metrics_port if metrics_port is not None else mon.metrics_port
        self.observers = [LocalObserver(o, self) for o in mon.observers if o.name in wanted]
        # coordination: with dynamodb, the verdicts are shared in the table and one monitor of the
        # group (the holder of the leader lease) acts; the others observe, alert and stand by
        self.leadership: Any = None
        self.leading = True
        self._coordination_down: str | None = None
        coord = self.loaded.strategy.coordination
        if coord.type == "dynamodb":
            from failover_engine.coordination.dynamodb import DynamoExchange, DynamoTable, Leadership, Leases

            table = DynamoTable(coord)
            if exchange is None:
                self.exchange = DynamoExchange(table, [o.name for o in mon.observers], mon.verdict_ttl,
                                               group=coord.group)
            self.leadership = Leadership(Leases(table, coord.lease, group=coord.group), "+".join(wanted))
            self.leading = False
        self.watches: dict[str, ServiceWatch] = {n: ServiceWatch() for n in self.loaded.strategy.services}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="failover-run")
        self._mtime = self._stat()
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; then let running failovers finish and return."""
        if self.metrics_port is not None:
            self.metrics.serve(self.metrics_port)
        for obs in self.observers:
            obs.retarget(self.loaded)
        self._read_active_all()
        gc.freeze()  # long-lived objects out of the collector: fewer full-GC pauses in probe latency
        self.events.append("monitor_started", None, observers=[o.spec.name for o in self.observers],
                           services=list(self.watches), pid=os.getpid())
        sched_stop = asyncio.Event()
        tasks = [asyncio.create_task(o.scheduler.run(sched_stop)) for o in self.observers]
        if self.leading:
            self._recover_interrupted()  # a run a dead process left open is finished first, not in 30 s
        # with a remote exchange (dynamodb) the coordination calls of a tick run in their own thread:
        # a slow or unreachable table never stalls the probes, which share this event loop
        coord = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="coordination")
                 if self.leadership is not None else None)
        pending: "asyncio.Future[Any] | None" = None
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    shared = None
                    if coord is not None:
                        if pending is None:
                            now = time.time()
                            pending = loop.run_in_executor(coord, self._exchange_round,
                                                           [o.report(now) for o in self.observers], now)
                        await asyncio.wait({pending}, timeout=self.tick_interval)
                        if pending.done():
                            shared, pending = pending, None
                            shared = shared.result()
                        else:
                            shared = (None, None, None)  # the table is slow: decide on our own reports
                    self.tick(time.time(), shared=shared)
                except Exception as exc:  # noqa: BLE001 - one bad tick must not end the watch
                    pending = None if pending is not None and pending.done() else pending
                    self.events.append("monitor_error", None, error=repr(exc))
                    self.log(f"monitor: error in a tick, going on: {exc!r}")
                try:
                    await asyncio.wait_for(stop.wait(),
                                           timeout=max(0.0, self.tick_interval - (time.monotonic() - started)))
                except asyncio.TimeoutError:
                    pass
        finally:
            if coord is not None:
                coord.shutdown(wait=False, cancel_futures=True)
            self.stopping = True
            running = [w.running for w in self.watches.values() if w.running and not w.running.done()]
            if running:
                self.log(f"waiting for {len(running)} running failover(s) to finish")
                await asyncio.get_running_loop().run_in_executor(None, concurrent.futures.wait, running)
            sched_stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.pool.shutdown(wait=True)
            self.metrics.close()
            self.events.append("monitor_stopped", None, pid=os.getpid())

    @property
    def tick_interval(self) -> float:
        fastest = min(s.detection.interval for s in self.loaded.strategy.services.values())
        return max(0.02, min(1.0, fastest / 2))

    def tick(self, now: float, shared: tuple[Any, Any, Any] | None = None) -> None:
        """One round: exchange reports (``shared``: a round already done by :meth:`run`, or
        (None, None, None) when it is still running), follow the leadership, decide every service."""
        local = [obs.report(now) for obs in self.observers]
        if shared is None:
            shared = self._exchange_round(local, now)
        reports, leading, error = shared
        if reports is not None or error is not None:
            self._coordination(error)
        self._lead(leading)
        self._maybe_reload()
        if self.leading and now - self._reconciled_at >= self.reconcile_interval:
            self._reconciled_at = now
            self._reconcile(now)
        if reports is None:
            # the table is unreachable (or slow): keep observing and alerting on this monitor's own
            # reports; nobody acts without a lease (the leader's lapses, the engine's cannot be taken)
            reports = local
        if self._adopt_due and self.leading:
            self._adopt_lapsed(reports, now)
        self._batching = True
        try:
            for name in list(self.watches):
                self._decide(name, reports, now)
        finally:
            self._batching = False
            self._flush_submissions()

    def _reconcile(self, now: float) -> None:
        """Re-read the routing state of idle services (one batched read per adapter): a change
        made elsewhere, or a zonal shift that expired, is seen and acted on; a resource the adapter
        reports as ``expiring`` (a zonal shift past half its life) gets a run, which extends it."""
        self._recover_interrupted()
        self._adopt_due = self.leadership is not None
        idle = [n for n, w in self.watches.items() if w.running is None]
        if not idle:
            return
        try:
            observed = self.engine.observe_many(idle)
        except FailoverError as exc:
            self.events.append("monitor_read_error", None, error=str(exc))
            return
        for name, obs in observed.items():
            watch = self.watches[name]
            if obs.active != watch.active:
                self.events.append("drift", name, cached=watch.active, provider=obs.active)
                watch.active, watch.last_attempt = obs.active, None
            expiring = any(a and a.get("expiring") for st in obs.states for a in st.values())
            if expiring and obs.active is not None:
                svc = self.loaded.strategy.services[name]
                action = "rebalance" if svc.strategy == "active_active" else "switch"
                target = None if action == "rebalance" else next(iter(obs.active))
                self.log(f"{name}: renewing an expiring shift")
                self.events.append("renewing", name, action=action)
                self._submit(name, action, target)

    # ------------------------------------------------------------------ deciding
    def _decide(self, name: str, reports: list[ObserverReport], now: float) -> None:
        svc = self.loaded.strategy.services.get(name)
        watch = self.watches[name]
        if svc is None:  # removed by a reload while its run was in flight: forget it once the run ended
            if watch.running is None:
                del self.watches[name]
            return
        mon = self.loaded.strategy.monitoring
        voters = [o.name for o in mon.observers]
        verdicts = {ep.name: aggregate(reports, endpoint_key(name, ep.name), mon.required, now, mon.verdict_ttl,
                                       observers=voters)
                    for ep in svc.endpoints if ep.probe is not None}
        for ep, v in verdicts.items():
            health = getattr(v.health, "value", v.health)
            if watch.health.get(ep, (None, 0.0))[0] != health:
                watch.health[ep] = (health, now)
                self.events.append("verdict", name, endpoint=ep, health=health, reason=v.reason)
            self.metrics.set_health(name, ep, health)
        if watch.running is not None or self.stopping:
            return
        if self._flapping(name, reports, watch):
            return
        primary = svc.primary.name
        p_health, p_since = watch.health.get(primary, ("unknown", now))
        stable = now - p_since if p_health == "healthy" else 0.0
        stable_each = {ep: now - since for ep, (h, since) in watch.health.items() if h == "healthy"}
        decision = select_target(svc, verdicts, watch.active, "auto", primary_stable_for=stable,
                                 stable_for_each=stable_each)
        if decision.action == "none":
            if "alert only" in decision.reason:
                # once per outage of the active endpoint (the reason's text changes with every probe)
                self._once(watch, f"alert:{','.join(watch.active or {})}", now, lambda: self.events.append(
                    "alert", name, reason=decision.reason))
            elif watch.last_attempt and watch.last_attempt[0].startswith("alert:"):
                watch.last_attempt = None  # that outage is over: the next one alerts again
            return
        rebalance = decision.action == "rebalance"
        target = None if rebalance else next(iter(decision.target or {}), None)
        situation = f"{decision.action}:{sorted(decision.target or {}) if rebalance else target}"
        if not self.leading:  # another monitor leads: say what this one would do, once
            self._once(watch, f"standby:{situation}", now, lambda: self.events.append(
                "standing_by", name, action=decision.action, target=target, reason=decision.reason))
            return
        if watch.last_attempt and watch.last_attempt[0] == situation and now - watch.last_attempt[1] < self.retry_after:
            return
        watch.last_attempt = (situation, now)
        # a rebalance is planned again by the engine as automation decides it (same hysteresis)
        self._start_run(name, decision.action, target, verdicts, reports, now, stable_each if rebalance else None)

    def _flapping(self, name: str, reports: list[ObserverReport], watch: ServiceWatch) -> bool:
        flapping = sorted({k.split("/", 1)[1] for r in reports for k, v in r.verdicts.items()
                           if k.startswith(name + "/") and v.get("flapping")})
        if flapping and not watch.holding:
            self.events.append("flapping", name, endpoints=flapping, action="automation held")
            self.log(f"{name}: flapping ({', '.join(flapping)}): automation held")
        elif not flapping and watch.holding:
            self.events.append("flapping_cleared", name)
        watch.holding = bool(flapping)
        self.metrics.set_flapping(name, watch.holding)
        return watch.holding

    def _once(self, watch: ServiceWatch, situation: str, now: float, fn: Callable[[], Any]) -> None:
        if watch.last_attempt and watch.last_attempt[0] == situation:
            return
        watch.last_attempt = (situation, now)
        fn()

    def _start_run(self, name: str, action: str, target: str | None, verdicts: dict[str, Any],
                   reports: list[ObserverReport], now: float, stable_for: dict[str, float] | None = None) -> None:
        svc = self.loaded.strategy.services[name]
        watch = self.watches[name]
        awaited, about = self._incident_subject(svc, action, watch, verdicts)
        first, detected = self._incident_times(name, about, awaited, reports, now)
        record_detection(self.loaded.state_dir, name, awaited, [about], first, detected,
                         getattr(verdicts.get(about), "reason", ""))
        self.log(f"{name}: {action} to {target} ({getattr(verdicts.get(about), 'reason', '')})")
        self._submit(name, action, target, verdicts=verdicts, stable_for=stable_for)

    _batching = False

    def _submit(self, name: str, action: str, target: str | None, **run_kw: Any) -> None:
        """Run the engine for ``name`` in a worker thread; the result comes back to the loop. Runs
        decided in the same tick (a region going down) go together as ONE transaction."""
        self.__dict__.setdefault("_pending", []).append((name, action, target, run_kw))
        if not self._batching:
            self._flush_submissions()

    def _flush_submissions(self) -> None:
        pending, self._pending = self.__dict__.get("_pending", []), []
        if not pending:
            return
        loop = asyncio.get_event_loop()
        if len(pending) == 1:
            name, action, target, run_kw = pending[0]
            future = self.pool.submit(self.engine.run, name, action, target, apply=True,  # type: ignore[arg-type]
                                      **run_kw)
            futures = {name: future}
        else:
            futures = {name: concurrent.futures.Future() for name, _unused, _unused, _unused in pending}
            requests = [Request(name, action, target, run_kw.get("verdicts"), run_kw.get("stable_for"))  # type: ignore[arg-type]
                        for name, action, target, run_kw in pending]
            self.log(f"{len(requests)} services move in one transaction: {', '.join(r.service for r in requests)}")
            self.pool.submit(self._run_together, requests, futures)
        for name, action, _unused, _unused in pending:
            watch = self.watches[name]
            watch.running = futures[name]
            watch.running.add_done_callback(
                lambda f, n=name, a=action: loop.call_soon_threadsafe(self._run_done, n, a, f))

    def _run_together(self, requests: list[Request], futures: dict[str, concurrent.futures.Future[Any]]) -> None:
        try:
            outs = self.engine.run_many(requests, apply=True, kind="monitor")
        except BaseException as exc:  # noqa: BLE001 - every waiting service hears of it
            for f in futures.values():
                f.set_exception(exc)
            return
        for out in outs:
            futures[out.service].set_result(out)

    def _recover_interrupted(self) -> None:
        """Interrupted runs (a process died mid-apply) of idle services: finish them now."""
        try:
            found = self.engine.interrupted()
        except (FailoverError, OSError) as exc:
            self.events.append("monitor_read_error", None, error=str(exc))
            return
        names = sorted({s for j in found for s in j["pending"]
                        if s in self.watches and self.watches[s].running is None})
        for name in names:
            self.log(f"{name}: an interrupted run was found; recovering it")
            watch = self.watches[name]
            watch.running = self.pool.submit(self.engine.recover, [name], apply=True)
            loop = asyncio.get_event_loop()
            watch.running.add_done_callback(lambda f, n=name: loop.call_soon_threadsafe(self._recovered, n, f))

    def _recovered(self, name: str, fut: concurrent.futures.Future[Any]) -> None:
        watch = self.watches.get(name)
        if watch is None:
            return
        watch.running = None
        try:
            results = fut.result()
        except Exception as exc:  # noqa: BLE001 - the next reconcile tries again
            self.events.append("monitor_run_error", name, action="recover", error=str(exc))
            return
        self.log(f"{name}: recovery: {', '.join(r['status'] for r in results) or 'nothing to do'}")
        self._read_active(name)

    @staticmethod
    def _incident_subject(svc: Any, action: str, watch: ServiceWatch, verdicts: dict[str, Any]) -> tuple[str, str]:
        """(awaited health, endpoint) whose detection starts this run's RTO clock."""
        if action == "failback":
            return "healthy", svc.primary.name
        if action == "rebalance":
            current = set(watch.active or {})
            down = [n for n in current if getattr(verdicts.get(n), "health", "") == "unhealthy"]
            back = [n for n in svc.endpoint_names if n not in current
                    and getattr(verdicts.get(n), "health", "") == "healthy"]
            return ("unhealthy", down[0]) if down else ("healthy", (back or [svc.primary.name])[0])
        return "unhealthy", next(iter(watch.active or {}), svc.primary.name)

    @staticmethod
    def _incident_times(name: str, endpoint: str, awaited: str, reports: list[ObserverReport],
                        now: float) -> tuple[float, float]:
        """Earliest first signal and the latest detection among the observers that saw it."""
        first_key, det_key = (("first_failure_at", "detected_at") if awaited == "unhealthy"
                              else ("first_success_at", "recovered_at"))
        key = endpoint_key(name, endpoint)
        seen = [r.verdicts[key] for r in reports if key in r.verdicts and r.verdicts[key].get("health") == awaited]
        firsts = [v[first_key] for v in seen if v.get(first_key)]
        dets = [v[det_key] for v in seen if v.get(det_key)]
        detected = max(dets) if dets else now
        return (min(firsts) if firsts else detected), detected

    def _run_done(self, name: str, action: str, fut: concurrent.futures.Future[Outcome]) -> None:
        watch = self.watches.get(name)
        if watch is None:
            return
        watch.running = None
        try:
            out = fut.result()
        except LockHeld as exc:
            self._lock_held(name, action, watch, exc)
            return
        except FailoverError as exc:
            self.events.append("monitor_run_error", name, action=action, error=str(exc))
            self.log(f"{name}: {action} could not run: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the monitor
            self.events.append("monitor_run_error", name, action=action, error=repr(exc))
            self.log(f"{name}: {action} crashed: {exc!r}")
            return
        self.metrics.record_run(name, action, out)
        self.log(f"{name}: {action} {out.status}" + (f"; RTO {out.timeline.rto:.3f}s"
                                                     if out.timeline and out.timeline.rto else ""))
        watch.lock_wait = None
        if out.status in ("succeeded", "unverified") and out.plan is not None:
            watch.active = dict(out.plan.target)
            watch.last_attempt = None
        elif out.status == "refused" and watch.last_attempt and any("cooldown" in e for e in out.errors):
            self._retry_after_cooldown(name, watch)
        elif out.status in ("rolled_back", "rollback_failed", "unknown", "noop") and name in self.loaded.strategy.services:
            self._read_active(name)

    def _retry_after_cooldown(self, name: str, watch: ServiceWatch) -> None:
        """A cooldown refusal is retried as soon as the cooldown ends, not after retry_after."""
        last = self.engine.store.load(name).last_switch_at
        if last is None or watch.last_attempt is None:
            return
        ends = last + self.loaded.strategy.services[name].policy.cooldown
        watch.last_attempt = (watch.last_attempt[0], ends + 0.05 - self.retry_after)

    def _read_active(self, name: str) -> None:
        try:
            self.watches[name].active = self.engine.observe(name).active
        except FailoverError as exc:
            self.events.append("monitor_read_error", name, error=str(exc))
            self.watches[name].active = None

    def _read_active_all(self) -> None:
        """One batched read per adapter for every service (not one read per service)."""
        try:
            observed = self.engine.observe_many(list(self.watches))
        except FailoverError as exc:
            self.events.append("monitor_read_error", None, error=str(exc))
            return
        for name, obs in observed.items():
            self.watches[name].active = obs.active

    # ------------------------------------------------------------------ reload
    def _stat(self) -> tuple[int, int, int] | None:
        """What changes when the file is edited or replaced (mtime alone misses quick edits)."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _maybe_reload(self) -> None:
        mtime = self._stat()
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            loaded = load_strategy(self.path, state_dir=self.state_dir_override)
            engine = FailoverEngine(loaded)
        except StrategyError as exc:
            self._reload_rejected([str(p) for p in exc.problems])
            return
        except Exception as exc:  # noqa: BLE001 - whatever a new file breaks, the old strategy goes on
            self._reload_rejected([f"{self.path}: {type(exc).__name__}: {exc}"])
            return
        self.loaded = loaded
        self.engine = engine
        for obs in self.observers:
            obs.retarget(loaded)
        for name in loaded.strategy.services:
            if name not in self.watches:
                self.watches[name] = ServiceWatch()
                self._read_active(name)
        for name in [n for n in self.watches if n not in loaded.strategy.services]:
            if self.watches[name].running is None:
                del self.watches[name]
        self.events.append("reloaded", None, services=list(loaded.strategy.services))
        self.log(f"strategy reloaded: {', '.join(loaded.strategy.services)}")

    def _reload_rejected(self, problems: list[str]) -> None:
        """A new version of the file that cannot be used: say why, keep watching with the old one."""
        why = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        message = f"reload rejected, old strategy kept: {why}"
        self.log(f"strategy {message}")
        self.events.append("reload_rejected", None, file=str(self.path), problems=problems, message=message)


def run_monitor(monitor: Monitor, *, duration: float | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``duration`` seconds). Returns the exit code."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        await monitor.run(stop)

    asyncio.run(main())
    return 0
