"""Probes and detection against real local servers (HTTP in a thread, raw TCP listeners)."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from failover_engine.detection import probe_service, wait_for
from failover_engine.errors import ProbeConfigError, UnknownEndpointError
from failover_engine.health import Health
from failover_engine.model import HttpProbe, Service, TcpProbe
from failover_engine.probes import FailureKind, probe_all, probe_many, probe_once

pytestmark = pytest.mark.integration

TIMEOUT = 1.0


def http(url: str, **kw) -> HttpProbe:
    return HttpProbe(url=url, **kw)


def service(probes: dict[str, HttpProbe | TcpProbe | None], **detection) -> Service:
    """A two-or-more endpoint active/passive service whose endpoints have the given probes."""
    names = list(probes)
    endpoints = [
        {"name": n, "role": "primary" if i == 0 else "standby", "region": f"r{i}",
         **({"probe": p.model_dump()} if p is not None else {})}
        for i, (n, p) in enumerate(probes.items())
    ]
    routing = [{"adapter": "route53", "record": "svc.example.", "hosted_zone_id": "Z1",
                "endpoints": {n: {"values": [f"192.0.2.{i + 1}"]} for i, n in enumerate(names)}}]
    return Service.model_validate({"endpoints": endpoints, "routing": routing, "detection": detection})


# --------------------------------------------------------------------------- single probes
def test_http_ok_reports_status_and_latency(local_http_server):
    server = local_http_server(body="all ok")
    before = time.time()
    result = probe_once(http(server.url + "/health", body_contains="ok"), timeout=TIMEOUT, endpoint="a")
    assert (result.ok, result.kind, result.endpoint) == (True, FailureKind.none, "a")
    assert result.reason.startswith("ok 200 in ") and result.reason.endswith(" ms")
    assert result.latency_ms is not None and 0 <= result.latency_ms < TIMEOUT * 1000
    assert before <= result.at <= time.time()
    assert server.requests[0][:2] == ("GET", "/health")


def test_http_status_mismatch(local_http_server):
    server = local_http_server(status=503)
    result = probe_once(http(server.url, expect_status=[200, 204]), timeout=TIMEOUT)
    assert (result.ok, result.kind) == (False, FailureKind.status)
    assert result.reason == "status 503 not in [200, 204]"
    assert result.latency_ms is not None


def test_http_expected_non_200_status_is_ok(local_http_server):
    server = local_http_server(status=204, body=b"")
    assert probe_once(http(server.url, expect_status=[204]), timeout=TIMEOUT).ok


def test_http_body_mismatch(local_http_server):
    server = local_http_server(body="degraded")
    result = probe_once(http(server.url, body_contains="ok"), timeout=TIMEOUT)
    assert (result.ok, result.kind, result.reason) == (False, FailureKind.body, "body does not contain 'ok'")


def test_http_slow_answer_over_latency_limit(local_http_server):
    server = local_http_server(delay=0.25)
    result = probe_once(http(server.url), timeout=TIMEOUT, latency_limit=0.1)
    assert (result.ok, result.kind) == (False, FailureKind.slow)
    assert result.latency_ms is not None and result.latency_ms >= 250
    assert result.reason.startswith("slow: ") and result.reason.endswith("> limit 100 ms")


def test_http_within_latency_limit_is_ok(local_http_server):
    server = local_http_server()
    assert probe_once(http(server.url), timeout=TIMEOUT, latency_limit=0.5).ok


def test_http_timeout_when_server_never_answers(silent_tcp_server):
    host, port = silent_tcp_server
    started = time.perf_counter()
    result = probe_once(http(f"http://{host}:{port}/"), timeout=0.2)
    assert (result.ok, result.kind, result.reason) == (False, FailureKind.timeout, "timeout after 200 ms")
    assert result.latency_ms is None
    assert 0.19 <= time.perf_counter() - started < 1.0


def test_http_connection_refused(closed_port):
    result = probe_once(http(f"http://127.0.0.1:{closed_port}/"), timeout=TIMEOUT)
    assert (result.ok, result.kind, result.reason) == (False, FailureKind.refused, "connection refused")


def test_http_unknown_host_is_dns():
    result = probe_once(http("http://no-such-host.invalid/"), timeout=3.0)
    assert (result.ok, result.kind) == (False, FailureKind.dns)
    assert "no-such-host.invalid" in result.reason


def test_https_to_a_plain_http_server_is_tls(local_http_server):
    server = local_http_server()
    result = probe_once(http(f"https://127.0.0.1:{server.port}/", verify_tls=False), timeout=TIMEOUT)
    assert (result.ok, result.kind) == (False, FailureKind.tls)


def test_method_and_headers_are_sent(local_http_server):
    server = local_http_server()
    probe_once(http(server.url + "/x", method="POST", headers={"X-Probe": "yes-please"}), timeout=TIMEOUT)
    method, path, headers = server.requests[0]
    assert (method, path, headers.get("X-Probe")) == ("POST", "/x", "yes-please")


@pytest.mark.parametrize("target", ["status", "refused", "timeout"])
def test_header_values_never_reach_reasons(target, local_http_server, closed_port, silent_tcp_server):
    token = "Bearer s3cr3t-t0ken"
    urls = {"status": local_http_server(status=500).url, "refused": f"http://127.0.0.1:{closed_port}/",
            "timeout": "http://%s:%d/" % silent_tcp_server}
    result = probe_once(http(urls[target], headers={"Authorization": token}), timeout=0.3)
    assert not result.ok
    assert "s3cr3t" not in json.dumps(result.to_dict())


def test_tcp_ok_and_refused(silent_tcp_server, closed_port):
    host, port = silent_tcp_server
    up = probe_once(TcpProbe(host=host, port=port), timeout=TIMEOUT)
    down = probe_once(TcpProbe(host="127.0.0.1", port=closed_port), timeout=TIMEOUT)
    assert (up.ok, up.kind) == (True, FailureKind.none) and up.reason.startswith("ok connected in ")
    assert up.latency_ms is not None
    assert (down.ok, down.kind, down.latency_ms) == (False, FailureKind.refused, None)


def test_result_to_dict_is_json_ready(local_http_server):
    data = json.loads(json.dumps(probe_once(http(local_http_server().url), timeout=TIMEOUT, endpoint="e").to_dict()))
    assert data["ok"] is True and data["kind"] == "none" and data["endpoint"] == "e"


# --------------------------------------------------------------------------- many probes
def test_probe_all_over_fifty_endpoints(local_http_server, closed_port):
    up, sick = local_http_server(delay=0.2), local_http_server(status=503, delay=0.2)
    expected = {}
    items = []
    for i in range(50):
        url, kind = [(up.url, FailureKind.none), (sick.url, FailureKind.status),
                     (f"http://127.0.0.1:{closed_port}", FailureKind.refused)][i % 3]
        items.append((f"ep{i}", http(f"{url}/{i}")))
        expected[f"ep{i}"] = kind
    started = time.perf_counter()
    results = probe_all(items, timeout=TIMEOUT)
    assert time.perf_counter() - started < 2.0  # 34 answers of 200 ms each: concurrent, not serial
    assert list(results) == [name for name, _ in items]
    assert {name: r.kind for name, r in results.items()} == expected
    assert all(r.endpoint == name for name, r in results.items())


def test_probe_many_bounds_concurrency_and_reuses_connections(local_http_server):
    server = local_http_server(delay=0.05)
    items = [(f"ep{i}", http(f"{server.url}/{i}")) for i in range(20)]
    results = asyncio.run(probe_many(items, timeout=TIMEOUT, concurrency=4))
    assert all(r.ok for r in results.values())
    assert len(server.requests) == 20
    assert server.max_in_flight <= 4
    assert len(server.connections) <= 4  # one shared session: connections are reused


def test_probe_many_refuses_duplicate_names(local_http_server):
    spec = http(local_http_server().url)
    with pytest.raises(ValueError, match="unique"):
        probe_all([("a", spec), ("a", spec)], timeout=TIMEOUT)


# --------------------------------------------------------------------------- detection
def test_probe_service_skips_endpoints_without_probe(local_http_server):
    svc = service({"a": http(local_http_server().url), "b": None}, timeout=0.5)
    results = probe_service(svc)
    assert list(results) == ["a"] and results["a"].ok
    with pytest.raises(UnknownEndpointError, match="nope"):
        probe_service(svc, ["nope"])


def test_probe_service_uses_latency_limit(local_http_server):
    svc = service({"a": http(local_http_server(delay=0.15).url), "b": None}, timeout=0.5, latency_limit=0.05)
    assert probe_service(svc)["a"].kind is FailureKind.slow


def test_wait_for_unhealthy_after_server_shutdown(local_http_server):
    server = local_http_server()
    interval, threshold = 0.2, 3
    svc = service({"a": http(server.url), "b": None}, interval=interval, timeout=0.15,
                  failure_threshold=threshold, recovery_threshold=2)
    stopper = threading.Timer(0.3, server.stop)
    stopper.start()
    seen: list[tuple[int, Health]] = []
    result = wait_for(svc, ["a"], "unhealthy", timeout=5.0, on_round=lambda n, v: seen.append((n, v["a"].health)))
    stopper.join()
    assert result.reached and result.verdicts["a"].health is Health.unhealthy
    assert result.verdicts["a"].last.kind is FailureKind.refused
    assert result.first_signal_at is not None and result.detected_at is not None
    assert result.first_signal_at <= result.detected_at
    assert (threshold - 1) * interval * 0.75 <= result.detected_at - result.first_signal_at \
        <= (threshold - 1) * interval * 1.25
    assert seen[-1] == (result.rounds, Health.unhealthy) and len(seen) == result.rounds
    assert all(h is not Health.unhealthy for _, h in seen[:-1])


def test_wait_for_keeps_cadence_when_rounds_take_time(local_http_server):
    svc = service({"a": http(local_http_server(delay=0.1).url), "b": None}, interval=0.2, timeout=0.15,
                  recovery_threshold=5)
    result = wait_for(svc, ["a"], "healthy", timeout=5.0)
    assert result.reached and result.rounds == 5
    # 4 intervals + the last round (~0.1 s): ~0.9 s; counting intervals from round ends: ~1.3 s
    assert 0.85 <= result.elapsed < 1.15
    assert result.first_signal_at <= result.detected_at


def test_wait_for_gives_up_at_timeout(local_http_server):
    svc = service({"a": http(local_http_server().url), "b": None}, interval=0.1, timeout=0.1)
    result = wait_for(svc, ["a"], "unhealthy", timeout=0.45)
    assert not result.reached and result.detected_at is None and result.first_signal_at is None
    assert 4 <= result.rounds <= 5
    assert result.elapsed < 0.6
    assert result.verdicts["a"].health is Health.healthy
    assert json.loads(json.dumps(result.to_dict()))["verdicts"]["a"]["health"] == "healthy"


def test_wait_for_refuses_endpoints_it_cannot_watch(local_http_server):
    svc = service({"a": http(local_http_server().url), "b": None})
    with pytest.raises(ProbeConfigError, match="'b' has no probe"):
        wait_for(svc, ["b"], "unhealthy", timeout=1)
    with pytest.raises(ValueError, match="state"):
        wait_for(svc, ["a"], "down", timeout=1)  # type: ignore[arg-type]
