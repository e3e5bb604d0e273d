"""A region played by a local HTTP server whose failure mode can be switched at run time.

``GET /health`` answers ``ok region=<name>``, ``GET /`` answers ``hello from <name>``.
Modes (:meth:`RegionServer.set_mode`):

* ``up``: answer at once.
* ``down``: the listening socket is closed, so new connections are REFUSED and open ones are
  dropped; going back to any other mode binds the SAME port again (``SO_REUSEADDR``).
* ``slow``: wait ``delay_ms`` before answering.
* ``errors``: answer ``503`` with body ``error``.
* ``hang``: accept the connection and never answer, until the mode changes or the server stops.

Independently of the mode, :meth:`RegionServer.partition` cuts the region off from given client
source addresses (127.0.0.x): their connections are reset at once, as across a network
partition, while every other client is served. Observers bound to those addresses lose the region.

Everything binds 127.0.0.1 by default and port 0 lets the OS choose a free port.
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from failover_engine.core.errors import FailoverError

MODES = ("up", "down", "slow", "errors", "hang")
DEFAULT_DELAY_MS = 300
_JOIN_TIMEOUT = 2.0


class LabError(FailoverError):
    """The lab could not start, bind a port, or was asked for something it does not have."""


class _RegionHTTPServer(HTTPServer):
    """An HTTP server that serves each connection in a daemon thread and can drop them all.

    ``socketserver.ThreadingMixIn`` does not track daemon threads, so a hanging connection
    could not be ended on stop; this class keeps every open connection and its thread.
    """

    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], region: "RegionServer"):
        self.region = region
        self.closing = False
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, _RegionHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if client_address[0] in self.region.blocked_sources:
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            request.close()  # RST: the client sees its connection reset
            return
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name=f"region-{self.region.name}-conn", daemon=True)
        with self._conns_lock:  # start under the lock: drop_connections never joins an unstarted thread
            self._conns[request] = thread
            thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a client hanging up is normal in a lab
            pass
        finally:
            self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: no traceback on stderr when a client goes away."""

    def drop_connections(self) -> None:
        """Shut every open connection down (wakes blocked reads) and join their threads."""
        with self._conns_lock:
            conns = list(self._conns.items())
        for sock, _unused in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _unused, thread in conns:
            thread.join(_JOIN_TIMEOUT)


class _RegionHandler(BaseHTTPRequestHandler):
    server: _RegionHTTPServer
    server_version = "failover-lab-region/1"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.region._respond(self, self.server, head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.region._respond(self, self.server, head=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: no line per request on stderr."""


class RegionServer:
    """One region: a threaded HTTP server in a background thread, with switchable failure modes."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0):
        self.name = name
        self.host = host
        self._port = port
        self._mode = "up"
        self._delay_ms = DEFAULT_DELAY_MS
        self._state = threading.Condition()  # guards mode/delay; handlers wait on it
        self._admin = threading.RLock()  # serialises start/stop/bind/unbind
        self._httpd: _RegionHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self.blocked_sources: frozenset[str] = frozenset()

    def partition(self, sources: "set[str] | frozenset[str] | list[str]") -> None:
        """Reset connections from these client addresses (empty: heal the partition)."""
        self.blocked_sources = frozenset(sources)
        if self._httpd is not None and self.blocked_sources:
            self._httpd.drop_connections()  # kept-alive connections from blocked clients go too

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> int:
        """The bound port (0 before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def delay_ms(self) -> int:
        return self._delay_ms

    @property
    def listening(self) -> bool:
        return self._httpd is not None

    def status(self) -> dict[str, Any]:
        """What the control API reports for this region."""
        return {"url": self.url, "port": self._port, "mode": self._mode,
                "delay_ms": self._delay_ms if self._mode == "slow" else None,
                "blocked_sources": sorted(self.blocked_sources)}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "RegionServer":
        """Bind (port 0: the OS chooses, then it is kept) and serve; mode ``down`` closes at once."""
        with self._admin:
            if self._started:
                return self
            self._bind()
            self._started = True
            if self._mode == "down":
                self._unbind()
        return self

    def stop(self) -> None:
        """Stop listening, drop open connections and join every thread. Idempotent."""
        with self._admin:
            self._started = False
            self._unbind()

    def __enter__(self) -> "RegionServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_mode(self, mode: str, **opts: Any) -> None:
        """Switch the failure mode. ``slow`` takes ``delay_ms`` (default 300)."""
        delay = self._check_mode(mode, opts)
        with self._admin:
            with self._state:
                self._mode = mode
                if delay is not None:
                    self._delay_ms = delay
                self._state.notify_all()
            if not self._started:
                return
            if mode == "down":
                self._unbind()
            elif self._httpd is None:
                self._bind()

    @staticmethod
    def _check_mode(mode: str, opts: dict[str, Any]) -> int | None:
        if mode not in MODES:
            raise ValueError(f"unknown region mode {mode!r}; modes: {', '.join(MODES)}")
        unknown = set(opts) - ({"delay_ms"} if mode == "slow" else set())
        if unknown:
            raise ValueError(f"mode {mode!r} takes no option(s) {', '.join(sorted(unknown))}")
        if mode != "slow":
            return None
        delay = int(opts.get("delay_ms", DEFAULT_DELAY_MS))
        if delay < 0:
            raise ValueError("delay_ms cannot be negative")
        return delay

    # ------------------------------------------------------------------ binding
    def _bind(self) -> None:
        if self._httpd is not None:
            return
        try:
            httpd = _RegionHTTPServer((self.host, self._port), self)
        except OSError as exc:
            raise LabError(f"region {self.name}: cannot listen on {self.host}:{self._port}: "
                           f"{exc.strerror or exc}") from None
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"region-{self.name}", daemon=True)
        self._thread.start()

    def _unbind(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        with self._state:
            httpd.closing = True
            self._state.notify_all()
        httpd.shutdown()
        httpd.server_close()  # the listening socket: connections are refused from now on
        httpd.drop_connections()
        if thread is not None:
            thread.join(_JOIN_TIMEOUT)

    # ------------------------------------------------------------------ answering
    def _respond(self, handler: BaseHTTPRequestHandler, httpd: _RegionHTTPServer, *, head: bool) -> None:
        with self._state:
            if self._mode == "hang":
                self._state.wait_for(lambda: httpd.closing or self._mode != "hang")
            mode, delay_ms = self._mode, self._delay_ms
            if mode == "slow":
                self._state.wait_for(lambda: httpd.closing, timeout=delay_ms / 1000.0)
            if httpd.closing or mode == "down":
                return  # the region went away: no answer, the connection is dropped
        if mode == "errors":
            self._send(handler, 503, "error\n", head)
        elif handler.path.split("?", 1)[0] == "/health":
            self._send(handler, 200, f"ok region={self.name}\n", head)
        elif handler.path.split("?", 1)[0] == "/":
            self._send(handler, 200, f"hello from {self.name}\n", head)
        else:
            self._send(handler, 404, f"not found in region {self.name}\n", head)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: str, head: bool) -> None:
        data = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-Lab-Region", self.name)
        handler.end_headers()
        if not head:
            handler.wfile.write(data)
