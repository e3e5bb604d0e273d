"""The adapter contract, one suite run over every adapter against a real server over HTTP(S).

Route 53 is the lab's moto server; Cloud DNS and Traffic Manager are the emulators in
failover_engine/lab/emulators/. Each adapter is built as the engine builds it (its connection, the real SDK
client inside) and talks to the provider over the network. A :class:`Harness` gives each test
what differs per provider: a binding of two endpoints ``a`` and ``b``, a way to seed the steady
state (``a`` active) and to read who is active *with the provider's own SDK* (never through the
adapter), and ways to make the provider fail. The tests themselves are the same for every adapter.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from failover_engine.adapters import adapter_class
from failover_engine.adapters.base import Adapter, Capability
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import AdapterError, CloudDnsError, Route53Error, TrafficManagerError
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import (
    CloudDnsConnection,
    CloudDnsEndpointBinding,
    CloudDnsRouting,
    Route53Connection,
    Route53EndpointBinding,
    Route53Routing,
    TrafficManagerConnection,
    TrafficManagerEndpointBinding,
    TrafficManagerRouting,
)
from failover_engine.core.plan import Change
from failover_engine.core.validation import read_back_mismatches

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

VALUES = {"a": ["192.0.2.10"], "b": ["198.51.100.10"]}
LOCATIONS = {"a": "us-east1", "b": "us-west1"}
R53_ZONE, R53_RECORD = "drill.example.", "contract.drill.example."  # a record of its own in the lab's zone
CDNS_ZONE, CDNS_DNS_NAME, CDNS_RECORD = "contract", "contract.example.", "www.contract.example."
TM_RG, TM_PROFILE = "rg-contract", "contract-tm"
TM_NAMES = {"a": "tm-east", "b": "tm-west"}  # Traffic Manager endpoint names differ from the service's
MAX_ATTEMPTS = 3
ROUTE53_500 = (b'<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
               b"<Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected 500</Message></Error>"
               b"<RequestId>contract</RequestId></ErrorResponse>")


# --------------------------------------------------------------------------- the harness
@dataclass
class Harness:
    """One provider, as the contract tests need it. Everything but :meth:`adapter` bypasses the adapter."""

    kind: str
    mode: str
    connection: Any
    binding: Any                                  # endpoints a and b, connection "contract"
    error: type[AdapterError]                     # the adapter's own error class
    seed: Callable[[], None]                      # steady state: a active (provider SDK)
    active: Callable[[], str | None]              # who takes traffic, read with the provider SDK
    snapshot: Callable[[], Any]                   # the provider's raw state of the binding's resources
    writes: Callable[[], int | None]              # write requests the provider received (None: not observable)
    unknown: tuple[Any, str]                      # a binding naming a missing zone/profile, and that name
    failing: Callable[[], tuple[Any, Callable[[], int]]]  # connection to a provider answering 500, request count
    scheme: str = "http"
    sleeps: list[float] = field(default_factory=list)

    def adapter(self, connection: Any = None) -> Adapter:
        """The adapter as the engine builds it (registry, connection), backoff sleeps recorded, not slept."""
        return adapter_class(self.kind)(connection or self.connection, sleep=self.sleeps.append)

    def plan(self, ad: Adapter, target: str) -> list[Change]:
        """What the engine plans: read, then every resource's change towards ``target`` taking traffic."""
        current = ad.read([self.binding])
        return [Change(k, current.get(k), v) for k, v in ad.desired(self.binding, {target: 100}).items()]


def route53_harness(request: pytest.FixtureRequest, mode: str) -> Harness:
    lab = request.getfixturevalue("lab_aws")  # moto seeded, AWS settings of this process pointing at it
    start_server = request.getfixturevalue("local_http_server")
    client = lab.route53_client()
    zone_id = lab.zones[R53_ZONE]
    connection = Route53Connection(endpoint_url=lab.moto_url, max_attempts=MAX_ATTEMPTS)
    binding = Route53Routing(connection="contract", hosted_zone=R53_ZONE, record=R53_RECORD, ttl=30, mode=mode,
                             endpoints={n: Route53EndpointBinding(values=v) for n, v in VALUES.items()})

    def records() -> list[dict[str, Any]]:
        sets = client.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=R53_RECORD,
                                                StartRecordType="A")["ResourceRecordSets"]
        return sorted((r for r in sets if r["Name"] == R53_RECORD), key=lambda r: r.get("SetIdentifier", ""))

    def seed() -> None:
        changes = []
        for name, values in VALUES.items():
            rrs: dict[str, Any] = {"Name": R53_RECORD, "Type": "A", "TTL": 30, "SetIdentifier": name,
                                   "ResourceRecords": [{"Value": v} for v in values]}
            if mode == "failover":
                rrs["Failover"] = "PRIMARY" if name == "a" else "SECONDARY"
            else:
                rrs["Weight"] = 100 if name == "a" else 0
            changes.append({"Action": "UPSERT", "ResourceRecordSet": rrs})
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    def active() -> str | None:
        recs = records()
        if mode == "failover":
            primaries = [r["SetIdentifier"] for r in recs if r["Failover"] == "PRIMARY"]
            return primaries[0] if len(primaries) == 1 else None
        return max(recs, key=lambda r: r["Weight"])["SetIdentifier"]

    def failing() -> tuple[Any, Callable[[], int]]:
        server = start_server(status=500, body=ROUTE53_500)  # a real HTTP server answering 500 to everything
        return connection.model_copy(update={"endpoint_url": server.url}), lambda: len(server.requests)

    unknown = binding.model_copy(update={"hosted_zone": None, "hosted_zone_id": "Z0NOSUCHZONE"})
    return Harness("route53", mode, connection, binding, Route53Error, seed, active, records,
                   lambda: None, (unknown, "Z0NOSUCHZONE"), failing)


