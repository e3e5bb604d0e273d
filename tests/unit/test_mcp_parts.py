"""The MCP server's parts that need no server: tokens, the strategy store, the environment split,
blast radius, plan fingerprints and the modules' secrets-file loader."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from failover_engine.mcp.models import Condition
from failover_engine.mcp.playbooks import ALLOWED, PlaybookError, PlaybookRunner, split_environment
from failover_engine.mcp.server import blast_radius
from failover_engine.mcp.store import StoreRejected, StrategyStore
from failover_engine.mcp.tokens import TokenBook, TokenRefused
from failover_engine.plan import Change, Plan, PlanStep, ResourceKey

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections"))  # module_utils importable as in a playbook run


def strategy_doc(service: str = "shop", **overrides) -> dict:
    doc = {
        "connections": {"aws": {"type": "route53", "endpoint_url": "http://127.0.0.1:1"}},
        "services": {service: {
            "endpoints": [
                {"name": "use1", "role": "primary", "region": "us-east-1",
                 "probe": {"type": "http", "url": "http://127.0.0.1:2/health"}},
                {"name": "usw2", "role": "standby", "region": "us-west-2",
                 "probe": {"type": "http", "url": "http://127.0.0.1:3/health"}},
            ],
            "routing": [{"adapter": "route53", "connection": "aws", "hosted_zone": "example.com.",
                         "record": f"{service}.example.com.", "type": "A", "mode": "simple",
                         "endpoints": {"use1": {"values": ["192.0.2.10"], "set_identifier": "use1"},
                                       "usw2": {"values": ["198.51.100.10"], "set_identifier": "usw2"}}}],
        }},
    }
    doc["services"][service].update(overrides)
    return doc


# --------------------------------------------------------------------------- tokens
COND = {"service": "shop", "action": "failover", "reason": "drill"}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_token_round_trip_is_single_use():
    book = TokenBook(60)
    token, expires = book.issue(COND, {"shop": "abc"})
    grant = book.redeem(token, COND)
    assert grant.plans == {"shop": "abc"} and grant.condition == COND
    with pytest.raises(TokenRefused, match="already used"):
        book.redeem(token, COND)


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),          # signature altered
    lambda t: ("e" if t[0] != "e" else "f") + t[1:],                  # payload altered
    lambda t: t.split(".")[0],                                        # no signature
    lambda t: "",                                                     # empty
    lambda t: "not-a-token",
])
def test_altered_tokens_are_refused_as_forged(mutate):
    book = TokenBook(60)
    token, _ = book.issue(COND, {"shop": "abc"})
    with pytest.raises(TokenRefused, match="not one this server issued"):
        book.redeem(mutate(token), COND)


def test_token_of_another_server_process_is_refused():
    token, _ = TokenBook(60).issue(COND, {"shop": "abc"})
    with pytest.raises(TokenRefused, match="not one this server issued"):
        TokenBook(60).redeem(token, COND)


def test_token_for_another_condition_is_refused():
    book = TokenBook(60)
    token, _ = book.issue(COND, {"shop": "abc"})
    with pytest.raises(TokenRefused, match="another condition"):
        book.redeem(token, {**COND, "target": "usw2"})
    book.redeem(token, COND)  # a refused attempt does not consume it


def test_expired_token_is_refused():
    clock = Clock()
    book = TokenBook(30, clock=clock)
    token, expires = book.issue(COND, {"shop": "abc"})
    assert expires == 1030.0
    clock.now = 1031.0
    with pytest.raises(TokenRefused, match="expired 1s ago"):
        book.redeem(token, COND)


# --------------------------------------------------------------------------- conditions
@pytest.mark.parametrize("data, error", [
    ({"reason": "why"}, "exactly one of service or region"),
    ({"service": "a", "region": "r", "reason": "why"}, "exactly one of service or region"),
    ({"region": "r", "target": "x", "reason": "why"}, "region condition"),
    ({"service": "a", "action": "failback", "target": "x", "reason": "why"}, "no target"),
    ({"service": "a", "reason": ""}, "at least 3"),
    ({"service": "a", "reason": "why", "playbook": "/etc/evil.yml"}, "Extra inputs"),
    ({"service": "../x", "reason": "why"}, "pattern"),
])
def test_bad_conditions_are_rejected(data, error):
    with pytest.raises(ValueError, match=error):
        Condition.model_validate(data)


# --------------------------------------------------------------------------- store
def open_store(tmp_path, **kw):
    """A store whose clients may send connections (as in a lab)."""
    return StrategyStore(tmp_path, allow_client_connections=True, **kw)


def test_define_stores_and_merges_by_name(tmp_path):
    store = open_store(tmp_path)
    store.define(strategy_doc("shop"))
    stored, defined = store.define(yaml.safe_dump(strategy_doc("api")))
    assert defined == ["api"] and sorted(stored.services) == ["api", "shop"]
    assert store.services() == ["api", "shop"]
    assert store.document()["state_dir"] == "state"
    assert store.loaded().state_dir == (tmp_path / "state").resolve()
    # a same-named service is replaced
    store.define(strategy_doc("api", description="v2"))
    assert store.document()["services"]["api"]["description"] == "v2"


def test_define_rejects_every_problem_and_stores_nothing(tmp_path):
    store = open_store(tmp_path)
    store.define(strategy_doc("shop"))
    before = store.path.read_bytes()
    bad = strategy_doc("api")
    bad["services"]["api"]["endpoints"][1]["role"] = "boss"
    bad["services"]["api"]["routing"][0]["ttl"] = -5
    bad["services"]["api"]["colour"] = "blue"
    with pytest.raises(StoreRejected) as exc:
        store.define(bad)
    paths = {p.path for p in exc.value.problems}
    assert {"services.api.endpoints[1].role", "services.api.routing[0].ttl", "services.api.colour"} <= paths
    assert all(p.file == "<mcp input>" and "(line" not in p.path for p in exc.value.problems)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("doc, path, message", [
    ({**strategy_doc(), "state_dir": "/etc"}, "state_dir", "set by the server"),
    ({"connections": {}}, "services", "at least one service"),
    ("services: [unclosed", "line 1", "not valid YAML"),
    (["a", "list"], "", "a strategy is a mapping"),
])
def test_define_rejects_bad_documents(tmp_path, doc, path, message):
    store = open_store(tmp_path)
    with pytest.raises(StoreRejected) as exc:
        store.define(doc)
    assert any(p.path.startswith(path) and message in p.message for p in exc.value.problems), exc.value.problems
    assert not store.path.exists()


def test_code_probes_are_refused_unless_allowed(tmp_path):
    doc = strategy_doc()
    doc["services"]["shop"]["endpoints"][1]["probe"] = {"type": "command", "argv": ["/bin/true"]}
    with pytest.raises(StoreRejected) as exc:
        open_store(tmp_path / "a").define(doc)
    assert [p.path for p in exc.value.problems] == ["services.shop.endpoints[1].probe"]
    assert "runs code on the server host" in exc.value.problems[0].message
    open_store(tmp_path / "b", allow_code_probes=True).define(doc)


def test_yaml_text_masks_secret_looking_values(tmp_path):
    doc = strategy_doc()
    doc["connections"]["aws"]["endpoint_url"] = "http://user:hunter2@127.0.0.1:1"
    store = open_store(tmp_path)
    store.define(doc)
    assert "hunter2" in store.path.read_text()  # the store needs it
    assert "hunter2" not in store.yaml_text() and "***@127.0.0.1" in store.yaml_text()
    with pytest.raises(KeyError):
        store.yaml_text("nope")


STANDBY = {"name": "usw2b", "region": "us-west-2", "probe": {"type": "http", "url": "http://127.0.0.1:4/health"},
           "routing": [{"values": ["203.0.113.7"], "set_identifier": "usw2b"}]}


def test_configure_adds_and_replaces_standbys(tmp_path):
    store = open_store(tmp_path)
    store.define(strategy_doc())
    s = store.configure("shop", [STANDBY], replace=False, active=["use1"])
    assert [e.name for e in s.services["shop"].standbys] == ["usw2", "usw2b"]
    s = store.configure("shop", [STANDBY], replace=True, active=["use1"])
    assert [e.name for e in s.services["shop"].standbys] == ["usw2b"]
    assert list(store.document()["services"]["shop"]["routing"][0]["endpoints"]) == ["use1", "usw2b"]


@pytest.mark.parametrize("standbys, active, message", [
    ([STANDBY], ["usw2"], "would remove usw2, which takes traffic now"),
    ([STANDBY], None, "could not be read"),
    ([{**STANDBY, "routing": []}], ["use1"], "one binding per routing entry"),
])
def test_configure_refusals_store_nothing(tmp_path, standbys, active, message):
    store = open_store(tmp_path)
    store.define(strategy_doc())
    before = store.path.read_bytes()
    with pytest.raises(StoreRejected) as exc:
        store.configure("shop", standbys, replace=True, active=active)
    assert any(message in p.message for p in exc.value.problems), exc.value.problems
    assert store.path.read_bytes() == before


def test_configure_unknown_service(tmp_path):
    store = open_store(tmp_path)
    store.define(strategy_doc())
    with pytest.raises(StoreRejected, match="no service named 'nope'"):
        store.configure("nope", [STANDBY], replace=False, active=None)


# --------------------------------------------------------------------------- environment split
def test_split_environment_moves_secrets_and_drops_steering():
    plain, secret = split_environment({
        "PATH": "/bin", "HOME": "/root", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "AZURE_ACCESS_TOKEN": "a", "MY_API_KEY": "k",
        "DB_PASSWORD": "p", "ANSIBLE_CONFIG": "/tmp/evil.cfg", "FAILOVER_STRATEGY": "/tmp/x.yaml",
        "GOOGLE_APPLICATION_CREDENTIALS": "/k.json"})
    assert plain == {"PATH": "/bin", "HOME": "/root", "AWS_REGION": "us-east-1"}
    assert set(secret) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_ACCESS_TOKEN",
                           "MY_API_KEY", "DB_PASSWORD", "GOOGLE_APPLICATION_CREDENTIALS"}


def test_runner_allows_only_the_collection_playbooks(tmp_path):
    runner = PlaybookRunner(tmp_path, root=ROOT)
    assert set(ALLOWED) == {"failover", "failback", "region"}
    for bad in ("drill", "../../etc/passwd", "failover.yml"):
        with pytest.raises(PlaybookError, match="not allowed"):
            runner.run(bad, {})
    assert not (tmp_path / "runs").exists()
    with pytest.raises(PlaybookError, match="missing"):
        PlaybookRunner(tmp_path, root=tmp_path)


def test_modules_load_secrets_file_without_overriding(tmp_path):
    from ansible_collections.resilience.failover.plugins.module_utils.failover_common import load_secrets_file

    f = tmp_path / "s.json"
    f.write_text(json.dumps({"AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "eu-west-1"}))
    env = {"FAILOVER_SECRETS_FILE": str(f), "AWS_REGION": "us-east-1"}
    assert load_secrets_file(env) == ["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_SECRET_ACCESS_KEY"] == "x" and env["AWS_REGION"] == "us-east-1"
    assert load_secrets_file({}) == []


# --------------------------------------------------------------------------- plans
K1 = ResourceKey("route53", "Z1", "shop.example.com.", "A", "use1")
K2 = ResourceKey("route53", "Z1", "shop.example.com.", "A", "usw2")


def _plan(after_weight: int = 0, reason: str = "r", service: str = "shop") -> Plan:
    step = PlanStep(0, "route53", "aws", "flip", (Change(K1, {"weight": 100}, {"weight": after_weight}),
                                                 Change(K2, {"weight": 0}, {"weight": 100})))
    return Plan(service, "failover", {"use1": 100}, {"usw2": 100}, reason, (step,))


def test_fingerprint_ignores_reason_but_not_changes():
    assert _plan(reason="a").fingerprint() == _plan(reason="b").fingerprint()
    assert _plan(0).fingerprint() != _plan(10).fingerprint()
    assert _plan().to_dict()["fingerprint"] == _plan().fingerprint()


def test_blast_radius_lists_services_records_providers_and_endpoints():
    noop = Plan("api", "failover", {"a": 100}, {"a": 100}, "ok", ())
    br = blast_radius([_plan(), noop])
    assert br.services == ["shop"]
    assert br.records == [str(K1), str(K2)]
    assert br.providers == ["route53 (aws)"]
    assert br.endpoints_in == ["shop/usw2"] and br.endpoints_out == ["shop/use1"]


def test_stored_strategy_file_is_private(tmp_path):
    store = open_store(tmp_path)
    store.define(yaml.safe_dump(strategy_doc()))
    assert (store.path.stat().st_mode & 0o777) == 0o600


# --------------------------------------------------------------------------- connections are the operator's
def test_client_connections_are_refused_and_the_operators_are_used(tmp_path):
    operator = {"aws": {"type": "route53", "endpoint_url": "http://127.0.0.1:9"}}
    store = StrategyStore(tmp_path, connections=operator)
    evil = strategy_doc()
    evil["connections"]["aws"]["endpoint_url"] = "https://attacker.example"
    evil["connections"]["tm"] = {"type": "trafficmanager", "subscription_id": "s", "credentials": "token_env",
                                 "token_env_var": "AWS_SECRET_ACCESS_KEY"}
    with pytest.raises(StoreRejected) as exc:
        store.define(evil)
    assert [p.path for p in exc.value.problems] == ["connections.aws", "connections.tm"]
    assert "set by the server operator" in exc.value.problems[0].message and "known: aws" in exc.value.problems[0].message
    assert not store.path.exists()
    doc = strategy_doc()
    del doc["connections"]
    store.define(doc)  # services reference the operator's connection by name
    assert store.document()["connections"] == operator


def test_code_checks_in_validation_are_refused(tmp_path):
    doc = strategy_doc()
    doc["services"]["shop"]["validation"] = {"checks": [{"type": "python", "entry_point": "os:getcwd"}]}
    with pytest.raises(StoreRejected) as exc:
        open_store(tmp_path).define(doc)
    assert [p.path for p in exc.value.problems] == ["services.shop.validation.checks[0]"]


def test_from_terraform_and_promotion_are_refused_from_clients(tmp_path):
    doc = strategy_doc()
    doc["services"]["shop"]["from_terraform"] = {"dir": "/etc"}
    doc["services"]["shop"]["promotion"] = {"dir": "/tmp/evil", "vars": {"x": 1}}
    with pytest.raises(StoreRejected) as exc:
        open_store(tmp_path).define(doc)
    assert any(p.path == "services.shop.from_terraform" and "paths are not accepted" in p.message
               for p in exc.value.problems)
    assert any(p.path == "services.shop.promotion" and "runs terraform apply" in p.message
               for p in exc.value.problems)
    assert not (tmp_path / "strategy.yaml").exists()


def test_a_busy_trigger_lock_does_not_use_up_the_token(tmp_path):
    from failover_engine.mcp.server import FailoverMcp

    tools = FailoverMcp(tmp_path, root=ROOT, allow_client_connections=True)
    tools.store.define(strategy_doc())
    cond = Condition(service="shop", reason="drill")
    token, _ = tools.tokens.issue(cond.model_dump(mode="json"), {"shop": "f" * 32})
    with tools.trigger_lock.hold("shop", "another trigger"):
        busy = tools.apply(cond, token)
    assert busy.stage == "refused" and "another trigger is running" in busy.refusals[0]
    tools.tokens.peek(token, cond.model_dump(mode="json"))  # still valid, not consumed
    tools.tokens.redeem(token, cond.model_dump(mode="json"))


def test_operator_connections_file_is_validated_with_file_and_path(tmp_path):
    from failover_engine.errors import StrategyError
    from failover_engine.mcp.server import load_connections

    good = tmp_path / "connections.yaml"
    good.write_text("connections:\n  aws: {type: route53, endpoint_url: 'http://127.0.0.1:9'}\n")
    assert load_connections(good) == {"aws": {"type": "route53", "endpoint_url": "http://127.0.0.1:9"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("aws: {type: route53, colour: blue}\n")
    with pytest.raises(StrategyError) as exc:
        load_connections(bad)
    assert str(bad) in str(exc.value) and "colour" in str(exc.value)


def test_old_run_directories_are_pruned(tmp_path):
    from failover_engine.mcp.server import FailoverMcp

    tools = FailoverMcp(tmp_path, root=ROOT, keep_runs=2)
    for name in ("20260101T000001-a", "20260101T000002-b", "20260101T000003-c"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    tools._prune_runs()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["20260101T000002-b", "20260101T000003-c"]
