"""Probe kinds beyond HTTP and TCP: DNS, an external command, a Python entry point.

Each runner performs its exchange and returns ``(failure or None, reason prefix when ok)``
like the HTTP and TCP exchanges in :mod:`failover_engine.detection.probes`; when there was no answer
to judge it raises :class:`~failover_engine.detection.results.ProbeFailed` (or a network/timeout error
that :func:`~failover_engine.detection.probes.run_probe` classifies). The timeout is applied by
``run_probe`` around the whole runner; runners also pass it to libraries that take one.

A runner added here must: never block the event loop (threads or subprocesses for blocking
work), release what it started when cancelled (the command runner kills its process group),
and keep reasons short and free of secrets.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import inspect
import ipaddress
import os
import signal
import tempfile
from typing import Any, Callable

import dns.asyncresolver
import dns.exception
import dns.resolver

from failover_engine.core.model import CommandProbe, DnsProbe, PythonProbe, parse_nameserver
from failover_engine.detection.results import Failure, FailureKind, ProbeFailed

STDERR_TAIL = 4096
"""Bytes of a command's stderr kept (the last line of it goes in the reason)."""

REASON_LINE_LIMIT = 200


async def run_kind(spec: DnsProbe | CommandProbe | PythonProbe, *, timeout: float,
                   source_address: str | None = None) -> tuple[Failure | None, str]:
    """Run a DNS, command or Python probe (the timeout itself is applied by the caller)."""
    if isinstance(spec, DnsProbe):
        return await run_dns(spec, timeout=timeout, source_address=source_address)
    if isinstance(spec, CommandProbe):
        return await run_command(spec)
    if isinstance(spec, PythonProbe):
        return await run_python(spec)
    raise TypeError(f"not a probe spec: {type(spec).__name__}")


# --------------------------------------------------------------------------- DNS
@functools.lru_cache(maxsize=256)
def _resolver(nameserver: str | None) -> dns.asyncresolver.Resolver:
    """A resolver per nameserver (the system's when None); shared, it keeps no per-query state."""
    if nameserver is None:
        return dns.asyncresolver.Resolver(configure=True)
    try:
        ip, port = parse_nameserver(nameserver)
    except ValueError as exc:  # the model checks it at load; a model_construct()ed spec may not be
        raise ProbeFailed(FailureKind.error, str(exc)) from None
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [ip]
    resolver.port = port
    return resolver


def _normalise(value: str, record_type: str) -> str:
    value = value.strip()
    if record_type in ("A", "AAAA"):
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value
    if record_type == "TXT":
        return value.strip('"')
    return " ".join(value.lower().rstrip(".").split())


def answer_values(answer: Any, record_type: str) -> set[str]:
    """Comparable values of an answer's records; MX and SRV also match by their target name."""
    values: set[str] = set()
    for rdata in answer:
        if record_type == "TXT":
            values.add(b"".join(rdata.strings).decode("utf-8", errors="replace"))
            continue
        values.add(_normalise(rdata.to_text(), record_type))
        target = getattr(rdata, "exchange", None) or getattr(rdata, "target", None)
        if target is not None:
            values.add(_normalise(target.to_text(), record_type))
    return values


def _trim(text: str, limit: int = REASON_LINE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def run_dns(spec: DnsProbe, *, timeout: float, source_address: str | None = None) -> tuple[Failure | None, str]:
    """Resolve ``spec.name``; healthy when answered and the answer holds every ``expect`` value."""
    try:
        resolver = _resolver(spec.nameserver)
    except dns.exception.DNSException as exc:  # e.g. no /etc/resolv.conf
        raise ProbeFailed(FailureKind.dns, f"no resolver: {exc}") from None
    try:
        answer = await resolver.resolve(spec.name, spec.record_type, lifetime=timeout, source=source_address)
    except dns.exception.Timeout:
        raise asyncio.TimeoutError from None
    except dns.resolver.NXDOMAIN:
        raise ProbeFailed(FailureKind.dns, f"NXDOMAIN: {spec.name} does not exist") from None
    except dns.resolver.NoAnswer:
        raise ProbeFailed(FailureKind.dns, f"no {spec.record_type} record for {spec.name}") from None
    except dns.resolver.NoNameservers as exc:
        raise ProbeFailed(FailureKind.dns, _trim(f"no nameserver answered for {spec.name}: {exc}")) from None
    except dns.exception.DNSException as exc:
        raise ProbeFailed(FailureKind.dns, _trim(f"{type(exc).__name__}: {exc}")) from None
    got = answer_values(answer, spec.record_type)
    missing = [v for v in spec.expect if _normalise(v, spec.record_type) not in got]
    if missing:
        return (FailureKind.answer, _trim(f"{spec.record_type} answer for {spec.name} lacks {', '.join(missing)} "
                                          f"(got {', '.join(sorted(got))})")), ""
    return None, f"ok {len(got)} {spec.record_type} record(s)"


# --------------------------------------------------------------------------- command
def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the command and whatever it started
    except (ProcessLookupError, PermissionError):
        pass


def _tail(file: Any) -> bytes:
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - STDERR_TAIL))
    return file.read()


