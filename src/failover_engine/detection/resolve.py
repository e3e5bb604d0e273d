"""Asking nameservers directly, for client-side validation (``validation.resolve``).

One query is one message to one server (``dns.asyncquery.udp`` or ``.tcp``), never a recursive
walk: the engine asks exactly the servers it was given, or the zone's authoritative servers found
through the system resolver (:func:`authoritative_nameservers`). A UDP answer with TC set is asked
again over TCP. Nothing here raises for a server that does not answer: the answer says so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

MAX_CHAIN = 8


@dataclass
class DnsAnswer:
    """One query's outcome: the rcode and the values at the end of the answer's CNAME chain (the
    last CNAME's target when the chain leaves the answer), or the error that left no answer."""

    at: float
    rcode: str | None = None
    values: list[str] = field(default_factory=list)
    ttl: int | None = None
    error: str | None = None


def answer_values(msg: dns.message.Message, name: str, rdtype: str) -> tuple[list[str], int | None]:
    """(values, the longest TTL along the chain) of ``name``/``rdtype`` in a response's answer
    section, following CNAMEs within it; a chain that ends in a CNAME gives its target."""
    want = dns.rdatatype.from_text(rdtype)
    owner = dns.name.from_text(name)
    ttls: list[int] = []
    for _link in range(MAX_CHAIN + 1):
        rrset = msg.get_rrset(msg.answer, owner, dns.rdataclass.IN, want)
        if rrset is not None:
            ttls.append(rrset.ttl)
            return [rd.to_text() for rd in rrset], max(ttls)
        cname = msg.get_rrset(msg.answer, owner, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            break
        ttls.append(cname.ttl)
        target = next(iter(cname)).target
        nxt = msg.get_rrset(msg.answer, target, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if msg.get_rrset(msg.answer, target, dns.rdataclass.IN, want) is None and nxt is None:
            return [target.to_text()], max(ttls)
        owner = target
    return [], (max(ttls) if ttls else None)


async def query(host: str, port: int, name: str, rdtype: str, *, timeout: float, tcp: bool = False,
                recursion: bool = True) -> DnsAnswer:
    """Ask one server once. ``recursion`` sets RD (resolvers need it; authoritative servers ignore it)."""
    msg = dns.message.make_query(name, rdtype)
    if not recursion:
        msg.flags &= ~dns.flags.RD
    started = time.time()
    try:
        if tcp:
            resp = await dns.asyncquery.tcp(msg, host, timeout=timeout, port=port)
        else:
            resp = await dns.asyncquery.udp(msg, host, timeout=timeout, port=port)
            if resp.flags & dns.flags.TC:
                left = max(0.05, timeout - (time.time() - started))
                resp = await dns.asyncquery.tcp(msg, host, timeout=left, port=port)
    except dns.exception.Timeout:
        return DnsAnswer(time.time(), error=f"no answer within {timeout:g} s")
    except (OSError, dns.exception.DNSException) as exc:
        return DnsAnswer(time.time(), error=f"{type(exc).__name__}: {exc}"[:200])
    values, ttl = answer_values(resp, name, rdtype)
    return DnsAnswer(time.time(), dns.rcode.to_text(resp.rcode()), values, ttl)


async def authoritative_nameservers(name: str, *, timeout: float,
                                    bootstrap: list[tuple[str, int]] | None = None,
                                    port: int = 53) -> list[tuple[str, int]]:
    """(address, ``port``) of every authoritative server of the zone that holds ``name``: the
    zone's NS records and their addresses, found through ``bootstrap`` (the system resolver when
    None). Raises ``dns.exception.DNSException`` when they cannot be found."""
    if bootstrap:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host for host, _unused in bootstrap]
        resolver.port = bootstrap[0][1]
    else:
        resolver = dns.asyncresolver.Resolver(configure=True)
    resolver.lifetime = timeout
    zone = await dns.asyncresolver.zone_for_name(name, resolver=resolver, lifetime=timeout)
    ns_answer = await resolver.resolve(zone, "NS")
    found: list[tuple[str, int]] = []
    for ns in ns_answer:
        for rdtype in ("A", "AAAA"):
            try:
                addresses = await resolver.resolve(ns.target, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            found.extend((rd.address, port) for rd in addresses if (rd.address, port) not in found)
    if not found:
        raise dns.exception.DNSException(f"the NS records of {zone} have no address")
    return found
