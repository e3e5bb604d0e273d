"""A fault-injecting HTTP(S) reverse proxy for tests, in front of moto and the emulators.

Put a :class:`FaultProxy` between an SDK (or a ``failover apply`` process) and a provider (moto's
Route 53, the Cloud DNS emulator, the Traffic Manager emulator): the client talks to
``proxy.url``, the proxy forwards to the upstream, logs every call and, when a rule says so,
injects a fault at an exact call position instead of (or after) forwarding.

API::

    proxy = FaultProxy(upstream_url, *, flavor="aws" | "google" | "azure",
                       tls=None | (certfile, keyfile), upstream_ca=None | cafile,
                       name=None, log=None | CallLog, upstream_timeout=30.0)
    proxy.start() -> proxy;  proxy.stop();  with FaultProxy(...) as proxy: ...
    proxy.url                                  # "http(s)://127.0.0.1:<ephemeral port>"
    proxy.inject(fault, at=1, *, writes_only=True, times=1, hold=600.0, forward=True,
                 on_hit=None, retry_after=1, method=None, path=None) -> Rule
    proxy.clear()                              # drop every rule
    proxy.calls(writes_only=False) -> list[Call];  proxy.writes -> list[Call]
    proxy.wait_for_calls(n, timeout=10.0, *, writes_only=False, done=False) -> list[Call]
    proxy.reset_log()                          # positions count from 1 again
    proxy.connections                          # client connections accepted so far (keep-alive reuse)

Calls. Every request is logged as a :class:`Call` when it arrives: ``n`` (its position among all
calls, from 1), ``write_n`` (its position among writes, None for a read), ``method``, ``path``
(without the query; ``query`` apart), ``write`` (the method is not GET or HEAD), and once handled
``status`` (what the client was answered; None when it got no answer), ``fault`` (the fault
injected, or None), ``upstream_status`` (what the upstream answered, None when not forwarded),
``client_gone`` (the client hung up before its answer), ``done``. ``call.outcome`` is the fault's
name, else the status. Positions count from the last :meth:`FaultProxy.reset_log`. Several proxies
may share one :class:`CallLog` (``log=``): positions are then those of the whole plan across
clouds (``call.proxy`` tells which proxy saw it), and ``at=N`` on every proxy means "the plan's
N-th write, whichever cloud it goes to".

Rules. ``inject(fault, at=N, times=T)`` covers the positions N .. N+T-1 (among writes when
``writes_only``, else among all calls; ``times=None``: N and every later one): a call at one of
them gets the fault if it also passes the optional ``method`` and ``path`` (regular expression,
searched) filters. A client's retry of a faulted write is the next position (``times=2`` faults
the retry too). Positions are exact: a rule for a position already passed never fires, and with a
shared log a call at a covered position that goes through another proxy is not faulted. The first
matching rule wins; ``rule.hits`` lists the calls it faulted.

Faults:

* ``"500"``: answered without forwarding: Route 53's XML ``ErrorResponse`` with ``InternalFailure``
  (aws), ``{"error": {"code": 500, "status": "INTERNAL", ...}}`` (google),
  ``{"error": {"code": "InternalServerError", ...}}`` (azure).
* ``"429"``: throttling without forwarding: aws answers HTTP 400 with ``<Code>Throttling</Code>``
  (what Route 53 sends and botocore retries as throttling); google and azure answer 429 with
  ``Retry-After: <retry_after>`` (default 1; RESOURCE_EXHAUSTED / TooManyRequests).
* ``"timeout"``: not forwarded; the proxy holds the request ``hold`` seconds (default 600, far
  beyond any client read timeout; :meth:`stop` releases it), then drops the connection (RST).
* ``"reset_after_apply"``: forwarded (the write lands upstream), then the client connection is
  closed abortively (SO_LINGER 0: an RST, no answer, no TLS close_notify): the answer is lost.
* ``"hook"``: ``on_hit(call)`` runs in the proxy's thread for that request. ``forward=True``:
  after the upstream applied it and before the client is answered; ``forward=False``: before it is
  forwarded. It may block (the client waits) or kill the client process (then wait for the process
  to be gone, e.g. ``proc.wait()``, so that its socket is closed before ``on_hit`` returns). When
  ``on_hit`` returns, a client that hung up gets nothing (and, with ``forward=False``, the request
  is never forwarded: ``client_gone`` is set); a client still there is forwarded to (if not yet)
  and answered. An exception from ``on_hit`` is kept in ``call.hook_error``.

HTTPS: with ``tls=(certfile, keyfile)`` the proxy terminates TLS with that certificate and
forwards over HTTPS, verifying the upstream against ``upstream_ca``. For the Traffic Manager
emulator use its own server certificate (``emulator_tls(emulator.ca_file)``): a client given the
emulator's CA (``connection_verify=ca_file``) then trusts the proxy unchanged.

Connections: HTTP/1.1 with keep-alive (every answer carries Content-Length; hop-by-hop headers are
not forwarded; ``Host`` and ``Content-Length`` are set for the upstream). Each forwarded request
opens its own upstream connection; when the upstream fails (refused, timed out) the client gets a
502 and the call's ``fault`` is ``"upstream_error"`` (unless a rule had set one).

Why the connection is dropped with an RST and not closed: httplib2 (google-api-python-client)
silently sends a request a second time when the server closes the connection cleanly without
answering (BadStatusLine on the first try); on a reset it raises ConnectionResetError instead.
botocore/urllib3 and azure-core/requests raise on either.
"""
from __future__ import annotations

