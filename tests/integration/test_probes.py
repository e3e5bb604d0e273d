"""Probes and detection against real local things: HTTP and HTTPS servers in threads, raw TCP
listeners, a small UDP DNS server, real subprocesses and a Python module written per test."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from failover_engine.detection.rounds import probe_service, wait_for
from failover_engine.core.errors import ProbeConfigError, UnknownEndpointError
from failover_engine.detection.health import Health
from failover_engine.core.model import CommandProbe, DnsProbe, HttpProbe, PythonProbe, Service, TcpProbe
from failover_engine.core.model import parse_nameserver
from failover_engine.detection.results import FailureKind
from failover_engine.detection.probes import cert_not_after, probe_all, probe_many, probe_once

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
    assert list(results) == [name for name, _unused in items]
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
    assert all(h is not Health.unhealthy for _unused, h in seen[:-1])


def test_wait_for_keeps_cadence_when_rounds_take_time(local_http_server):
    # wide margins (timeout 0.35 s for a 0.15 s answer) so a loaded machine does not fail probes
    svc = service({"a": http(local_http_server(delay=0.15).url), "b": None}, interval=0.4, timeout=0.35,
                  recovery_threshold=5)
    result = wait_for(svc, ["a"], "healthy", timeout=8.0)
    assert result.reached and result.rounds == 5
    # 4 intervals + the last round (~0.15 s): ~1.75 s; counting intervals from round ends: ~2.35 s
    assert 1.7 <= result.elapsed < 2.2
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


# --------------------------------------------------------------------------- HTTP status, headers
@pytest.mark.parametrize("status, expect, ok", [
    (204, ["2xx"], True), (503, ["2xx"], False), (302, ["200-399"], True), (404, ["200-399", 404], True),
    (500, ["4xx", "200-299"], False),
])
def test_http_status_classes_and_ranges(status, expect, ok, local_http_server):
    result = probe_once(http(local_http_server(status=status, body=b"").url, expect_status=expect), timeout=TIMEOUT)
    assert result.ok is ok
    if not ok:
        assert (result.kind, result.reason) == (FailureKind.status, f"status {status} not in {expect}")


def test_http_expected_headers(local_http_server):
    url = local_http_server().url
    good = probe_once(http(url, expect_headers={"content-type": "text/plain", "Server": "BaseHTTP"}), timeout=TIMEOUT)
    wrong = probe_once(http(url, expect_headers={"Content-Type": "application/json"}), timeout=TIMEOUT)
    missing = probe_once(http(url, expect_headers={"X-Region": "eu"}), timeout=TIMEOUT)
    assert good.ok, good.reason
    assert (wrong.ok, wrong.kind) == (False, FailureKind.header)
    assert wrong.reason == "header 'Content-Type' does not contain 'application/json'"
    assert (missing.kind, missing.reason) == (FailureKind.header, "header 'X-Region' missing")
    assert missing.latency_ms is not None


# --------------------------------------------------------------------------- HTTPS
def _self_signed(directory: Path, not_after: dt.datetime) -> tuple[Path, Path]:
    """(cert, key) of a self-signed certificate for 127.0.0.1 valid until ``not_after``."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        days = max(1, (not_after - dt.datetime.now(dt.timezone.utc)).days)
        if not_after < dt.datetime.now(dt.timezone.utc):
            pytest.skip("an expired certificate needs the cryptography package")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", str(days), "-subj", "/CN=localhost", "-keyout", str(key_path),
                        "-out", str(cert_path)], check=True, capture_output=True)
        return cert_path, key_path
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(not_after, dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=30))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _TlsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.send_header("X-Env", "prod")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"secure")

    do_GET = do_HEAD = _answer


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients refusing the certificate are expected here


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator:
    """Factory: ``https_server(days)`` -> URL of an HTTPS server whose self-signed certificate
    expires ``days`` from now (negative: expired)."""
    servers: list[_TlsServer] = []

    def start(days: float) -> str:
        directory = tmp_path / f"tls{len(servers)}"
        directory.mkdir()
        cert, key = _self_signed(directory, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = _TlsServer(("127.0.0.1", 0), _TlsHandler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_https_self_signed_fails_verification(https_server):
    result = probe_once(http(https_server(90)), timeout=TIMEOUT)
    assert (result.ok, result.kind) == (False, FailureKind.tls)
    assert "certificate" in result.reason.lower()


def test_https_without_verification_checks_status_body_and_headers(https_server):
    result = probe_once(http(https_server(90), verify_tls=False, body_contains="secure",
                             expect_headers={"X-Env": "prod"}), timeout=TIMEOUT)
    assert (result.ok, result.kind) == (True, FailureKind.none), result.reason


@pytest.mark.parametrize("method", ["GET", "HEAD"])  # HEAD: no body, the connection is released at once
def test_tls_min_days(method, https_server):
    url = https_server(30.5)
    enough = probe_once(http(url, method=method, verify_tls=False, tls_min_days=14), timeout=TIMEOUT)
    short = probe_once(http(url, method=method, verify_tls=False, tls_min_days=45), timeout=TIMEOUT)
    assert enough.ok, enough.reason
    assert (short.ok, short.kind) == (False, FailureKind.tls)
    assert short.reason.startswith("certificate expires in 30 days (at ") and short.reason.endswith("minimum 45")
    assert short.latency_ms is not None


def test_tls_min_days_reports_an_expired_certificate(https_server):
    result = probe_once(http(https_server(-3.5), verify_tls=False, tls_min_days=0), timeout=TIMEOUT)
    assert (result.kind, result.reason.split(" (")[0]) == (FailureKind.tls, "certificate expired 4 days ago")


def test_tls_min_days_on_plain_http_is_refused_at_load(local_http_server):
    with pytest.raises(ValueError, match="tls_min_days needs an https:// URL"):
        http(local_http_server().url, tls_min_days=30)


def test_cert_not_after_reads_der(tmp_path):
    when = dt.datetime(2031, 5, 17, 12, 30, tzinfo=dt.timezone.utc)
    cert, _unused = _self_signed(tmp_path, when)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert cert_not_after(der) == when


# --------------------------------------------------------------------------- source address
class _RecordingListener:
    """Accepts TCP connections (answering any request with a minimal HTTP 200) and records peers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            with suppress(TimeoutError, OSError):
                conn, peer = self.sock.accept()
                self.peers.append(peer[0])
                conn.settimeout(0.5)
                with suppress(OSError), conn:
                    if conn.recv(4096):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def recording_listener() -> Iterator[_RecordingListener]:
    listener = _RecordingListener()
    yield listener
    listener.close()


def test_source_address_binds_http_and_tcp(recording_listener):
    url = f"http://127.0.0.1:{recording_listener.port}/"
    assert probe_once(http(url), timeout=TIMEOUT, source_address="127.0.0.2").ok
    assert probe_once(TcpProbe(host="127.0.0.1", port=recording_listener.port), timeout=TIMEOUT,
                      source_address="127.0.0.3").ok
    assert probe_all([("a", http(url)), ("b", http(url + "b"))], timeout=TIMEOUT, source_address="127.0.0.4")["b"].ok
    assert recording_listener.peers == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.4"]


def test_source_address_that_is_not_local_is_an_error(recording_listener):
    result = probe_once(http(f"http://127.0.0.1:{recording_listener.port}/"), timeout=TIMEOUT,
                        source_address="192.0.2.1")
    assert (result.ok, result.kind) == (False, FailureKind.error)


# --------------------------------------------------------------------------- DNS
class TinyDnsServer:
    """A UDP DNS server on 127.0.0.1 answering from ``records`` {(name, type): [values]}: a known
    name with no record of the asked type gets an empty NOERROR answer, an unknown one NXDOMAIN.
    With ``silent`` it reads queries and never answers. ``queries``: (client ip, name, type)."""

    def __init__(self, records: dict[tuple[str, str], list[str]], silent: bool = False):
        self.records = records
        self.silent = silent
        self.queries: list[tuple[str, str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        names = {name for name, _unused in self.records}
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
            self.queries.append((peer[0], name, rdtype))
            if self.silent:
                continue
            response = dns.message.make_response(query)
            values = self.records.get((name, rdtype))
            if name not in names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif values:
                response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def dns_server() -> Iterator:
    started: list[TinyDnsServer] = []

    def start(records: dict[tuple[str, str], list[str]] | None = None, silent: bool = False) -> TinyDnsServer:
        server = TinyDnsServer(records or {}, silent)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


ZONE = {("app.test.", "A"): ["192.0.2.10", "192.0.2.11"], ("app.test.", "TXT"): ['"v=1 region=eu"'],
        ("app.test.", "MX"): ["10 mail.test."], ("alias.test.", "CNAME"): ["app.test."],
        ("v6.test.", "AAAA"): ["2001:db8::1"]}


@pytest.mark.parametrize("name, rtype, expect", [
    ("app.test", "A", []), ("app.test", "A", ["192.0.2.11"]), ("app.test", "A", ["192.0.2.10", "192.0.2.11"]),
    ("app.test", "TXT", ["v=1 region=eu"]), ("app.test", "MX", ["mail.test"]), ("app.test", "MX", ["10 mail.test."]),
    ("alias.test", "CNAME", ["APP.test."]), ("v6.test", "AAAA", ["2001:0db8:0::1"]),
])
def test_dns_answer_holds_expected_values(name, rtype, expect, dns_server):
    server = dns_server(ZONE)
    result = probe_once(DnsProbe(name=name, record_type=rtype, nameserver=server.address, expect=expect),
                        timeout=TIMEOUT, endpoint="dns")
    assert (result.ok, result.kind, result.endpoint) == (True, FailureKind.none, "dns"), result.reason
    assert result.reason.startswith("ok ") and result.latency_ms is not None
    assert server.queries[-1][1:] == (name + ".", rtype)


def test_dns_answer_lacking_a_value(dns_server):
    server = dns_server(ZONE)
    result = probe_once(DnsProbe(name="app.test", nameserver=server.address, expect=["192.0.2.10", "198.51.100.7"]),
                        timeout=TIMEOUT)
    assert (result.ok, result.kind) == (False, FailureKind.answer)
    assert result.reason == "A answer for app.test lacks 198.51.100.7 (got 192.0.2.10, 192.0.2.11)"
    assert result.latency_ms is not None


def test_dns_nxdomain_and_no_answer(dns_server):
    server = dns_server(ZONE)
    nx = probe_once(DnsProbe(name="nope.test", nameserver=server.address), timeout=TIMEOUT)
    empty = probe_once(DnsProbe(name="app.test", record_type="AAAA", nameserver=server.address), timeout=TIMEOUT)
    assert (nx.ok, nx.kind, nx.reason, nx.latency_ms) == (False, FailureKind.dns, "NXDOMAIN: nope.test does not exist",
                                                          None)
    assert (empty.kind, empty.reason) == (FailureKind.dns, "no AAAA record for app.test")


def test_dns_timeout_when_the_server_never_answers(dns_server):
    server = dns_server(ZONE, silent=True)
    started = time.perf_counter()
    result = probe_once(DnsProbe(name="app.test", nameserver=server.address), timeout=0.3)
    assert (result.ok, result.kind, result.reason) == (False, FailureKind.timeout, "timeout after 300 ms")
    assert 0.25 <= time.perf_counter() - started < 1.0
    assert server.queries


def test_dns_queries_from_the_source_address(dns_server):
    server = dns_server(ZONE)
    assert probe_once(DnsProbe(name="app.test", nameserver=server.address), timeout=TIMEOUT,
                      source_address="127.0.0.5").ok
    assert server.queries[-1][0] == "127.0.0.5"


@pytest.mark.parametrize("text, parsed", [
    ("192.0.2.1", ("192.0.2.1", 53)), ("192.0.2.1:5353", ("192.0.2.1", 5353)), ("2001:db8::1", ("2001:db8::1", 53)),
    ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
])
def test_parse_nameserver(text, parsed):
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize("text", ["ns1.example.com", "192.0.2.1:dns", "192.0.2.1:70000"])
def test_invalid_nameserver_is_refused_at_load_and_an_error_result_at_run(text):
    with pytest.raises(ValueError, match="invalid nameserver"):
        parse_nameserver(text)
    with pytest.raises(ValueError, match="invalid nameserver"):
        DnsProbe(name="app.test", nameserver=text)
    result = probe_once(DnsProbe.model_construct(type="dns", name="app.test", record_type="A",
                                                 nameserver=text, expect=[]), timeout=TIMEOUT)
    assert (result.kind, result.latency_ms) == (FailureKind.error, None)


# --------------------------------------------------------------------------- command
def py_command(code: str, expect_exit: list[int] | None = None) -> CommandProbe:
    return CommandProbe(argv=[sys.executable, "-c", textwrap.dedent(code)], **({"expect_exit": expect_exit}
                                                                               if expect_exit else {}))


def test_command_exit_code():
    ok = probe_once(py_command("pass"), timeout=5.0)
    failed = probe_once(py_command("import sys; sys.exit(3)"), timeout=5.0)
    expected = probe_once(py_command("import sys; sys.exit(3)", expect_exit=[0, 3]), timeout=5.0)
    assert (ok.ok, ok.kind) == (True, FailureKind.none) and ok.reason.startswith("ok exit 0 in ")
    assert (failed.ok, failed.kind, failed.reason) == (False, FailureKind.exit, "exit 3 not in [0]")
    assert failed.latency_ms is not None
    assert expected.ok and expected.reason.startswith("ok exit 3")


def test_command_failure_reason_has_the_last_stderr_line_trimmed():
    result = probe_once(py_command("""
        import sys
        print("lots of output", flush=True)
        sys.stderr.write("first line\\n" + "replica lag " + "x" * 500 + "\\n\\n")
        sys.exit(2)
    """), timeout=5.0)
    assert result.kind is FailureKind.exit
    prefix = "exit 2 not in [0]: replica lag x"
    assert result.reason.startswith(prefix) and result.reason.endswith("...")
    assert len(result.reason) == len("exit 2 not in [0]: ") + 200


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie no longer runs


def test_command_timeout_kills_the_command_and_its_children(tmp_path):
    pids = tmp_path / "pids"
    probe = py_command(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
    """)
    started = time.perf_counter()
    result = probe_once(probe, timeout=1.5)
    assert (result.ok, result.kind, result.reason) == (False, FailureKind.timeout, "timeout after 1500 ms")
    assert time.perf_counter() - started < 3.0
    deadline = time.monotonic() + 3
    parent, child = (int(p) for p in pids.read_text().split())
    while not (_gone(parent) and _gone(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(parent) and _gone(child)


def test_command_that_exits_while_a_child_keeps_stderr_open(tmp_path):
    pid_file = tmp_path / "child"
    probe = py_command(f"""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        sys.stderr.write("primary is read-only\\n")
        sys.exit(1)
    """)
    started = time.perf_counter()
    result = probe_once(probe, timeout=3.0)
    try:
        assert (result.kind, result.reason) == (FailureKind.exit, "exit 1 not in [0]: primary is read-only")
        assert time.perf_counter() - started < 2.0
    finally:
        with suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 9)


def test_command_not_found():
    result = probe_once(CommandProbe(argv=["/nonexistent/check-replica"]), timeout=TIMEOUT)
    assert (result.kind, result.reason) == (FailureKind.error, "command not found: /nonexistent/check-replica")


# --------------------------------------------------------------------------- Python entry point
CHECKS = """
import asyncio, time

def healthy(**kwargs):
    return True

def lagging(max_lag, lag):
    return lag <= max_lag, f"replication lag {lag}s (max {max_lag}s)"

def broken():
    raise ValueError("no replica status")

def sleepy(seconds):
    time.sleep(seconds)
    return True

def confused():
    return 42

async def async_ok(region):
    await asyncio.sleep(0.01)
    return True, f"region {region} consistent"

async def async_sleepy():
    await asyncio.sleep(10)
    return True

NOT_CALLABLE = 3
"""


@pytest.fixture
def checks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Name of a fresh module (unique: entry points are cached) holding the checks above."""
    name = f"probe_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(CHECKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def py_probe(module: str, func: str, **args) -> PythonProbe:
    return PythonProbe(entry_point=f"{module}:{func}", args=args)


def test_python_probe_results(checks_module):
    m = checks_module
    cases = {
        "healthy": (py_probe(m, "healthy"), True, FailureKind.none, "ok in "),
        "within": (py_probe(m, "lagging", max_lag=5, lag=2), True, FailureKind.none,
                   "ok (replication lag 2s (max 5s)) in "),
        "lagging": (py_probe(m, "lagging", max_lag=5, lag=30), False, FailureKind.check,
                    "replication lag 30s (max 5s)"),
        "async": (py_probe(m, "async_ok", region="eu"), True, FailureKind.none, "ok (region eu consistent) in "),
        "raises": (py_probe(m, "broken"), False, FailureKind.error, "ValueError: no replica status"),
        "confused": (py_probe(m, "confused"), False, FailureKind.error,
                     f"{m}:confused returned int; expected a bool or (bool, reason)"),
    }
    results = probe_all([(name, spec) for name, (spec, *_unused) in cases.items()], timeout=TIMEOUT)
    for name, (_unused, ok, kind, reason) in cases.items():
        result = results[name]
        assert (result.ok, result.kind) == (ok, kind), (name, result.reason)
        assert result.reason.startswith(reason), (name, result.reason)


def test_python_probe_returning_false_has_a_default_reason(tmp_path, monkeypatch):
    name = f"probe_false_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("def check():\n    return False\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = probe_once(PythonProbe(entry_point=f"{name}:check"), timeout=TIMEOUT)
    assert (result.kind, result.reason) == (FailureKind.check, f"{name}:check returned False")


@pytest.mark.parametrize("func", ["sleepy", "async_sleepy"])
def test_python_probe_timeout(func, checks_module):
    spec = py_probe(checks_module, func, **({"seconds": 1.0} if func == "sleepy" else {}))
    started = time.perf_counter()
    result = probe_once(spec, timeout=0.2)
    assert (result.ok, result.kind, result.reason) == (False, FailureKind.timeout, "timeout after 200 ms")
    assert time.perf_counter() - started < 0.8  # a sync check still sleeping does not hold probe_once


def test_python_probe_that_cannot_be_loaded(checks_module):
    missing = probe_once(PythonProbe(entry_point="no_such_module_here:check"), timeout=TIMEOUT)
    attribute = probe_once(py_probe(checks_module, "nothing"), timeout=TIMEOUT)
    constant = probe_once(py_probe(checks_module, "NOT_CALLABLE"), timeout=TIMEOUT)
    assert missing.kind is FailureKind.error
    assert missing.reason.startswith("cannot load no_such_module_here:check: ModuleNotFoundError")
    assert attribute.reason.startswith(f"cannot load {checks_module}:nothing: AttributeError")
    assert constant.reason == f"{checks_module}:NOT_CALLABLE is not callable"


def test_sync_python_probes_run_in_threads(checks_module):
    items = [(f"p{i}", py_probe(checks_module, "sleepy", seconds=0.2)) for i in range(8)]
    started = time.perf_counter()
    results = probe_all(items, timeout=2.0)
    assert all(r.ok for r in results.values())
    assert time.perf_counter() - started < 1.0  # 8 x 0.2 s in parallel, and the event loop free meanwhile


def test_new_failure_kinds_are_appended():
    assert [k.value for k in FailureKind] == ["none", "timeout", "refused", "dns", "tls", "status", "body", "slow",
                                              "error", "header", "answer", "exit", "check", "reset"]
