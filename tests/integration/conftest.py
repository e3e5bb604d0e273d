"""Shared fixtures for integration tests: a running lab (moto + region servers + control API)."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from failover_engine.engine.events import EventLog
from failover_engine.lab.lab import Lab
from failover_engine.lab.regions import RegionServer
from failover_engine.engine.monitor import Monitor


@pytest.fixture(scope="session", autouse=True)
def route53_as_aws() -> Iterator[None]:
    """moto's Route 53 with AWS's change-batch semantics (failover_engine/lab/moto_route53.py): a
    DELETE must match the record exactly, a CREATE needs it absent, a record set is its name, type
    and SetIdentifier. moto's own checks accept mismatched DELETEs, delete by SetIdentifier across
    names and refuse a repeated CREATE, so compare-and-swap writes could not be tested on it."""
    from failover_engine.lab import moto_route53

    moto_route53.install()
    yield
    moto_route53.uninstall()


@pytest.fixture(scope="module")
def lab_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab per test module (moto state is process-wide: one lab at a time)."""
    with Lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture
def lab(lab_module: Lab) -> Lab:
    """The module's lab in its steady state: every region up, moto cleared and Route 53 seeded."""
    lab_module.reset()
    return lab_module


# --------------------------------------------------------------------------- `failover monitor` helpers
# Used by test_monitor.py and test_detection_signals.py: a lab with this process's AWS settings,
# spare region servers, an event-log reader that waits, and a Monitor run in a background thread.


