"""The MCP server's parts that need no server: tokens, the strategy store, the operator's policy,
the environment allowlist, the request file, bounded work lanes, blast radius, plan fingerprints
and the modules' secrets-file and request-file loaders."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from failover_engine.mcp.models import Condition
from failover_engine.mcp.playbooks import ALLOWED, PlaybookError, PlaybookRunner, credential_needs, split_environment
from failover_engine.mcp.policy import DestinationPolicy, OperatorPolicy
from failover_engine.mcp.server import blast_radius
from failover_engine.mcp.store import StoreRejected, StrategyStore
from failover_engine.mcp.tokens import TokenBook, TokenRefused
from failover_engine.core.plan import Change, Plan, PlanStep, ResourceKey

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
    token, _unused = book.issue(COND, {"shop": "abc"})
    with pytest.raises(TokenRefused, match="not one this server issued"):
        book.redeem(mutate(token), COND)


def test_token_of_another_server_process_is_refused():
    token, _unused = TokenBook(60).issue(COND, {"shop": "abc"})
    with pytest.raises(TokenRefused, match="not one this server issued"):
        TokenBook(60).redeem(token, COND)


def test_token_for_another_condition_is_refused():
    book = TokenBook(60)
    token, _unused = book.issue(COND, {"shop": "abc"})
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
def lab_policy(**kw) -> OperatorPolicy:
    """The operator's policy of these tests: clients may touch example.com. and probe loopback."""
    return OperatorPolicy(zones=["example.com."], destinations=DestinationPolicy(["127.0.0.1"]), **kw)


def open_store(tmp_path, **kw):
    """A store whose clients may send connections (as in a lab)."""
    kw.setdefault("policy", lab_policy(allow_code_probes=kw.pop("allow_code_probes", False)))
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


# --------------------------------------------------------------------------- environment allowlist
ENVIRON = {
    "PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "TMPDIR": "/tmp", "NO_PROXY": "127.0.0.1",
    "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
    "AZURE_ACCESS_TOKEN": "a", "AZURE_CLIENT_SECRET": "c", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
    "CLOUDSDK_CONFIG": "/g", "HTTPS_PROXY": "http://user:pw@proxy:3128", "MY_API_KEY": "k", "DB_PASS": "p",
    "DATABASE_URL": "postgres://u:p@db/x", "GITHUB_PAT": "ghp", "SENTRY_DSN": "https://k@sentry/1",
    "MY_SETTING": "tm-token", "ANSIBLE_CONFIG": "/tmp/evil.cfg", "FAILOVER_STRATEGY": "/tmp/x.yaml",
    "PYTHONSTARTUP": "/tmp/evil.py", "LD_PRELOAD": "/tmp/evil.so",
}


def test_the_run_environment_is_an_allowlist():
    plain, secret = split_environment(ENVIRON)  # no connections: Ansible's needs, and proxies by reference
    assert plain == {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "TMPDIR": "/tmp",
                     "NO_PROXY": "127.0.0.1"}
    assert secret == {"HTTPS_PROXY": "http://user:pw@proxy:3128"}


@pytest.mark.parametrize("families, tokens, expected", [
    (["aws"], [], {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}),
    (["gcp"], [], {"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG"}),
    (["azure"], ["MY_SETTING"], {"AZURE_ACCESS_TOKEN", "AZURE_CLIENT_SECRET", "MY_SETTING"}),
])
def test_cloud_variables_go_by_reference_only_for_the_declared_families(families, tokens, expected):
    plain, secret = split_environment(ENVIRON, families=families, token_vars=tokens)
    assert set(secret) == expected | {"HTTPS_PROXY"}
    assert not set(plain) & set(secret)
    for leak in ("MY_API_KEY", "DB_PASS", "DATABASE_URL", "GITHUB_PAT", "SENTRY_DSN", "ANSIBLE_CONFIG",
                 "FAILOVER_STRATEGY", "PYTHONSTARTUP", "LD_PRELOAD"):
        assert leak not in plain and leak not in secret


