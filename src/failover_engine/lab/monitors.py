"""Several ``failover monitor`` processes on the lab, coordinating through DynamoDB.

:class:`MonitorFleet` takes a started :class:`~failover_engine.lab.lab.Lab` and:

- writes one strategy per monitor: the lab's service with fast detection, three observers in
  three "regions" (their own source addresses, 127.0.0.1-3, so the lab can cut one off with
  :meth:`~failover_engine.lab.regions.RegionServer.partition`), a quorum of 2 and
  ``coordination: {type: dynamodb}`` on the lab's moto with a short lease; a monitor may get its
  own Route 53 endpoint (a proxy between it and moto, in tests);
- makes the coordination table, starts one ``failover monitor`` process per observer (the
  console script of this interpreter, each with its own ``--state-dir`` and ``--observer``) and
  waits until one of them leads;
- reads their event logs, says who leads (from the table), kills, pauses and resumes them, and
  stops every process it started (also on failure).

The multi-monitor tests and ``failover drill --monitors 3`` (:mod:`failover_engine.lab.monitors_drill`)
use it. Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from failover_engine.coordination.dynamodb import DynamoTable, Leases
from failover_engine.core.errors import FailoverError
from failover_engine.core.model import DynamoDbCoordination
from failover_engine.engine.events import EventLog
from failover_engine.lab.lab import AWS_REGION, Lab, lab_aws_client

# (observer, source address): one per "region" the monitors run in
OBSERVERS: tuple[tuple[str, str], ...] = (("obs-a", "127.0.0.1"), ("obs-b", "127.0.0.2"), ("obs-c", "127.0.0.3"))
SERVICE = "shop"


@dataclass(frozen=True)
class FleetSettings:
    """The knobs that set how fast the fleet detects and hands over.

    A dead leader is replaced after ``lease`` (its lease lapses) plus one tick (interval / 2);
    detection takes ``(failure_threshold - 1) x interval`` after the first failed probe."""

    lease: float = 3.0
    interval: float = 0.5
    timeout: float = 0.5  # generous (at most the interval): three monitors and moto share the cores
    failure_threshold: int = 2
    verdict_ttl: float = 5.0
    quorum: int = 2
    table: str = "failover-coordination"
    group: str = "lab"


def failover_command() -> list[str]:
    """``failover`` of this interpreter (its console script, else ``python -m``)."""
    script = Path(sys.executable).with_name("failover")
    return [str(script)] if script.exists() else [sys.executable, "-m", "failover_engine.cli.main"]


def lab_dynamodb_client(moto_url: str, config_file: Path) -> Any:
    """A DynamoDB client for the lab's moto that ignores the user's AWS profile and config."""
    return lab_aws_client("dynamodb", moto_url, config_file)


def holder_pid(holder: str | None) -> int | None:
    """The pid in a lease holder's id (``host:pid:random``)."""
    match = re.search(r":(\d+):[0-9a-f]+$", holder or "")
    return int(match.group(1)) if match else None


