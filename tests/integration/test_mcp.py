"""The `failover-mcp` server end to end, through the real MCP client (stdio and streamable HTTP).

Each test starts the server as a subprocess (``python -m failover_engine.mcp.server --home DIR``)
against the module's lab: moto plays Route 53, two local HTTP servers play the regions use1
(primary, us-east-1) and usw2 (standby, us-west-2) of the service ``shop``. Changes run through
the collection's playbooks (ansible-runner), so what Route 53 holds afterwards is read back
from moto with boto3, never from the server's own answer.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import pytest
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ZONE = "drill.example."
RECORD = "shop.drill.example."
PRIMARY_IP, STANDBY_IP = "192.0.2.10", "198.51.100.10"
# the lab's steady state (use1 active) and the state after a failover to usw2, as moto holds them:
# the failover-mode adapter flips PRIMARY/SECONDARY and leaves the values alone
STEADY = {"use1-primary": ("PRIMARY", [PRIMARY_IP]), "usw2-standby": ("SECONDARY", [STANDBY_IP])}
FAILED_OVER = {"use1-primary": ("SECONDARY", [PRIMARY_IP]), "usw2-standby": ("PRIMARY", [STANDBY_IP])}
REGION_COND = {"region": "us-east-1", "reason": "us-east-1 is down (integration test)"}
SHOP_COND = {"service": "shop", "reason": "shop failover (integration test)"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers
def shop_records(lab: Lab) -> dict[str, tuple[str | None, list[str]]]:
    """set identifier -> (Failover, values) of shop's records, read from moto."""
    client = lab.route53_client()
    rrsets = client.list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r["SetIdentifier"]: (r.get("Failover"), sorted(v["Value"] for v in r["ResourceRecords"]))
            for r in rrsets if r["Name"] == RECORD and r["Type"] == "A"}


def lab_strategy(lab: Lab) -> dict[str, Any]:
    """The lab's strategy document as a client sends it: no ``state_dir`` and no connections (the
    server refuses both from clients; its operator gives the connections with --connections)."""
    doc = yaml.safe_load(Path(lab.strategy_path).read_text(encoding="utf-8"))
    doc.pop("state_dir", None)
    doc.pop("connections", None)
    return doc


def connections_file(lab: Lab, home: Path) -> Path:
    """The operator's connections file for a server: the lab's connections."""
    doc = yaml.safe_load(Path(lab.strategy_path).read_text(encoding="utf-8"))
    path = home.parent / f"{home.name}-connections.yaml"
    path.write_text(yaml.safe_dump(doc["connections"]), encoding="utf-8")
    return path


# the operator's policy for the lab: clients may touch the lab's zone and probe its local regions
# (loopback is denied unless allowed explicitly)
LAB_POLICY = ("--allow-zone", ZONE, "--allow-probe", "127.0.0.1")


def server_env(lab: Lab, **extra: str) -> dict[str, str]:
    env = lab.child_env()
    env.pop("FAILOVER_STRATEGY", None)
    env.update(extra)
    return env


def events(home: Path, name: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
    path = home / "state" / "events.jsonl"
    if not path.exists():
        return []
    out = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [e for e in out if (name is None or e["event"] == name) and (service is None or e.get("service") == service)]


def runs(home: Path) -> list[Path]:
    """The playbook runs' private data dirs (one per playbook run)."""
    return sorted((home / "runs").glob("*")) if (home / "runs").exists() else []


@contextlib.asynccontextmanager
async def connect(lab: Lab, home: Path, *args: str, env: dict[str, str] | None = None,
                  errlog: Path | None = None) -> AsyncIterator[ClientSession]:
    """A client session with a fresh `failover-mcp --home home` over stdio (stderr to a file)."""
    errlog = errlog or home.parent / f"{home.name}-stderr.log"
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "failover_engine.mcp.server", "--home", str(home),
                                         "--connections", str(connections_file(lab, home)), *LAB_POLICY, *args],
                                   env=env if env is not None else server_env(lab))
    with errlog.open("a", encoding="utf-8") as err:
        try:
            async with stdio_client(params, errlog=err) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield session
        except BaseExceptionGroup as group:  # the client's task groups wrap a failing assertion
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0]
            raise


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [leaf for exc in group.exceptions
            for leaf in (_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])]


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """Call a tool; every answer (result or refusal) carries its structured result."""
    result = await session.call_tool(tool, arguments)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.structured_content is not None, f"{tool}: no structured result: {text}"
    return result


