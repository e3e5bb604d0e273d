"""Client-side validation during a run: every service's resolve step, asked while the run validates.

:class:`PropagationWatch` starts when the changes are applied, in a thread of its own, beside the
read-back and the probe round. Each poll is one concurrent round of queries over every service and
every nameserver that has not yet answered the target (a nameserver that answered it once is done);
a service is done when all of its nameservers are, or when its deadline (from the switch) passes.
The transaction then :meth:`settles <PropagationWatch.settle>` it: a service that failed its
read-back or probes is not waited for; the others get their ``propagation`` phase, their client
TTL and, when the deadline was missed, a validation reason naming every nameserver still answering
the old value (then the rollback policy applies, as for any validation failure).
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

from failover_engine.core.model import parse_nameserver
from failover_engine.core.propagation import NameserverResult, ResolveExpectation, ResolveResult, resolve_expectation
from failover_engine.detection.resolve import authoritative_nameservers, query

if TYPE_CHECKING:
    from failover_engine.config.loader import LoadedStrategy
    from failover_engine.core.model import Resolve
    from failover_engine.core.plan import Plan
    from failover_engine.core.timeline import Timeline
    from failover_engine.core.validation import ValidationResult

_SLICE_S = 0.1  # a sleep between rounds wakes this often to see whether every service was let go


def _label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Job:
    def __init__(self, spec: "Resolve", expectation: ResolveExpectation, started_at: float):
        self.spec, self.expectation = spec, expectation
        self.deadline_at = started_at + spec.deadline
        self.servers: list[tuple[str, int]] = []
        self.result = ResolveResult(expectation.name, expectation.rdtype, sorted(expectation.expected),
                                    spec.deadline, started_at, record_ttl=expectation.record_ttl)

    def pending(self) -> list[tuple[NameserverResult, tuple[str, int]]]:
        return [(r, s) for r, s in zip(self.result.nameservers, self.servers) if not r.propagated]


class PropagationWatch:
    """The resolve steps of one run's services, asked in a background thread until settled."""

    def __init__(self, jobs: dict[str, _Job], failed: dict[str, ResolveResult]):
        self._jobs = jobs
        self._failed = failed  # services whose step could not even start (no expected answer)
        self._let_go: set[str] = set()
        self._thread = threading.Thread(target=self._main, name="failover-propagation", daemon=True)

    @classmethod
    def start(cls, loaded: "LoadedStrategy", plans: Mapping[str, "Plan"], started_at: float) -> "PropagationWatch | None":
        """Start asking for every service of ``plans`` that has a resolve step (None: none has)."""
        jobs: dict[str, _Job] = {}
        failed: dict[str, ResolveResult] = {}
        for name, plan in plans.items():
            svc = loaded.service(name)
            spec = svc.validation.resolve
            if spec is None:
                continue
            try:
                jobs[name] = _Job(spec, resolve_expectation(svc, plan.target), started_at)
            except ValueError as exc:
                failed[name] = ResolveResult(spec.name or "", spec.type or "A", [], spec.deadline, started_at,
                                             reasons=[f"resolve: {exc}"])
        if not jobs and not failed:
            return None
        watch = cls(jobs, failed)
        watch._thread.start()
        return watch

    def settle(self, results: Mapping[str, "ValidationResult"], timelines: Mapping[str, "Timeline | None"]) -> None:
        """Let go of services that already failed validation, wait for the others, and record each
        one's resolve result, propagation time and client TTL (and its reason, when it missed)."""
        self._let_go.update(n for n, r in results.items() if r.reasons)
        self._thread.join()
        for name, result in {**self._failed, **{n: j.result for n, j in self._jobs.items()}}.items():
            if name in self._let_go or name not in results:
                continue
            result.finish()
            results[name].resolve = result.to_dict()
            results[name].reasons.extend(result.reasons)
            timeline = timelines.get(name)
            if timeline is not None:
                timeline.propagated_at = result.propagated_at
                timeline.client_ttl = result.client_ttl

    # ------------------------------------------------------------------ the thread
    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:  # noqa: BLE001 - a failure here is a failed step, never a dead run
            for job in self._jobs.values():
                if not job.result.ok:
                    job.result.reasons.append(f"resolve: the queries failed: {type(exc).__name__}: {exc}")

    async def _run(self) -> None:
        await asyncio.gather(*(self._servers(job) for job in self._jobs.values()))
        while True:
            started = time.time()
            active = [(n, j) for n, j in self._jobs.items()
                      if n not in self._let_go and j.pending() and started < j.deadline_at and not j.result.reasons]
            if not active:
                return
            asks = [(job, res, server) for _unused, job in active for res, server in job.pending()]
            answers = await asyncio.gather(*(self._ask(job, server) for job, _unused, server in asks))
            for (job, res, _unused), ans in zip(asks, answers):
                res.note(ans.at, ans.rcode, ans.values, ans.ttl, ans.error, job.expectation)
            waiting = [j for _unused, j in active if j.pending()]
            if not waiting:
                continue
            wake = min(min(started + j.spec.interval for j in waiting), max(j.deadline_at for j in waiting))
            while time.time() < wake and not all(n in self._let_go for n, j in active if j.pending()):
                await asyncio.sleep(min(_SLICE_S, max(0.0, wake - time.time())))

    async def _ask(self, job: _Job, server: tuple[str, int]) -> Any:
        left = max(0.05, min(job.spec.timeout, job.deadline_at - time.time()))
        return await query(server[0], server[1], job.expectation.name, job.expectation.rdtype, timeout=left,
                           tcp=job.spec.protocol == "tcp", recursion=job.spec.nameservers != "authoritative")

    @staticmethod
    async def _servers(job: _Job) -> None:
        """The job's nameservers: as given, or the zone's authoritative servers, looked up now."""
        spec = job.spec
        if spec.nameservers == "authoritative":
            try:
                job.servers = await authoritative_nameservers(job.expectation.name, timeout=spec.timeout)
            except Exception as exc:  # noqa: BLE001 - dnspython raises several kinds; all end the step
                job.result.reasons.append(f"resolve: the authoritative nameservers of {job.expectation.name} "
                                          f"could not be found: {type(exc).__name__}: {exc}")
                return
        else:
            job.servers = [parse_nameserver(ns) for ns in spec.nameservers]
        job.result.nameservers = [NameserverResult(_label(h, p)) for h, p in job.servers]