def last_line(data: bytes) -> str:
    """The last non-empty line, decoded and trimmed for a reason."""
    lines = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return _trim(lines[-1]) if lines else ""


async def run_command(spec: CommandProbe) -> tuple[Failure | None, str]:
    """Run ``argv`` (no shell); healthy when it exits with a code in ``expect_exit``.

    Its own process group, so a timeout or cancellation kills the command and its children.
    stdout is discarded; stderr goes to an unnamed temporary file (not a pipe: a child left
    running with the pipe open would hold the probe) whose last line goes in the reason.
    """
    with tempfile.TemporaryFile() as stderr:
        try:
            process = await asyncio.create_subprocess_exec(
                *spec.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr, start_new_session=True)
        except FileNotFoundError:
            raise ProbeFailed(FailureKind.error, f"command not found: {spec.argv[0]}") from None
        except PermissionError:
            raise ProbeFailed(FailureKind.error, f"command not executable: {spec.argv[0]}") from None
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:  # timed out or cancelled
                _kill_group(process)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(process.wait(), 1.0)  # reap it while the loop is alive
        if code in spec.expect_exit:
            return None, f"ok exit {code}"
        detail = last_line(_tail(stderr))
    return (FailureKind.exit, f"exit {code} not in {spec.expect_exit}" + (f": {detail}" if detail else "")), ""


# --------------------------------------------------------------------------- Python entry point
_ENTRY_POINTS: dict[str, Callable[..., Any]] = {}
_CHECK_THREADS = 32
_check_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for sync checks, apart from the loop's default executor: ``asyncio.run`` waits
    for the default executor on exit, and a check stuck past its timeout must not hold it."""
    global _check_pool
    if _check_pool is None:
        _check_pool = concurrent.futures.ThreadPoolExecutor(_CHECK_THREADS, thread_name_prefix="python-probe")
    return _check_pool


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """Import ``module:function`` once (cached; a failed import is retried next time)."""
    func = _ENTRY_POINTS.get(entry_point)
    if func is not None:
        return func
    module_name, _sep, attribute = entry_point.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # noqa: BLE001 - any import-time error is the probe's failure
        raise ProbeFailed(FailureKind.error, _trim(f"cannot load {entry_point}: {type(exc).__name__}: {exc}")) from None
    if not callable(func):
        raise ProbeFailed(FailureKind.error, f"{entry_point} is not callable")
    _ENTRY_POINTS[entry_point] = func
    return func


def _judge(entry_point: str, outcome: Any) -> tuple[Failure | None, str]:
    reason = ""
    if isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[0], bool):
        outcome, reason = outcome[0], _trim(str(outcome[1]))
    if not isinstance(outcome, bool):
        raise ProbeFailed(FailureKind.error, f"{entry_point} returned {type(outcome).__name__}; "
                          "expected a bool or (bool, reason)")
    if not outcome:
        return (FailureKind.check, reason or f"{entry_point} returned False"), ""
    return None, f"ok ({reason})" if reason else "ok"


async def run_python(spec: PythonProbe) -> tuple[Failure | None, str]:
    """Call the entry point with ``args``: awaited when async, in a worker thread when sync.

    A sync check that overruns the timeout is abandoned, not stopped (threads cannot be
    killed): it keeps one of the probe threads until it returns.
    """
    func = load_entry_point(spec.entry_point)
    try:
        if inspect.iscoroutinefunction(func):
            outcome = await func(**spec.args)
        else:
            call = functools.partial(func, **spec.args)
            outcome = await asyncio.get_running_loop().run_in_executor(_pool(), call)
            if inspect.isawaitable(outcome):
                outcome = await outcome
    except Exception as exc:  # noqa: BLE001 - the check's own error is its result
        raise ProbeFailed(FailureKind.error, _trim(f"{type(exc).__name__}: {exc}".rstrip(": "))) from None
    return _judge(spec.entry_point, outcome)