def test_credential_needs_come_from_connections_and_routing(tmp_path):
    store = StrategyStore(tmp_path, allow_client_connections=True, policy=lab_policy())
    doc = strategy_doc()
    doc["connections"]["tm"] = {"type": "trafficmanager", "subscription_id": "s", "credentials": "token_env",
                                "token_env_var": "MY_SETTING"}
    store.define(doc)
    assert credential_needs(store.loaded().strategy) == (["aws", "azure"], ["MY_SETTING"])


def test_runner_allows_only_the_collection_playbooks(tmp_path):
    runner = PlaybookRunner(tmp_path, root=ROOT)
    assert set(ALLOWED) == {"failover", "failback", "region"}
    for bad in ("drill", "../../etc/passwd", "failover.yml"):
        with pytest.raises(PlaybookError, match="not allowed"):
            runner.run(bad, {"service": "shop"})
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
    store = StrategyStore(tmp_path, connections=operator, policy=lab_policy())
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

    tools = FailoverMcp(tmp_path, root=ROOT, allow_client_connections=True, policy=lab_policy())
    tools.store.define(strategy_doc())
    cond = Condition(service="shop", reason="drill")
    token, _unused = tools.tokens.issue(cond.model_dump(mode="json"), {"shop": "f" * 32})
    with tools.trigger_lock.hold("shop", "another trigger"):
        busy = tools.apply(cond, token)
    assert busy.stage == "refused" and "another trigger is running" in busy.refusals[0]
    tools.tokens.peek(token, cond.model_dump(mode="json"))  # still valid, not consumed
    tools.tokens.redeem(token, cond.model_dump(mode="json"))


def test_operator_connections_file_is_validated_with_file_and_path(tmp_path):
    from failover_engine.core.errors import StrategyError
    from failover_engine.mcp.settings import load_connections

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


# --------------------------------------------------------------------------- the operator's policy
def test_zones_and_records_clients_may_touch(tmp_path):
    doc = strategy_doc()
    with pytest.raises(StoreRejected) as exc:  # nothing allowed by default
        StrategyStore(tmp_path / "a", allow_client_connections=True,
                      policy=OperatorPolicy(destinations=DestinationPolicy(["127.0.0.1"]))).define(doc)
    (problem,) = exc.value.problems
    assert problem.path == "services.shop.routing[0]" and "--allow-zone" in problem.message
    # by name, by adapter:name; a record outside the zone is refused without record globs
    for zones in (["example.com."], ["EXAMPLE.com"], ["route53:example.com."]):
        StrategyStore(tmp_path / zones[0].replace(":", "_"), allow_client_connections=True,
                      policy=OperatorPolicy(zones=zones, destinations=DestinationPolicy(["127.0.0.1"]))).define(doc)
    outside = strategy_doc()
    outside["services"]["shop"]["routing"][0]["record"] = "shop.example.org."
    with pytest.raises(StoreRejected, match="not inside"):
        open_store(tmp_path / "b").define(outside)
    globbed = StrategyStore(tmp_path / "c", allow_client_connections=True,
                            policy=lab_policy(records=["api.example.com."]))
    with pytest.raises(StoreRejected, match="not a record this server lets clients touch"):
        globbed.define(doc)
    assert not any((tmp_path / d / "strategy.yaml").exists() for d in ("a", "b", "c"))


