"""The lab DNS server's pure parts: each provider's routing policy as its DNS answers it, the
authoritative answer built from zone views, and a client's reading of an answer's CNAME chain."""
from __future__ import annotations

from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from failover_engine.detection.resolve import answer_values
from failover_engine.lab.dns import ZoneView, build_response
from failover_engine.lab.dns_sources import clouddns_records, route53_records, trafficmanager_records


def rr(name: str, value: str, ttl: int = 30, **kw: Any) -> dict[str, Any]:
    return {"Name": name, "Type": kw.pop("Type", "A"), "TTL": ttl, "ResourceRecords": [{"Value": value}], **kw}


# --------------------------------------------------------------------------- Route 53
def test_route53_failover_answers_the_primary_and_the_secondary_only_alone() -> None:
    pair = [rr("shop.example.", "192.0.2.10", SetIdentifier="a", Failover="SECONDARY"),
            rr("shop.example.", "198.51.100.10", 60, SetIdentifier="b", Failover="PRIMARY")]
    assert route53_records(pair) == {("shop.example.", "A"): (60, ["198.51.100.10"])}
    assert route53_records(pair[:1]) == {("shop.example.", "A"): (30, ["192.0.2.10"])}


def test_route53_weighted_answers_the_heaviest_and_the_smallest_identifier_on_a_tie() -> None:
    sets = [rr("w.example.", "192.0.2.1", SetIdentifier="c", Weight=20),
            rr("w.example.", "192.0.2.2", SetIdentifier="b", Weight=50),
            rr("w.example.", "192.0.2.3", SetIdentifier="a", Weight=50)]
    assert route53_records(sets)[("w.example.", "A")] == (30, ["192.0.2.3"])
    zero = [rr("w.example.", "192.0.2.1", SetIdentifier="z", Weight=0), rr("w.example.", "192.0.2.2", SetIdentifier="y", Weight=0)]
    assert route53_records(zero)[("w.example.", "A")] == (30, ["192.0.2.2"])


def test_route53_plain_multivalue_alias_and_escaped_names() -> None:
    sets = [rr("plain.example.", "192.0.2.1"),
            rr("mv.example.", "192.0.2.1", SetIdentifier="1", MultiValueAnswer=True),
            rr("mv.example.", "192.0.2.2", SetIdentifier="2", MultiValueAnswer=True),
            {"Name": "alias.example.", "Type": "A", "AliasTarget": {"DNSName": "x.", "HostedZoneId": "Z"}},
            rr("\\052.example.", "192.0.2.9"),
            rr("Mixed.Example", "x.example.", Type="CNAME")]
    got = route53_records(sets)
    assert got[("plain.example.", "A")] == (30, ["192.0.2.1"])
    assert got[("mv.example.", "A")] == (30, ["192.0.2.1", "192.0.2.2"])
    assert ("alias.example.", "A") not in got and ("*.example.", "A") in got
    assert got[("mixed.example.", "CNAME")] == (30, ["x.example."])


# --------------------------------------------------------------------------- Cloud DNS
def test_clouddns_policies() -> None:
    sets = [{"name": "plain.example.", "type": "A", "ttl": 30, "rrdatas": ["192.0.2.1"]},
            {"name": "pb.example.", "type": "A", "ttl": 40, "routingPolicy": {"primaryBackup": {
                "primaryTargets": {"externalEndpoints": ["192.0.2.10"]},
                "backupGeoTargets": {"items": [{"location": "us-west2", "rrdatas": ["198.51.100.10"]}]}}}},
            {"name": "wrr.example.", "type": "A", "ttl": 50, "routingPolicy": {"wrr": {"items": [
                {"weight": 0, "rrdatas": ["192.0.2.1"]}, {"weight": 100, "rrdatas": ["192.0.2.2"]},
                {"weight": 100, "rrdatas": ["192.0.2.3"]}]}}},
            {"name": "geo.example.", "type": "A", "ttl": 60, "routingPolicy": {"geo": {"items": [
                {"location": "us-east1", "rrdatas": ["192.0.2.7"]}, {"location": "eu", "rrdatas": ["192.0.2.8"]}]}}},
            {"name": "empty.example.", "type": "A", "ttl": 60, "routingPolicy": {"wrr": {"items": []}}}]
    assert clouddns_records(sets) == {("plain.example.", "A"): (30, ["192.0.2.1"]),
                                      ("pb.example.", "A"): (40, ["192.0.2.10"]),
                                      ("wrr.example.", "A"): (50, ["192.0.2.2"]),
                                      ("geo.example.", "A"): (60, ["192.0.2.7"])}


# --------------------------------------------------------------------------- Traffic Manager
def profile(method: str, *endpoints: dict[str, Any], status: str = "Enabled") -> dict[str, Any]:
    return {"properties": {"profileStatus": status, "trafficRoutingMethod": method,
                           "dnsConfig": {"relativeName": "shop", "ttl": 45, "fqdn": "shop.trafficmanager.net"},
                           "endpoints": list(endpoints)}}


def ep(name: str, target: str | None = "x.example.com", **props: Any) -> dict[str, Any]:
    p = {"endpointStatus": "Enabled", "endpointMonitorStatus": "CheckingEndpoint", **props}
    if target is not None:
        p["target"] = target
    return {"name": name, "properties": p}