@pytest.fixture
def lab_aws(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The lab in its steady state, and this process's AWS SDK settings pointing at its moto (fake
    keys, the lab's empty config files), as a child process gets them from ``lab.env()``."""
    for key, value in lab.env().items():
        if key.startswith("AWS_") or key.lower() == "no_proxy":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return lab


@pytest.fixture
def spare_region() -> Iterator[Callable[..., RegionServer]]:
    """Factory: ``spare_region(name, mode="up", **opts)`` starts a RegionServer outside the lab (a
    control target, a replica behind a consistency gate, a validation check). Stopped after the test."""
    started: list[RegionServer] = []

    def start(name: str, mode: str = "up", **opts: Any) -> RegionServer:
        region = RegionServer(name).start()
        started.append(region)
        if mode != "up" or opts:
            region.set_mode(mode, **opts)
        return region

    yield start
    for region in started:
        region.stop()


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EventTail:
    """Reads a state directory's event log (events.jsonl) and waits for events with a deadline."""

    def __init__(self, state_dir: Path):
        self.log = EventLog(Path(state_dir) / "events.jsonl")

    def all(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Events so far, oldest first (a line being written right now is skipped, not an error)."""
        return [e for e in self.log.read() if (event is None or e["event"] == event)
                and all(e.get(k) == v for k, v in match.items())]

    def names(self) -> list[str]:
        return [e["event"] for e in self.all()]

    def wait_for(self, event: str, timeout: float = 10.0, count: int = 1,
                 where: Callable[[dict[str, Any]], bool] | None = None, **match: Any) -> dict[str, Any]:
        """The ``count``-th event named ``event`` matching ``match`` (and ``where``); fails the test
        with the events seen so far when it does not come within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.all(event, **match) if where is None or where(e)]
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                seen = [(e["event"], e.get("endpoint") or e.get("action") or e.get("reason") or "")
                        for e in self.all()]
                raise AssertionError(f"no {count}x {event!r} {match or ''} within {timeout}s; events: {seen}")
            time.sleep(0.02)


@pytest.fixture
def event_tail() -> Callable[[Path], EventTail]:
    """Factory: ``event_tail(state_dir)`` → :class:`EventTail`."""
    return EventTail


class MonitorThread:
    """A :class:`Monitor` running its asyncio loop in a background thread (as ``run_monitor`` does,
    without the signal handlers). ``stop()`` sets the stop event from this thread and joins."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor
        self.events = EventTail(monitor.loaded.state_dir)
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="monitor-under-test", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self.monitor.run(self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc
        finally:
            self._ready.set()

    def start(self) -> "MonitorThread":
        self._thread.start()
        assert self._ready.wait(10), "the monitor's event loop did not start"
        self.events.wait_for("monitor_started", timeout=10)
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the monitor did not stop within {timeout}s"
        if self.error is not None:
            raise AssertionError(f"the monitor crashed: {self.error!r}") from self.error


@pytest.fixture
def run_monitor(tmp_path: Path) -> Iterator[Callable[..., MonitorThread]]:
    """Factory: ``run_monitor(strategy_path, **Monitor kwargs)`` starts a Monitor (state in a fresh
    ``tmp_path/state`` unless ``state_dir`` is given) in a background thread. Every monitor still
    running is stopped after the test."""
    started: list[MonitorThread] = []

    def start(strategy_path: Path, **kwargs: Any) -> MonitorThread:
        kwargs.setdefault("state_dir", tmp_path / "state")
        runner = MonitorThread(Monitor(strategy_path, **kwargs))
        started.append(runner)
        return runner.start()

    yield start
    for runner in started:
        if runner.alive:
            runner.stop()


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def scrape_metrics() -> Callable[[int], dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """Factory: ``scrape_metrics(port)`` → every sample of ``/metrics`` as {(name, labels): value}."""
    return _scrape


# --------------------------------------------------------------------------- providers seen through their own SDKs
# Used by test_adapter_contract.py and test_cross_cloud.py: the emulators driven with Google's and
# Microsoft's own clients (never the adapters), to seed a steady state and to read what a run left.


class CloudDnsSdk:
    """A Cloud DNS emulator through google-cloud-dns (managed zones) and google-api-python-client's
    dns v1 (record sets with routing policies, changes), with anonymous credentials."""

    def __init__(self, emulator: Any, project: str = "p"):
        import google_auth_httplib2
        import httplib2
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import dns
        from googleapiclient.discovery import build

        self.emulator, self.project = emulator, project
        http = google_auth_httplib2.AuthorizedHttp(AnonymousCredentials(), http=httplib2.Http(timeout=10))
        self.records = build("dns", "v1", http=http, static_discovery=True, cache_discovery=False,
                             client_options={"api_endpoint": emulator.url + "/"})
        self.zones = dns.Client(project=project, credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": emulator.url})

    def create_zone(self, name: str, dns_name: str) -> None:
        self.zones.zone(name, dns_name, description=f"{name} (test)").create()

    def get(self, zone: str, name: str, rtype: str = "A") -> dict[str, Any] | None:
        """The record set as the API answers it (``kind`` dropped), or None."""
        found = self.records.resourceRecordSets().list(project=self.project, managedZone=zone, name=name,
                                                       type=rtype).execute().get("rrsets", [])
        return {k: v for k, v in found[0].items() if k != "kind"} if found else None

    def put(self, zone: str, rrset: dict[str, Any]) -> None:
        """Create or replace one record set with one change (deleting what is there first)."""
        old = self.get(zone, rrset["name"], rrset["type"])
        body = {"additions": [rrset], "deletions": [old] if old else []}
        self.records.changes().create(project=self.project, managedZone=zone, body=body).execute()


class _StaticToken:
    """A TokenCredential handing out one fixed bearer token (the emulator checks only that one)."""

    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


class TrafficManagerSdk:
    """A Traffic Manager emulator through azure-mgmt-trafficmanager (HTTPS, the emulator's CA)."""

    subscription = "00000000-0000-0000-0000-0000000000cc"
    token, token_env_var = "token-for-the-emulator", "TM_CONTRACT_TOKEN"

    def __init__(self, emulator: Any):
        from azure.mgmt.trafficmanager import TrafficManagerManagementClient

        self.emulator = emulator
        self.client = TrafficManagerManagementClient(_StaticToken(self.token), self.subscription,
                                                     base_url=emulator.url, connection_verify=emulator.ca_file,
                                                     retry_total=0)

    def put_profile(self, resource_group: str, profile: str, method: str,
                    endpoints: dict[str, dict[str, Any]]) -> None:
        """A profile with external endpoints (name → properties; ``target`` filled in). The resource
        group is created in the emulator first (the resource-group API is not emulated)."""
        self.emulator.add_resource_group(self.subscription, resource_group)
        eps = [{"name": n, "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                "properties": {"target": f"{n}.example.net", **props}} for n, props in endpoints.items()]
        self.client.profiles.create_or_update(resource_group, profile, {
            "location": "global", "properties": {
                "trafficRoutingMethod": method, "dnsConfig": {"relativeName": profile, "ttl": 30},
                "monitorConfig": {"protocol": "HTTPS", "port": 443, "path": "/health"}, "endpoints": eps}})

    def endpoints(self, resource_group: str, profile: str) -> dict[str, dict[str, Any]]:
        """Endpoint name → priority, weight, status and target, as ``profiles.get`` answers."""
        got = self.client.profiles.get(resource_group, profile)
        return {ep.name: {"priority": ep.properties.priority, "weight": ep.properties.weight,
                          "status": str(getattr(ep.properties.endpoint_status, "value", ep.properties.endpoint_status)),
                          "target": ep.properties.target} for ep in got.properties.endpoints or []}

    def serving(self, resource_group: str, profile: str, method: str) -> str | None:
        """The endpoint that takes the traffic: the enabled one with the lowest priority (Priority)
        or the highest weight (Weighted)."""
        enabled = {n: e for n, e in self.endpoints(resource_group, profile).items() if e["status"] == "Enabled"}
        if not enabled:
            return None
        if method == "Priority":
            return min(enabled, key=lambda n: enabled[n]["priority"])
        return max(enabled, key=lambda n: enabled[n]["weight"])


@pytest.fixture
def clouddns_sdk(clouddns_emulator: Any) -> CloudDnsSdk:
    """:class:`CloudDnsSdk` over a fresh Cloud DNS emulator (``.emulator``), project ``p``."""
    return CloudDnsSdk(clouddns_emulator)


@pytest.fixture
def trafficmanager_sdk(trafficmanager_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> TrafficManagerSdk:
    """:class:`TrafficManagerSdk` over a fresh Traffic Manager emulator that accepts only its token;
    the token is also in the environment variable ``TrafficManagerSdk.token_env_var`` (for a
    connection with ``credentials: token_env``)."""
    trafficmanager_emulator.token = TrafficManagerSdk.token
    monkeypatch.setenv(TrafficManagerSdk.token_env_var, TrafficManagerSdk.token)
    return TrafficManagerSdk(trafficmanager_emulator)