import http.client
import io
import json
import re
import select
import socket
import ssl
import struct
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

FAULTS = ("500", "429", "timeout", "reset_after_apply", "hook")
FLAVORS = ("aws", "google", "azure")
READ_METHODS = frozenset({"GET", "HEAD"})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})


def emulator_tls(ca_file: str | Path) -> tuple[str, str]:
    """(certfile, keyfile) of the Traffic Manager emulator whose CA is ``ca_file``: its
    ``make_tls_files`` writes ``server.pem`` (chain) and ``server-key.pem`` beside ``ca.pem``."""
    directory = Path(ca_file).parent
    cert, key = directory / "server.pem", directory / "server-key.pem"
    if not (cert.is_file() and key.is_file()):
        raise FileNotFoundError(f"no server.pem/server-key.pem beside {ca_file} (is the emulator running?)")
    return str(cert), str(key)


# --------------------------------------------------------------------------- the call log
@dataclass(eq=False)
class Call:
    """One request the proxy received (see the module docstring)."""

    n: int
    write_n: int | None
    proxy: str
    method: str
    path: str
    query: str
    body: bytes = field(repr=False)
    fault: str | None = None
    status: int | None = None
    upstream_status: int | None = None
    client_gone: bool = False
    hook_error: BaseException | None = field(default=None, repr=False)
    done: bool = False
    at: float = field(default_factory=time.monotonic, repr=False)

    @property
    def write(self) -> bool:
        return self.write_n is not None

    @property
    def outcome(self) -> int | str | None:
        """The fault injected, else the status answered (None while in flight)."""
        return self.fault if self.fault is not None else self.status

    def summary(self) -> str:
        pos = f"#{self.n}" + (f" w{self.write_n}" if self.write_n is not None else "")
        return f"{pos} {self.proxy} {self.method} {self.path} -> {self.outcome}{'' if self.done else ' (in flight)'}"