def clouddns_harness(request: pytest.FixtureRequest, mode: str) -> Harness:
    sdk = request.getfixturevalue("clouddns_sdk")
    em = sdk.emulator
    sdk.create_zone(CDNS_ZONE, CDNS_DNS_NAME)
    connection = CloudDnsConnection(project=sdk.project, endpoint_url=em.url, credentials="anonymous",
                                    max_attempts=MAX_ATTEMPTS)
    binding = CloudDnsRouting(connection="contract", managed_zone=CDNS_ZONE, record=CDNS_RECORD, ttl=30, mode=mode,
                              endpoints={n: CloudDnsEndpointBinding(values=v, location=LOCATIONS[n])
                                         for n, v in VALUES.items()})
    by_values = {tuple(v): n for n, v in VALUES.items()}

    def seed() -> None:
        if mode == "primary_backup":
            policy = {"primaryBackup": {"primaryTargets": {"externalEndpoints": VALUES["a"]},
                                        "backupGeoTargets": {"items": [{"location": LOCATIONS["b"],
                                                                        "rrdatas": VALUES["b"]}]}}}
        else:
            policy = {"wrr": {"items": [{"weight": 100.0, "rrdatas": VALUES["a"]},
                                        {"weight": 0.0, "rrdatas": VALUES["b"]}]}}
        sdk.put(CDNS_ZONE, {"name": CDNS_RECORD, "type": "A", "ttl": 30, "routingPolicy": policy})

    def active() -> str | None:
        rrs = sdk.get(CDNS_ZONE, CDNS_RECORD)
        if rrs is None:
            return None
        if mode == "primary_backup":
            primary = rrs["routingPolicy"]["primaryBackup"]["primaryTargets"]["externalEndpoints"]
            return by_values.get(tuple(sorted(primary)))
        top = max(rrs["routingPolicy"]["wrr"]["items"], key=lambda i: i.get("weight", 0))
        return by_values.get(tuple(sorted(top["rrdatas"])))

    def failing() -> tuple[Any, Callable[[], int]]:
        em.fail_next(MAX_ATTEMPTS, 500)  # exactly as many as the adapter may try: one more would succeed
        since = len(em.requests)
        return connection, lambda: len(em.requests) - since

    unknown = binding.model_copy(update={"managed_zone": "no-such-zone"})
    return Harness("clouddns", mode, connection, binding, CloudDnsError, seed, active,
                   lambda: sdk.get(CDNS_ZONE, CDNS_RECORD), lambda: len(em.calls("POST", "/changes")),
                   (unknown, "no-such-zone"), failing)


def trafficmanager_harness(request: pytest.FixtureRequest, mode: str) -> Harness:
    sdk = request.getfixturevalue("trafficmanager_sdk")
    em = sdk.emulator
    method = "Priority" if mode == "priority" else "Weighted"
    connection = TrafficManagerConnection(subscription_id=sdk.subscription, endpoint_url=em.url, ca_bundle=em.ca_file,
                                          credentials="token_env", token_env_var=sdk.token_env_var,
                                          max_attempts=MAX_ATTEMPTS)
    binding = TrafficManagerRouting(connection="contract", resource_group=TM_RG, profile=TM_PROFILE, mode=mode,
                                    endpoints={n: TrafficManagerEndpointBinding(endpoint=e)
                                               for n, e in TM_NAMES.items()})
    by_tm_name = {e: n for n, e in TM_NAMES.items()}

    def seed() -> None:
        if mode == "priority":
            eps = {TM_NAMES["a"]: {"priority": 1}, TM_NAMES["b"]: {"priority": 2}}
        else:
            eps = {TM_NAMES["a"]: {"weight": 1000}, TM_NAMES["b"]: {"weight": 1, "endpointStatus": "Disabled"}}
        sdk.put_profile(TM_RG, TM_PROFILE, method, eps)

    def active() -> str | None:
        return by_tm_name.get(sdk.serving(TM_RG, TM_PROFILE, method) or "")

    def failing() -> tuple[Any, Callable[[], int]]:
        em.fail_next(MAX_ATTEMPTS, 500)
        since = len(em.requests)
        return connection, lambda: len(em.requests) - since

    unknown = binding.model_copy(update={"profile": "no-such-profile"})
    return Harness("trafficmanager", mode, connection, binding, TrafficManagerError, seed, active,
                   lambda: sdk.endpoints(TM_RG, TM_PROFILE), lambda: len(em.writes()),
                   (unknown, "no-such-profile"), failing, scheme="https")


