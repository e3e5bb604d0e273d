"""ARC zonal shift: the adapter and the engine against the zonal-shift emulator, over HTTP.

The real boto3 ``arc-zonal-shift`` client talks to failover_engine/lab/emulators/zonalshift.py as it would to
AWS; every test reads what the emulator holds (its shifts, their status on its clock). Nothing
of ours is mocked. Zone endpoints are probed over HTTP (local servers whose status a test flips).
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from failover_engine.lab.emulators.zonalshift import ZonalShiftEmulator
from failover_engine.adapters.zonalshift import ZonalShiftAdapter, expires_in_text
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import ZonalShiftError
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import ZonalShiftConnection, ZonalShiftRouting
from failover_engine.core.plan import Change, ResourceKey

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
ZONES = {"a": "use1-az1", "b": "use1-az2", "c": "use1-az4"}
KEY = ResourceKey("zonalshift", ARN, "shift")
ALL = {n: 100 for n in ZONES}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake keys and empty config files: boto3 signs requests but never reaches AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def emulator() -> Iterator[ZonalShiftEmulator]:
    with ZonalShiftEmulator({ARN: list(ZONES.values())}) as em:
        yield em


def binding(**kw: Any) -> ZonalShiftRouting:
    return ZonalShiftRouting(resource_identifier=ARN, endpoints={n: {"zone": z} for n, z in ZONES.items()}, **kw)


def adapter(em: ZonalShiftEmulator, max_attempts: int = 3) -> ZonalShiftAdapter:
    conn = ZonalShiftConnection(endpoint_url=em.url, max_attempts=max_attempts)
    return ZonalShiftAdapter(conn, sleep=lambda s: None)


def sdk(em: ZonalShiftEmulator) -> Any:
    return boto3.client("arc-zonal-shift", region_name="us-east-1", endpoint_url=em.url)


def switch(ad: ZonalShiftAdapter, b: ZonalShiftRouting, assignment: dict[str, int]) -> list[Change]:
    """What the engine does: read, compute the desired state, apply the difference."""
    current = ad.read([b])
    changes = [Change(k, current.get(k), v) for k, v in ad.desired(b, assignment).items()]
    ad.apply(changes)
    return changes


# --------------------------------------------------------------------------- the emulator, via boto3
def test_the_emulator_answers_the_documented_errors_as_boto3_exceptions(emulator: ZonalShiftEmulator) -> None:
    client = sdk(emulator)
    first = client.start_zonal_shift(resourceIdentifier=ARN, awayFrom="use1-az1", expiresIn="30m", comment="x")
    assert first["status"] == "ACTIVE" and first["awayFrom"] == "use1-az1"
    assert (first["expiryTime"] - first["startTime"]).total_seconds() == pytest.approx(1800, abs=1)
    cases = [(dict(awayFrom="use1-az2"), "ConflictException", "ZonalShiftAlreadyExists"),
             (dict(awayFrom="use1-az9"), "ValidationException", "InvalidAz"),
             (dict(awayFrom="use1-az2", expiresIn="1d"), "ValidationException", "InvalidExpiresIn"),
             (dict(awayFrom="use1-az2", expiresIn="73h"), "ValidationException", "InvalidExpiresIn"),
             (dict(resourceIdentifier=ARN + "-gone"), "ResourceNotFoundException", None)]
    for override, code, reason in cases:
        args = {"resourceIdentifier": ARN, "awayFrom": "use1-az1", "expiresIn": "30m", "comment": "", **override}
        with pytest.raises(ClientError) as info:
            client.start_zonal_shift(**args)
        assert info.value.response["Error"]["Code"] == code, override
        assert info.value.response.get("reason") == reason, override
    managed = client.get_managed_resource(resourceIdentifier=ARN)
    assert managed["appliedWeights"] == {"use1-az1": 0.0, "use1-az2": 1.0, "use1-az4": 1.0}
    assert [s["zonalShiftId"] for s in managed["zonalShifts"]] == [first["zonalShiftId"]]
    updated = client.update_zonal_shift(zonalShiftId=first["zonalShiftId"], expiresIn="2h")
    assert (updated["expiryTime"] - first["startTime"]).total_seconds() == pytest.approx(7200, abs=5)
    assert client.cancel_zonal_shift(zonalShiftId=first["zonalShiftId"])["status"] == "CANCELED"
    with pytest.raises(client.exceptions.ConflictException):
        client.cancel_zonal_shift(zonalShiftId=first["zonalShiftId"])
    assert [s["status"] for s in client.list_zonal_shifts(resourceIdentifier=ARN)["items"]] == ["CANCELED"]


def test_a_shift_expires_on_the_emulator_clock(emulator: ZonalShiftEmulator) -> None:
    client = sdk(emulator)
    client.start_zonal_shift(resourceIdentifier=ARN, awayFrom="use1-az2", expiresIn="5m", comment="")
    emulator.advance(299)
    assert len(client.list_zonal_shifts(status="ACTIVE")["items"]) == 1
    emulator.advance(2)
    assert client.list_zonal_shifts(status="ACTIVE")["items"] == []
    assert [s["status"] for s in client.list_zonal_shifts(status="EXPIRED")["items"]] == ["EXPIRED"]
    assert client.get_managed_resource(resourceIdentifier=ARN)["zonalShifts"] == []


def test_the_emulator_runs_on_its_own_from_the_command_line(free_port: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "failover_engine.lab.emulators.zonalshift", "--port", str(free_port),
                             "--resource", f"{ARN}:use1-az1,use1-az2"], stdout=subprocess.PIPE, text=True)
    try:
        assert f"http://127.0.0.1:{free_port}" in proc.stdout.readline()  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{free_port}/managedresources/{urllib.parse.quote(ARN, safe='')}"
        with urllib.request.urlopen(url) as resp:
            assert json.loads(resp.read())["appliedWeights"] == {"use1-az1": 1.0, "use1-az2": 1.0}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


# --------------------------------------------------------------------------- the adapter (pure parts)
def test_desired_and_active_of() -> None:
    ad, b = ZonalShiftAdapter(), binding()
    assert ad.desired(b, ALL) == {KEY: {"away_from": None}}
    assert ad.desired(b, {"a": 100, "c": 100}) == {KEY: {"away_from": "use1-az2"}}
    with pytest.raises(ZonalShiftError, match="one active zonal shift"):
        ad.desired(b, {"c": 100})
    assert ad.active_of(b, {KEY: {"away_from": None}}) == ALL
    assert ad.active_of(b, {KEY: {"away_from": "use1-az1"}}) == {"b": 100, "c": 100}
    assert ad.active_of(b, {KEY: {"away_from": "use1-az9"}}) is None
    assert ad.active_of(b, {KEY: {"away_from": ["use1-az1", "use1-az2"]}}) is None
    assert ad.resource_keys(b) == [KEY]


def test_binding_problems_and_expiry_text() -> None:
    assert ZonalShiftAdapter.binding_problems(binding()) == []
    one = ZonalShiftRouting(resource_identifier=ARN, endpoints={"a": {"zone": "use1-az1"}}, expires_in=30)
    assert {p for p, _unused in ZonalShiftAdapter.binding_problems(one)} == {"endpoints", "expires_in"}
    assert [p for p, _unused in ZonalShiftAdapter.binding_problems(binding(expires_in=3 * 86400 + 60))] == ["expires_in"]
    assert [expires_in_text(s) for s in (60, 90, 1800, 3600, 5400, 259200)] == ["1m", "2m", "30m", "1h", "90m", "72h"]


# --------------------------------------------------------------------------- the adapter against the emulator
def test_start_read_and_active_of(emulator: ZonalShiftEmulator) -> None:
    ad, b = adapter(emulator), binding(expires_in="2h", comment="zone a is sick")
    assert ad.read([b]) == {KEY: {"away_from": None}}
    switch(ad, b, {"b": 100, "c": 100})
    [shift] = emulator.shifts("ACTIVE")
    assert (shift["awayFrom"], shift["comment"]) == ("use1-az1", "zone a is sick")
    assert shift["expiryTime"] - shift["startTime"] == pytest.approx(7200)
    assert ad.read([b]) == {KEY: {"away_from": "use1-az1"}}
    assert ad.active_of(b, ad.read([b])) == {"b": 100, "c": 100}


def test_asking_for_what_holds_costs_no_call(emulator: ZonalShiftEmulator) -> None:
    ad, b = adapter(emulator), binding()
    switch(ad, b, {"b": 100, "c": 100})
    before = len(emulator.requests)
    changes = [Change(k, ad.read([b])[k], v) for k, v in ad.desired(b, {"b": 100, "c": 100}).items()]
    assert [c.action for c in changes] == ["noop"]
    assert ad.apply(changes).calls == 0
    assert len(emulator.requests) == before + 1  # the read only
    assert len(emulator.shifts()) == 1


def test_failback_cancels_the_shift_and_a_move_cancels_then_starts(emulator: ZonalShiftEmulator) -> None:
    ad, b = adapter(emulator), binding()
    switch(ad, b, {"b": 100, "c": 100})
    switch(ad, b, {"a": 100, "c": 100})  # a recovered, b failed: move the shift
    assert [(s["awayFrom"], s["status"]) for s in emulator.shifts()] == [("use1-az1", "CANCELED"),
                                                                         ("use1-az2", "ACTIVE")]
    switch(ad, b, ALL)
    assert emulator.shifts("ACTIVE") == []
    assert ad.active_of(b, ad.read([b])) == ALL


def test_an_expired_shift_reads_as_every_zone_active(emulator: ZonalShiftEmulator) -> None:
    ad, b = adapter(emulator), binding(expires_in="10m")
    switch(ad, b, {"a": 100, "b": 100})
    assert ad.active_of(b, ad.read([b])) == {"a": 100, "b": 100}
    emulator.advance(601)
    assert ad.read([b]) == {KEY: {"away_from": None}}
    assert ad.active_of(b, ad.read([b])) == ALL
    switch(ad, b, ALL)  # failback after expiry: nothing to cancel, no error
    assert emulator.calls("DELETE") == []


def test_a_foreign_shift_is_a_clear_conflict(emulator: ZonalShiftEmulator) -> None:
    ad, b = adapter(emulator), binding()
    before = ad.read([b])  # read while no shift is active ...
    foreign = emulator.start_shift(ARN, "use1-az4", comment="someone else")  # ... then someone shifts
    changes = [Change(k, before[k], v) for k, v in ad.desired(b, {"b": 100, "c": 100}).items()]
    with pytest.raises(ZonalShiftError) as info:
        ad.apply(changes)
    assert info.value.code == "ConflictException"
    assert foreign["zonalShiftId"] in str(info.value) and "someone else" in str(info.value)
    assert info.value.written == ()
    # and a cancel never cancels somebody else's shift
    with pytest.raises(ZonalShiftError, match="changed by someone else") as info:
        ad.apply([Change(KEY, {"away_from": "use1-az1"}, {"away_from": None})])
    assert info.value.written == ()
    assert [s["status"] for s in emulator.shifts()] == ["ACTIVE"]


def test_validation_errors_are_mapped(emulator: ZonalShiftEmulator) -> None:
    ad = adapter(emulator)
    with pytest.raises(ZonalShiftError) as info:
        ad.apply([Change(KEY, {"away_from": None}, {"away_from": "use1-az9"})])
    assert info.value.code == "ValidationException" and "InvalidAz" in str(info.value)
    assert info.value.written == ()
    gone = ZonalShiftRouting(resource_identifier=ARN + "-gone", endpoints={n: {"zone": z} for n, z in ZONES.items()})
    ad.desired(gone, ALL)
    with pytest.raises(ZonalShiftError, match="registered") as info:
        ad.apply([Change(ResourceKey("zonalshift", ARN + "-gone", "shift"), {"away_from": None},
                         {"away_from": "use1-az1"})])
    assert info.value.code == "ResourceNotFoundException"


def test_a_500_is_retried_then_an_error(emulator: ZonalShiftEmulator) -> None:
    ad, b = adapter(emulator, max_attempts=3), binding()
    emulator.fail_next(2, 500, method="POST")
    switch(ad, b, {"b": 100, "c": 100})
    assert len(emulator.calls("POST")) == 3
    assert [s["awayFrom"] for s in emulator.shifts("ACTIVE")] == ["use1-az1"]
    emulator.fail_next(3, 500, method="DELETE")
    with pytest.raises(ZonalShiftError) as info:
        switch(ad, b, {"a": 100, "c": 100})
    assert info.value.code == "InternalServerException"
    assert info.value.written == ()  # the cancel never went through
    assert [s["awayFrom"] for s in emulator.shifts("ACTIVE")] == ["use1-az1"]
    emulator.fail_next(3, 500, method="POST")
    with pytest.raises(ZonalShiftError) as info:
        switch(ad, b, {"a": 100, "c": 100})
    assert info.value.written == (KEY,)  # canceled, not started: intermediate state
    assert emulator.shifts("ACTIVE") == []


# --------------------------------------------------------------------------- the engine, end to end
@pytest.fixture
def zones(local_http_server: Callable[..., Any]) -> dict[str, Any]:
    """One local HTTP server per zone endpoint; a test fails a zone with ``status = 503``."""
    return {n: local_http_server() for n in ZONES}


def engine_for(tmp_path: Path, em: ZonalShiftEmulator, zones: dict[str, Any]) -> FailoverEngine:
    data = {
        "version": 1,
        "connections": {"arc": {"type": "zonalshift", "endpoint_url": em.url, "max_attempts": 2}},
        "services": {"web": {
            "strategy": "active_active", "scope": "zone",
            "endpoints": [{"name": n, "role": "active", "region": "us-east-1", "zone": z,
                           "probe": {"type": "http", "url": f"{zones[n].url}/health"}} for n, z in ZONES.items()],
            "routing": [{"adapter": "zonalshift", "connection": "arc", "resource_identifier": ARN,
                         "expires_in": "1h", "endpoints": {n: {"zone": z} for n, z in ZONES.items()}}],
            "rules": [{"rule": "max_out", "count": 1, "of": "zones"}],
            "detection": {"interval": "500ms", "timeout": "500ms"},
            "policy": {"cooldown": 0},
            "validation": {"attempts": 2, "interval": "50ms"},
        }},
    }
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return FailoverEngine(load_strategy(path, state_dir=tmp_path / "state"))


def test_engine_shifts_away_from_a_failing_zone_and_back(tmp_path: Path, emulator: ZonalShiftEmulator,
                                                         zones: dict[str, Any]) -> None:
    engine = engine_for(tmp_path, emulator, zones)
    assert engine.run("web", "rebalance", apply=True).status == "noop"
    zones["b"].status = 503
    out = engine.run("web", "rebalance", apply=True)
    assert out.status == "succeeded", out.errors
    assert [(s["awayFrom"], s["comment"]) for s in emulator.shifts("ACTIVE")] == [
        ("use1-az2", "failover-engine zone failover")]
    assert engine.run("web", "rebalance", apply=True).status == "noop"
    zones["b"].status = 200
    assert engine.run("web", "rebalance", apply=True).status == "succeeded"
    assert emulator.shifts("ACTIVE") == []


def test_engine_never_takes_two_zones_out(tmp_path: Path, emulator: ZonalShiftEmulator,
                                          zones: dict[str, Any]) -> None:
    engine = engine_for(tmp_path, emulator, zones)
    zones["a"].status = zones["b"].status = 503
    # the provider cannot express two zones out (one shift per resource) and the max_out rule
    # forbids it: a refusal naming both, and nothing changed
    out = engine.run("web", "rebalance", apply=True)
    assert out.status == "refused" and not out.changed
    assert any("one active zonal shift" in e for e in out.errors), out.errors
    assert any("max_out 1 zones" in e for e in out.errors), out.errors
    assert emulator.shifts() == []
    assert emulator.calls("POST") == emulator.calls("DELETE") == []


def test_engine_refuses_to_remove_the_last_healthy_zone(tmp_path: Path, emulator: ZonalShiftEmulator,
                                                        zones: dict[str, Any]) -> None:
    engine = engine_for(tmp_path, emulator, zones)
    zones["c"].status = 503
    assert engine.run("web", "rebalance", apply=True).status == "succeeded"
    for server in zones.values():
        server.status = 503
    out = engine.run("web", "rebalance", apply=True)
    assert out.status == "refused"
    assert any("zero healthy members" in e for e in out.errors)
    assert [s["awayFrom"] for s in emulator.shifts("ACTIVE")] == ["use1-az4"]
    assert len(emulator.shifts()) == 1


def test_a_shift_with_less_than_half_its_life_left_is_extended_not_restarted(emulator: ZonalShiftEmulator) -> None:
    switch(adapter(emulator), binding(expires_in="20m"), {"b": 100, "c": 100})  # a shift with 20 min left
    [first] = emulator.shifts("ACTIVE")
    ad, b = adapter(emulator), binding(expires_in="2h")  # the strategy now wants 2 h shifts
    assert ad.read([b]) == {KEY: {"away_from": "use1-az1", "expiring": True}}
    changes = switch(ad, b, {"b": 100, "c": 100})
    assert [c.action for c in changes] == ["update"]
    [extended] = emulator.shifts("ACTIVE")
    assert extended["zonalShiftId"] == first["zonalShiftId"]  # the same shift, extended (UpdateZonalShift)
    assert extended["expiryTime"] - first["startTime"] == pytest.approx(7200, abs=5)
    assert emulator.calls("PATCH") and emulator.calls("DELETE") == []
    assert ad.read([b]) == {KEY: {"away_from": "use1-az1"}}  # full life again: nothing to do