@pytest.mark.parametrize("path, value", [
    (("endpoints", 0, "region"), "{{ lookup('pipe', 'id') }}"),
    (("endpoints", 0, "region"), "US East 1"),
    (("endpoints", 1, "zone"), "$(id)"),
    (("routing", 0, "record"), "{% raw %}x.example.com."),
    (("routing", 0, "hosted_zone"), "example.com.${IFS}"),
    (("routing", 0, "endpoints", "use1", "set_identifier"), "{#x#}"),
    (("routing", 0, "connection"), "aws{{x}}"),
])
def test_identifier_fields_have_strict_patterns(tmp_path, path, value):
    doc = strategy_doc()
    node = doc["services"]["shop"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(StoreRejected) as exc:
        open_store(tmp_path).define(doc)
    assert exc.value.problems, "refused with a reason"
    assert not (tmp_path / "strategy.yaml").exists()


def fake_resolver(table):
    def resolve(host):
        if host not in table:
            raise OSError("NXDOMAIN")
        return table[host]
    return resolve


@pytest.mark.parametrize("allow, host, ok", [
    ([], "203.0.113.7", False),                                  # nothing allowed by default
    (["203.0.113.0/24"], "203.0.113.7", True),
    (["0.0.0.0/0"], "127.0.0.1", False),                         # a wide network never opens loopback ...
    (["0.0.0.0/0"], "169.254.169.254", False),                   # ... nor cloud metadata
    (["::/0"], "fe80::1", False),
    (["::/0"], "::ffff:169.254.169.254", False),                 # IPv4-mapped: checked as IPv4
    (["0.0.0.0/0"], "168.63.129.16", False),
    (["127.0.0.1"], "127.0.0.1", True),                          # an explicit entry does
    (["169.254.169.254/32"], "169.254.169.254", True),
    (["app.example.com"], "app.example.com", True),
    (["*.svc.example.com"], "a.svc.example.com", True),
    (["*.svc.example.com"], "evil.example.com", False),
    (["app.example.com"], "rebind.example.com", False),          # resolves to metadata: refused
    (["0.0.0.0/0"], "rebind.example.com", False),
    (["203.0.113.0/24"], "public.example.com", True),            # a name resolving into an allowed network
    (["203.0.113.0/24"], "nowhere.example.com", False),          # unresolvable and not allowed by name
    (["metadata.example.com"], "metadata.example.com", False),   # a name entry never opens metadata addresses
])
def test_probe_destinations(allow, host, ok):
    table = {"app.example.com": ["203.0.113.9"], "a.svc.example.com": ["10.1.2.3"],
             "evil.example.com": ["203.0.113.66"], "rebind.example.com": ["169.254.169.254"],
             "public.example.com": ["203.0.113.8"], "metadata.example.com": ["169.254.169.254"]}
    problems = DestinationPolicy(allow, resolver=fake_resolver(table)).problems(host)
    assert (problems == []) is ok, problems


def test_every_probe_kind_is_checked(tmp_path):
    doc = strategy_doc()
    svc = doc["services"]["shop"]
    svc["endpoints"][0]["probe"] = {"type": "tcp", "host": "169.254.169.254", "port": 80}
    svc["endpoints"][1]["gate"] = {"type": "dns", "name": "x.example.com", "nameserver": "10.0.0.2"}
    svc["validation"] = {"checks": [{"type": "http", "url": "http://metadata.google.internal/computeMetadata/v1/"}]}
    svc["rules"] = [{"rule": "gate", "name": "freeze", "probe": {"url": "http://user:pw@127.0.0.1:9/"}}]
    with pytest.raises(StoreRejected) as exc:
        open_store(tmp_path).define(doc)
    paths = sorted(p.path for p in exc.value.problems)
    assert paths == ["services.shop.endpoints[0].probe", "services.shop.endpoints[1].gate",
                     "services.shop.rules[0].probe.url", "services.shop.validation.checks[0]"], exc.value.problems


def test_limits_refuse_with_every_reason_and_store_nothing(tmp_path):
    policy = lab_policy()
    policy.limits.max_endpoints = 2
    store = StrategyStore(tmp_path, allow_client_connections=True, policy=policy)
    doc = strategy_doc()
    svc = doc["services"]["shop"]
    svc["endpoints"].append({"name": "euw1", "role": "standby", "region": "eu-west-1"})
    svc["routing"][0]["endpoints"]["euw1"] = {"values": ["203.0.113.1"], "set_identifier": "euw1"}
    svc["detection"] = {"interval": "2h", "timeout": "30s"}
    with pytest.raises(StoreRejected) as exc:
        store.define(doc)
    paths = {p.path for p in exc.value.problems}
    assert {"services.shop.endpoints", "services.shop.detection.timeout", "services.shop.detection.interval"} <= paths
    assert not store.path.exists()


def _nested(depth: int) -> list:
    node: list = ["x"]
    for _i in range(depth):
        node = [node]
    return node


@pytest.mark.parametrize("make", [
    lambda big: big,                                              # YAML text of 4 MiB
    lambda big: {"services": {"shop": {"description": big}}},     # one long string in an object
    lambda big: {"services": {big[:200]: {}}},                    # a long key
    lambda big: {"services": _nested(40)},                        # nested deeper than the limit
])
def test_oversized_input_is_refused_fast_and_never_stored(tmp_path, make):
    import time

    store = open_store(tmp_path)
    store.define(strategy_doc())
    before = store.path.read_bytes()
    big = "a" * (4 << 20)
    started = time.perf_counter()
    with pytest.raises(StoreRejected) as exc:
        store.define(make(big))
    assert time.perf_counter() - started < 0.1
    assert len(str(exc.value)) < 2000  # the input is not echoed back
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("text, message", [
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("services:\n  shop: {}\n  shop: {}\n", "duplicate key 'shop'"),
    ("a:\n  <<: {b: 1}\n", "merge keys"),
    ("x: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 32"),
    ("services: {a: b}\ncontrol: \"\\x00\"\n", "control characters"),
])
def test_yaml_from_clients_is_read_strictly(tmp_path, text, message):
    with pytest.raises(StoreRejected) as exc:
        open_store(tmp_path).define(text)
    assert message in str(exc.value), exc.value.problems


def test_probe_header_values_are_masked_wherever_the_strategy_is_shown(tmp_path):
    from failover_engine.mcp.server import FailoverMcp

    doc = strategy_doc()
    doc["services"]["shop"]["endpoints"][0]["probe"]["headers"] = {"Cookie": "session=cookieValue1", "X-Plain": "v4lue2"}
    tools = FailoverMcp(tmp_path, root=ROOT, allow_client_connections=True, policy=lab_policy())
    result = tools.define(doc)
    shown = json.dumps(result.model_dump()) + tools.store.yaml_text() + tools.store.yaml_text("shop")
    assert "cookieValue1" not in shown and "v4lue2" not in shown and "Cookie" in shown
    assert "cookieValue1" in tools.store.path.read_text()  # the probes need them


# --------------------------------------------------------------------------- the modules' request file
def test_request_file_validation():
    from ansible_collections.resilience.failover.plugins.module_utils.failover_common import request_problems

    good = {"operation": "failover", "service": "shop", "action": "failover", "target": None, "force": False,
            "expected_plan": "ab", "strategy_file": "/x/strategy.yaml"}
    assert request_problems(good, "service_failover") == []
    assert request_problems({"operation": "region", "region": "us-east-1", "expected_plans": {"shop": "ab"}},
                            "region_failover") == []
    assert request_problems({**good, "operation": "region"}, "service_failover")
    assert request_problems({**good, "force": "yes"}, "service_failover") == ["force must be a bool"]
    assert request_problems({**good, "service": True}, "service_failover") == ["service must be a str"]
    assert request_problems({**good, "playbook": "/etc/x"}, "service_failover") == ["unknown field 'playbook'"]
    assert request_problems({**good, "action": "switch"}, "service_failover")
    assert request_problems({"operation": "region", "expected_plans": {"shop": 1}}, "region_failover")
    assert request_problems([], "region_failover")


# --------------------------------------------------------------------------- bounded work
def test_lane_bounds_queue_shares_workers_and_drops_what_nobody_waits_for():
    import asyncio
    import threading

    from failover_engine.mcp.work import Busy, DeadlineExceeded, Lane

    release = threading.Event()
    ran: list[str] = []

    def hang(tag: str) -> str:
        ran.append(tag)
        release.wait(10)
        return tag

    async def scenario() -> None:
        lane = Lane("test", workers=2, queue=2, per_client=1, deadline=5)
        a1 = asyncio.create_task(lane.run(hang, "a1", client="a"))
        a2 = asyncio.create_task(lane.run(hang, "a2", client="a"))  # waits: client a has its share
        await asyncio.sleep(0.2)
        b1 = await asyncio.wait_for(lane.run(lambda: "b1", client="b"), 1)  # b is not starved by a
        assert b1 == "b1" and ran == ["a1"]
        a3 = asyncio.create_task(lane.run(hang, "a3", client="a", deadline=0.3))  # the queue holds 2: a2, a3
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await lane.run(hang, "a4", client="a")
        with pytest.raises(DeadlineExceeded):  # a waiting call past its deadline is dropped ...
            await a3
        a2.cancel()  # ... and so is the call of a caller that was cancelled
        with pytest.raises(asyncio.CancelledError):
            await a2
        release.set()
        assert await a1 == "a1"
        await asyncio.sleep(0.2)
        assert ran == ["a1"], ran  # neither dropped call ever ran
        assert lane.stats() == {"running": 0, "waiting": 0, "threads": 2}

    asyncio.run(scenario())


# --------------------------------------------------------------------------- settings and exposure
def _args(*argv):
    import argparse

    from failover_engine.mcp.settings import add_arguments

    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return ap.parse_args(list(argv))


def test_off_loopback_needs_a_token_and_the_token_file_is_private(tmp_path):
    from failover_engine.mcp.settings import SettingsError, build_settings

    with pytest.raises(SettingsError, match="without authentication"):
        build_settings(_args("--transport", "http", "--host", "0.0.0.0"), tmp_path)
    token = tmp_path / "token"
    token.write_text("s3cret-token-0123456789\n")
    token.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by others"):
        build_settings(_args("--transport", "http", "--host", "0.0.0.0", "--auth-token-file", str(token)), tmp_path)
    token.chmod(0o600)
    s = build_settings(_args("--transport", "http", "--host", "0.0.0.0", "--auth-token-file", str(token)), tmp_path)
    assert s.auth_token == "s3cret-token-0123456789"
    assert build_settings(_args("--transport", "http", "--host", "127.0.0.2"), tmp_path).auth_token is None


def test_allowed_hosts_and_origins_per_bind_address(tmp_path):
    from failover_engine.mcp.exposure import allowed_hosts, allowed_origins, exposure_lines
    from failover_engine.mcp.settings import build_settings

    s = build_settings(_args("--transport", "http", "--host", "127.0.0.2", "--port", "9000"), tmp_path)
    assert allowed_hosts(s) == ["127.0.0.1:9000", "localhost:9000", "[::1]:9000", "127.0.0.2:9000"]
    assert "http://127.0.0.2:9000" in allowed_origins(s) and not any("*" in o for o in allowed_origins(s))
    s.allowed_hosts, s.allowed_origins = ["failover.internal"], ["https://ops.example/"]
    assert allowed_hosts(s)[-2:] == ["failover.internal", "failover.internal:9000"]
    assert "https://ops.example" in allowed_origins(s)
    text = "\n".join(exposure_lines(s))
    assert "http://127.0.0.2:9000/mcp" in text and "authentication OFF" in text and "failover.internal:9000" in text


def test_config_file_settings_and_unknown_keys(tmp_path):
    from failover_engine.mcp.settings import SettingsError, build_settings

    cfg = tmp_path / "failover-mcp.yaml"
    cfg.write_text(yaml.safe_dump({
        "connections": {"aws": {"type": "route53", "endpoint_url": "http://127.0.0.1:9"}},
        "allow": {"zones": ["example.com."], "probes": ["10.0.0.0/8"]},
        "limits": {"max_services": 5, "probe_timeout": "0.5-5"}, "work": {"workers": 2}}))
    s = build_settings(_args("--config", str(cfg), "--allow-zone", "other.example.", "--max-string", "200"), tmp_path)
    assert s.policy.zones == ["example.com.", "other.example."]
    assert s.policy.limits.max_services == 5 and s.policy.limits.max_string == 200
    assert s.policy.limits.probe_timeout == (0.5, 5.0) and s.work.workers == 2
    assert s.connections == {"aws": {"type": "route53", "endpoint_url": "http://127.0.0.1:9"}}
    cfg.write_text(yaml.safe_dump({"allow": {"zone": ["typo"]}, "limitz": {}}))
    with pytest.raises(SettingsError) as exc:
        build_settings(_args("--config", str(cfg)), tmp_path)
    assert "allow.zone" in str(exc.value) and "limitz" in str(exc.value)


def test_a_four_mib_string_costs_under_100ms_server_side_in_every_tool(tmp_path):
    """The server side of a call (the SDK's argument validation, the lanes, the tool) measured in
    process, without the transport: every 4 MiB string is refused within 100 ms, nothing stored."""
    import asyncio
    import time

    from failover_engine.mcp.server import FailoverMcp, build_server

    tools = FailoverMcp(tmp_path, root=ROOT, allow_client_connections=True, policy=lab_policy())
    tools.store.define(strategy_doc())
    before = tools.store.path.read_bytes()
    server = build_server(tools)
    big = "a" * (4 << 20)
    standby = {"name": "usw2", "region": "us-west-2", "probe": {"type": "http", "url": "http://127.0.0.1:3/"},
               "routing": [{"values": ["198.51.100.10"], "set_identifier": "usw2"}]}
    cond = {"service": "shop", "reason": "four mib"}
    doc = strategy_doc()
    calls = [("failover.define", {"strategy": big}),
             ("failover.define", {"strategy": {**doc, "services": {"shop": {**doc["services"]["shop"],
                                                                            "description": big}}}}),
             ("failover.configure", {"service": big, "standbys": [standby]}),
             ("failover.trigger", {"condition": cond, "confirm": big}),
             ("failover.trigger", {"condition": {"region": big, "reason": "four mib"}}),
             ("failover.monitor", {"service": big})]
    calls += [("failover.configure", {"service": "shop", "standbys": [{**standby, key: big}]})
              for key in ("name", "region", "zone")]
    calls += [("failover.configure", {"service": "shop", "standbys": [
        {**standby, "probe": {**standby["probe"], "body_contains": big}}]})]
    calls += [("failover.trigger", {"condition": {**cond, key: big}}) for key in ("service", "target", "reason")]

    async def measure() -> list[tuple[str, float]]:
        out = []
        for tool, args in calls:
            started = time.perf_counter()
            try:
                res = await server.call_tool(tool, args)
                assert res.is_error, (tool, list(args))
            except Exception as exc:  # the SDK's refusal of arguments that do not fit the schema
                assert "validation error" in str(exc).lower(), exc
            out.append((tool, time.perf_counter() - started))
        return out

    timings = asyncio.run(measure())
    slow = [(tool, round(took * 1000, 1)) for tool, took in timings if took >= 0.1]
    assert not slow, slow
    assert tools.store.path.read_bytes() == before


def test_a_narrower_policy_applies_to_services_stored_before(tmp_path):
    """Zones and probe destinations are checked again when a stored service is used: after a
    restart with a narrower policy, the dry run, the confirm and monitor refuse it, running nothing."""
    from failover_engine.mcp.server import FailoverMcp

    FailoverMcp(tmp_path, root=ROOT, allow_client_connections=True, policy=lab_policy()).define(strategy_doc())
    narrower = FailoverMcp(tmp_path, root=ROOT, allow_client_connections=True,
                           policy=OperatorPolicy(destinations=DestinationPolicy(["127.0.0.1"])))
    cond = Condition(service="shop", reason="narrower policy")
    dry = narrower.trigger(cond)
    assert dry.is_error and "policy refuses" in dry.structured_content["summary"]
    assert "--allow-zone" in dry.structured_content["summary"]
    token, _unused = narrower.tokens.issue(cond.model_dump(mode="json"), {"shop": "f" * 32})
    confirm = narrower.trigger(cond, token)
    assert confirm.is_error and confirm.structured_content["outcome"] is None
    narrower.tokens.peek(token, cond.model_dump(mode="json"))  # not used up
    for probe in (True, False):
        mon = narrower.monitor("shop", 5, probe)
        assert mon.is_error and "--allow-zone" in mon.structured_content["error"]
    assert not (tmp_path / "runs").exists()