BUILDERS = {"route53": route53_harness, "clouddns": clouddns_harness, "trafficmanager": trafficmanager_harness}
MAIN_MODES = [("route53", "failover"), ("clouddns", "primary_backup"), ("trafficmanager", "priority")]
WEIGHTED_MODES = [("route53", "weighted"), ("clouddns", "weighted"), ("trafficmanager", "weighted")]


def _build(request: pytest.FixtureRequest) -> Harness:
    kind, mode = request.param
    h = BUILDERS[kind](request, mode)
    h.seed()
    assert h.active() == "a", f"{kind} {mode}: the seeded steady state must have a active"
    return h


@pytest.fixture(params=MAIN_MODES + WEIGHTED_MODES, ids=lambda p: f"{p[0]}-{p[1]}")
def harness(request: pytest.FixtureRequest) -> Harness:
    """Every adapter in its failover mode and in its weighted mode, seeded with a active."""
    return _build(request)


@pytest.fixture(params=MAIN_MODES, ids=lambda p: p[0])
def main_harness(request: pytest.FixtureRequest) -> Harness:
    """Every adapter in its failover mode, seeded with a active."""
    return _build(request)


# --------------------------------------------------------------------------- (1) switch
def test_switch_moves_traffic_at_the_provider(harness: Harness) -> None:
    ad = harness.adapter()
    changes = harness.plan(ad, "b")
    assert {c.action for c in changes} <= {"update", "noop"} and any(c.action == "update" for c in changes)

    receipt = ad.apply(changes)

    assert harness.active() == "b"  # seen by the provider's own SDK
    assert ad.active_of(harness.binding, ad.read([harness.binding])) == {"b": 100}
    assert receipt.calls >= 1 and receipt.batches


# --------------------------------------------------------------------------- (2) idempotency
def test_asking_for_what_holds_costs_no_call(harness: Harness) -> None:
    ad = harness.adapter()
    steady = harness.plan(ad, "a")  # the seeded state already holds
    assert [c.action for c in steady] == ["noop"] * len(steady)
    ad.apply(harness.plan(ad, "b"))
    writes = harness.writes()

    again = harness.plan(ad, "b")
    calls = ad.calls
    receipt = ad.apply(again)

    assert [c.action for c in again] == ["noop"] * len(again)
    assert (receipt.calls, receipt.batches, ad.calls) == (0, [], calls)
    assert harness.writes() == writes
    assert harness.active() == "b"


# --------------------------------------------------------------------------- (3) check mode
def _strategy(h: Harness, tmp_path: Path, a_url: str, b_url: str) -> Path:
    service = {
        "endpoints": [{"name": "a", "role": "primary", "region": "region-a", "probe": {"type": "http", "url": a_url}},
                      {"name": "b", "role": "standby", "region": "region-b", "probe": {"type": "http", "url": b_url}}],
        "routing": [h.binding.model_dump(mode="json", exclude_none=True)],
        "detection": {"interval": "200ms", "timeout": "200ms"},
        "policy": {"cooldown": 0},
        "validation": {"attempts": 2, "interval": "50ms"},
    }
    data = {"version": 1, "connections": {"contract": h.connection.model_dump(mode="json", exclude_none=True)},
            "services": {"svc": service}}
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_check_mode_plans_the_switch_and_changes_nothing(harness: Harness, tmp_path: Path,
                                                         local_http_server: Any) -> None:
    a, b = local_http_server(), local_http_server()
    loaded = load_strategy(_strategy(harness, tmp_path, a.url, b.url), state_dir=tmp_path / "state")
    engine = FailoverEngine(loaded, adapter_factory=lambda kind, conn: adapter_class(kind)(
        conn, sleep=harness.sleeps.append))
    before, writes = harness.snapshot(), harness.writes()

    out = engine.run("svc", "switch", "b")  # apply defaults to False

    assert (out.status, out.changed, out.report_path) == ("planned", False, None), out.errors
    (step,) = out.plan.steps
    assert step.adapter == harness.kind and step.effective
    desired = engine.adapter(harness.binding).desired(harness.binding, {"b": 100})
    assert {c.key: c.after for c in step.effective} == {k: v for k, v in desired.items()
                                                        if k in {c.key for c in step.effective}}
    assert harness.snapshot() == before and harness.active() == "a"
    assert harness.writes() == writes
    assert not (tmp_path / "state" / "events.jsonl").exists()  # a dry run leaves no trace

    done = engine.run("svc", "switch", "b", apply=True)  # the same plan, applied
    assert done.status == "succeeded", done.errors
    assert harness.active() == "b"


