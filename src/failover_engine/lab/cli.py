"""``failover lab run|up``: start the lab for a command, or for a person working in another shell.

``lab run -- CMD`` runs CMD with the lab's environment and stops the lab when CMD ends; Ctrl-C
and SIGTERM reach CMD first (SIGTERM is forwarded; Ctrl-C typed in a terminal already reaches
CMD, a SIGINT sent with ``kill`` is forwarded), and if CMD is still running 5 s later it gets
SIGTERM, then SIGKILL. The exit code is CMD's (128+N when CMD was killed by signal N), or 130
after Ctrl-C, 143 after SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator

from failover_engine.core.errors import FailoverError
from failover_engine.lab.lab import CLOUDS, Lab

DEFAULT_DIR = Path(".drill")
GRACE = 5.0  # seconds a signalled command gets before the next, harder signal
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, "FrameType | None"], Any]


def add_lab_commands(subparsers: Any) -> None:
    """Add ``lab run`` and ``lab up`` to an argparse subparsers object; each sets ``func``."""
    lab = subparsers.add_parser(
        "lab", help="local lab: moto plays Route 53, local HTTP servers play the regions",
        description="Start a local lab (nothing leaves 127.0.0.1) for drills and tests: moto plays "
        "Route 53 and, with --cloud gcp/azure/multi, the package's emulators play Cloud DNS and "
        "Traffic Manager.")
    sub = lab.add_subparsers(dest="lab_command", metavar="{run,up}", required=True)

    run = sub.add_parser("run", help="start the lab, run a command in it, stop the lab",
                         usage="%(prog)s [--dir DIR] [--cloud CLOUD | --template FILE] -- CMD [ARGS...]")
    _add_common(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD", help="the command and its arguments")
    run.set_defaults(func=run_command)

    up = sub.add_parser("up", help="start the lab and wait for Ctrl-C; prints `export` lines for the env")
    _add_common(up)
    up.set_defaults(func=up_command)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help="run directory: strategy.yaml, lab.json, state (default: .drill)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cloud", choices=CLOUDS, default="aws",
                       help="the embedded drill strategy to serve: aws (Route 53), gcp (Cloud DNS), azure "
                       "(Traffic Manager), multi (all three), zone (ARC zonal shift, three zones); default aws")
    which.add_argument("--template", type=Path, default=None,
                       help="strategy template with {moto_url}, {primary_port}, {standby_port}, {lab_url}, "
                       "{clouddns_url}, {trafficmanager_url}, {trafficmanager_ca}, {zonalshift_url}, "
                       "{lab_dns} (the lab's DNS server, 127.0.0.1:PORT)")


# --------------------------------------------------------------------------- commands
def run_command(args: argparse.Namespace) -> int:
    """``lab run``: the command's exit code (130 after Ctrl-C, 143 after SIGTERM)."""
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else list(args.cmd)
    if not cmd:
        print("failover lab run: give a command after `--`, e.g. failover lab run -- make drill-play",
              file=sys.stderr)
        return 2
    lab = _start_lab(args)
    if isinstance(lab, int):
        return lab
    with lab:
        _announce(lab)
        return supervise(cmd, lab.child_env())


def up_command(args: argparse.Namespace) -> int:
    """``lab up``: print the environment as ``export`` lines and serve until Ctrl-C or SIGTERM."""
    lab = _start_lab(args)
    if isinstance(lab, int):
        return lab
    with lab:
        # handlers first: a signal sent as soon as the exports are read must stop us cleanly
        _wait_for_stop_signal(before=lambda: _print_exports(lab))
    print("lab: stopped", file=sys.stderr)
    return 0


def _print_exports(lab: Lab) -> None:
    _announce(lab)
    for key, value in lab.env().items():
        print(f"export {key}={shlex.quote(value)}")
    sys.stdout.flush()
    print("lab: up; press Ctrl-C to stop", file=sys.stderr, flush=True)


def _start_lab(args: argparse.Namespace) -> Lab | int:
    """A started lab, or an exit code when it could not start (or a stop signal came first)."""
    lab = None
    try:
        with _signal_handlers(STOP_SIGNALS, _raise_stop):
            lab = Lab(args.dir, strategy_template=args.template, cloud=args.cloud)
            return lab.start()
    except _Stop as stop:
        if lab is not None:
            lab.close()
        return 128 + stop.signum
    except (FailoverError, OSError) as exc:
        print(f"failover lab: cannot start the lab: {exc}", file=sys.stderr)
        return 1


def _announce(lab: Lab) -> None:
    for name, url in lab.servers():
        print(f"lab: {name:<16} {url}", file=sys.stderr)
    print(f"lab: {'strategy':<16} {lab.strategy_path}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- child supervision
def supervise(cmd: list[str], env: dict[str, str], grace: float = GRACE) -> int:
    """Run ``cmd``, pass SIGINT/SIGTERM on, and return its exit code (128+signal when signalled)."""
    try:
        child = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        print(f"failover lab run: cannot run {cmd[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if signum != signal.SIGINT or not _terminal_sent_sigint_to_group():
            _send(child, signum)

    with _signal_handlers(STOP_SIGNALS, on_signal):
        rc = _wait_with_escalation(child, received, grace)
    if received:
        return 128 + received[0]
    return rc if rc >= 0 else 128 - rc


def _wait_with_escalation(child: subprocess.Popen[Any], received: list[int], grace: float) -> int:
    """Wait for the child; once a stop signal came, escalate to SIGTERM then SIGKILL every ``grace`` s."""
    escalation = [signal.SIGTERM, signal.SIGKILL]
    deadline: float | None = None
    while True:
        try:
            return child.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
        if not received:
            continue
        now = time.monotonic()
        if deadline is None:
            deadline = now + grace
        elif now >= deadline and escalation:
            _send(child, escalation.pop(0))
            deadline = now + grace


def _send(child: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signum)


def _terminal_sent_sigint_to_group() -> bool:
    """True when we are the terminal's foreground group: a typed Ctrl-C already reached the child."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- signals
class _Stop(BaseException):
    """A stop signal arrived while the lab was starting."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


@contextlib.contextmanager
def _signal_handlers(signums: tuple[int, ...], handler: Handler) -> Iterator[None]:
    """Install ``handler`` for ``signums`` (main thread only) and restore the old ones after."""
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _wait_for_stop_signal(before: Callable[[], None] = lambda: None) -> int:
    """Install the handlers, call ``before``, then block until SIGINT or SIGTERM; returns the signal."""
    got: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        stop.set()

    with _signal_handlers(STOP_SIGNALS, on_signal):
        before()
        while not stop.wait(0.5):
            pass
    return got[0]