class CallLog:
    """Every call of one or more proxies, in arrival order, with positions; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls: list[Call] = []
        self._writes = 0

    def record(self, proxy: str, method: str, target: str, body: bytes,
               match: Callable[[Call], "Rule | None"] | None = None) -> tuple[Call, "Rule | None"]:
        """Log a call and pick its rule in one step (so that positions and rule hits agree)."""
        parts = urlsplit(target)
        with self._cond:
            write = method.upper() not in READ_METHODS
            if write:
                self._writes += 1
            call = Call(len(self._calls) + 1, self._writes if write else None, proxy, method.upper(),
                        parts.path, parts.query, body)
            self._calls.append(call)
            rule = match(call) if match is not None else None
            if rule is not None:
                call.fault = rule.fault
            self._cond.notify_all()
            return call, rule

    def update(self, call: Call, **changes: Any) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(call, key, value)
            self._cond.notify_all()

    def calls(self, writes_only: bool = False, proxy: str | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._calls if (not writes_only or c.write) and (proxy is None or c.proxy == proxy)]

    def reset(self) -> None:
        with self._cond:
            self._calls.clear()
            self._writes = 0
            self._cond.notify_all()

    def wait_for_calls(self, n: int, timeout: float = 10.0, *, writes_only: bool = False, done: bool = False,
                       proxy: str | None = None) -> list[Call]:
        """The first ``n`` calls (writes, when ``writes_only``) once they arrived (and, with
        ``done``, were handled); AssertionError with the log when they do not within ``timeout``."""

        def ready() -> bool:
            got = self.calls(writes_only, proxy)
            return len(got) >= n and (not done or all(c.done for c in got[:n]))

        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                log = "\n  ".join(c.summary() for c in self._calls) or "(none)"
                raise AssertionError(f"no {n} {'write ' if writes_only else ''}calls"
                                     f"{' handled' if done else ''} within {timeout}s; calls:\n  {log}")
            return self.calls(writes_only, proxy)[:n]


@dataclass(eq=False)
class Rule:
    """A fault to inject; ``hits`` lists the calls it fired on."""

    fault: str
    at: int
    writes_only: bool
    times: int | None
    hold: float
    forward: bool
    on_hit: Callable[[Call], Any] | None
    retry_after: float
    method: str | None
    path: re.Pattern[str] | None
    hits: list[Call] = field(default_factory=list)

    def matches(self, call: Call) -> bool:
        position = call.write_n if self.writes_only else call.n
        if position is None or position < self.at or (self.times is not None and position >= self.at + self.times):
            return False
        if self.method is not None and call.method != self.method:
            return False
        return self.path is None or bool(self.path.search(call.path))


# --------------------------------------------------------------------------- error bodies
def _error_answer(flavor: str, fault: str, retry_after: float) -> tuple[int, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    if flavor == "aws":
        status, kind, code, message = ((500, "Receiver", "InternalFailure", "An internal error occurred (fault proxy).")
                                       if fault == "500" else (400, "Sender", "Throttling", "Rate exceeded"))
        body = ('<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
                f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    headers = [("Content-Type", "application/json; charset=UTF-8")]
    if fault == "429":
        headers.append(("Retry-After", f"{retry_after:g}"))
    if flavor == "google":
        if fault == "500":
            error = {"code": 500, "message": "Internal error (fault proxy).", "status": "INTERNAL",
                     "errors": [{"message": "Internal error (fault proxy).", "domain": "global",
                                 "reason": "backendError"}]}
        else:
            error = {"code": 429, "message": "Rate Limit Exceeded", "status": "RESOURCE_EXHAUSTED",
                     "errors": [{"message": "Rate Limit Exceeded", "domain": "usageLimits",
                                 "reason": "rateLimitExceeded"}]}
        return int(error["code"]), headers, json.dumps({"error": error}).encode()
    headers += [("x-ms-request-id", request_id), ("x-ms-correlation-request-id", request_id)]
    if fault == "500":
        return 500, headers, json.dumps({"error": {
            "code": "InternalServerError",
            "message": "The server encountered an internal error (fault proxy). Please retry the request."}}).encode()
    return 429, headers, json.dumps({"error": {"code": "TooManyRequests",
                                               "message": "The request is being throttled (fault proxy)."}}).encode()


# --------------------------------------------------------------------------- the proxy
class FaultProxy:
    """A threaded HTTP(S) reverse proxy on 127.0.0.1 with a call log and fault rules (see the
    module docstring)."""

    def __init__(self, upstream_url: str, *, flavor: str = "aws", tls: tuple[str, str] | None = None,
                 upstream_ca: str | None = None, name: str | None = None, log: CallLog | None = None,
                 upstream_timeout: float = 30.0):
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}, not {flavor!r}")
        up = urlsplit(upstream_url)
        if up.scheme not in ("http", "https") or not up.hostname:
            raise ValueError(f"upstream_url must be http(s)://host:port, not {upstream_url!r}")
        self.upstream_url, self.flavor, self.tls, self.upstream_ca = upstream_url.rstrip("/"), flavor, tls, upstream_ca
        self.name = name or flavor
        self.log = log if log is not None else CallLog()
        self.upstream_timeout = upstream_timeout
        self._up_scheme, self._up_host = up.scheme, up.hostname
        self._up_port = up.port or (443 if up.scheme == "https" else 80)
        self._up_netloc = up.netloc
        self._up_prefix = up.path.rstrip("/")
        self._up_context = ssl.create_default_context(cafile=upstream_ca) if up.scheme == "https" else None
        self._rules: list[Rule] = []
        self._rules_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.connections = 0
        self.port = 0
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FaultProxy":
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _ProxyServer(self)
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            # the handshake happens in the handler's thread: a silent client cannot stall accept()
            server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-proxy-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every client connection; held requests are let go."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ rules
    def inject(self, fault: str, at: int = 1, *, writes_only: bool = True, times: int | None = 1,
               hold: float = 600.0, forward: bool = True, on_hit: Callable[[Call], Any] | None = None,
               retry_after: float = 1, method: str | None = None, path: str | None = None) -> Rule:
        """Inject ``fault`` at call position ``at`` (see the module docstring)."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        if at < 1 or (times is not None and times < 1):
            raise ValueError("at and times count from 1")
        if fault == "hook" and on_hit is None:
            raise ValueError("the hook fault needs on_hit")
        rule = Rule(fault, at, writes_only, times, hold, forward, on_hit, retry_after,
                    method.upper() if method else None, re.compile(path) if path else None)
        with self._rules_lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule (a request being held or hooked right now carries on)."""
        with self._rules_lock:
            self._rules.clear()

    def _match(self, call: Call) -> Rule | None:
        with self._rules_lock:
            for rule in self._rules:
                if rule.matches(call):
                    rule.hits.append(call)
                    return rule
        return None

    # ------------------------------------------------------------------ the log
    def calls(self, writes_only: bool = False) -> list[Call]:
        """This proxy's calls so far, in order (all the proxies' with a shared log: ``self.log``)."""
        return self.log.calls(writes_only, self.name)

    @property
    def writes(self) -> list[Call]:
        return self.calls(writes_only=True)

    def wait_for_calls(self, n: int, timeout: float = 10.0, *, writes_only: bool = False,
                       done: bool = False) -> list[Call]:
        """This proxy's first ``n`` calls once arrived (``done``: and handled); AssertionError after
        ``timeout`` seconds."""
        return self.log.wait_for_calls(n, timeout, writes_only=writes_only, done=done, proxy=self.name)

    def reset_log(self) -> None:
        """Forget the calls: positions count from 1 again (for every proxy of a shared log)."""
        self.log.reset()

    # ------------------------------------------------------------------ plumbing for the handler
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._open_lock:
            if add:
                self._open.add(conn)
                self.connections += 1
            else:
                self._open.discard(conn)

    def _forward(self, method: str, target: str, headers: Iterable[tuple[str, str]],
                 body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn: http.client.HTTPConnection
        if self._up_context is not None:
            conn = http.client.HTTPSConnection(self._up_host, self._up_port, timeout=self.upstream_timeout,
                                               context=self._up_context)
        else:
            conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=self.upstream_timeout)
        try:
            conn.putrequest(method, self._up_prefix + target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self._up_netloc)
            for key, value in headers:
                if key.lower() not in _HOP_BY_HOP and key.lower() not in ("host", "content-length", "expect"):
                    conn.putheader(key, value)
            if body or method not in READ_METHODS:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = b"" if method == "HEAD" else resp.read()
            return resp.status, resp.reason, list(resp.getheaders()), data
        finally:
            conn.close()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy):
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up, time out or fail the handshake are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: the SDKs reuse their connections
    disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stall
    timeout = 300                   # an idle kept-alive connection frees its thread eventually
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self._aborted = False
        self.server.proxy._track(self.connection, True)

    def finish(self) -> None:
        with suppress(OSError, ValueError):
            super().finish()
        self.server.proxy._track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    # ------------------------------------------------------------------ one request
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        call, rule = proxy.log.record(proxy.name, self.command, self.path, body, proxy._match)
        try:
            if rule is None:
                self._forward_and_answer(call, body)
            elif rule.fault in ("500", "429"):
                status, headers, data = _error_answer(proxy.flavor, rule.fault, rule.retry_after)
                self._answer(call, status, "", headers, data)
            elif rule.fault == "timeout":
                proxy._stopping.wait(rule.hold)
                self._abort(call)
            elif rule.fault == "reset_after_apply":
                answer = self._forward(call, body)
                if answer is not None:
                    self._abort(call)
            else:
                self._hook(call, rule, body)
        finally:
            proxy.log.update(call, done=True)

    def _hook(self, call: Call, rule: Rule, body: bytes) -> None:
        answer = self._forward(call, body) if rule.forward else None
        if rule.forward and answer is None:
            return  # the upstream failed: already answered 502
        try:
            assert rule.on_hit is not None
            rule.on_hit(call)
        except BaseException as exc:  # noqa: BLE001 - kept for the test to look at
            self.server.proxy.log.update(call, hook_error=exc)
        if self._client_gone():
            self.server.proxy.log.update(call, client_gone=True)
            self._abort(call)
            return
        if answer is None:
            answer = self._forward(call, body)
            if answer is None:
                return
        self._answer(call, *answer)

    def _forward(self, call: Call, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes] | None:
        """Send the request upstream → its answer; None (after answering 502) when it failed."""
        proxy = self.server.proxy
        try:
            status, reason, headers, data = proxy._forward(self.command, self.path, self.headers.items(), body)
        except (OSError, http.client.HTTPException) as exc:
            proxy.log.update(call, fault=call.fault or "upstream_error")
            message = f"fault proxy: upstream {proxy.upstream_url} failed: {exc!r}".encode()
            self._answer(call, 502, "Bad Gateway", [("Content-Type", "text/plain")], message)
            return None
        proxy.log.update(call, upstream_status=status)
        return status, reason, headers, data

    def _forward_and_answer(self, call: Call, body: bytes) -> None:
        answer = self._forward(call, body)
        if answer is not None:
            self._answer(call, *answer)

    def _answer(self, call: Call, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status, reason or None)
        length = None
        for key, value in headers:
            low = key.lower()
            if low == "content-length":
                length = value
            elif low not in _HOP_BY_HOP:
                self.send_header(key, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", length if length is not None else "0")
        elif status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # logged before the client can see the answer: a test that got it finds the call handled
        self.server.proxy.log.update(call, status=status, done=True)
        try:
            self.end_headers()
            if self.command != "HEAD" and data:
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            self.server.proxy.log.update(call, status=None, client_gone=True)

    # ------------------------------------------------------------------ connection tricks
    def _client_gone(self) -> bool:
        """Whether the client closed its side (EOF or error on a peek at the raw socket)."""
        try:
            readable, _unused, _unused = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            # the plain socket's recv, also under TLS: a peek at the TCP stream, not at TLS records
            # (readable: it does not wait, despite the socket's timeout)
            return socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _abort(self, call: Call) -> None:
        """Drop the client connection with an RST, no answer (and no TLS close_notify)."""
        if self._aborted:
            return
        self._aborted = True
        self.close_connection = True
        sock = self.connection
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with suppress(OSError, ValueError):
            self.rfile.close()  # the reader holds a reference: socket.close() would wait for it
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()  # what the handler still does goes nowhere
        self.server.proxy.log.update(call, status=None, done=True)
        with suppress(OSError):
            sock.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve  # noqa: N815
