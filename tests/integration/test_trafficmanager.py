"""TrafficManagerAdapter with the real azure-mgmt-trafficmanager client, over HTTPS, against the
local ARM emulator (failover_engine/lab/emulators/trafficmanager.py), and the engine end to end on top of it.

Nothing of ours is mocked: the SDK's bearer-token policy, TLS verification against the emulator's
CA, and the emulator's state are real. Tests assert on what the emulator holds afterwards and on
the requests it saw (``emulator.requests``).
"""
from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError

from failover_engine.adapters.trafficmanager import TrafficManagerAdapter
from failover_engine.engine.failover import FailoverEngine
from failover_engine.core.errors import TrafficManagerConcurrentEditError, TrafficManagerError
from failover_engine.config.loader import load_strategy
from failover_engine.core.model import TrafficManagerConnection, TrafficManagerEndpointBinding, TrafficManagerRouting
from failover_engine.core.plan import Change

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SUB = "00000000-0000-0000-0000-0000000000aa"
RG, PROFILE, SCOPE = "rg-shop", "shop-tm", "rg-shop/shop-tm"
TOKEN_VAR, TOKEN = "TM_TEST_TOKEN", "token-for-the-emulator"
EXT = "Microsoft.Network/trafficManagerProfiles/externalEndpoints"


# --------------------------------------------------------------------------- helpers
def seed(em: Any, method: str = "Priority", **endpoints: dict[str, Any]) -> None:
    """A profile with external endpoints: name -> properties (target filled in)."""
    eps = [{"name": n, "type": EXT, "properties": {"target": f"{n}.example.net", **props}}
           for n, props in endpoints.items()]
    em.put_profile(SUB, RG, PROFILE, {"location": "global", "properties": {
        "trafficRoutingMethod": method, "dnsConfig": {"relativeName": "shop-tm", "ttl": 30},
        "monitorConfig": {"protocol": "HTTPS", "port": 443, "path": "/health"}, "endpoints": eps}})


def props(em: Any) -> dict[str, dict[str, Any]]:
    return em.endpoints(SUB, RG, PROFILE)


def binding(mode: str = "priority", names: tuple[str, ...] = ("use1", "usw2"), **kw: Any) -> TrafficManagerRouting:
    return TrafficManagerRouting(resource_group=RG, profile=PROFILE, mode=mode,
                                 endpoints={n: TrafficManagerEndpointBinding(endpoint=n) for n in names}, **kw)


