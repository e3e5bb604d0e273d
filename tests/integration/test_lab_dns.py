"""The lab's DNS server answers what each provider holds, over real UDP and TCP, before and after
a real failover by the engine.

One lab per cloud (aws: Route 53 on moto, gcp: the Cloud DNS emulator, azure: the Traffic Manager
emulator, multi: all three, weighted: Route 53 weighted records); the engine fails over with the
real adapters, and dnspython, as any client, asks the lab's server. Nothing is read from the server's
own internals.
"""
from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from failover_engine.config.loader import load_strategy
from failover_engine.engine.failover import FailoverEngine
from failover_engine.lab.dns import LabDns
from failover_engine.lab.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TIMEOUT = 5.0  # generous: a busy machine
PRIMARY, STANDBY = "use1", "usw2"
# what each cloud's template answers: name, type, and the value when use1 / usw2 takes the traffic
ANSWERS = {
    "aws": [("shop.drill.example.", "A", {PRIMARY: "192.0.2.10", STANDBY: "198.51.100.10"})],
    "gcp": [("shop.drill.example.", "A", {PRIMARY: "192.0.2.10", STANDBY: "198.51.100.10"})],
    "azure": [("shop-drill.trafficmanager.net.", "CNAME", {PRIMARY: "shop-use1.shop-drill.lab.invalid.",
                                                           STANDBY: "shop-usw2.shop-drill.lab.invalid."})],
    "multi": [("shop.drill.example.", "A", {PRIMARY: "192.0.2.10", STANDBY: "198.51.100.10"}),
              ("shop.gcp.drill.example.", "A", {PRIMARY: "192.0.2.20", STANDBY: "198.51.100.20"}),
              ("shop-drill.trafficmanager.net.", "CNAME", {PRIMARY: "shop-eastus.shop-drill.lab.invalid.",
                                                           STANDBY: "shop-westus2.shop-drill.lab.invalid."})],
}
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ask(lab_or_dns: Any, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    """One query to the lab's server, as a client sends it (RD set, like a stub resolver)."""
    host, port = lab_or_dns.dns.address if isinstance(lab_or_dns, Lab) else lab_or_dns.address
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, host, timeout=TIMEOUT, port=port)


def answer_of(resp: dns.message.Message) -> tuple[str, list[tuple[str, int, str]]]:
    """(rcode, [(name, ttl, 'TYPE value')]) of a response's answer section."""
    rows = [(rr.name.to_text(), rr.ttl, f"{dns.rdatatype.to_text(rr.rdtype)} {rd.to_text()}")
            for rr in resp.answer for rd in rr]
    return dns.rcode.to_text(resp.rcode()), rows


