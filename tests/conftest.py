"""Shared fixtures. Keep them generic: several test modules use them."""
from __future__ import annotations

import socket
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest


# --------------------------------------------------------------------------- local endpoints
class _EndpointHandler(BaseHTTPRequestHandler):
    """Answers every request as its server's current behaviour says (status, body, delay)."""

    protocol_version = "HTTP/1.1"  # keep-alive, so that connection reuse can be observed
    server: "_EndpointHttpServer"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, self.client_address)

    def finish(self) -> None:
        with suppress(OSError):
            super().finish()
        self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _answer(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        owner.record(self.command, self.path, dict(self.headers))
        try:
            owner.wait_delay()
            body = owner.body
            self.send_response(owner.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        finally:
            owner.done()

    do_GET = do_HEAD = do_POST = _answer


class _EndpointHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default (5) drops SYNs when many probes connect at once

    def __init__(self, owner: "LocalHttpServer"):
        self.owner = owner
        self._open: dict[socket.socket, tuple[str, int]] = {}
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _EndpointHandler)

    def track(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        with self._open_lock:
            self._open[conn] = peer
            self.owner.connections.add(peer)

    def untrack(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(conn, None)

    def close_open_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up (timeouts, stop()) are expected here


class LocalHttpServer:
    """A real HTTP server on 127.0.0.1 (port chosen by the OS), served from a thread.

    ``status``, ``body`` and ``delay`` may be changed while it runs. It records every request
    (``requests``: method, path, headers), the client (ip, port) of every connection
    (``connections``) and the most requests it handled at once (``max_in_flight``).
    ``stop()`` closes the listener and every open connection: the port then refuses.
    """

    def __init__(self, status: int = 200, body: bytes | str = b"ok", delay: float = 0.0):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.delay = delay
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.connections: set[tuple[str, int]] = set()
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._server = _EndpointHttpServer(self)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path, headers))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def wait_delay(self) -> None:
        if self.delay:
            self._stopped.wait(self.delay)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_open_connections()
        self._thread.join(timeout=2)


@pytest.fixture
def local_http_server() -> Iterator[Callable[..., LocalHttpServer]]:
    """Factory: ``local_http_server(status=200, body="ok", delay=0.0)`` starts a LocalHttpServer.

    Every server started is stopped at the end of the test.
    """
    started: list[LocalHttpServer] = []

    def start(status: int = 200, body: bytes | str = b"ok", delay: float = 0.0) -> LocalHttpServer:
        server = LocalHttpServer(status=status, body=body, delay=delay)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def silent_tcp_server() -> Iterator[tuple[str, int]]:
    """(host, port) of a listener that accepts connections and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()
    listener.settimeout(0.05)

    def accept_and_hold() -> None:
        while not stop.is_set():
            with suppress(TimeoutError, OSError):
                conn, _unused = listener.accept()
                held.append(conn)

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    yield "127.0.0.1", listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was just bound and closed: connecting to it is refused."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- Cloud DNS emulator
@pytest.fixture
def clouddns_emulator() -> Iterator["object"]:
    """A started :class:`failover_engine.lab.emulators.clouddns.CloudDnsEmulator` (empty; ``.url`` for the SDK clients'
    ``api_endpoint``). Stopped after the test."""
    from failover_engine.lab.emulators.clouddns import CloudDnsEmulator

    emulator = CloudDnsEmulator().start()
    yield emulator
    emulator.stop()


# --------------------------------------------------------------------------- Azure Traffic Manager emulator
@pytest.fixture
def trafficmanager_emulator() -> Iterator["TrafficManagerEmulator"]:  # noqa: F821 - imported lazily
    """A running :class:`TrafficManagerEmulator` (failover_engine/lab/emulators/trafficmanager.py): ARM Traffic
    Manager over HTTPS on 127.0.0.1, its CA in ``.ca_file``. Stopped after the test."""
    from failover_engine.lab.emulators.trafficmanager import TrafficManagerEmulator

    with TrafficManagerEmulator() as emulator:
        yield emulator


# --------------------------------------------------------------------------- fault proxy
@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., "FaultProxy"]]:  # noqa: F821 - imported lazily
    """Factory: ``fault_proxy(upstream_url, flavor="aws", tls=None, upstream_ca=None, **kw)`` starts a
    :class:`faultproxy.FaultProxy` (tests/faultproxy.py) in front of moto or an emulator; ``kw``:
    ``name``, ``log`` (a shared :class:`faultproxy.CallLog`), ``upstream_timeout``. For the Traffic
    Manager emulator: ``tls=emulator_tls(emulator.ca_file), upstream_ca=emulator.ca_file``.
    Every proxy started is stopped at the end of the test."""
    from faultproxy import FaultProxy

    started: list[FaultProxy] = []

    def start(upstream_url: str, flavor: str = "aws", tls: tuple[str, str] | None = None,
              upstream_ca: str | None = None, **kw: object) -> FaultProxy:
        proxy = FaultProxy(upstream_url, flavor=flavor, tls=tls, upstream_ca=upstream_ca, **kw).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