class MonitorProcess:
    """One ``failover monitor`` process: its observer, strategy, state directory and output.

    Its stderr is drained by a thread into ``<state_dir>.log``; ``on_line(pattern, fn)`` calls
    ``fn(line)`` (once) for the first line that matches, in that thread, as soon as it is read."""

    def __init__(self, observer: str, source: str, strategy: Path, state_dir: Path, env: dict[str, str]):
        self.observer = observer
        self.source = source
        self.strategy = strategy
        self.state_dir = state_dir
        self.env = env
        self.log_path = state_dir.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = EventLog(state_dir / "events.jsonl")
        self.killed_at: float | None = None
        self._watchers: list[tuple[re.Pattern[str], Callable[[str], Any]]] = []
        self._watch_lock = threading.Lock()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "MonitorProcess":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*failover_command(), "monitor", "-f", str(self.strategy), "--state-dir", str(self.state_dir),
               "--observer", self.observer]
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._drain, name=f"monitor-{self.observer}-stderr", daemon=True)
        self._reader.start()
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with self.log_path.open("ab") as out:
            for raw in iter(self.proc.stderr.readline, b""):
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._watch_lock:
                    fired = [(p, fn) for p, fn in self._watchers if p.search(line)]
                    self._watchers = [w for w in self._watchers if w not in fired]
                for _unused, fn in fired:
                    fn(line)

    def on_line(self, pattern: str, fn: Callable[[str], Any]) -> None:
        with self._watch_lock:
            self._watchers.append((re.compile(pattern), fn))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone (its sockets closed)."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # a stopped process dies at once too
            self.proc.kill()
            self.killed_at = time.time()
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (a running failover finishes first), SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode

    # ------------------------------------------------------------------ events
    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Its events so far, oldest first, optionally of one name and with matching fields."""
        return [e for e in self.log.read() if (event is None or e["event"] == event)
                and all(e.get(k) == v for k, v in match.items())]

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def __repr__(self) -> str:
        return f"<monitor {self.observer} pid {self.proc.pid if self.proc else '-'}>"


class MonitorFleet:
    """``failover monitor`` processes, one per observer, on one lab (see the module docstring)."""

    def __init__(self, lab: Lab, run_dir: Path, settings: FleetSettings | None = None, *,
                 observers: Iterable[tuple[str, str]] = OBSERVERS, route53_urls: dict[str, str] | None = None):
        self.lab = lab
        self.run_dir = Path(run_dir)
        self.settings = settings or FleetSettings()
        self.observers = list(observers)
        self.route53_urls = dict(route53_urls or {})
        self.monitors: dict[str, MonitorProcess] = {}
        self.config = DynamoDbCoordination(table=self.settings.table, endpoint_url=lab.moto_url,
                                           region=AWS_REGION, group=self.settings.group, lease=self.settings.lease)
        self.table = DynamoTable(self.config, client=lab_dynamodb_client(lab.moto_url, lab.aws_config_file))
        self.leases = Leases(self.table, self.settings.lease, group=self.settings.group, holder="lab-reader")

    # ------------------------------------------------------------------ strategy
    def strategy_data(self, route53_url: str | None = None) -> dict[str, Any]:
        """The lab's strategy for several monitors (``route53_url``: this monitor's Route 53)."""
        s = self.settings
        data = yaml.safe_load(self.lab.strategy_path.read_text(encoding="utf-8"))
        data.pop("state_dir", None)  # each monitor gets --state-dir
        for conn in data.get("connections", {}).values():
            if conn.get("type") == "route53" and route53_url:
                conn["endpoint_url"] = route53_url
        for svc in data["services"].values():
            svc["detection"] = {"interval": s.interval, "timeout": s.timeout, "failure_threshold": s.failure_threshold,
                                "recovery_threshold": 2}
            svc["policy"] = {"failover": "automatic", "cooldown": 0, "failback": "manual"}
        data["monitoring"] = {"observers": [{"name": n, "source_address": a} for n, a in self.observers],
                              "quorum": s.quorum, "verdict_ttl": s.verdict_ttl}
        data["coordination"] = {"type": "dynamodb", "table": s.table, "endpoint_url": self.lab.moto_url,
                                "region": AWS_REGION, "group": s.group, "lease": s.lease}
        return data

    def write_strategies(self) -> dict[str, Path]:
        paths = {}
        for name, _source in self.observers:
            path = self.run_dir / f"strategy-{name}.yaml"
            path.write_text(yaml.safe_dump(self.strategy_data(self.route53_urls.get(name)), sort_keys=False),
                            encoding="utf-8")
            paths[name] = path
        return paths

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, timeout: float = 60.0, order: Iterable[str] | None = None) -> "MonitorFleet":
        """Make the table, start every monitor (in ``order``: the first usually leads), wait until
        each has started and one leads. Stops what it started on failure."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.table.create(wait=30)
        paths = self.write_strategies()
        env = self.lab.child_env()
        sources = dict(self.observers)
        first = list(order or [])
        names = first + [n for n, _unused in self.observers if n not in first]
        try:
            for name in names:
                proc = MonitorProcess(name, sources[name], paths[name], self.run_dir / f"state-{name}", env)
                self.monitors[name] = proc.start()
                if first and name == first[0]:  # it leads before the others start
                    self.wait_for(lambda p=proc: p.events("leader_elected"), timeout, f"{name} to lead")
            self.wait_for(self._all_started, timeout, "every monitor to start")
            self.wait_leader(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _all_started(self) -> bool:
        for m in self.monitors.values():
            if not m.alive:
                m.stop()
                raise FailoverError(f"monitor {m.observer} exited ({m.proc.returncode if m.proc else '-'}): "
                                    f"{m.output().strip()[-2000:]}")
        return all(m.events("monitor_started") for m in self.monitors.values())

    def stop(self) -> dict[str, int | None]:
        """Stop every monitor still running (SIGTERM, then SIGKILL); their exit codes."""
        codes: dict[str, int | None] = {}
        threads = []
        for name, proc in self.monitors.items():
            t = threading.Thread(target=lambda n=name, p=proc: codes.__setitem__(n, p.stop()), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(30)
        return codes

    def __enter__(self) -> "MonitorFleet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ who leads
    def leader_item(self) -> dict[str, Any]:
        """The leader lease as the table holds it: holder, epoch, purpose, expires."""
        item = self.leases.read(self.leases.key("leader"))
        return {"holder": item.get("holder", {}).get("S"), "epoch": int(float(item.get("epoch", {}).get("N", 0))),
                "purpose": item.get("purpose", {}).get("S"), "expires": float(item.get("expires", {}).get("N", 0))}

    def by_pid(self, pid: int | None) -> MonitorProcess | None:
        return next((m for m in self.monitors.values() if m.proc is not None and m.pid == pid), None)

    def by_holder(self, holder: str | None) -> MonitorProcess | None:
        return self.by_pid(holder_pid(holder))

    def leader(self) -> MonitorProcess | None:
        """The monitor that holds a current leader lease now (None: nobody, or it lapsed)."""
        item = self.leader_item()
        if not item["holder"] or item["expires"] < time.time():
            return None
        return self.by_holder(item["holder"])

    def wait_leader(self, timeout: float = 30.0, *, other_than: MonitorProcess | None = None) -> MonitorProcess:
        """The leader once one (other than ``other_than``) holds the lease and says so in its log."""
        found: list[MonitorProcess] = []

        def ready() -> bool:
            lead = self.leader()
            if lead is None or lead is other_than or not lead.alive:
                return False
            epoch = self.leader_item()["epoch"]
            if not lead.events("leader_elected", epoch=epoch):
                return False
            found[:] = [lead]
            return True

        self.wait_for(ready, timeout, "a leader" + (f" other than {other_than.observer}" if other_than else ""))
        return found[0]

    def steady(self) -> bool:
        """Every running monitor's latest quorum verdict of every endpoint is healthy (before that, a
        standby's verdict may still be unknown and a failover refused)."""
        assert self.lab.loaded is not None
        endpoints = set(self.lab.loaded.strategy.services[SERVICE].endpoint_names)
        for m in self.monitors.values():
            if not m.alive:
                continue
            latest: dict[str, str] = {}
            for e in m.events("verdict", service=SERVICE):
                latest[e["endpoint"]] = e["health"]
            if set(latest) != endpoints or any(h != "healthy" for h in latest.values()):
                return False
        return True

    def wait_steady(self, timeout: float = 30.0) -> None:
        self.wait_for(self.steady, timeout, "steady state (every endpoint healthy in every monitor)")

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.02) -> Any:
        """``predicate()``'s first truthy value; FailoverError naming ``what`` (and the monitors'
        last events) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise FailoverError(f"no {what} within {timeout:g}s; {self.describe()}")
            time.sleep(poll)

    # ------------------------------------------------------------------ reading the logs
    def events(self, event: str | None = None, **match: Any) -> list[tuple[MonitorProcess, dict[str, Any]]]:
        """(monitor, event) of every monitor, in time order."""
        out = [(m, e) for m in self.monitors.values() for e in m.events(event, **match)]
        return sorted(out, key=lambda pair: pair[1]["t"])

    def describe(self) -> str:
        parts = []
        for m in self.monitors.values():
            tail = [e["event"] for e in m.events()][-8:]
            parts.append(f"{m.observer} ({'alive' if m.alive else 'gone'}): {', '.join(tail) or 'no events'}")
        return "; ".join(parts)
