"""`failover-mcp` attacked as a client would attack it, through the real MCP client (issue 12).

* Templates in every string field of every tool and of a strategy never run (a canary file would
  appear), through dry runs AND confirmed runs of the real playbooks.
* Secrets with harmless names never land in a file under the server's home, a tool result or the log.
* The HTTP transport refuses foreign Host and Origin headers on every bind address, refuses
  requests without the bearer token when it is on, and does not start off loopback without one.
* Forty probes of a port that never answers leave the other tools answering; 4 MiB strings are
  refused fast and never stored.
"""
from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import anyio
import httpx2
import pytest
import yaml
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from test_mcp import (LAB_POLICY, call, connect, connections_file, events, lab_strategy, runs, server_env,
                      shop_records)

from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- 1. the template canary
def payloads(canaries: Path) -> dict[str, str]:
    """Strings that create a file under ``canaries`` if anything evaluates them (Jinja, a shell)."""
    def c(kind: str) -> Path:
        return canaries / f"canary-{kind}"

    return {
        "jinja": f"{{{{ lookup('ansible.builtin.pipe', 'touch {c('jinja')}') }}}}",
        "statement": f"{{% set x = lookup('ansible.builtin.pipe', 'touch {c('statement')}') %}}{{{{ x }}}}",
        "comment": f"{{# a comment #}}{{{{ query('pipe', 'touch {c('comment')}') }}}}",
        "dollar-brace": f"${{{{ lookup('pipe', 'touch {c('dollar-brace')}') }}}}${{HOME}}",
        "subshell": f"$(touch {c('subshell')})",
        "backticks": f"`touch {c('backticks')}`",
    }


def string_paths(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, bool]]:
    """(path, is_key) of every string value and every mapping key in a document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*path, k), True
            yield from string_paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from string_paths(v, (*path, i))
    elif isinstance(node, str):
        yield path, False


def put(doc: Any, path: tuple, is_key: bool, value: str) -> Any:
    """A copy of ``doc`` with the string (or key) at ``path`` replaced by ``value``."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if is_key:
        node[value] = node.pop(path[-1])
    else:
        node[path[-1]] = value
    return doc


def rich_strategy(lab: Lab) -> dict[str, Any]:
    """The lab's strategy with every optional string field a client could send filled in."""
    doc = lab_strategy(lab)
    shop = doc["services"]["shop"]
    for ep, zone in zip(shop["endpoints"], ("us-east-1a", "us-west-2a")):
        ep["zone"] = zone
        ep["probe"]["headers"] = {"X-Canary": "plain"}
        ep["probe"]["expect_headers"] = {"Content-Type": "text"}
    shop["routing"][0]["endpoints"]["use1"]["health_check_id"] = "hc-use1"
    shop["validation"]["checks"] = [{"type": "http", "url": shop["endpoints"][1]["probe"]["url"],
                                     "body_contains": "ok"}]
    doc["monitoring"] = {"observers": [{"name": "local"}]}
    return doc


def no_traceback(res: Any) -> None:
    text = " ".join(getattr(c, "text", "") for c in res.content)
    assert "Traceback" not in text, text


