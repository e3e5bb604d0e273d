"""The probe engine: one check of an endpoint, turned into a :class:`ProbeResult`.

Kinds: HTTP(S) (status codes/classes/ranges, body, response headers, TLS verification and
certificate lifetime) and TCP connect here; DNS, external command and Python entry point in
:mod:`failover_engine.detection.kinds`. Probes are async so that many endpoints can be checked at
once: :func:`probe_many` (one round) and :class:`~failover_engine.detection.scheduler.ProbeScheduler`
(every endpoint on its own cadence) share one aiohttp session, for connection reuse, and bound
concurrency. :func:`probe_once` and :func:`probe_all` are the sync wrappers used by the CLI
and the Ansible modules.

A probe never raises: timeouts, refused connections, DNS and TLS failures, a crashing custom
check become a failed result with a :class:`FailureKind` and a readable reason. Reasons
never contain request header values (headers may carry tokens) or URL passwords.
"""
from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
import time
from datetime import datetime, timezone
from typing import Any, NamedTuple, Sequence

import aiohttp
from yarl import URL

from failover_engine.core.model import CommandProbe, DnsProbe, HttpProbe, PythonProbe, TcpProbe
from failover_engine.detection.results import Failure, FailureKind, ProbeFailed, ProbeResult

AnyProbe = HttpProbe | TcpProbe | DnsProbe | CommandProbe | PythonProbe

BODY_LIMIT = 1 << 20
"""At most this many bytes of a response body are read (and searched for ``body_contains``)."""

_USER_AGENT = "failover-engine-probe/1"
_ERRNO_IN_TEXT = re.compile(r"\[Errno (-?\d+)\]")


# --------------------------------------------------------------------------- formatting
def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _secrets_of(spec: AnyProbe) -> list[str]:
    """Strings that must never appear in a reason: header values and the URL's password."""
    if not isinstance(spec, HttpProbe):
        return []
    secrets = [v for v in spec.headers.values() if len(v) >= 4]
    try:
        password = URL(spec.url).password
    except ValueError:
        password = None
    if password:
        secrets.append(password)
    return sorted(secrets, key=len, reverse=True)


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------- error mapping
def _errnos(exc: BaseException) -> set[int]:
    """Every errno an OS error carries, including those of a 'Multiple exceptions' error."""
    found: set[int] = set()
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        found.add(code)
    os_error = getattr(exc, "os_error", None)
    if os_error is not None and os_error is not exc:
        found |= _errnos(os_error)
    if not found:
        found |= {int(n) for n in _ERRNO_IN_TEXT.findall(str(exc))}
    return found


def _is_dns(exc: BaseException) -> bool:
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)
    if dns_error is not None and isinstance(exc, dns_error):
        return True
    return isinstance(exc, socket.gaierror) or isinstance(getattr(exc, "os_error", None), socket.gaierror)


def _is_tls(exc: BaseException) -> bool:
    return isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError, ssl.CertificateError)) or isinstance(
        getattr(exc, "os_error", None), ssl.SSLError
    )


def _classify(exc: BaseException, timeout: float) -> Failure:
    """Map a network exception to a failure kind and a reason."""
    if isinstance(exc, asyncio.TimeoutError):
        return FailureKind.timeout, f"timeout after {_ms(timeout)}"
    if _is_tls(exc):
        return FailureKind.tls, f"TLS error: {exc}"
    if _is_dns(exc):
        host = getattr(exc, "host", None)
        return FailureKind.dns, f"name resolution failed{f' for {host}' if host else ''}"
    codes = _errnos(exc)
    if isinstance(exc, ConnectionRefusedError) or (codes and codes <= {errno.ECONNREFUSED}):
        return FailureKind.refused, "connection refused"
    if isinstance(exc, ConnectionResetError) or (codes and codes <= {errno.ECONNRESET}) \
            or "reset by peer" in str(exc).lower():
        return FailureKind.reset, "connection reset by peer"
    return FailureKind.error, f"{type(exc).__name__}: {exc}".rstrip(": ")


_NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)  # ssl errors are OSErrors


def _outcome(start: float, at: float, endpoint: str | None, latency_limit: float | None,
             failure: Failure | None, ok_reason: str) -> ProbeResult:
    """Build the result of a probe that got an answer, applying the latency limit."""
    elapsed = time.perf_counter() - start
    latency_ms = round(elapsed * 1000, 3)
    if failure is not None:
        return ProbeResult(False, failure[0], failure[1], latency_ms, at, endpoint)
    if latency_limit is not None and elapsed > latency_limit:
        reason = f"slow: {_ms(elapsed)} > limit {_ms(latency_limit)}"
        return ProbeResult(False, FailureKind.slow, reason, latency_ms, at, endpoint)
    return ProbeResult(True, FailureKind.none, f"{ok_reason} in {_ms(elapsed)}", latency_ms, at, endpoint)


# --------------------------------------------------------------------------- TLS certificate lifetime
def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER item at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return tag, pos, pos + length


def cert_not_after(der: bytes) -> datetime:
    """The ``notAfter`` of a DER X.509 certificate (read directly: no verification needed)."""
    _unused, pos, _unused = _der_item(der, 0)  # Certificate
    _unused, pos, _unused = _der_item(der, pos)  # tbsCertificate
    tag, _unused, end = _der_item(der, pos)
    if tag == 0xA0:  # [0] version, optional
        pos = end
    for _i in range(3):  # serialNumber, signature, issuer
        pos = _der_item(der, pos)[2]
    _unused, pos, _unused = _der_item(der, pos)  # validity
    pos = _der_item(der, pos)[2]  # notBefore
    tag, start, end = _der_item(der, pos)
    text = der[start:end].decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"  # UTCTime or GeneralizedTime
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)


def _peer_cert(response: aiohttp.ClientResponse) -> bytes | None:
    """The DER certificate the server presented on this response's connection."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is None:  # an empty body releases the connection at once; the protocol stays
        protocol = getattr(response, "_protocol", None)
        transport = getattr(protocol, "transport", None)
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


def _check_cert(spec: HttpProbe, der: bytes | None) -> Failure | None:
    if spec.tls_min_days is None or not spec.url.startswith("https:"):
        return None
    if der is None:
        return FailureKind.tls, "no server certificate seen"
    try:
        not_after = cert_not_after(der)
    except (IndexError, ValueError, UnicodeDecodeError):
        return FailureKind.tls, "server certificate could not be read"
    days = int((not_after - datetime.now(timezone.utc)).total_seconds() // 86400)
    if days < spec.tls_min_days:
        when = f"expires in {days} days" if days >= 0 else f"expired {-days} days ago"
        return FailureKind.tls, f"certificate {when} (at {not_after:%Y-%m-%d}), minimum {spec.tls_min_days}"
    return None


# --------------------------------------------------------------------------- HTTP
class _HttpAnswer(NamedTuple):
    status: int
    text: str
    headers: Any  # CIMultiDictProxy: case-insensitive names, repeated headers kept
    cert: bytes | None


async def _read_capped(response: aiohttp.ClientResponse, limit: int = BODY_LIMIT) -> bytes:
    length = response.content_length
    if length is not None and length <= limit:
        return await response.read()  # the common case, and the fastest
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _check_answer(spec: HttpProbe, answer: _HttpAnswer) -> Failure | None:
    """Why an HTTP answer is not healthy, or None when it is; checked in this order: status,
    body, headers, certificate lifetime. Response header values are not quoted in reasons
    (they may carry cookies)."""
    if not spec.status_ok(answer.status):
        return FailureKind.status, f"status {answer.status} not in {list(spec.expect_status)}"
    if spec.body_contains is not None and spec.body_contains not in answer.text:
        return FailureKind.body, f"body does not contain {spec.body_contains!r}"
    for name, wanted in spec.expect_headers.items():
        values = answer.headers.getall(name, ())
        if not values:
            return FailureKind.header, f"header {name!r} missing"
        if not any(wanted in value for value in values):
            return FailureKind.header, f"header {name!r} does not contain {wanted!r}"
    return _check_cert(spec, answer.cert)


def _url(text: str) -> URL:
    """Parsed URLs are cached: a monitor probes the same few thousand URLs over and over."""
    url = _URLS.get(text)
    if url is None:
        if len(_URLS) >= _URL_CACHE_SIZE:
            _URLS.clear()
        url = _URLS[text] = URL(text)
    return url


_URLS: dict[str, URL] = {}
_URL_CACHE_SIZE = 100_000


async def _http_exchange(spec: HttpProbe, session: aiohttp.ClientSession) -> _HttpAnswer:
    """Send the request and read the answer (the session adds the User-Agent)."""
    async with session.request(spec.method, _url(spec.url), headers=spec.headers or None, ssl=spec.verify_tls,
                               allow_redirects=False) as response:
        cert = _peer_cert(response) if spec.tls_min_days is not None else None
        body = await _read_capped(response)  # read even when unused: the connection is then reused
        text = _decode(body, response.charset) if spec.body_contains is not None else ""
        return _HttpAnswer(response.status, text, response.headers, cert)


def probe_session(limit: int, source_address: str | None = None) -> aiohttp.ClientSession:
    """A session for probes: keep-alive pool of ``limit`` connections, no session-wide timeout
    (each probe has its own), no proxies, no cookies (a probe must not carry what an earlier
    answer set); outgoing connections bound to ``source_address``."""
    local_addr = (source_address, 0) if source_address else None
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, local_addr=local_addr)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                 headers={"User-Agent": _USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar())


# --------------------------------------------------------------------------- TCP
async def _probe_tcp(spec: TcpProbe, source_address: str | None) -> None:
    local_addr = (source_address, 0) if source_address else None
    _reader, writer = await asyncio.open_connection(spec.host, spec.port, local_addr=local_addr)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # connected is what was asked; a messy close does not make the endpoint unhealthy


# --------------------------------------------------------------------------- public API
async def _answer(spec: AnyProbe, session: aiohttp.ClientSession | None, timeout: float,
                  source_address: str | None) -> tuple[Failure | None, str]:
    """Run the probe's exchange: (why the answer is unhealthy or None, reason prefix when ok)."""
    if isinstance(spec, HttpProbe):
        if session is None:
            async with probe_session(limit=1, source_address=source_address) as own:
                answer = await _http_exchange(spec, own)
        else:
            answer = await _http_exchange(spec, session)
        return _check_answer(spec, answer), f"ok {answer.status}"
    if isinstance(spec, TcpProbe):
        await _probe_tcp(spec, source_address)
        return None, "ok connected"
    from failover_engine.detection import kinds as probe_kinds  # imports this module: loaded on first use

    return await probe_kinds.run_kind(spec, timeout=timeout, source_address=source_address)