@pytest.fixture
def em(trafficmanager_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    trafficmanager_emulator.token = TOKEN  # only this bearer token is accepted
    return trafficmanager_emulator


def connection(em: Any, **kw: Any) -> TrafficManagerConnection:
    base = {"subscription_id": SUB, "endpoint_url": em.url, "ca_bundle": em.ca_file, "credentials": "token_env",
            "token_env_var": TOKEN_VAR, "max_attempts": 3}
    return TrafficManagerConnection(**{**base, **kw})


def adapter(em: Any, sleeps: list[float] | None = None, **kw: Any) -> TrafficManagerAdapter:
    return TrafficManagerAdapter(connection(em, **kw), sleep=(sleeps if sleeps is not None else []).append)


def plan(ad: TrafficManagerAdapter, b: TrafficManagerRouting, target: str) -> list[Change]:
    """What the engine does: read, compute the desired state, keep the effective changes."""
    current = ad.read([b])
    return [c for c in (Change(k, current.get(k), v) for k, v in ad.desired(b, {target: 100}).items())
            if c.action != "noop"]


def answering(em: Any, start: dict[str, dict[str, Any]], since: int = 0) -> list[str]:
    """Replay the PATCHes the emulator received after request ``since`` on ``start``: which endpoint
    a Priority profile answers with after each one (unique priorities checked on the way)."""
    state = {n: dict(p) for n, p in start.items()}
    out = []
    for r in em.requests[since:]:
        if r["method"] != "PATCH":
            continue
        state[r["path"].rsplit("/", 1)[-1]].update(r["body"]["properties"])
        prios = [p["priority"] for p in state.values()]
        assert len(prios) == len(set(prios))
        out.append(min((p["priority"], n) for n, p in state.items() if p["endpointStatus"] == "Enabled")[1])
    return out


# --------------------------------------------------------------------------- switching, per mode
def test_priority_failover_promotes_the_standby_and_reads_back(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    ad, b = adapter(em), binding()
    start = props(em)

    receipt = ad.apply(plan(ad, b, "usw2"))

    now = props(em)
    assert {n: (p["priority"], p["endpointStatus"]) for n, p in now.items()} == {
        "use1": (2, "Enabled"), "usw2": (1, "Enabled")}
    assert {n: p["target"] for n, p in now.items()} == {"use1": "use1.example.net", "usw2": "usw2.example.net"}
    assert receipt.calls == 6  # three PATCHes, each after a GET showing the profile as expected
    assert [r["method"] for r in em.requests[1:]] == ["GET", "PATCH"] * 3
    patches = [r for r in em.requests if r["method"] == "PATCH"]
    assert [r["body"] for r in patches] == [{"properties": {"priority": 1000}}, {"properties": {"priority": 1}},
                                            {"properties": {"priority": 2}}]  # only the managed property
    assert all(r["bearer"] and r["query"] == "api-version=2026-09-01" for r in em.requests)
    assert answering(em, start) == ["usw2", "usw2", "usw2"]  # handed over by the first PATCH, straight
    state = ad.read([b])
    assert ad.active_of(b, state) == {"usw2": 100}
    assert state == ad.desired(b, {"usw2": 100})  # read-back matches


def test_status_mode_enables_the_standby_before_disabling_the_primary(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2, "endpointStatus": "Disabled"})
    ad, b = adapter(em), binding("status")
    assert ad.active_of(b, ad.read([b])) == {"use1": 100}

    ad.apply(plan(ad, b, "usw2"))

    writes = [(r["path"].rsplit("/", 1)[-1], r["body"]["properties"]) for r in em.writes()]
    assert writes == [("usw2", {"endpointStatus": "Enabled"}), ("use1", {"endpointStatus": "Disabled"})]
    now = props(em)
    assert (now["use1"]["endpointStatus"], now["use1"]["endpointMonitorStatus"]) == ("Disabled", "Disabled")
    assert (now["usw2"]["endpointStatus"], now["usw2"]["priority"]) == ("Enabled", 2)  # priorities untouched
    assert ad.active_of(b, ad.read([b])) == {"usw2": 100}


def test_weighted_mode_moves_the_weight_and_disables_the_old(em: Any) -> None:
    seed(em, "Weighted", use1={"weight": 1000}, usw2={"weight": 1, "endpointStatus": "Disabled"})
    ad, b = adapter(em), binding("weighted")

    ad.apply(plan(ad, b, "usw2"))

    now = props(em)
    assert {n: (p["weight"], p["endpointStatus"]) for n, p in now.items()} == {
        "use1": (1, "Disabled"), "usw2": (1000, "Enabled")}
    assert [r["path"].rsplit("/", 1)[-1] for r in em.writes()] == ["usw2", "use1"]  # enable first
    assert ad.active_of(b, ad.read([b])) == {"usw2": 100}


def test_asking_for_the_state_that_holds_writes_nothing(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    ad, b = adapter(em), binding()
    ad.apply(plan(ad, b, "usw2"))
    writes, calls = len(em.writes()), ad.calls

    again = plan(ad, b, "usw2")
    receipt = ad.apply(again)

    assert again == [] and receipt.calls == 0 and receipt.batches == []
    assert len(em.writes()) == writes and ad.calls == calls + 1  # the read only


def test_rollback_with_the_inverse_changes_restores_the_profile(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2}, euw1={"priority": 3})
    ad, b = adapter(em), binding(names=("use1", "usw2", "euw1"))
    before = props(em)
    changes = plan(ad, b, "euw1")
    ad.apply(changes)
    assert ad.active_of(b, ad.read([b])) == {"euw1": 100}

    now = ad.read([b])  # as the engine rolls back: from what holds now to each change's before
    ad.apply([Change(c.key, now[c.key], c.before) for c in changes])

    assert props(em) == before


def test_three_endpoints_hand_over_without_a_detour_and_leave_others_alone(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2}, euw1={"priority": 3}, legacy={"priority": 10})
    ad, b = adapter(em), binding(names=("use1", "usw2", "euw1"))
    for old, new in (("use1", "euw1"), ("euw1", "usw2"), ("usw2", "use1")):
        start, since = props(em), len(em.requests)
        ad.apply(plan(ad, b, new))
        assert set(answering(em, start, since)) <= {old, new}
        assert answering(em, start, since)[-1] == new
        assert ad.active_of(b, ad.read([b])) == {new: 100}
    assert props(em)["legacy"]["priority"] == 10
    assert not any(r["path"].endswith("/legacy") for r in em.writes())
    assert {n: p["priority"] for n, p in props(em).items()} == {"use1": 1, "usw2": 2, "euw1": 3, "legacy": 10}