async def test_no_client_string_is_ever_templated(lab: Lab, tmp_path: Path) -> None:
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    base = rich_strategy(lab)
    for kind, payload in payloads(canaries).items():
        lab.reset()
        home = tmp_path / f"home-{kind}"
        async with connect(lab, home) as s:
            accepted: list[tuple[tuple, bool]] = []
            # 1. every string (and key) of a strategy, one at a time; as an object, and once as YAML text
            for path, is_key in string_paths(base):
                res = await call(s, "failover.define", strategy=put(base, path, is_key, payload))
                no_traceback(res)
                if not res.is_error:
                    accepted.append((path, is_key))
            res = await call(s, "failover.define", strategy=payload)
            assert res.is_error
            # accepted fields are data: all of them at once, stored verbatim (the YAML text form);
            # for the runs, without the health check id (moto's records have none: the engine
            # would take them for records edited by hand)
            run_base = copy.deepcopy(base)
            del run_base["services"]["shop"]["routing"][0]["endpoints"]["use1"]["health_check_id"]
            doc = run_base
            for path, is_key in accepted:
                doc = put(doc, path, is_key, payload)
            res = await call(s, "failover.define", strategy=yaml.safe_dump(doc))
            assert not res.is_error, res.content
            stored = yaml.safe_load((home / "strategy.yaml").read_text())
            assert stored["services"]["shop"]["description"] == payload  # verbatim
            assert ("services", "shop", "description") in [p for p, _unused in accepted]
            assert not any(k for p, k in accepted), "no mapping key may hold a template"

            # 2. every string field of the other tools
            standby = {"name": "usw2", "region": "us-west-2", "zone": "us-west-2a",
                       "probe": {"type": "http", "url": lab.regions["usw2"].url + "/health", "body_contains": "ok",
                                 "headers": {"X-Canary": "plain"}},
                       "routing": [{"values": ["198.51.100.10"], "set_identifier": "usw2-standby"}]}
            for path, is_key in string_paths(standby):
                res = await s.call_tool("failover.configure", {"service": "shop", "standbys": [
                    put(standby, path, is_key, payload)]})
                no_traceback(res)
            res = await s.call_tool("failover.configure", {"service": payload, "standbys": [standby]})
            assert res.is_error
            cond = {"service": "shop", "reason": "canary test", "action": "failover", "target": "usw2",
                    "kind": "manual", "force": True}
            for field in ("service", "target", "action", "kind", "reason"):
                res = await s.call_tool("failover.trigger", {"condition": {**cond, field: payload}})
                no_traceback(res)
                assert res.is_error or field == "reason"
            res = await s.call_tool("failover.trigger", {"condition": {"region": payload, "reason": "canary test"}})
            assert res.is_error
            res = await s.call_tool("failover.trigger", {"condition": cond, "confirm": payload})
            assert res.is_error
            res = await s.call_tool("failover.monitor", {"service": payload})
            assert res.is_error

            # 3. dry run AND confirm through the real playbooks, the payload wherever it is data:
            # region_failover.yml with every accepted field holding it (the probes' body_contains
            # too, so validation fails and the run rolls back: the module's errors, which quote
            # the payload, are printed by the playbook's own templates) ...
            region_cond = {"region": "us-east-1", "reason": payload, "force": True}
            plan = await call(s, "failover.trigger", condition=region_cond)
            assert plan.structured_content["stage"] == "planned", plan.structured_content["summary"]
            res = await call(s, "failover.trigger", condition=region_cond, confirm=plan.structured_content["token"])
            no_traceback(res)
            assert res.structured_content["outcome"]["playbook"] == "region_failover.yml"
            assert payload in res.structured_content["summary"]  # quoted as data
            # ... failover.yml, succeeding, to a standby whose probe headers hold it ...
            clean = put(run_base, ("services", "shop", "description"), False, payload)
            assert not (await call(s, "failover.define", strategy=clean)).is_error
            res = await call(s, "failover.configure", service="shop", standbys=[
                {**standby, "probe": {**standby["probe"], "headers": {"X-Canary": payload}}}])
            assert not res.is_error, res.content
            service_cond = {**cond, "reason": payload}
            plan = await call(s, "failover.trigger", condition=service_cond)
            assert plan.structured_content["stage"] == "planned", plan.structured_content["summary"]
            res = await call(s, "failover.trigger", condition=service_cond, confirm=plan.structured_content["token"])
            no_traceback(res)
            assert res.structured_content["stage"] == "applied", res.structured_content["summary"]
            assert res.structured_content["outcome"]["playbook"] == "failover.yml"
            # ... and failback.yml
            back = {"service": "shop", "action": "failback", "reason": payload, "force": True}
            plan = await call(s, "failover.trigger", condition=back)
            assert plan.structured_content["stage"] == "planned", plan.structured_content["summary"]
            res = await call(s, "failover.trigger", condition=back, confirm=plan.structured_content["token"])
            no_traceback(res)
            assert res.structured_content["stage"] == "applied", res.structured_content["summary"]
            assert res.structured_content["outcome"]["playbook"] == "failback.yml"
            await call(s, "failover.monitor", service="shop")
            for uri in ("failover://strategy", "failover://events"):
                await s.read_resource(uri)
        assert len(runs(home)) == 3
        # the region run printed the module's errors, the payload included (as YAML): data, not a template
        region_run = next(r for r in runs(home) if json.loads((r / "request.json").read_text())["operation"] == "region")
        stdout = (region_run / "artifacts" / "run" / "stdout").read_text()
        assert "Services that did not succeed" in stdout and f"canary-{kind}" in stdout
        # the reason is recorded as it was sent: data, never rendered
        assert any(e.get("reason") == payload for e in events(home, "mcp_triggered"))
        assert list(canaries.iterdir()) == [], f"{kind}: a template ran"
    assert list(canaries.iterdir()) == []


# --------------------------------------------------------------------------- 2. secrets with harmless names
async def test_harmless_named_secrets_appear_nowhere(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    stamp = f"{os.getpid()}{time.monotonic_ns()}"
    canaries = {"DB_PASS": f"canaryDbPass{stamp}", "DATABASE_URL": f"postgres://u:canaryDbUrl{stamp}@db/x",
                "GITHUB_PAT": f"ghp_canaryPat{stamp}", "SENTRY_DSN": f"https://canarySentry{stamp}@sentry/1",
                "MY_SETTING": f"canaryTokenEnvVar{stamp}", "AWS_SECRET_ACCESS_KEY": "testing"}
    # the operator's connections: the lab's, and a Traffic Manager connection whose token_env_var
    # has a harmless name (it is a secret all the same)
    conns = yaml.safe_load(connections_file(lab, home).read_text())
    conns["tm"] = {"type": "trafficmanager", "subscription_id": "s", "credentials": "token_env",
                   "token_env_var": "MY_SETTING"}
    conn_file = tmp_path / "operator-connections.yaml"
    conn_file.write_text(yaml.safe_dump(conns))
    errlog = tmp_path / "server-stderr.log"
    answers: list[str] = []

    def keep(res: Any) -> Any:
        answers.append(json.dumps(res.structured_content))
        answers.extend(getattr(c, "text", "") for c in res.content)
        return res

    async with connect(lab, home, "--connections", str(conn_file), env=server_env(lab, **canaries),
                       errlog=errlog) as s:
        keep(await call(s, "failover.define", strategy=lab_strategy(lab)))
        plan = keep(await call(s, "failover.trigger", condition={"region": "us-east-1", "reason": "secrets"}))
        res = keep(await call(s, "failover.trigger", condition={"region": "us-east-1", "reason": "secrets"},
                              confirm=plan.structured_content["token"]))
        assert res.structured_content["stage"] == "applied", res.structured_content["summary"]
        keep(await call(s, "failover.monitor", service="shop"))
        for uri in ("failover://strategy", "failover://events"):
            answers.extend(c.text for c in (await s.read_resource(uri)).contents)
    assert shop_records(lab)["usw2-standby"][0] == "PRIMARY"  # the run had the AWS credentials it needs

    secret_values = {k: v for k, v in canaries.items() if k != "AWS_SECRET_ACCESS_KEY"}
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files) and any("job_events" in p.parts for p in files)
    for path in [*files, errlog]:
        blob = path.read_bytes()
        for name, value in secret_values.items():
            assert value.encode() not in blob, f"{name} leaked into {path}"
    for text in answers:
        for name, value in secret_values.items():
            assert value not in text, f"{name} leaked into a tool result"

    (run_dir,) = runs(home)
    command = json.loads((run_dir / "artifacts" / "run" / "command").read_text())
    env = command["env"]
    assert not {k for k in env if k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}, sorted(env)
    assert not set(canaries) & set(env)
    assert "FAILOVER_STRATEGY" not in env and "FAILOVER_LAB_URL" not in env
    # the only extra var is the server-made request file, marked unsafe
    assert [a for a in command["command"] if a.startswith("@") or a.startswith("{")] == \
        [f"@{run_dir / 'extravars.yml'}"]
    assert (run_dir / "extravars.yml").read_text().startswith("request_file: !unsafe ")
    request = json.loads((run_dir / "request.json").read_text())
    assert request["operation"] == "region" and request["region"] == "us-east-1"
    # private: the home and every directory 0700, every file 0600 (or stricter)
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        assert mode & 0o077 == 0, f"{path} is {mode:04o}"