async def define_lab(session: ClientSession, lab: Lab) -> None:
    res = await call(session, "failover.define", strategy=lab_strategy(lab))
    assert not res.is_error, res.content
    assert res.structured_content["stored"] and res.structured_content["services"] == ["shop"]


async def dry_run(session: ClientSession, condition: dict[str, Any]) -> dict[str, Any]:
    res = await call(session, "failover.trigger", condition=condition)
    assert not res.is_error, res.content
    data = res.structured_content
    assert data["stage"] == "planned" and data["token"], data
    return data


def refusal_text(data: dict[str, Any]) -> str:
    return " ".join(data.get("refusals") or []) + " " + data.get("summary", "")


# --------------------------------------------------------------------------- 1. tools over stdio
async def test_list_tools_schemas_and_annotations(lab: Lab, tmp_path: Path) -> None:
    async with connect(lab, tmp_path / "home") as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == {"failover.define", "failover.configure", "failover.trigger", "failover.monitor"}

    define = tools["failover.define"].input_schema
    assert "Strategy" in define["$defs"]
    assert {"$ref": "#/$defs/Strategy"} in define["properties"]["strategy"]["anyOf"]
    assert "services" in define["$defs"]["Strategy"]["properties"]
    # every reference of the embedded strategy schema resolves inside the tool's schema
    refs = {m.split("/")[-1] for m in _refs(define)}
    assert refs <= set(define["$defs"]), refs - set(define["$defs"])

    trigger = tools["failover.trigger"]
    assert trigger.output_schema is not None
    assert {"stage", "token", "blast_radius", "outcome"} <= set(trigger.output_schema["properties"])
    assert set(trigger.input_schema["required"]) == {"condition"}
    assert "confirm" in trigger.input_schema["properties"]

    assert trigger.annotations.destructive_hint is True
    assert tools["failover.monitor"].annotations.read_only_hint is True
    assert tools["failover.define"].annotations.destructive_hint is False
    assert tools["failover.monitor"].output_schema is not None


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