@pytest.fixture(scope="module", params=["aws", "gcp", "azure", "multi"])
def cloud_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab per cloud, one at a time (moto's state is process-wide)."""
    with Lab(tmp_path_factory.mktemp(f"dns-{request.param}"), cloud=request.param) as lab:
        yield lab


@pytest.fixture
def lab_env(cloud_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The lab in its steady state, and this process's SDK settings pointing at it (as a child gets them)."""
    cloud_lab.reset()
    for key, value in cloud_lab.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return cloud_lab


def engine_of(lab: Lab, state_dir: Path, *, resolve: bool = True) -> FailoverEngine:
    """An engine on the lab's strategy; a state directory of its own has no cooldown to wait out.
    ``resolve=False``: without the drill templates' resolve step (it asks this very server)."""
    path = lab.strategy_path
    if not resolve:
        data = yaml.safe_load(path.read_text())
        for service in data["services"].values():
            service.get("validation", {}).pop("resolve", None)
        path = state_dir.with_name(f"{state_dir.name}-strategy.yaml")
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return FailoverEngine(load_strategy(path, state_dir=state_dir))


def assert_answers(lab: Lab, active: str) -> None:
    for name, rdtype, values in ANSWERS[lab.cloud]:
        for tcp in (False, True):
            resp = ask(lab, name, "A", tcp=tcp)
            rcode, rows = answer_of(resp)
            assert rcode == "NOERROR" and resp.flags & dns.flags.AA, (name, tcp, rcode)
            assert rows == [(name, 30, f"{rdtype} {values[active]}")], (name, "tcp" if tcp else "udp", rows)


# --------------------------------------------------------------------------- every provider's state
def test_the_server_answers_each_providers_state_before_and_after_a_real_failover(lab_env: Lab,
                                                                                  tmp_path: Path) -> None:
    lab = lab_env
    assert_answers(lab, PRIMARY)

    out = engine_of(lab, tmp_path / "failover").run("shop", "failover", apply=True)
    assert out.status == "succeeded", out.errors
    assert_answers(lab, STANDBY)  # at once: the adapters waited for the providers to be in sync

    back = engine_of(lab, tmp_path / "failback").run("shop", "failback", apply=True)
    assert back.status == "succeeded", back.errors
    assert_answers(lab, PRIMARY)


def test_a_frozen_server_keeps_the_old_answer_until_thawed(lab_env: Lab, tmp_path: Path) -> None:
    lab = lab_env
    with _HTTP.open(urllib.request.Request(f"{lab.lab_url}/dns/freeze", method="POST"), timeout=TIMEOUT) as resp:
        assert json.loads(resp.read())["frozen"] is True
    # the provider changes, the frozen server does not (the templates' resolve step would catch it: left out)
    assert engine_of(lab, tmp_path / "state", resolve=False).run("shop", "failover", apply=True).status == "succeeded"
    assert_answers(lab, PRIMARY)  # what a resolver holding a stale copy says

    lab.dns.thaw()
    assert_answers(lab, STANDBY)
    lab.dns.freeze()
    lab.reset()  # the steady state again, and the server live again
    assert not lab.dns.frozen
    assert_answers(lab, PRIMARY)


def test_the_zone_apex_has_this_servers_soa_and_ns_and_other_names_are_refused(lab_env: Lab) -> None:
    lab = lab_env
    name = ANSWERS[lab.cloud][0][0]
    apex = "trafficmanager.net." if name.endswith("trafficmanager.net.") else "drill.example."
    for tcp in (False, True):
        soa = ask(lab, apex, "SOA", tcp=tcp)
        assert answer_of(soa)[1][0][2].startswith(f"SOA ns1.{apex} hostmaster.{apex} ")
        ns = ask(lab, apex, "NS", tcp=tcp)
        assert answer_of(ns)[1] == [(apex, 60, f"NS ns1.{apex}")]
        assert [rr.to_text() for rr in ns.additional] == [f"ns1.{apex} 60 IN A 127.0.0.1"]

        missing = ask(lab, f"nothing-here.{apex}", tcp=tcp)
        assert dns.rcode.to_text(missing.rcode()) == "NXDOMAIN" and missing.flags & dns.flags.AA
        assert [rr.rdtype for rr in missing.authority] == [dns.rdatatype.SOA]

        nodata = ask(lab, f"ns1.{apex}", "TXT", tcp=tcp)  # the name exists, without TXT records
        assert answer_of(nodata) == ("NOERROR", []) and [rr.rdtype for rr in nodata.authority] == [dns.rdatatype.SOA]

        outside = ask(lab, "www.example.com.", tcp=tcp)
        assert dns.rcode.to_text(outside.rcode()) == "REFUSED" and not outside.flags & dns.flags.AA


def test_the_lab_tells_where_its_dns_server_is(lab_env: Lab) -> None:
    lab = lab_env
    host, port = lab.dns.address
    assert host == "127.0.0.1" and port > 0
    assert lab.env()["FAILOVER_LAB_DNS"] == f"127.0.0.1:{port}" == lab.status()["dns"]
    assert json.loads(lab.lab_json.read_text())["dns"] == f"127.0.0.1:{port}"
    assert ("dns (udp+tcp)", f"127.0.0.1:{port}") in lab.servers()
    with _HTTP.open(f"{lab.lab_url}/dns", timeout=TIMEOUT) as resp:
        status = json.loads(resp.read())
    assert status["address"] == f"127.0.0.1:{port}" and status["queries"] >= 0 and status["failures"] == 0


# --------------------------------------------------------------------------- Route 53 details, on moto
@pytest.fixture(scope="module")
def weighted_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("dns-weighted"), cloud="weighted") as lab:
        yield lab


def test_weighted_records_answer_the_heaviest_set(weighted_lab: Lab) -> None:
    lab = weighted_lab
    lab.reset()  # use1 50, usw2 30, euw1 20
    assert answer_of(ask(lab, "shop.drill.example."))[1] == [("shop.drill.example.", 30, "A 192.0.2.10")]
    client, zone = lab.route53_client(), lab.zones["drill.example."]
    sets = client.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    use1 = next(s for s in sets if s.get("SetIdentifier") == "use1")
    client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": use1},
        {"Action": "CREATE", "ResourceRecordSet": {**use1, "Weight": 0}}]})
    assert answer_of(ask(lab, "shop.drill.example.", tcp=True))[1] == [("shop.drill.example.", 30, "A 198.51.100.10")]


def test_a_large_answer_is_truncated_over_udp_and_whole_over_tcp(weighted_lab: Lab) -> None:
    lab = weighted_lab
    lab.reset()
    client, zone = lab.route53_client(), lab.zones["drill.example."]
    texts = [f'"{i:02d}-' + "x" * 200 + '"' for i in range(6)]  # ~1.2 KB
    big = {"Name": "big.drill.example.", "Type": "TXT", "TTL": 45, "ResourceRecords": [{"Value": t} for t in texts]}
    client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": big}]})
    query = dns.message.make_query("big.drill.example.", "TXT", use_edns=False)
    host, port = lab.dns.address
    udp = dns.query.udp(query, host, timeout=TIMEOUT, port=port)
    assert udp.flags & dns.flags.TC and not udp.answer
    whole = dns.query.tcp(query, host, timeout=TIMEOUT, port=port)
    assert len(answer_of(whole)[1]) == 6 and whole.answer[0].ttl == 45


def test_a_provider_that_cannot_be_read_is_servfail_and_a_bad_message_formerr() -> None:
    class Broken:
        kind = "broken"

        def zones(self) -> list[str]:
            return ["broken.example."]

        def records(self, zone: str) -> dict[Any, Any]:
            raise ConnectionError("the provider is down")

    with LabDns([Broken()]) as server:
        resp = ask(server, "www.broken.example.")
        assert dns.rcode.to_text(resp.rcode()) == "SERVFAIL"
        assert server.failures == 1 and "the provider is down" in server.last_error
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.sendto(b"\x12\x34" + b"\xff" * 14, server.address)
            reply = sock.recv(512)
        assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR
