"""The fault proxy (tests/faultproxy.py) in front of the three providers, driven by their real SDKs:
boto3 Route 53 against moto's server, google-api-python-client (and google-cloud-dns) against the
Cloud DNS emulator, azure-mgmt-trafficmanager over HTTPS against the Traffic Manager emulator.

Each fault is shown from both sides: what the SDK raised (retries off, short read timeouts) and
what the upstream holds, read directly (not through the proxy).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import pytest

from faultproxy import CallLog, FaultProxy, emulator_tls

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FLAVORS = ("aws", "google", "azure")
DEADLINE = 20.0  # generous: a busy 2-core machine


# --------------------------------------------------------------------------- moto
@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from failover_engine.lab.lab import start_moto, stop_moto

    server, url = start_moto()
    yield url
    stop_moto(server)


@pytest.fixture(autouse=True)
def _aws_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No user AWS profile or config reaches boto3 (child processes inherit this too)."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


# --------------------------------------------------------------------------- one driver per cloud
class Cloud:
    """One provider behind a proxy: a write sets a small integer ``value`` on one record
    (``write`` through an SDK client, one HTTP write), ``upstream_value`` reads it directly."""

    flavor = ""
    write_method = ""
    proxy: FaultProxy

    def client(self, *, retries: bool = False, read_timeout: float = 15.0) -> Any:
        raise NotImplementedError

    def write(self, client: Any, value: int) -> None:
        raise NotImplementedError

    def read(self, client: Any) -> int | None:
        raise NotImplementedError

    def upstream_value(self) -> int | None:
        raise NotImplementedError

    def error_status(self, exc: BaseException) -> tuple[int, str]:
        """(HTTP status, error code) of an SDK error answer."""
        raise NotImplementedError

    connection_errors: tuple[type[BaseException], ...] = ()


class AwsCloud(Cloud):
    flavor, write_method = "aws", "POST"

    def __init__(self, moto_url: str, fault_proxy: Callable[..., FaultProxy]):
        import boto3

        self.direct = boto3.client("route53", endpoint_url=moto_url)
        zone = f"fp-{uuid.uuid4().hex[:8]}.example."
        self.zone_id = self.direct.create_hosted_zone(Name=zone, CallerReference=zone)["HostedZone"]["Id"]
        self.name = f"www.{zone}"
        self.proxy = fault_proxy(moto_url, flavor="aws")

    def client(self, *, retries: bool = False, read_timeout: float = 15.0) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "total_max_attempts": 4 if retries else 1},
                        read_timeout=read_timeout, connect_timeout=10)
        return boto3.client("route53", endpoint_url=self.proxy.url, config=config)

    def write(self, client: Any, value: int) -> None:
        client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": self.name, "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": f"192.0.2.{value}"}]}}]})

    def _value(self, client: Any) -> int | None:
        sets = client.list_resource_record_sets(HostedZoneId=self.zone_id, StartRecordName=self.name,
                                                StartRecordType="A", MaxItems="1")["ResourceRecordSets"]
        found = [s for s in sets if s["Name"] == self.name and s["Type"] == "A"]
        return int(found[0]["ResourceRecords"][0]["Value"].rsplit(".", 1)[1]) if found else None

    def read(self, client: Any) -> int | None:
        return self._value(client)

    def upstream_value(self) -> int | None:
        return self._value(self.direct)

    def error_status(self, exc: BaseException) -> tuple[int, str]:
        from botocore.exceptions import ClientError

        assert isinstance(exc, ClientError), repr(exc)
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]

    @property
    def connection_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        from botocore.exceptions import ConnectionError, HTTPClientError

        return (HTTPClientError, ConnectionError)


class GoogleCloud(Cloud):
    flavor, write_method = "google", "POST"
    project, zone, name = "p", "shop", "www.shop.example."

    def __init__(self, emulator: Any, fault_proxy: Callable[..., FaultProxy]):
        self.emulator = emulator
        emulator.create_zone(self.project, self.zone, "shop.example.")
        self.proxy = fault_proxy(emulator.url, flavor="google")
        self.retries = False

    def client(self, *, retries: bool = False, read_timeout: float = 15.0) -> Any:
        import google_auth_httplib2
        import httplib2
        from google.auth.credentials import AnonymousCredentials
        from googleapiclient.discovery import build

        http = google_auth_httplib2.AuthorizedHttp(AnonymousCredentials(), http=httplib2.Http(timeout=read_timeout))
        self.retries = retries
        return build("dns", "v1", http=http, static_discovery=True, cache_discovery=False,
                     client_options={"api_endpoint": self.proxy.url + "/"})

    def _rrset(self, value: int) -> dict[str, Any]:
        return {"name": self.name, "type": "A", "ttl": 60, "rrdatas": [f"192.0.2.{value}"]}

    def write(self, client: Any, value: int) -> None:
        old = self.emulator.rrset(self.project, self.zone, self.name, "A")
        body = {"additions": [self._rrset(value)], "deletions": [old] if old else []}
        client.changes().create(project=self.project, managedZone=self.zone, body=body).execute(
            num_retries=3 if self.retries else 0)

    def read(self, client: Any) -> int | None:
        found = client.resourceRecordSets().list(project=self.project, managedZone=self.zone, name=self.name,
                                                 type="A").execute().get("rrsets", [])
        return int(found[0]["rrdatas"][0].rsplit(".", 1)[1]) if found else None

    def upstream_value(self) -> int | None:
        found = self.emulator.rrset(self.project, self.zone, self.name, "A")
        return int(found["rrdatas"][0].rsplit(".", 1)[1]) if found else None

    def error_status(self, exc: BaseException) -> tuple[int, str]:
        from googleapiclient.errors import HttpError

        assert isinstance(exc, HttpError), repr(exc)
        return exc.resp.status, exc.error_details[0]["reason"] if exc.error_details else ""

    connection_errors = (OSError,)  # httplib2 lets ConnectionResetError and TimeoutError through


class _Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("token-for-the-emulator", int(time.time()) + 3600)


class AzureCloud(Cloud):
    flavor, write_method = "azure", "PATCH"
    sub, rg, profile = "00000000-0000-0000-0000-0000000000fa", "rg-fp", "fp-tm"

    def __init__(self, emulator: Any, fault_proxy: Callable[..., FaultProxy]):
        self.emulator = emulator
        eps = [{"name": n, "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                "properties": {"target": f"{n}.example.net", "weight": 1}} for n in ("use1", "usw2")]
        emulator.put_profile(self.sub, self.rg, self.profile, {"location": "global", "properties": {
            "trafficRoutingMethod": "Weighted", "dnsConfig": {"relativeName": self.profile, "ttl": 30},
            "monitorConfig": {"protocol": "HTTPS", "port": 443, "path": "/health"}, "endpoints": eps}})
        self.proxy = fault_proxy(emulator.url, flavor="azure", tls=emulator_tls(emulator.ca_file),
                                 upstream_ca=emulator.ca_file)

    def client(self, *, retries: bool = False, read_timeout: float = 15.0) -> Any:
        from azure.mgmt.trafficmanager import TrafficManagerManagementClient

        return TrafficManagerManagementClient(_Token(), self.sub, base_url=self.proxy.url,
                                              connection_verify=self.emulator.ca_file,
                                              retry_total=3 if retries else 0, retry_backoff_factor=0.1,
                                              read_timeout=read_timeout, connection_timeout=10)

    def write(self, client: Any, value: int) -> None:
        client.endpoints.update(self.rg, self.profile, "ExternalEndpoints", "use1", {"properties": {"weight": value}})

    def read(self, client: Any) -> int | None:
        return client.endpoints.get(self.rg, self.profile, "ExternalEndpoints", "use1").weight

    def upstream_value(self) -> int | None:
        return self.emulator.endpoints(self.sub, self.rg, self.profile)["use1"]["weight"]

    def error_status(self, exc: BaseException) -> tuple[int, str]:
        from azure.core.exceptions import HttpResponseError

        assert isinstance(exc, HttpResponseError), repr(exc)
        return exc.status_code, exc.error.code if exc.error else ""

    @property
    def connection_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        return (ServiceResponseError, ServiceRequestError)


@pytest.fixture(params=FLAVORS)
def cloud(request: pytest.FixtureRequest, fault_proxy: Callable[..., FaultProxy]) -> Cloud:
    if request.param == "aws":
        return AwsCloud(request.getfixturevalue("moto_url"), fault_proxy)
    if request.param == "google":
        return GoogleCloud(request.getfixturevalue("clouddns_emulator"), fault_proxy)
    return AzureCloud(request.getfixturevalue("trafficmanager_emulator"), fault_proxy)


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def main() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            out["error"] = exc

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, out


# --------------------------------------------------------------------------- forwarding
def test_forwards_reads_and_writes_over_one_kept_alive_connection(cloud: Cloud) -> None:
    client = cloud.client()
    cloud.write(client, 11)
    assert cloud.read(client) == 11
    cloud.write(client, 12)
    assert cloud.read(client) == 12
    assert cloud.upstream_value() == 12

    calls = cloud.proxy.calls()
    writes = cloud.proxy.writes
    assert [c.write_n for c in writes] == [1, 2]
    assert all(c.method == cloud.write_method and c.fault is None and c.done for c in writes)
    assert all(c.status is not None and 200 <= c.status < 300 and c.status == c.upstream_status for c in calls)
    assert [c.n for c in calls] == list(range(1, len(calls) + 1))
    assert any(not c.write for c in calls)
    assert cloud.proxy.connections == 1, "the SDK's connection was not kept alive through the proxy"


def test_google_cloud_dns_client_through_the_proxy(clouddns_emulator: Any,
                                                   fault_proxy: Callable[..., FaultProxy]) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import dns

    proxy = fault_proxy(clouddns_emulator.url, flavor="google")
    client = dns.Client(project="p", credentials=AnonymousCredentials(), client_options={"api_endpoint": proxy.url})
    client.zone("shop", "shop.example.", description="through the proxy").create()
    assert [z.name for z in client.list_zones()] == ["shop"]
    assert clouddns_emulator.rrsets("p", "shop")  # SOA and NS: the zone exists upstream
    assert [(c.method, c.write, c.status) for c in proxy.calls()] == [("POST", True, 200), ("GET", False, 200)]


# --------------------------------------------------------------------------- faults
def test_500_reaches_the_sdk_and_changes_nothing(cloud: Cloud) -> None:
    client = cloud.client()
    cloud.write(client, 21)
    rule = cloud.proxy.inject("500", at=2)
    with pytest.raises(Exception) as raised:
        cloud.write(client, 22)
    status, code = cloud.error_status(raised.value)
    assert status == 500
    assert code == {"aws": "InternalFailure", "google": "backendError", "azure": "InternalServerError"}[cloud.flavor]
    assert cloud.upstream_value() == 21
    faulted = cloud.proxy.writes[1]
    assert (faulted.write_n, faulted.fault, faulted.status, faulted.upstream_status) == (2, "500", 500, None)
    assert rule.hits == [faulted]
    cloud.write(client, 23)  # times=1: the next write goes through
    assert cloud.upstream_value() == 23


def test_429_reaches_the_sdk_as_throttling(cloud: Cloud) -> None:
    client = cloud.client()
    cloud.proxy.inject("429", at=1)
    with pytest.raises(Exception) as raised:
        cloud.write(client, 31)
    status, code = cloud.error_status(raised.value)
    assert (status, code) == {"aws": (400, "Throttling"), "google": (429, "rateLimitExceeded"),
                              "azure": (429, "TooManyRequests")}[cloud.flavor]
    assert cloud.upstream_value() == (1 if cloud.flavor == "azure" else None)  # 1: the seeded weight
    assert cloud.proxy.writes[0].fault == "429"


def test_429_is_retried_by_the_sdk_when_retries_are_on(cloud: Cloud) -> None:
    """Each SDK's own retry logic takes the injected answer for throttling (boto3: HTTP 400 with
    code Throttling) and tries again: the retry is the next write position."""
    client = cloud.client(retries=True)
    cloud.proxy.inject("429", at=1, retry_after=0)
    cloud.write(client, 32)
    assert cloud.upstream_value() == 32
    assert [(c.write_n, c.outcome) for c in cloud.proxy.writes] == [(1, "429"), (2, 200)]


def test_timeout_holds_the_request_until_the_client_gives_up(cloud: Cloud) -> None:
    client = cloud.client(read_timeout=1.0)
    cloud.proxy.inject("timeout", at=1, hold=60)
    started = time.monotonic()
    with pytest.raises(cloud.connection_errors) as raised:
        cloud.write(client, 41)
    assert time.monotonic() - started < DEADLINE
    assert "timed out" in str(raised.value).lower() or "timeout" in type(raised.value).__name__.lower()
    assert cloud.upstream_value() in (None, 1)  # nothing forwarded (1: the emulator's seeded weight)
    (held,) = cloud.proxy.writes
    assert (held.fault, held.upstream_status, held.done) == ("timeout", None, False)


def test_timeout_hold_ends_with_a_dropped_connection(cloud: Cloud) -> None:
    client = cloud.client(read_timeout=15.0)
    cloud.proxy.inject("timeout", at=1, hold=0.3)
    with pytest.raises(cloud.connection_errors):
        cloud.write(client, 42)
    (held,) = cloud.proxy.wait_for_calls(1, DEADLINE, writes_only=True, done=True)
    assert (held.fault, held.status, held.upstream_status) == ("timeout", None, None)
    assert len(cloud.proxy.writes) == 1, "the SDK re-sent the write by itself"


def test_reset_after_apply_lands_the_write_and_loses_the_answer(cloud: Cloud) -> None:
    client = cloud.client()
    cloud.write(client, 51)
    cloud.proxy.inject("reset_after_apply", at=2)
    with pytest.raises(cloud.connection_errors):
        cloud.write(client, 52)
    assert cloud.upstream_value() == 52  # the write landed
    lost = cloud.proxy.writes[1]
    assert (lost.fault, lost.status) == ("reset_after_apply", None)
    assert lost.upstream_status is not None and 200 <= lost.upstream_status < 300
    assert len(cloud.proxy.writes) == 2, "the SDK re-sent the write by itself"
    cloud.write(client, 53)  # a fresh connection works
    assert cloud.upstream_value() == 53


@pytest.mark.parametrize("forward", [True, False])
def test_hook_runs_at_the_write_position_and_blocks_the_answer(cloud: Cloud, forward: bool) -> None:
    client = cloud.client()
    seen: list[Any] = []
    entered, release = threading.Event(), threading.Event()

    def on_hit(call: Any) -> None:
        seen.append((call, cloud.upstream_value()))
        entered.set()
        assert release.wait(DEADLINE)

    cloud.proxy.inject("hook", at=2, on_hit=on_hit, forward=forward)
    cloud.read(client)
    cloud.write(client, 61)
    cloud.read(client)
    thread, out = run_in_thread(lambda: cloud.write(client, 62))
    assert entered.wait(DEADLINE), "the hook was not called"
    (call, upstream_then), = seen
    assert (call.write_n, call.n, call.method, call.fault, call.done) == (2, 4, cloud.write_method, "hook", False)
    assert upstream_then == (62 if forward else 61)  # forward=True: applied before the hook
    assert thread.is_alive(), "the client was answered while the hook blocked"
    release.set()
    thread.join(DEADLINE)
    assert not thread.is_alive() and "error" not in out, out
    assert cloud.upstream_value() == 62
    assert call.done and call.status is not None and 200 <= call.status < 300 and not call.client_gone


# --------------------------------------------------------------------------- positions
def test_positions_count_writes_or_all_calls_and_rules_repeat(moto_url: str,
                                                              fault_proxy: Callable[..., FaultProxy]) -> None:
    cloud = AwsCloud(moto_url, fault_proxy)
    client = cloud.client()
    all_calls = cloud.proxy.inject("500", at=2, writes_only=False, method="GET")  # 2nd call or later, GETs
    twice = cloud.proxy.inject("500", at=2, times=2)                             # writes 2 and 3
    cloud.write(client, 1)                                                        # call 1, write 1
    with pytest.raises(Exception):
        cloud.read(client)                                                        # call 2: GET → 500
    with pytest.raises(Exception):
        cloud.write(client, 2)                                                    # write 2 → 500
    with pytest.raises(Exception):
        cloud.write(client, 3)                                                    # write 3 → 500
    cloud.write(client, 4)                                                        # write 4 passes
    assert cloud.read(client) == 4                                                # times=1 spent
    assert [(c.n, c.write_n, c.outcome) for c in cloud.proxy.calls()] == [
        (1, 1, 200), (2, None, "500"), (3, 2, "500"),
        (4, 3, "500"), (5, 4, 200), (6, None, 200)]
    assert [c.n for c in all_calls.hits] == [2] and [c.write_n for c in twice.hits] == [2, 3]
    cloud.proxy.reset_log()
    cloud.proxy.clear()
    cloud.write(client, 5)
    assert [(c.n, c.write_n, c.outcome) for c in cloud.proxy.calls()] == [(1, 1, 200)]


def test_a_shared_log_counts_the_plan_across_proxies(moto_url: str, clouddns_emulator: Any,
                                                     fault_proxy: Callable[..., FaultProxy]) -> None:
    """Two clouds, one plan: ``at=2`` on both proxies fires on the plan's second write, wherever it goes."""
    log = CallLog()
    aws = AwsCloud(moto_url, lambda url, **kw: fault_proxy(url, log=log, **kw))
    google = GoogleCloud(clouddns_emulator, lambda url, **kw: fault_proxy(url, log=log, **kw))
    for cloud in (aws, google):
        cloud.proxy.inject("500", at=2)
    aws_client, google_client = aws.client(), google.client()
    aws.write(aws_client, 1)
    with pytest.raises(Exception):
        google.write(google_client, 2)
    aws.write(aws_client, 3)
    assert [(c.proxy, c.write_n, c.outcome) for c in log.calls(writes_only=True)] == [
        ("aws", 1, 200), ("google", 2, "500"), ("aws", 3, 200)]
    assert [c.write_n for c in google.proxy.writes] == [2]