async def run_probe(spec: AnyProbe, *, timeout: float, latency_limit: float | None = None,
                    session: aiohttp.ClientSession | None = None, endpoint: str | None = None,
                    source_address: str | None = None) -> ProbeResult:
    """Run one probe and return its result; never raises (cancellation aside).

    ``timeout`` (seconds) bounds the whole probe (connect, request, body; a command is killed
    when it runs out). An answer slower than ``latency_limit`` (seconds) fails with kind
    ``slow`` even if it is otherwise healthy. Redirects are not followed (a 3xx is judged
    against ``expect_status``). An HTTP probe without ``session`` opens (and closes) a session
    of its own. ``source_address`` binds outgoing TCP connections and DNS queries to that
    local address; with a ``session``, the session's connector decides (see
    :func:`probe_session`).
    """
    at = time.time()
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            failure, ok_reason = await _answer(spec, session, timeout, source_address)
    except ProbeFailed as exc:
        return ProbeResult(False, exc.kind, exc.reason, None, at, endpoint)
    except _NETWORK_ERRORS as exc:
        kind, reason = _classify(exc, timeout)
        return ProbeResult(False, kind, _redact(reason, _secrets_of(spec)), None, at, endpoint)
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not crash its caller
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return ProbeResult(False, FailureKind.error, _redact(reason, _secrets_of(spec)), None, at, endpoint)
    return _outcome(start, at, endpoint, latency_limit, failure, ok_reason)


async def probe_many(items: Sequence[tuple[str, AnyProbe]], *, timeout: float,
                     latency_limit: float | None = None, concurrency: int = 256,
                     source_address: str | None = None) -> dict[str, ProbeResult]:
    """Probe many named endpoints at once, at most ``concurrency`` in flight.

    All HTTP probes share one session (connections to the same host are reused). Returns
    the results keyed by name, in the order of ``items``. Names must be unique.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    names = [name for name, _unused in items]
    if len(set(names)) != len(names):
        raise ValueError("probe_many needs unique endpoint names")
    semaphore = asyncio.Semaphore(concurrency)
    async with probe_session(limit=concurrency, source_address=source_address) as session:

        async def bounded(name: str, spec: AnyProbe) -> ProbeResult:
            async with semaphore:
                return await run_probe(spec, timeout=timeout, latency_limit=latency_limit,
                                       session=session, endpoint=name, source_address=source_address)

        results = await asyncio.gather(*(bounded(name, spec) for name, spec in items))
    return dict(zip(names, results))


def probe_once(spec: AnyProbe, *, timeout: float, latency_limit: float | None = None,
               endpoint: str | None = None, source_address: str | None = None) -> ProbeResult:
    """Sync wrapper of :func:`run_probe`, for callers without an event loop."""
    return asyncio.run(run_probe(spec, timeout=timeout, latency_limit=latency_limit, endpoint=endpoint,
                                 source_address=source_address))


def probe_all(items: Sequence[tuple[str, AnyProbe]], *, timeout: float, latency_limit: float | None = None,
              source_address: str | None = None) -> dict[str, ProbeResult]:
    """Sync wrapper of :func:`probe_many`, for callers without an event loop."""
    if not items:
        return {}
    return asyncio.run(probe_many(items, timeout=timeout, latency_limit=latency_limit,
                                  source_address=source_address))