# --------------------------------------------------------------------------- (4) read-back
def test_read_back_equals_desired_for_every_key(harness: Harness) -> None:
    ad = harness.adapter()
    ad.apply(harness.plan(ad, "b"))
    desired = ad.desired(harness.binding, {"b": 100})

    actual = harness.adapter().read([harness.binding])  # a fresh adapter: nothing remembered

    assert set(actual) == set(desired) == set(ad.resource_keys(harness.binding))
    assert {k: dict(actual[k] or {}) for k in desired} == {k: dict(v) for k, v in desired.items()}
    assert read_back_mismatches(desired, actual) == []


# --------------------------------------------------------------------------- (5) rollback
def test_the_inverse_changes_restore_the_provider(harness: Harness) -> None:
    ad = harness.adapter()
    before = harness.snapshot()
    changes = [c for c in harness.plan(ad, "b") if c.action != "noop"]
    ad.apply(changes)
    assert harness.active() == "b"

    ad.apply([c.inverse() for c in changes])

    assert harness.active() == "a"
    assert harness.snapshot() == before  # exactly as seeded, not only "a is active"
    assert ad.active_of(harness.binding, ad.read([harness.binding])) == {"a": 100}


# --------------------------------------------------------------------------- (6) error mapping
def test_an_unknown_zone_or_profile_is_the_adapters_error_naming_it(main_harness: Harness) -> None:
    h = main_harness
    ad = h.adapter()
    binding, name = h.unknown

    with pytest.raises(AdapterError) as exc:
        ad.read([binding])

    err = exc.value
    assert err.__class__ is h.error and err.__class__ is not AdapterError
    assert name in str(err) and name in (err.resource or "")
    assert str(err).startswith(f"{h.kind} [")  # the adapter, then the resource
    assert err.code and h.sleeps == []  # a 404 is final: not retried


def test_a_persistent_5xx_is_the_adapters_error_after_bounded_attempts(main_harness: Harness) -> None:
    h = main_harness
    changes = h.plan(h.adapter(), "b")  # planned against the healthy provider
    before = h.snapshot()

    connection, requests = h.failing()
    ad = h.adapter(connection)
    with pytest.raises(AdapterError) as exc:
        ad.apply(changes)

    assert exc.value.__class__ is h.error, repr(exc.value)
    # bounded, and the SDK does not retry on its own; after the write's attempts, a read may try to
    # confirm what a write whose answer was a 5xx did (with its own bounded attempts)
    assert requests() == ad.calls and MAX_ATTEMPTS <= ad.calls <= 2 * MAX_ATTEMPTS
    assert MAX_ATTEMPTS - 1 <= len(h.sleeps) <= 2 * (MAX_ATTEMPTS - 1)  # backoff between attempts only
    assert h.snapshot() == before and h.active() == "a"
    # nothing was accepted; a write answered 5xx may have been carried out: unknown, never written
    assert exc.value.written == () and set(exc.value.unknown) <= {c.key for c in changes}


def test_a_closed_endpoint_is_the_adapters_error_naming_where(main_harness: Harness, closed_port: int) -> None:
    h = main_harness
    where = f"{h.scheme}://127.0.0.1:{closed_port}"
    ad = h.adapter(h.connection.model_copy(update={"endpoint_url": where}))

    with pytest.raises(AdapterError) as exc:
        ad.read([h.binding])

    assert exc.value.__class__ is h.error, repr(exc.value)
    assert f"127.0.0.1:{closed_port}" in str(exc.value) and "reach" in str(exc.value)
    assert 1 <= ad.calls <= MAX_ATTEMPTS


# --------------------------------------------------------------------------- (7) capabilities
def test_every_adapter_declares_read_back_and_accepts_the_binding(harness: Harness) -> None:
    cls = adapter_class(harness.kind)
    assert cls.kind == harness.kind and isinstance(harness.adapter(), cls)
    assert all(isinstance(c, Capability) for c in cls.capabilities)
    assert Capability.READ_BACK in cls.capabilities
    needed = Capability.WEIGHTED if harness.mode == "weighted" else Capability.FAILOVER_RECORDS
    assert needed in cls.capabilities
    assert cls.binding_problems(harness.binding) == []
    assert json.loads(json.dumps(cls.binding_problems(harness.binding))) == []