def test_wait_for_calls_fails_with_the_log(moto_url: str, fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(moto_url)
    with pytest.raises(AssertionError, match="no 1 write calls within 0.2s"):
        proxy.wait_for_calls(1, 0.2, writes_only=True)


# --------------------------------------------------------------------------- killing the client at a write
_CHILD = r"""
import sys, time
flavor, url = sys.argv[1], sys.argv[2]
if flavor == "aws":
    import boto3
    from botocore.config import Config
    client = boto3.client("route53", endpoint_url=url, config=Config(retries={"total_max_attempts": 1}))
    print("ready", flush=True)
    client.change_resource_record_sets(HostedZoneId=sys.argv[3], ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": sys.argv[4], "Type": "A", "TTL": 60,
                                                  "ResourceRecords": [{"Value": "192.0.2.77"}]}}]})
else:
    from azure.core.credentials import AccessToken
    from azure.mgmt.trafficmanager import TrafficManagerManagementClient

    class Token:
        def get_token(self, *scopes, **kw):
            return AccessToken("t", int(time.time()) + 3600)

    client = TrafficManagerManagementClient(Token(), sys.argv[3], base_url=url, connection_verify=sys.argv[4],
                                            retry_total=0)
    print("ready", flush=True)
    client.endpoints.update("rg-fp", "fp-tm", "ExternalEndpoints", "use1", {"properties": {"weight": 77}})
print("answered", flush=True)
"""


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("flavor", ["aws", "azure"])
def test_hook_can_kill_the_client_process_at_a_write(flavor: str, forward: bool, request: pytest.FixtureRequest,
                                                     fault_proxy: Callable[..., FaultProxy]) -> None:
    """A process SIGKILLed inside the hook gets no answer; with ``forward=False`` its write never lands."""
    cloud: Cloud
    if flavor == "aws":
        cloud = AwsCloud(request.getfixturevalue("moto_url"), fault_proxy)
        args = [cloud.zone_id, cloud.name]
    else:
        cloud = AzureCloud(request.getfixturevalue("trafficmanager_emulator"), fault_proxy)
        args = [cloud.sub, cloud.emulator.ca_file]
    before = cloud.upstream_value()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, flavor, cloud.proxy.url, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[int] = []

    def on_hit(call: Any) -> None:
        proc.send_signal(signal.SIGKILL)
        killed.append(proc.wait(DEADLINE))

    try:
        cloud.proxy.inject("hook", at=1, on_hit=on_hit, forward=forward)
        (call,) = cloud.proxy.wait_for_calls(1, 60, writes_only=True, done=True)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed == [-signal.SIGKILL], (killed, err)
    assert "answered" not in out
    assert (call.fault, call.status, call.client_gone, call.hook_error) == ("hook", None, True, None)
    if forward:
        assert call.upstream_status is not None and cloud.upstream_value() == 77
    else:
        assert call.upstream_status is None and cloud.upstream_value() == before
