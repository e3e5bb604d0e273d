"""Detection signals against real endpoints: latency, error rate, timeouts and refusals.

A :class:`ProbeScheduler` probes a lab region over real sockets and feeds a :class:`SignalTracker`,
as one observer of ``failover monitor`` does; the region's failure mode is switched while it runs
(slow, errors, hang, down). The last test runs the Monitor itself with one observer and reads the
same signals back from its verdict events, its observer reports and its Prometheus metrics.
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from failover_engine.detection.results import FailureKind
import yaml

from failover_engine.detection.health import Health
from failover_engine.lab.lab import Lab
from failover_engine.lab.regions import RegionServer
from failover_engine.core.model import Detection, ErrorRateSignal, HttpProbe, LatencySignal
from failover_engine.detection.quorum import InMemoryExchange, ObserverReport
from failover_engine.detection.scheduler import ProbeScheduler, ScheduledProbe
from failover_engine.detection.signals import EndpointVerdict, SignalTracker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "shop/use1"
NO_FAILURES = {kind.value: 0 for kind in FailureKind if kind is not FailureKind.none}


# --------------------------------------------------------------------------- helpers
class TrackedRegion:
    """One region probed on a cadence by a real ProbeScheduler, every result fed to a SignalTracker.

    Use inside a running event loop: ``async with TrackedRegion(region, detection) as tracked``.
    """

    def __init__(self, region: RegionServer, detection: Detection):
        self.region = region
        self.detection = detection
        self.tracker = SignalTracker(KEY, detection)
        self.verdicts: list[EndpointVerdict] = []
        probe = HttpProbe(url=f"{region.url}/health", body_contains="ok")
        self.scheduler = ProbeScheduler(self._on_result)
        self.scheduler.set_targets([ScheduledProbe(KEY, probe, detection.interval, detection.timeout,
                                                   detection.latency_limit, detection.jitter)])
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _on_result(self, key: str, result: Any) -> None:
        self.verdicts.append(self.tracker.observe(result))

    async def __aenter__(self) -> "TrackedRegion":
        self._task = asyncio.create_task(self.scheduler.run(self._stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task
        await asyncio.to_thread(self.region.set_mode, "up")  # releases hanging handler threads

    async def set_mode(self, mode: str, **opts: Any) -> None:
        await asyncio.to_thread(self.region.set_mode, mode, **opts)

    async def until(self, predicate: Callable[[EndpointVerdict], bool], timeout: float = 5.0,
                    what: str = "") -> EndpointVerdict:
        """The first new verdict that satisfies ``predicate``; fails with the recent reasons otherwise."""
        seen = len(self.verdicts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for v in self.verdicts[seen:]:
                if predicate(v):
                    return v
            seen = len(self.verdicts)
            await asyncio.sleep(0.01)
        recent = [(v.health.value, v.reason) for v in self.verdicts[-5:]]
        raise AssertionError(f"no verdict {what} within {timeout}s; last verdicts: {recent}")


def healthy(v: EndpointVerdict) -> bool:
    return v.health is Health.healthy


def unhealthy(v: EndpointVerdict) -> bool:
    return v.health is Health.unhealthy


# --------------------------------------------------------------------------- latency
def test_latency_degradation_fires_the_latency_signal(lab: Lab) -> None:
    """Answers still succeed (no per-probe latency limit), but the p95 of the window goes over the
    limit: the verdict says latency, with no failure counted."""
    det = Detection(interval=0.15, timeout=0.5, failure_threshold=3, recovery_threshold=2,
                    latency=LatencySignal(limit=0.06, window=5, min_samples=3))

    async def scenario() -> None:
        async with TrackedRegion(lab.regions["use1"], det) as tracked:
            base = await tracked.until(lambda v: healthy(v) and v.latency_p is not None,
                                       what="healthy with a latency percentile")
            assert base.signals == [] and base.latency_p < 60

            await tracked.set_mode("slow", delay_ms=150)
            slow = await tracked.until(unhealthy, what="unhealthy while slow")
            assert slow.signals == ["latency"]
            assert re.fullmatch(r"p95 latency \d+ ms > 60 ms over last \d probes", slow.reason), slow.reason
            assert slow.latency_p >= 150
            assert slow.last.ok and slow.consecutive_failures == 0
            assert slow.counts == NO_FAILURES and slow.totals == NO_FAILURES

            await tracked.set_mode("up")
            back = await tracked.until(healthy, what="healthy again once fast")
            assert back.signals == [] and back.latency_p < 60

    asyncio.run(scenario())


# --------------------------------------------------------------------------- error rate
def test_error_rate_spike_fires_the_error_rate_signal(lab: Lab) -> None:
    """503s from a region that still answers: the failure ratio of the window crosses the
    threshold long before the consecutive-failure threshold would."""
    det = Detection(interval=0.1, timeout=0.09, failure_threshold=50, recovery_threshold=2,
                    error_rate=ErrorRateSignal(threshold=0.5, window=6, min_samples=4))

    async def scenario() -> None:
        async with TrackedRegion(lab.regions["use1"], det) as tracked:
            base = await tracked.until(lambda v: healthy(v) and v.error_rate is not None,
                                       what="healthy with an error rate")
            assert base.error_rate == 0.0 and base.signals == []

            await tracked.set_mode("errors")
            spike = await tracked.until(unhealthy, what="unhealthy while answering 503")
            assert spike.signals == ["error_rate"]
            assert re.fullmatch(r"error rate [\d.]+% >= 50% over last 6 probes", spike.reason), spike.reason
            assert spike.error_rate >= 0.5
            assert spike.consecutive_failures < det.failure_threshold
            assert spike.last.kind.value == "status" and "503" in spike.last.reason
            assert spike.counts["status"] == round(spike.error_rate * 6) >= 3
            assert spike.counts["timeout"] == spike.counts["refused"] == 0

    asyncio.run(scenario())


# --------------------------------------------------------------------------- timeouts and refusals
EXPECTED = {"hang": ("timeout", "timeout after 80 ms"), "down": ("refused", "connection refused")}


@pytest.mark.parametrize("first, second", [("hang", "down"), ("down", "hang")])
def test_timeouts_and_refusals_are_detected_and_counted_apart(lab: Lab, first: str, second: str) -> None:
    """A hanging region times out, a region that is down refuses: each is detected with its own
    reason, and the two kinds are counted separately, in the window and in total."""
    det = Detection(interval=0.1, timeout=0.08, failure_threshold=3, recovery_threshold=2)

    async def scenario() -> None:
        async with TrackedRegion(lab.regions["use1"], det) as tracked:
            await tracked.until(healthy, what="healthy at first")

            await tracked.set_mode(first)
            kind1, reason1 = EXPECTED[first]
            v1 = await tracked.until(unhealthy, what=f"unhealthy while {first}")
            assert v1.signals == ["consecutive"]
            assert v1.reason == f"3 consecutive failures (last: {reason1})"
            kind2, reason2 = EXPECTED[second]
            assert v1.counts[kind1] == v1.totals[kind1] == 3
            assert v1.counts[kind2] == v1.totals[kind2] == 0

            await tracked.set_mode(second)
            v2 = await tracked.until(lambda v: v.counts[kind2] >= 3, what=f"3 {kind2} failures")
            assert v2.health is Health.unhealthy and v2.reason.endswith(f"(last: {reason2})")
            assert v2.totals[kind1] >= 3 and v2.totals[kind2] == 3
            assert v2.counts[kind1] == v2.totals[kind1]  # the window (20) still holds them all

            await tracked.set_mode("up")
            back = await tracked.until(healthy, what="healthy again")
            assert back.totals[kind1] >= 3 and back.totals[kind2] >= 3  # totals are never reset

    asyncio.run(scenario())


# --------------------------------------------------------------------------- through the monitor
def failures(sample: dict[Any, float], kind: str, observer: str = "local") -> float:
    labels = {"service": "shop", "endpoint": "use1", "observer": observer, "kind": kind}
    return sample.get(("failover_probe_failures_total", frozenset(labels.items())), 0.0)


def current_report(exchange: InMemoryExchange, predicate: Callable[[ObserverReport], bool],
                   timeout: float = 5.0) -> ObserverReport:
    """The one observer's report, once it satisfies ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        reports = exchange.collect(time.time())
        if reports and predicate(reports[0]):
            return reports[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no such report within {timeout}s; last: {reports and reports[0].verdicts}")
        time.sleep(0.02)


def test_the_monitor_reports_each_signal_with_its_reason_and_counts_kinds(
        lab_aws: Lab, tmp_path: Path, run_monitor, free_port: int, scrape_metrics) -> None:
    """One observer, manual policy (alerts only): the verdict events carry the latency and timeout
    reasons, the observer's report the refusal, and the metrics count timeouts and refusals apart."""
    lab = lab_aws
    data = yaml.safe_load(lab.strategy_path.read_text())
    shop = data["services"]["shop"]
    shop["detection"] = {"interval": "100ms", "timeout": "90ms", "failure_threshold": 3, "recovery_threshold": 2,
                         "latency": {"limit": "25ms", "window": 4, "min_samples": 3}}
    shop["policy"] = {"failover": "manual"}
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    exchange = InMemoryExchange()
    mon = run_monitor(path, exchange=exchange, metrics_port=free_port)
    use1 = lab.regions["use1"]

    def verdict(health: str, count: int = 1) -> dict[str, Any]:
        return mon.events.wait_for("verdict", endpoint="use1", health=health, count=count)

    verdict("healthy")
    use1.set_mode("slow", delay_ms=50)  # answers within the 90 ms timeout, but over the 25 ms limit
    slow = verdict("unhealthy")
    assert re.search(r"local: p95 latency \d+ ms > 25 ms over last \d probes$", slow["reason"]), slow["reason"]

    use1.set_mode("up")
    verdict("healthy", count=2)
    assert failures(scrape_metrics(free_port), "refused") == 0

    use1.set_mode("hang")
    hang = verdict("unhealthy", count=2)
    assert hang["reason"].endswith("local: 3 consecutive failures (last: timeout after 90 ms)"), hang["reason"]
    sample = scrape_metrics(free_port)
    timeouts = failures(sample, "timeout")
    assert timeouts >= 3 and failures(sample, "refused") == 0

    use1.set_mode("down")  # still unhealthy, so no new verdict event: read the observer's report
    report = current_report(exchange, lambda r: r.verdicts[KEY]["reason"].endswith("(last: connection refused)"))
    assert report.verdicts[KEY]["health"] == "unhealthy" and report.partitioned is False
    sample = scrape_metrics(free_port)
    assert failures(sample, "refused") >= 1
    mon.stop()
    assert mon.events.all("run_started") == []  # manual policy: no action
    assert len(mon.events.all("alert")) == 2  # one per outage (slow, then hang/down), not one per probe