# --------------------------------------------------------------------------- 3. the HTTP transport
def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def http_server(lab: Lab, tmp_path: Path, host: str, *args: str) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    home = tmp_path / f"home-{host}"
    log = tmp_path / f"http-{host}.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "failover_engine.mcp.server", "--transport", "http",
                                 "--host", host, "--port", str(port), "--home", str(home),
                                 "--connections", str(connections_file(lab, home)), *LAB_POLICY, *args],
                                env=server_env(lab), stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        connect_to = "127.0.0.1" if host == "0.0.0.0" else host
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                socket.create_connection((connect_to, port), timeout=0.2).close()
                break
            assert time.monotonic() < deadline, "the HTTP server did not listen within 30 s"
            time.sleep(0.1)
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}})


def post(addr: str, port: int, headers: dict[str, str]) -> int:
    """POST an initialize to /mcp with exactly these headers (Host included); the status."""
    conn = http.client.HTTPConnection(addr, port, timeout=10)
    try:
        conn.putrequest("POST", "/mcp", skip_host=True, skip_accept_encoding=True)
        for k, v in {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                     "Content-Length": str(len(INIT)), **headers}.items():
            conn.putheader(k, v)
        conn.endheaders(INIT.encode())
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "0.0.0.0"])
def test_foreign_host_and_origin_are_refused_on_every_bind_address(lab: Lab, tmp_path: Path, bind: str) -> None:
    token_args: tuple[str, ...] = ()
    auth: dict[str, str] = {}
    if bind == "0.0.0.0":  # off loopback: only with a token
        token = tmp_path / "token"
        token.write_text("s3cret-0123456789abcdef\n")
        token.chmod(0o600)
        token_args, auth = ("--auth-token-file", str(token)), {"Authorization": "Bearer s3cret-0123456789abcdef"}
    with http_server(lab, tmp_path, bind, *token_args) as (port, log):
        addr = "127.0.0.1" if bind == "0.0.0.0" else bind
        own = f"{addr}:{port}"
        assert post(addr, port, {"Host": own, **auth}) == 200
        assert post(addr, port, {"Host": own, "Origin": f"http://{own}", **auth}) == 200
        for host in ("evil.example", f"evil.example:{port}", f"{addr}.evil.example:{port}", f"localhost.evil:{port}"):
            assert post(addr, port, {"Host": host, **auth}) == 421, host
        for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"https://{own}.evil"):
            assert post(addr, port, {"Host": own, "Origin": origin, **auth}) == 403, origin
        text = log.read_text()
    assert f"listening on http://{bind}:{port}/mcp" in text
    assert ("authentication bearer token" if auth else "authentication OFF") in text
    assert "allowed Host headers:" in text and "allowed Origins:" in text


async def test_bearer_token_is_required_when_configured(lab: Lab, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-0123456789abcdef\n")
    token.chmod(0o600)
    with http_server(lab, tmp_path, "127.0.0.1", "--auth-token-file", str(token)) as (port, log):
        own = {"Host": f"127.0.0.1:{port}"}
        assert post("127.0.0.1", port, own) == 401
        assert post("127.0.0.1", port, {**own, "Authorization": "Bearer wrong-0123456789abcdef"}) == 401
        assert post("127.0.0.1", port, {**own, "Authorization": "s3cret-0123456789abcdef"}) == 401  # not Bearer
        assert post("127.0.0.1", port, {**own, "Authorization": "Bearer s3cret-0123456789abcdef"}) == 200
        headers = {"Authorization": "Bearer s3cret-0123456789abcdef"}
        async with httpx2.AsyncClient(headers=headers) as client, \
                streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                res = await call(s, "failover.define", strategy=lab_strategy(lab))
                assert not res.is_error, res.content
    assert "s3cret-0123456789abcdef" not in log.read_text()


def test_off_loopback_without_a_token_does_not_start(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "failover_engine.mcp.server", "--transport", "http",
                           "--host", "0.0.0.0", "--port", str(_free_port()), "--home", str(tmp_path / "home")],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0" in proc.stderr and "--auth-token-file" in proc.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "home" / "strategy.yaml").exists()


# --------------------------------------------------------------------------- 4. bounded work
@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(sock.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        sock.close()


def hung_service(lab: Lab, port: int) -> dict[str, Any]:
    doc = lab_strategy(lab)
    svc = copy.deepcopy(doc["services"]["shop"])
    for ep in svc["endpoints"]:
        ep["probe"] = {"type": "http", "url": f"http://127.0.0.1:{port}/health"}
    svc["detection"] = {"interval": "5s", "timeout": "1s"}
    svc["routing"][0]["record"] = "hung.drill.example."
    return {"services": {"hung": svc}}


async def test_forty_hung_probes_leave_the_other_tools_answering(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with silent_port() as port:
        async with connect(lab, home, "--call-timeout", "8") as s:
            await call(s, "failover.define", strategy=lab_strategy(lab))
            assert not (await call(s, "failover.define", strategy=hung_service(lab, port))).is_error
            await call(s, "failover.monitor", service="shop", probe=False)  # warm: SDK clients, caches
            results: list[Any] = []
            durations: list[float] = []

            async def hung_monitor() -> None:
                started = time.monotonic()
                results.append(await s.call_tool("failover.monitor", {"service": "hung"}))
                durations.append(time.monotonic() - started)

            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                for _i in range(40):
                    tg.start_soon(hung_monitor)
                await anyio.sleep(1.5)  # every worker the client may have now waits on a silent socket
                # meanwhile: a small define and a monitor without probes answer within a second
                for tool, args in (("failover.define", {"strategy": lab_strategy(lab)}),
                                   ("failover.monitor", {"service": "shop", "probe": False}),
                                   ("failover.define", {"strategy": lab_strategy(lab)})):
                    t0 = time.monotonic()
                    res = await call(s, tool, **args)
                    took = time.monotonic() - t0
                    assert not res.is_error, res.content
                    assert took < 1.0, f"{tool} took {took:.2f}s while 40 probes hung"
            total = time.monotonic() - started
    assert len(results) == 40
    assert total < 20, total
    assert max(durations) < 8 + 4  # every call ended within its deadline (+ the probe it was running)
    for res in results:  # a verdict (timeout) or a structured refusal, never a hang or a traceback
        no_traceback(res)
        if res.is_error:
            assert res.structured_content and ("did not finish" in res.structured_content["error"]
                                               or "busy" in res.structured_content["error"])
        else:
            assert res.structured_content["verdicts"]["use1"]["health"] != "healthy"
    assert any(not r.is_error for r in results)


async def test_four_mib_strings_are_refused_fast_and_never_stored(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    big = "a" * (4 << 20)
    doc = lab_strategy(lab)
    standby = {"name": "usw2", "region": "us-west-2",
               "probe": {"type": "http", "url": lab.regions["usw2"].url + "/health"},
               "routing": [{"values": ["198.51.100.10"], "set_identifier": "usw2-standby"}]}
    cond = {"service": "shop", "reason": "four mib"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("failover.define", {"strategy": big}),
        ("failover.define", {"strategy": {**doc, "services": {"shop": {**doc["services"]["shop"], "description": big}}}}),
        ("failover.configure", {"service": big, "standbys": [standby]}),
        ("failover.trigger", {"condition": cond, "confirm": big}),
        ("failover.monitor", {"service": big}),
    ]
    for key in ("name", "region", "zone"):
        calls.append(("failover.configure", {"service": "shop", "standbys": [{**standby, key: big}]}))
    calls.append(("failover.configure", {"service": "shop", "standbys": [
        {**standby, "probe": {**standby["probe"], "body_contains": big}}]}))
    for key in ("service", "target", "reason"):
        calls.append(("failover.trigger", {"condition": {**cond, key: big}}))
    calls.append(("failover.trigger", {"condition": {"region": big, "reason": "four mib"}}))
    async with connect(lab, home) as s:
        await call(s, "failover.define", strategy=doc)
        before = (home / "strategy.yaml").read_bytes()
        for tool, args in calls:
            t0 = time.monotonic()
            res = await s.call_tool(tool, args)
            took = time.monotonic() - t0
            assert res.is_error, (tool, list(args))
            no_traceback(res)
            text = " ".join(getattr(c, "text", "") for c in res.content)
            assert len(text) < 20000, "the 4 MiB string is not echoed back"
            assert took < 1.5, f"{tool} {list(args)}: {took:.2f}s round trip"  # the transport's share included
        assert (home / "strategy.yaml").read_bytes() == before
        res = await call(s, "failover.monitor", service="shop", probe=False)
        assert not res.is_error