# --------------------------------------------------------------------------- 2. define
async def test_define_reports_every_problem_and_stores_nothing(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    stored = home / "strategy.yaml"
    bad = {"services": {
        "x": {"endpoints": [{"name": "a", "role": "primary"}], "routing": []},
        "y": {"endpoints": [{"name": "a", "role": "primary"}, {"name": "b", "role": "standby"}],
              "routing": [{"adapter": "route53", "hosted_zone": ZONE, "record": "y.drill.example.", "ttl": -5,
                           "mode": "failover", "endpoints": {"a": {"values": ["192.0.2.1"]},
                                                             "b": {"values": ["192.0.2.2"]}}}]}}}
    async with connect(lab, home) as s:
        res = await call(s, "failover.define", strategy=bad)
        assert res.is_error
        data = res.structured_content
        assert data["ok"] is False and data["stored"] is False
        paths = {p["path"] for p in data["problems"]}
        assert {"services.x.endpoints", "services.x.routing", "services.y.routing[0].ttl"} <= paths, paths
        assert not stored.exists()

        # YAML text works; then an invalid define leaves the stored file byte-identical
        doc = lab_strategy(lab)
        res = await call(s, "failover.define", strategy=yaml.safe_dump(doc))
        assert not res.is_error, res.content
        assert res.structured_content["defined"] == ["shop"]
        assert res.structured_content["strategy"]["services"]["shop"]["routing"][0]["record"] == RECORD
        before = stored.read_bytes()
        assert yaml.safe_load(before)["services"]["shop"]["endpoints"][0]["name"] == "use1"

        res = await call(s, "failover.define", strategy=bad)
        assert res.is_error and res.structured_content["stored"] is False
        assert res.structured_content["services"] == ["shop"]  # what the store still holds
        assert stored.read_bytes() == before

        # state_dir is the server's
        res = await call(s, "failover.define", strategy={**doc, "state_dir": "/tmp/elsewhere"})
        assert res.is_error
        assert [p["path"] for p in res.structured_content["problems"]] == ["state_dir"]
        assert stored.read_bytes() == before

        # a command probe runs code on the server host: refused by default
        code = json.loads(json.dumps(doc))
        code["services"]["shop"]["endpoints"][1]["probe"] = {"type": "command", "argv": ["true"]}
        res = await call(s, "failover.define", strategy=code)
        assert res.is_error
        problems = res.structured_content["problems"]
        assert [p["path"] for p in problems] == ["services.shop.endpoints[1].probe"]
        assert "--allow-code-probes" in problems[0]["message"]
        assert stored.read_bytes() == before
        assert "command" not in stored.read_text()

        # YAML text that is not YAML: a problem, not a crash
        res = await call(s, "failover.define", strategy="services: [unclosed")
        assert res.is_error and res.structured_content["problems"]
        assert stored.read_bytes() == before
    assert len(events(home, "mcp_defined")) == 1  # only the valid define was recorded


# --------------------------------------------------------------------------- 3. the main flow
async def test_region_failover_dry_run_then_apply(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert shop_records(lab) == STEADY
    async with connect(lab, home) as s:
        await define_lab(s, lab)

        plan = await dry_run(s, REGION_COND)
        radius = plan["blast_radius"]
        assert radius["services"] == ["shop"]
        assert radius["providers"] == ["route53 (aws-local)"]
        assert len(radius["records"]) == 2
        assert all(RECORD in r for r in radius["records"])
        assert {r.rsplit("[", 1)[1].rstrip("]") for r in radius["records"]} == {"use1-primary", "usw2-standby"}
        assert radius["endpoints_in"] == ["shop/usw2"] and radius["endpoints_out"] == ["shop/use1"]
        assert plan["expires_at"]
        # the dry run changed nothing, and ran nothing
        assert shop_records(lab) == STEADY
        assert runs(home) == []
        assert events(home, "mcp_triggered") == []

        messages: list[str] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            messages.append(message or "")

        res = await s.call_tool("failover.trigger", {"condition": REGION_COND, "confirm": plan["token"]},
                                progress_callback=progress)
        assert not res.is_error, res.content
        data = res.structured_content
        assert data["stage"] == "applied", data["summary"]
        outcome = data["outcome"]
        assert outcome["status"] == "succeeded" and outcome["playbook"] == "region_failover.yml"
        assert outcome["rc"] == 0
        svc = outcome["services"][0]
        assert svc["service"] == "shop" and svc["status"] == "succeeded"
        assert svc["rto_s"] is not None and svc["rto_s"] > 0
        assert {"decision", "apply", "validation"} <= set(svc["phases_s"])
        assert svc["active"] == {"usw2": 100}
        assert len(messages) >= 3, messages
        assert any("playbook" in m for m in messages)
        assert shop_records(lab) == FAILED_OVER
        assert len(runs(home)) == 1

        # the token is single use
        res = await call(s, "failover.trigger", condition=REGION_COND, confirm=plan["token"])
        assert res.is_error and "already used" in refusal_text(res.structured_content)

        mon = await call(s, "failover.monitor", service="shop", probe=False)
        assert not mon.is_error, mon.content
        m = mon.structured_content
        assert m["active"] == {"usw2": 100} and m["failed_over"] is True
        assert m["metrics"]["runs"] >= 1 and m["metrics"]["succeeded"] >= 1
        assert m["metrics"]["last_rto_s"] == pytest.approx(svc["rto_s"])
        recent = [e["event"] for e in m["recent_events"]]
        assert "mcp_triggered" in recent and "succeeded" in recent, recent

        text = (await s.read_resource("failover://strategy")).contents[0].text
        assert yaml.safe_load(text)["services"]["shop"]["routing"][0]["record"] == RECORD
        one = (await s.read_resource("failover://strategy/shop")).contents[0].text
        assert list(yaml.safe_load(one)["services"]) == ["shop"]
        lines = (await s.read_resource("failover://events/shop")).contents[0].text.splitlines()
        names = [json.loads(line)["event"] for line in lines]
        assert "mcp_triggered" in names and "succeeded" in names, names
        assert all(json.loads(line)["service"] == "shop" for line in lines)
        every = (await s.read_resource("failover://events")).contents[0].text.splitlines()
        assert "mcp_defined" in [json.loads(line)["event"] for line in every]
        with pytest.raises(Exception, match="no service named 'nope'"):
            await s.read_resource("failover://strategy/nope")


# --------------------------------------------------------------------------- 4. stale token
async def test_token_goes_stale_when_the_state_changes(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with connect(lab, home) as s:
        await define_lab(s, lab)
        plan = await dry_run(s, SHOP_COND)

        # someone else fails shop over meanwhile, with the CLI on the server's own strategy and state
        cli = subprocess.run(
            [sys.executable, "-m", "failover_engine.cli.main", "apply", "shop", "-f", str(home / "strategy.yaml"),
             "--state-dir", str(home / "state"), "--yes"],
            check=False, env=server_env(lab), capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert shop_records(lab) == FAILED_OVER

        res = await call(s, "failover.trigger", condition=SHOP_COND, confirm=plan["token"])
        assert res.is_error
        data = res.structured_content
        assert data["stage"] == "refused"  # the playbook ran and refused: nothing changed
        svc = data["outcome"]["services"][0]
        assert svc["status"] == "refused"
        assert any("stale plan" in e for e in svc["errors"]), svc["errors"]
        assert any("stale plan" in r for r in data["refusals"]), data["refusals"]
        assert "stale plan" in data["summary"]
    assert shop_records(lab) == FAILED_OVER  # what the CLI made, untouched
    assert len(events(home, "succeeded", "shop")) == 1  # the CLI's
    assert len(events(home, "refused", "shop")) == 1


# --------------------------------------------------------------------------- 5. forged, foreign, mismatched, expired
async def test_tokens_that_are_not_valid_are_refused(lab: Lab, tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    async with connect(lab, home) as a, connect(lab, other, "--token-ttl", "1") as b:
        await define_lab(a, lab)
        await define_lab(b, lab)
        token = (await dry_run(a, REGION_COND))["token"]

        async def refused(session: ClientSession, condition: dict[str, Any], tok: str, why: str) -> None:
            res = await call(session, "failover.trigger", condition=condition, confirm=tok)
            assert res.is_error, res.structured_content
            data = res.structured_content
            assert data["stage"] == "refused" and data["outcome"] is None
            assert why in refusal_text(data), refusal_text(data)

        # one character altered (in the signed body, and in the signature)
        body, sig = token.split(".")
        i = len(body) // 2
        altered = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1:] + "." + sig
        await refused(a, REGION_COND, altered, "not one this server issued")
        await refused(a, REGION_COND, body + "." + sig[:-1] + ("A" if sig[-1] != "A" else "B"),
                      "not one this server issued")
        await refused(a, REGION_COND, "not-a-token", "not one this server issued")

        # a token of another server process, for the very same condition
        foreign = (await dry_run(b, REGION_COND))["token"]
        await refused(a, REGION_COND, foreign, "not one this server issued")

        # a real token, presented for another condition (another subject, another reason)
        await refused(a, SHOP_COND, token, "issued for another condition")
        await refused(a, {**REGION_COND, "reason": "something else"}, token, "issued for another condition")

        # expired: server b's tokens live 1 s
        await anyio.sleep(1.5)
        await refused(b, REGION_COND, foreign, "expired")

        assert shop_records(lab) == STEADY
        assert runs(home) == [] and runs(other) == []
        assert events(home, "mcp_triggered") == [] and events(other, "mcp_triggered") == []

        # none of the refusals used the real token up
        res = await call(a, "failover.trigger", condition=REGION_COND, confirm=token)
        assert not res.is_error and res.structured_content["stage"] == "applied", res.structured_content["summary"]
    assert shop_records(lab) == FAILED_OVER


# --------------------------------------------------------------------------- 6. two applies at once
async def test_two_concurrent_applies_only_one_runs(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with connect(lab, home) as s:
        await define_lab(s, lab)
        tokens = [(await dry_run(s, SHOP_COND))["token"] for _i in range(2)]
        assert tokens[0] != tokens[1]
        results: list[Any] = [None, None]

        async def apply(i: int) -> None:
            results[i] = await call(s, "failover.trigger", condition=SHOP_COND, confirm=tokens[i])

        async with anyio.create_task_group() as tg:
            for i in range(2):
                tg.start_soon(apply, i)

    stages = sorted(r.structured_content["stage"] for r in results)
    assert stages.count("applied") == 1, [r.structured_content["summary"] for r in results]
    loser = next(r for r in results if r.structured_content["stage"] != "applied")
    assert loser.is_error
    data = loser.structured_content
    assert data["stage"] == "refused"
    if data["outcome"] is None:  # the other trigger held the lock: no playbook ran for this one
        assert "another trigger is running" in refusal_text(data)
    else:  # ran after the first one: refused as stale by the module, under the engine's lock
        assert data["outcome"]["services"][0]["status"] == "refused"
        assert "stale plan" in " ".join(data["outcome"]["services"][0]["errors"])
    assert shop_records(lab) == FAILED_OVER
    assert len(events(home, "succeeded", "shop")) == 1
    assert len(events(home, "mcp_run_finished")) == len(runs(home))


# --------------------------------------------------------------------------- 7. secrets
async def test_secrets_reach_the_module_and_nothing_else(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    stamp = f"{os.getpid()}{time.monotonic_ns()}"
    canaries = {"AWS_SECRET_ACCESS_KEY": f"canarySecretKey{stamp}", "AWS_SESSION_TOKEN": f"canarySessionTok{stamp}",
                "AZURE_ACCESS_TOKEN": f"canaryAzureTok{stamp}", "MY_API_KEY": f"canaryApiKey{stamp}"}
    errlog = tmp_path / "server-stderr.log"
    answers: list[str] = []

    def keep(res: Any) -> Any:
        answers.append(json.dumps(res.structured_content))
        answers.extend(getattr(c, "text", "") for c in res.content)
        return res

    async with connect(lab, home, env=server_env(lab, **canaries), errlog=errlog) as s:
        keep(await call(s, "failover.define", strategy=lab_strategy(lab)))
        plan = await s.call_tool("failover.trigger", {"condition": REGION_COND})
        keep(plan)
        res = keep(await call(s, "failover.trigger", condition=REGION_COND,
                              confirm=plan.structured_content["token"]))
        assert not res.is_error and res.structured_content["stage"] == "applied", res.structured_content["summary"]
        keep(await call(s, "failover.monitor", service="shop", probe=False))
        for uri in ("failover://strategy", "failover://events"):
            answers.extend(c.text for c in (await s.read_resource(uri)).contents)
    # the run used the credentials (moto needs some): Route 53 changed
    assert shop_records(lab) == FAILED_OVER

    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "job_events" or p.parent.name == "job_events" for p in home.rglob("*"))
    assert len(files) > 5
    for path in [*files, errlog]:
        blob = path.read_bytes()
        for name, value in canaries.items():
            assert value.encode() not in blob, f"{name} leaked into {path}"
    for text in answers:
        for name, value in canaries.items():
            assert value not in text, f"{name} leaked into a tool result"
    assert "failover-mcp" in errlog.read_text()  # the log was captured at all

    (run_dir,) = runs(home)
    command = json.loads((run_dir / "artifacts" / "run" / "command").read_text())
    env = command["env"]
    assert not set(canaries) & set(env)
    assert "AWS_ACCESS_KEY_ID" not in env  # looks secret: by reference too
    secrets_file = Path(env["FAILOVER_SECRETS_FILE"])
    assert not secrets_file.exists() and not secrets_file.parent.exists()
    assert not str(secrets_file).startswith(str(home))


# --------------------------------------------------------------------------- 8. streamable HTTP
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_streamable_http(lab: Lab, tmp_path: Path) -> None:
    port = _free_port()
    home = tmp_path / "home"
    with (tmp_path / "http-stderr.log").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "failover_engine.mcp.server", "--transport", "http",
                                 "--port", str(port), "--home", str(home),
                                 "--connections", str(connections_file(lab, home)), *LAB_POLICY],
                                env=server_env(lab), stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "http-stderr.log").read_text()
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            assert time.monotonic() < deadline, "the HTTP server did not listen within 30 s"
            await anyio.sleep(0.1)
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                names = {t.name for t in (await s.list_tools()).tools}
                assert names == {"failover.define", "failover.configure", "failover.trigger", "failover.monitor"}
                await define_lab(s, lab)
                plan = await dry_run(s, REGION_COND)
                assert plan["blast_radius"]["endpoints_in"] == ["shop/usw2"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert (home / "strategy.yaml").exists()
    assert shop_records(lab) == STEADY


# --------------------------------------------------------------------------- 9. configure
def _cart(lab: Lab) -> dict[str, Any]:
    """A second service with weighted records (a failover pair binds exactly two endpoints)."""
    doc = lab_strategy(lab)
    cart = json.loads(json.dumps(doc["services"]["shop"]))
    binding = cart["routing"][0]
    binding.update(record="cart.drill.example.", mode="weighted")
    binding["endpoints"] = {"use1": {"values": ["192.0.2.20"], "set_identifier": "cart-use1"},
                            "usw2": {"values": ["198.51.100.20"], "set_identifier": "cart-usw2"}}
    return {"services": {"cart": cart}}


async def test_configure_standbys(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    stored = home / "strategy.yaml"
    standby_url = lab.regions["usw2"].url + "/health"
    usw2b = {"name": "usw2b", "region": "us-west-2", "probe": {"type": "http", "url": standby_url},
             "routing": [{"values": ["198.51.100.21"], "set_identifier": "cart-usw2b"}]}
    async with connect(lab, home) as s:
        await define_lab(s, lab)
        res = await call(s, "failover.define", strategy=_cart(lab))
        assert not res.is_error, res.content

        # a second standby, added
        res = await call(s, "failover.configure", service="cart", standbys=[usw2b])
        assert not res.is_error, res.content
        assert res.structured_content["standbys"] == ["usw2", "usw2b"]
        cart = yaml.safe_load(stored.read_text())["services"]["cart"]
        assert [e["name"] for e in cart["endpoints"]] == ["use1", "usw2", "usw2b"]
        assert cart["endpoints"][2]["role"] == "standby" and cart["endpoints"][2]["probe"]["url"] == standby_url
        assert cart["routing"][0]["endpoints"]["usw2b"] == {"values": ["198.51.100.21"], "set_identifier": "cart-usw2b"}
        before = stored.read_bytes()

        # a binding per routing entry, or nothing is stored
        res = await call(s, "failover.configure", service="cart",
                         standbys=[{**usw2b, "name": "usw2c", "routing": [usw2b["routing"][0]] * 2}])
        assert res.is_error and res.structured_content["stored"] is False
        assert [p["path"] for p in res.structured_content["problems"]] == ["standbys[0].routing"]
        assert "one binding per routing entry" in res.structured_content["problems"][0]["message"]
        assert stored.read_bytes() == before

        # shop binds a failover pair: a third endpoint is refused by the adapter's own rules
        res = await call(s, "failover.configure", service="shop",
                         standbys=[{**usw2b, "routing": [{"values": ["198.51.100.21"], "set_identifier": "x"}]}])
        assert res.is_error
        assert "exactly two endpoints" in json.dumps(res.structured_content["problems"])
        assert stored.read_bytes() == before

        # after a failover to usw2, replacing shop's standbys would remove the active endpoint
        plan = await dry_run(s, SHOP_COND)
        res = await call(s, "failover.trigger", condition=SHOP_COND, confirm=plan["token"])
        assert res.structured_content["stage"] == "applied", res.structured_content["summary"]
        assert shop_records(lab) == FAILED_OVER
        before = stored.read_bytes()
        res = await call(s, "failover.configure", service="shop", replace=True,
                         standbys=[{**usw2b, "routing": [{"values": ["198.51.100.21"], "set_identifier": "x"}]}])
        assert res.is_error and res.structured_content["stored"] is False
        (problem,) = res.structured_content["problems"]
        assert problem["path"] == "standbys"
        assert "usw2" in problem["message"] and "takes traffic now" in problem["message"]
        assert stored.read_bytes() == before

        res = await call(s, "failover.configure", service="nope", standbys=[usw2b])
        assert res.is_error and "no service named 'nope'" in res.structured_content["problems"][0]["message"]
    assert len(events(home, "mcp_configured")) == 1


# --------------------------------------------------------------------------- 10. detected failures
async def test_detected_condition_needs_a_failure(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    detected = {**SHOP_COND, "kind": "detected"}
    async with connect(lab, home) as s:
        await define_lab(s, lab)
        res = await call(s, "failover.trigger", condition=detected)
        assert res.is_error
        data = res.structured_content
        assert data["stage"] == "refused" and data["token"] is None
        assert "pass their probes now" in refusal_text(data)
        res = await call(s, "failover.trigger", condition={**REGION_COND, "kind": "detected"})
        assert res.is_error and "pass their probes now" in refusal_text(res.structured_content)

        lab.regions["use1"].set_mode("down")
        plan = await dry_run(s, detected)
        (p,) = plan["plans"]
        assert p["service"] == "shop" and sorted(p["target"]) == ["usw2"]
        assert plan["blast_radius"]["endpoints_in"] == ["shop/usw2"]
        mon = await call(s, "failover.monitor", service="shop")
        assert mon.structured_content["verdicts"]["use1"]["health"] != "healthy"
        assert mon.structured_content["failed_over"] is False

        # an unknown service: a refusal that says why, from either tool
        res = await call(s, "failover.trigger", condition={**detected, "service": "nope"})
        assert res.is_error and "unknown service 'nope'" in refusal_text(res.structured_content)
        res = await call(s, "failover.monitor", service="nope")
        assert res.is_error and "unknown service 'nope'" in res.structured_content["error"]
    assert shop_records(lab) == STEADY
    assert runs(home) == []


def test_the_documented_example_session_runs() -> None:
    """docs/examples/mcp_session.py (pasted in docs/mcp.md) runs as documented and ends applied."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "docs" / "examples" / "mcp_session.py")], check=False, cwd=root,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "stage applied" in proc.stdout and "already used" in proc.stdout
    assert "failed_over True" in proc.stdout