NAME = ("shop.trafficmanager.net.", "CNAME")


def test_traffic_manager_priority_answers_the_lowest_enabled_and_healthy() -> None:
    eps = [ep("b", "b.example.com", priority=2), ep("a", "a.example.com", priority=1)]
    assert trafficmanager_records(profile("Priority", *eps)) == {NAME: (45, ["a.example.com."])}
    eps[1]["properties"]["endpointStatus"] = "Disabled"
    assert trafficmanager_records(profile("Priority", *eps)) == {NAME: (45, ["b.example.com."])}
    eps[1]["properties"].update(endpointStatus="Enabled", endpointMonitorStatus="Degraded")
    assert trafficmanager_records(profile("Priority", *eps)) == {NAME: (45, ["b.example.com."])}
    eps[0]["properties"]["endpointMonitorStatus"] = "Stopped"  # every one down: all are answered again
    assert trafficmanager_records(profile("Priority", *eps)) == {NAME: (45, ["a.example.com."])}


def test_traffic_manager_weighted_ip_targets_azure_endpoints_and_nxdomain() -> None:
    heavy = [ep("a", "192.0.2.1", weight=1, priority=1), ep("b", "192.0.2.2", weight=1000, priority=2)]
    assert trafficmanager_records(profile("Weighted", *heavy)) == {("shop.trafficmanager.net.", "A"): (45, ["192.0.2.2"])}
    v6 = ep("a", "2001:db8::1", priority=1)
    assert trafficmanager_records(profile("Priority", v6)) == {("shop.trafficmanager.net.", "AAAA"): (45, ["2001:db8::1"])}
    azure = ep("pip", None, priority=1, targetResourceId="/subscriptions/s/resourceGroups/rg/providers/"
                                                         "Microsoft.Network/publicIPAddresses/My-IP")
    assert trafficmanager_records(profile("Priority", azure)) == {NAME: (45, ["my-ip.azure.lab.invalid."])}
    assert trafficmanager_records(profile("Priority", ep("a", priority=1), status="Disabled")) == {}
    assert trafficmanager_records(profile("Priority", ep("a", priority=1, endpointStatus="Disabled"))) == {}


# --------------------------------------------------------------------------- answering
ZONE = ZoneView.of("example.", {("www.example.", "CNAME"): (20, ["web.example."]),
                                ("web.example.", "A"): (30, ["192.0.2.1"]),
                                ("out.example.", "CNAME"): (20, ["elsewhere.test."]),
                                ("gone.example.", "CNAME"): (20, ["nothing.example."]),
                                ("a.b.example.", "A"): (30, ["192.0.2.2"])})


def respond(name: str, rdtype: str = "A", **kw: Any) -> dns.message.Message:
    """The answer as a client receives it (through the wire)."""
    query = dns.message.from_wire(dns.message.make_query(name, rdtype, **kw).to_wire())
    resp = build_response(query, lambda n: ZONE if n == "example." or n.endswith(".example.") else None)
    return dns.message.from_wire(resp.to_wire())


def rows(resp: dns.message.Message) -> list[str]:
    # the owner keeps the query's case (name compression points at the question)
    return [f"{r.name.to_text().lower()} {r.to_text().split(' ', 1)[1]}" for r in resp.answer]


def test_a_cname_is_followed_within_the_zones_and_left_to_the_client_outside() -> None:
    resp = respond("WWW.example.")
    assert rows(resp) == ["www.example. 20 IN CNAME web.example.", "web.example. 30 IN A 192.0.2.1"]
    assert resp.flags & dns.flags.AA and not resp.flags & dns.flags.RA
    assert rows(respond("out.example.")) == ["out.example. 20 IN CNAME elsewhere.test."]
    gone = respond("gone.example.")
    assert dns.rcode.to_text(gone.rcode()) == "NXDOMAIN" and len(gone.answer) == 1  # RFC 6604


def test_nodata_for_an_empty_non_terminal_nxdomain_below_and_refused_outside() -> None:
    assert (respond("b.example.").rcode(), respond("b.example.").answer) == (dns.rcode.NOERROR, [])
    assert respond("c.b.example.").rcode() == dns.rcode.NXDOMAIN
    outside = respond("example.org.")
    assert outside.rcode() == dns.rcode.REFUSED and not outside.flags & dns.flags.AA
    assert len(respond("web.example.", "ANY").answer) == 1


def test_only_queries_are_answered() -> None:
    query = dns.message.make_query("web.example.", "A")
    query.set_opcode(dns.opcode.NOTIFY)
    assert build_response(query, lambda n: ZONE).rcode() == dns.rcode.NOTIMP


# --------------------------------------------------------------------------- a client's reading
@pytest.mark.parametrize("name, rdtype, values, ttl", [
    ("www.example.", "A", ["192.0.2.1"], 30),
    ("out.example.", "A", ["elsewhere.test."], 20),
    ("www.example.", "CNAME", ["web.example."], 20),
    ("web.example.", "TXT", [], None),
])
def test_answer_values_follow_the_chain(name: str, rdtype: str, values: list[str], ttl: int | None) -> None:
    assert answer_values(respond(name, rdtype), name, rdtype) == (values, ttl)
    assert dns.rdatatype.from_text(rdtype)  # the types the resolve step asks for