def test_a_plan_whose_endpoint_moved_since_is_refused_as_a_concurrent_edit(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    ad, b = adapter(em), binding()
    changes = plan(ad, b, "usw2")
    raw = em.profile(SUB, RG, PROFILE)
    raw["properties"]["endpoints"][1]["properties"]["priority"] = 999  # someone moved usw2 meanwhile
    em.put_profile(SUB, RG, PROFILE, raw)
    writes = len(em.writes())

    with pytest.raises(TrafficManagerConcurrentEditError) as exc:
        ad.apply(changes)

    err = exc.value
    assert isinstance(err, TrafficManagerError) and err.code == "ConcurrentEdit"
    assert err.key.name == "usw2" and err.expected == {"priority": 2, "endpoint_status": "Enabled"}
    assert err.found == {"priority": 999, "endpoint_status": "Enabled"}
    assert err.written == () and len(em.writes()) == writes  # nothing written
    assert {n: p["priority"] for n, p in props(em).items()} == {"use1": 1, "usw2": 999}  # their edit stands


def test_apply_orders_from_what_holds_now_around_endpoints_it_does_not_manage(em: Any) -> None:
    """An endpoint outside the binding moved since the plan: not a conflict; the order of the
    PATCHes is computed from what the profile holds now."""
    seed(em, use1={"priority": 1}, usw2={"priority": 2}, legacy={"priority": 10})
    ad, b = adapter(em), binding()
    changes = plan(ad, b, "usw2")
    raw = em.profile(SUB, RG, PROFILE)
    raw["properties"]["endpoints"][2]["properties"]["priority"] = 1000  # the parking slot the plan would use
    em.put_profile(SUB, RG, PROFILE, raw)

    receipt = ad.apply(changes)

    assert {n: p["priority"] for n, p in props(em).items()} == {"use1": 2, "usw2": 1, "legacy": 1000}
    assert receipt.batches[0]["updates"][0] == {"endpoint": "use1", "set": {"priority": 999}}


# --------------------------------------------------------------------------- errors, retries, credentials
def test_an_unknown_profile_is_a_typed_error_naming_it(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    ad = adapter(em)
    with pytest.raises(TrafficManagerError) as exc:
        ad.read([binding().model_copy(update={"profile": "no-such-tm"})])
    err = exc.value
    assert (err.code, err.resource) == ("ResourceNotFound", "rg-shop/no-such-tm")
    assert "no-such-tm" in str(err) and "check resource_group (rg-shop) and profile (no-such-tm)" in str(err)
    assert ad.calls == 1  # a 404 is not retried


def test_an_unknown_resource_group_is_a_typed_error(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    with pytest.raises(TrafficManagerError, match="Resource group 'rg-gone' could not be found") as exc:
        adapter(em).read([binding().model_copy(update={"resource_group": "rg-gone"})])
    assert exc.value.code == "ResourceGroupNotFound"


def test_429_with_retry_after_is_honoured_then_the_call_succeeds(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    sleeps: list[float] = []
    ad = adapter(em, sleeps)
    em.fail_next(1, 429, retry_after=2)

    state = ad.read([binding()])

    assert ad.active_of(binding(), state) == {"use1": 100}
    assert sleeps == [2.0] and ad.calls == 2 and len(em.requests) == 2


def test_a_persisting_500_fails_after_max_attempts_and_the_sdk_does_not_retry_on_its_own(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    sleeps: list[float] = []
    ad = adapter(em, sleeps, max_attempts=3)
    em.fail_next(10, 500)

    with pytest.raises(TrafficManagerError, match="gave up after 3 attempt") as exc:
        ad.read([binding()])

    assert (exc.value.code, exc.value.resource) == ("InternalServerError", SCOPE)
    assert ad.calls == 3 and len(em.requests) == 3 and len(sleeps) == 2  # one owner of retries


def test_a_patch_failing_once_is_retried_inside_an_apply(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    ad = adapter(em)
    changes = plan(ad, binding(), "usw2")
    em.fail_next(1, 503, after=1, method="PATCH")  # the second PATCH answers 503 once

    receipt = ad.apply(changes)

    assert receipt.calls == 7 and [r["method"] for r in em.requests[1:]] == [
        "GET", "PATCH", "GET", "PATCH", "PATCH", "GET", "PATCH"]
    assert {n: p["priority"] for n, p in props(em).items()} == {"use1": 2, "usw2": 1}


def test_a_failure_mid_apply_leaves_a_valid_profile_that_rolls_back(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    before = props(em)
    ad, b = adapter(em, max_attempts=2), binding()
    changes = plan(ad, b, "usw2")
    em.fail_next(2, 500, after=1, method="PATCH")  # the second PATCH fails on both attempts

    with pytest.raises(TrafficManagerError) as exc:
        ad.apply(changes)
    assert exc.value.resource == f"{SCOPE}/ExternalEndpoints/usw2"
    # use1 was parked (written); usw2's PATCH got 500s: it may or may not have been carried out
    assert [k.name for k in exc.value.written] == ["use1"] and [k.name for k in exc.value.unknown] == ["usw2"]
    half = props(em)
    assert len({p["priority"] for p in half.values()}) == 2  # still valid: no shared priority

    now = ad.read([b])
    ad.apply([Change(c.key, now[c.key], c.before) for c in changes])
    assert props(em) == before


def test_a_missing_token_variable_is_a_clear_error_before_any_request(em: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    monkeypatch.delenv(TOKEN_VAR)
    with pytest.raises(TrafficManagerError, match=f"{TOKEN_VAR} is not set or empty") as exc:
        adapter(em).read([binding()])
    assert exc.value.code == "MissingToken" and em.requests == []


def test_a_refused_token_is_a_typed_error(em: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    monkeypatch.setenv(TOKEN_VAR, "stale-token")
    with pytest.raises(TrafficManagerError) as exc:
        adapter(em).read([binding()])
    assert exc.value.code == "InvalidAuthenticationToken" and "stale-token" not in str(exc.value)


def test_tls_is_verified_there_is_no_switch_off(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    with pytest.raises(TrafficManagerError, match="cannot reach .*CERTIFICATE_VERIFY_FAILED|certificate verify failed") as exc:
        adapter(em, ca_bundle=None, max_attempts=1).read([binding()])
    assert exc.value.code == "ServiceUnreachable" and em.requests == []


def test_a_mode_that_does_not_fit_the_profile_is_refused(em: Any) -> None:
    seed(em, "Weighted", use1={"weight": 1000}, usw2={"weight": 1})
    with pytest.raises(TrafficManagerError, match="Weighted traffic-routing method; mode 'priority' needs Priority") as exc:
        adapter(em).read([binding("priority")])
    assert exc.value.code == "RoutingMethodMismatch"


def test_an_endpoint_missing_from_the_profile_reads_as_none_and_is_not_created(em: Any) -> None:
    seed(em, use1={"priority": 1})
    ad, b = adapter(em), binding()
    state = ad.read([b])
    assert list(state.values()) == [{"priority": 1, "endpoint_status": "Enabled"}, None]
    assert ad.active_of(b, state) is None
    with pytest.raises(TrafficManagerError, match="changes existing endpoints only"):
        ad.apply([Change(k, state[k], v) for k, v in ad.desired(b, {"usw2": 100}).items()])
    assert em.writes() == []


# --------------------------------------------------------------------------- emulator faithfulness
def raw(em: Any, method: str, path: str, body: Any = None, token: str | None = TOKEN,
        query: str = "api-version=2026-09-01") -> tuple[int, dict[str, str], Any]:
    ctx = ssl.create_default_context(cafile=em.ca_file)
    req = urllib.request.Request(f"{em.url}{path}{'?' + query if query else ''}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            data = resp.read()
            return resp.status, dict(resp.headers), json.loads(data) if data else None
    except urllib.error.HTTPError as err:
        data = err.read()
        return err.code, dict(err.headers), json.loads(data) if data else None


PROFILE_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/trafficmanagerprofiles/{PROFILE}"


def test_api_version_is_required(em: Any) -> None:
    seed(em, use1={"priority": 1})
    status, _unused, body = raw(em, "GET", PROFILE_PATH, query="")
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, _unused, body = raw(em, "GET", PROFILE_PATH, query="api-version=latest")
    assert status == 400 and body["error"]["code"] == "InvalidApiVersionParameter"


def test_a_bearer_token_is_required(em: Any) -> None:
    seed(em, use1={"priority": 1})
    status, headers, body = raw(em, "GET", PROFILE_PATH, token=None)
    assert status == 401 and body["error"]["code"] == "AuthenticationFailed"
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert raw(em, "GET", PROFILE_PATH, token="other")[0] == 401


def test_a_duplicate_priority_is_rejected_and_changes_nothing(em: Any) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    client = adapter(em).client
    with pytest.raises(HttpResponseError) as exc:
        client.endpoints.update(RG, PROFILE, "ExternalEndpoints", "usw2", {"properties": {"priority": 1}})
    assert (exc.value.status_code, exc.value.error.code) == (400, "BadRequest")
    assert "already used by endpoint 'use1'" in exc.value.error.message
    assert props(em)["usw2"]["priority"] == 2


@pytest.mark.parametrize("patch", [{"priority": 0}, {"priority": 1001}, {"weight": 0}, {"weight": 1001},
                                   {"priority": "2"}, {"endpointStatus": "Paused"}])
def test_out_of_range_values_are_rejected(em: Any, patch: dict[str, Any]) -> None:
    seed(em, use1={"priority": 1})
    status, _unused, body = raw(em, "PATCH", f"{PROFILE_PATH}/ExternalEndpoints/use1", {"properties": patch})
    assert status == 400 and body["error"]["code"] == "BadRequest"


def test_endpoint_lifecycle_codes_and_defaults(em: Any) -> None:
    seed(em, use1={"priority": 1})
    path = f"{PROFILE_PATH}/ExternalEndpoints/usw2"
    status, _unused, body = raw(em, "PUT", path, {"properties": {"target": "198.51.100.10"}})
    assert status == 201 and (body["properties"]["priority"], body["properties"]["weight"]) == (2, 1)  # next in order
    assert body["type"] == EXT and body["id"].endswith("/trafficManagerProfiles/shop-tm/externalEndpoints/usw2")
    assert raw(em, "PUT", path, {"properties": {"target": "198.51.100.11", "priority": 5}})[0] == 200
    assert raw(em, "GET", f"{PROFILE_PATH}/externalendpoints/USW2")[2]["properties"]["target"] == "198.51.100.11"
    assert raw(em, "PUT", f"{PROFILE_PATH}/ExternalEndpoints/nope", {"properties": {}})[0] == 400  # no target
    assert raw(em, "GET", f"{PROFILE_PATH}/AzureEndpoints/usw2")[2]["error"]["code"] == "ResourceNotFound"
    assert raw(em, "GET", f"{PROFILE_PATH}/OtherEndpoints/usw2")[0] == 400
    assert raw(em, "DELETE", path)[0] == 200
    assert raw(em, "DELETE", path)[0] == 204
    assert raw(em, "PATCH", path, {"properties": {"priority": 3}})[2]["error"]["code"] == "ResourceNotFound"


def test_profile_shape_and_performance_rules(em: Any) -> None:
    seed(em, use1={"priority": 1})
    status, _unused, body = raw(em, "GET", PROFILE_PATH)
    assert status == 200 and body["type"] == "Microsoft.Network/trafficManagerProfiles" and body["location"] == "global"
    p = body["properties"]
    assert p["dnsConfig"] == {"relativeName": "shop-tm", "ttl": 30, "fqdn": "shop-tm.trafficmanager.net"}
    assert p["monitorConfig"]["profileMonitorStatus"] == "CheckingEndpoints"
    em.set_monitor_status(SUB, RG, PROFILE, "use1", "Online")
    assert raw(em, "GET", PROFILE_PATH)[2]["properties"]["monitorConfig"]["profileMonitorStatus"] == "Online"
    status, _unused, body = raw(em, "PATCH", PROFILE_PATH, {"properties": {"trafficRoutingMethod": "Performance"}})
    assert status == 400 and "location must be specified" in body["error"]["message"]
    assert raw(em, "GET", PROFILE_PATH)[2]["properties"]["trafficRoutingMethod"] == "Priority"  # unchanged
    status, _unused, body = raw(em, "GET", PROFILE_PATH.replace(PROFILE, "ghost"))
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"


def test_faults_can_be_queued_over_http_and_skip_requests(em: Any) -> None:
    seed(em, use1={"priority": 1})
    ctx = ssl.create_default_context(cafile=em.ca_file)
    req = urllib.request.Request(f"{em.url}/_emulator/faults", method="POST",
                                 data=json.dumps({"count": 1, "status": 429, "retry_after": 3, "after": 2}).encode())
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        assert resp.status == 200
    codes = [raw(em, "GET", PROFILE_PATH) for _i in range(4)]
    assert [c[0] for c in codes] == [200, 200, 429, 200]
    assert codes[2][1]["Retry-After"] == "3" and codes[2][2]["error"]["code"] == "TooManyRequests"


def test_the_command_line_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "failover_engine.lab.emulators.trafficmanager", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        ca = proc.stdout.readline().split(": ", 1)[1].strip()
        ctx = ssl.create_default_context(cafile=ca)
        req = urllib.request.Request(f"{url}/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                                     "trafficmanagerprofiles/p?api-version=2026-09-01",
                                     headers={"Authorization": "Bearer x"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, context=ctx, timeout=5)
        assert exc.value.code == 404 and json.loads(exc.value.read())["error"]["code"] == "ResourceNotFound"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


# --------------------------------------------------------------------------- the engine end to end
def strategy(tmp_path: Path, em: Any, primary_url: str, standby_url: str) -> Path:
    data = {
        "version": 1,
        "connections": {"azure-local": {"type": "trafficmanager", "subscription_id": SUB, "endpoint_url": em.url,
                                        "ca_bundle": em.ca_file, "credentials": "token_env",
                                        "token_env_var": TOKEN_VAR, "max_attempts": 3}},
        "services": {"shop": {
            "endpoints": [
                {"name": "eastus", "role": "primary", "region": "eastus",
                 "probe": {"type": "http", "url": f"{primary_url}/health", "body_contains": "ok"}},
                {"name": "westus", "role": "standby", "region": "westus",
                 "probe": {"type": "http", "url": f"{standby_url}/health", "body_contains": "ok"}}],
            "routing": [{"adapter": "trafficmanager", "connection": "azure-local", "resource_group": RG,
                         "profile": PROFILE, "mode": "priority",
                         "endpoints": {"eastus": {"endpoint": "use1"}, "westus": {"endpoint": "usw2"}}}],
            "detection": {"interval": "250ms", "timeout": "250ms"},
            "policy": {"cooldown": 0},
            "validation": {"attempts": 2, "interval": "50ms"}}},
    }
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_engine_fails_over_through_traffic_manager_and_back(em: Any, local_http_server: Any, tmp_path: Path) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    primary, standby = local_http_server(), local_http_server()
    engine = FailoverEngine(load_strategy(strategy(tmp_path, em, primary.url, standby.url), state_dir=tmp_path / "state"))

    out = engine.run("shop", "failover", apply=True)

    assert (out.status, out.errors) == ("succeeded", [])
    assert {n: p["priority"] for n, p in props(em).items()} == {"use1": 2, "usw2": 1}
    assert out.plan.target == {"westus": 100} and out.validation.read_back[0]["ok"]
    assert out.api_calls == engine.api_calls() > 0
    writes = len(em.writes())

    again = engine.run("shop", "failover", apply=True)
    assert (again.status, again.changed) == ("noop", False) and len(em.writes()) == writes

    back = engine.run("shop", "failback", apply=True)
    assert back.status == "succeeded"
    assert {n: p["priority"] for n, p in props(em).items()} == {"use1": 1, "usw2": 2}


def test_engine_rolls_back_a_forced_failover_onto_a_down_standby(em: Any, local_http_server: Any,
                                                                 tmp_path: Path) -> None:
    seed(em, use1={"priority": 1}, usw2={"priority": 2})
    primary, standby = local_http_server(), local_http_server(status=503, body="down")
    engine = FailoverEngine(load_strategy(strategy(tmp_path, em, primary.url, standby.url), state_dir=tmp_path / "state"))
    before = props(em)

    refused = engine.run("shop", "failover", apply=True)
    assert refused.status == "refused" and em.writes() == []

    out = engine.run("shop", "failover", apply=True, force=True)

    assert out.status == "rolled_back" and out.rollback["ok"]
    assert props(em) == before
    assert any("westus" in r for r in out.validation.reasons)
