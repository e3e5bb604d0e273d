"""The probe engine: one HTTP or TCP check of an endpoint, turned into a :class:`ProbeResult`.

Probes are async on aiohttp so that many endpoints can be checked at once
(:func:`probe_many` shares one session, for connection reuse, and bounds concurrency with a
semaphore). :func:`probe_once` and :func:`probe_all` are the sync wrappers used by the CLI
and the Ansible modules.

A probe never raises for a network problem: timeouts, refused connections, DNS and TLS
failures become a failed result with a :class:`FailureKind` and a readable reason. Reasons
never contain header values (headers may carry tokens) or URL passwords.
"""
from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Sequence

import aiohttp
from yarl import URL

from .model import HttpProbe, TcpProbe

AnyProbe = HttpProbe | TcpProbe

BODY_LIMIT = 1 << 20
"""At most this many bytes of a response body are read (and searched for ``body_contains``)."""

_USER_AGENT = "failover-engine-probe/1"
_ERRNO_IN_TEXT = re.compile(r"\[Errno (-?\d+)\]")


class FailureKind(str, Enum):
    """Why a probe failed; ``none`` when it succeeded."""

    none = "none"
    timeout = "timeout"
    refused = "refused"
    dns = "dns"
    tls = "tls"
    status = "status"
    body = "body"
    slow = "slow"
    error = "error"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe.

    ``latency_ms`` is set when the endpoint answered (HTTP response read, TCP connection
    accepted) and ``None`` otherwise. ``at`` is ``time.time()`` when the probe started.
    """

    ok: bool
    kind: FailureKind
    reason: str
    latency_ms: float | None
    at: float
    endpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``kind`` as its string value)."""
        return {
            "endpoint": self.endpoint,
            "ok": self.ok,
            "kind": self.kind.value,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "at": self.at,
        }


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


def _classify(exc: BaseException, timeout: float) -> tuple[FailureKind, str]:
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
    return FailureKind.error, f"{type(exc).__name__}: {exc}".rstrip(": ")


_NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)  # ssl errors are OSErrors


def _outcome(start: float, at: float, endpoint: str | None, latency_limit: float | None,
             failure: tuple[FailureKind, str] | None, ok_reason: str) -> ProbeResult:
    """Build the result of a probe that got an answer, applying the latency limit."""
    elapsed = time.perf_counter() - start
    latency_ms = round(elapsed * 1000, 3)
    if failure is not None:
        return ProbeResult(False, failure[0], failure[1], latency_ms, at, endpoint)
    if latency_limit is not None and elapsed > latency_limit:
        reason = f"slow: {_ms(elapsed)} > limit {_ms(latency_limit)}"
        return ProbeResult(False, FailureKind.slow, reason, latency_ms, at, endpoint)
    return ProbeResult(True, FailureKind.none, f"{ok_reason} in {_ms(elapsed)}", latency_ms, at, endpoint)


# --------------------------------------------------------------------------- HTTP
async def _read_capped(response: aiohttp.ClientResponse, limit: int = BODY_LIMIT) -> bytes:
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


def _check_answer(spec: HttpProbe, status: int, text: str) -> tuple[FailureKind, str] | None:
    """Why an HTTP answer is not healthy, or None when it is."""
    if not spec.status_ok(status):
        return FailureKind.status, f"status {status} not in {list(spec.expect_status)}"
    if spec.body_contains is not None and spec.body_contains not in text:
        return FailureKind.body, f"body does not contain {spec.body_contains!r}"
    return None


async def _http_exchange(spec: HttpProbe, session: aiohttp.ClientSession) -> tuple[int, str]:
    """Send the request and read the answer: (status, body text)."""
    headers = {"User-Agent": _USER_AGENT, **spec.headers}
    async with session.request(spec.method, spec.url, headers=headers, ssl=spec.verify_tls,
                               allow_redirects=False) as response:
        body = await _read_capped(response)
        return response.status, _decode(body, response.charset)


def _new_session(limit: int) -> aiohttp.ClientSession:
    """A session for probes: no session-wide timeout (each probe has its own), no proxies."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


# --------------------------------------------------------------------------- TCP
async def _probe_tcp(spec: TcpProbe, timeout: float) -> None:
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(spec.host, spec.port), timeout)
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (OSError, asyncio.TimeoutError):
        pass  # connected is what was asked; a messy close does not make the endpoint unhealthy


# --------------------------------------------------------------------------- public API
async def run_probe(spec: AnyProbe, *, timeout: float, latency_limit: float | None = None,
                    session: aiohttp.ClientSession | None = None,
                    endpoint: str | None = None) -> ProbeResult:
    """Run one probe and return its result; never raises for network problems.

    ``timeout`` (seconds) bounds the whole probe (connect, request, body). An answer slower
    than ``latency_limit`` (seconds) fails with kind ``slow`` even if it is otherwise healthy.
    Redirects are not followed (a 3xx is judged against ``expect_status``). An HTTP probe
    without ``session`` opens (and closes) a session of its own.
    """
    at = time.time()
    start = time.perf_counter()
    try:
        if isinstance(spec, TcpProbe):
            await _probe_tcp(spec, timeout)
            return _outcome(start, at, endpoint, latency_limit, None, "ok connected")
        if session is None:
            async with _new_session(limit=1) as own:
                status, text = await asyncio.wait_for(_http_exchange(spec, own), timeout)
        else:
            status, text = await asyncio.wait_for(_http_exchange(spec, session), timeout)
    except _NETWORK_ERRORS as exc:
        kind, reason = _classify(exc, timeout)
        return ProbeResult(False, kind, _redact(reason, _secrets_of(spec)), None, at, endpoint)
    failure = _check_answer(spec, status, text)
    return _outcome(start, at, endpoint, latency_limit, failure, f"ok {status}")


async def probe_many(items: Sequence[tuple[str, AnyProbe]], *, timeout: float,
                     latency_limit: float | None = None,
                     concurrency: int = 256) -> dict[str, ProbeResult]:
    """Probe many named endpoints at once, at most ``concurrency`` in flight.

    All HTTP probes share one session (connections to the same host are reused). Returns
    the results keyed by name, in the order of ``items``. Names must be unique.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError("probe_many needs unique endpoint names")
    semaphore = asyncio.Semaphore(concurrency)
    async with _new_session(limit=concurrency) as session:

        async def bounded(name: str, spec: AnyProbe) -> ProbeResult:
            async with semaphore:
                return await run_probe(spec, timeout=timeout, latency_limit=latency_limit,
                                       session=session, endpoint=name)

        results = await asyncio.gather(*(bounded(name, spec) for name, spec in items))
    return dict(zip(names, results))


def probe_once(spec: AnyProbe, *, timeout: float, latency_limit: float | None = None,
               endpoint: str | None = None) -> ProbeResult:
    """Sync wrapper of :func:`run_probe`, for callers without an event loop."""
    return asyncio.run(run_probe(spec, timeout=timeout, latency_limit=latency_limit, endpoint=endpoint))


def probe_all(items: Sequence[tuple[str, AnyProbe]], *, timeout: float,
              latency_limit: float | None = None) -> dict[str, ProbeResult]:
    """Sync wrapper of :func:`probe_many`, for callers without an event loop."""
    if not items:
        return {}
    return asyncio.run(probe_many(items, timeout=timeout, latency_limit=latency_limit))
