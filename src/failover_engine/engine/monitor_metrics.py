"""Prometheus metrics of `failover monitor` (prometheus_client, on its own registry)."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RTO_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
HEALTH_VALUE = {"healthy": 1.0, "unhealthy": 0.0, "unknown": -1.0}


class MonitorMetrics:
    def __init__(self) -> None:
        self._server: Any = None
        r = self.registry = CollectorRegistry()
        self.probe_latency = Histogram("failover_probe_latency_seconds", "Probe answer time",
                                       ["service", "endpoint", "observer"], buckets=LATENCY_BUCKETS, registry=r)
        self.probe_failures = Counter("failover_probe_failures_total", "Failed probes by kind",
                                      ["service", "endpoint", "observer", "kind"], registry=r)
        self.observer_health = Gauge("failover_observer_endpoint_health",
                                     "Health seen by one observer: 1 healthy, 0 unhealthy, -1 unknown",
                                     ["service", "endpoint", "observer"], registry=r)
        self.endpoint_health = Gauge("failover_endpoint_health",
                                     "Quorum verdict: 1 healthy, 0 unhealthy, -1 unknown (no quorum)",
                                     ["service", "endpoint"], registry=r)
        self.flapping = Gauge("failover_service_flapping", "1 while automation is held for flapping",
                              ["service"], registry=r)
        self.leader = Gauge("failover_monitor_leader", "1 while this monitor holds its group's leader lease "
                            "(always 1 with file coordination)", registry=r)
        self.runs = Counter("failover_runs_total", "Failovers and failbacks by outcome",
                            ["service", "action", "outcome"], registry=r)
        self.rto = Histogram("failover_rto_seconds", "RTO: first failed probe to validated switch",
                             ["service", "action"], buckets=RTO_BUCKETS, registry=r)
        self.phase = Histogram("failover_phase_seconds", "Duration of each RTO phase",
                               ["service", "action", "phase"], buckets=RTO_BUCKETS, registry=r)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread until :meth:`close`."""
        try:
            self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            from failover_engine.core.errors import FailoverError

            raise FailoverError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc} "
                                "(is another monitor running? use --metrics-port)") from None

    def close(self) -> None:
        """Stop serving and free the port (a monitor restarted in the same process can bind it again)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def observe_probe(self, key: str, observer: str, result: Any, verdict: Any) -> None:
        service, _sep, endpoint = key.partition("/")
        if result.latency_ms is not None:
            self.probe_latency.labels(service, endpoint, observer).observe(result.latency_ms / 1000)
        if not result.ok:
            self.probe_failures.labels(service, endpoint, observer, getattr(result.kind, "value", result.kind)).inc()
        health = getattr(verdict.health, "value", verdict.health)
        self.observer_health.labels(service, endpoint, observer).set(HEALTH_VALUE.get(health, -1.0))

    def set_health(self, service: str, endpoint: str, health: str) -> None:
        self.endpoint_health.labels(service, endpoint).set(HEALTH_VALUE.get(health, -1.0))

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1.0 if leading else 0.0)

    def set_flapping(self, service: str, flapping: bool) -> None:
        self.flapping.labels(service).set(1.0 if flapping else 0.0)

    def record_run(self, service: str, action: str, outcome: Any) -> None:
        self.runs.labels(service, action, outcome.status).inc()
        tl = outcome.timeline
        if outcome.status != "succeeded" or tl is None:
            return
        if tl.rto is not None:
            self.rto.labels(service, action).observe(tl.rto)
        for phase, seconds in tl.phases().items():
            if seconds is not None:
                self.phase.labels(service, action, phase).observe(seconds)
