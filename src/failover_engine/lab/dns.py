"""The lab's authoritative DNS server: what a client would be told, from the state the adapters write.

:class:`LabDns` serves real DNS over UDP and TCP on 127.0.0.1 (one port, the OS chooses it) for the
zones of its :class:`RecordSource` s, which read their provider over HTTP on every query: the moto
Route 53 zones, the Cloud DNS emulator's managed zones and the Traffic Manager emulator's profiles
(``failover_engine.lab.dns_sources``). Nothing is copied when the engine writes: a query right after
a write answers the new state, as the provider's own DNS would once it is in sync.

How it answers (RFC 1034 authoritative behaviour, kept small):

* a name in none of the zones: ``REFUSED`` (it is nobody's authority here), without AA;
* a name in a zone (the longest zone apex that ends the name): AA set; the record set of the asked
  type, with its record's TTL; a ``CNAME`` at the name is answered and followed when its target lies
  in a zone of this server (at most 8 links); a name that exists without that type: ``NOERROR``
  with no answer and the SOA in the authority section (NODATA); a name that does not exist:
  ``NXDOMAIN`` with the SOA;
* the apex's ``SOA`` and ``NS`` are this server's own: ``ns1.<apex>`` (address 127.0.0.1, in the
  additional section) and ``hostmaster.<apex>``, TTL 60; the providers' own SOA/NS records are not
  served (they name the real clouds' servers, which a lab client must never be sent to);
* UDP answers larger than 512 bytes (or the query's EDNS size) are truncated (TC), TCP answers are
  whole; opcodes other than QUERY: ``NOTIMP``; a source that cannot be read: ``SERVFAIL``.

:meth:`LabDns.freeze` keeps answering the state of the moment it was called (every zone read once)
until :meth:`LabDns.thaw`: a resolver that keeps serving a stale answer, for tests and drills.

Not served: wildcards, DNSSEC, zone transfers, delegations (an NS below an apex is answered as a
plain record), EDNS options.
"""
from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["LabDns", "RecordSource", "Records", "ZoneView", "build_response"]

Records = dict[tuple[str, str], tuple[int, list[str]]]
"""(owner name: lower case, fully qualified; record type) → (TTL, values as zone-file text)."""

APEX_TTL = 60
NS_LABEL = "ns1"
MAX_CHAIN = 8
UDP_SIZE = 512
TCP_IDLE_S = 10.0
ZONE_LIST_CACHE_S = 1.0
_POLL_S = 0.05


class RecordSource(Protocol):
    """Where some zones' records come from. An implementation reads its provider when asked (no
    copy of its own), is safe to call from several threads, and raises on a provider it cannot read."""

    kind: str

    def zones(self) -> list[str]:
        """The apex names (lower case, fully qualified) this source is authoritative for, now."""

    def records(self, zone: str) -> Records:
        """Every record set of ``zone`` as its provider's DNS would answer it now: routing
        policies already evaluated (which of a failover pair, which weighted set, ...)."""


def fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


@dataclass
class ZoneView:
    """One zone's records at one moment, with this server's SOA and NS at the apex."""

    apex: str
    records: Records
    kind: str = ""

    @classmethod
    def of(cls, apex: str, records: Records, kind: str = "", ns_address: str = "127.0.0.1") -> "ZoneView":
        apex = fqdn(apex)
        own = {k: v for k, v in records.items() if not (k[0] == apex and k[1] in ("SOA", "NS"))}
        ns = f"{NS_LABEL}.{apex}"
        serial = int(time.time()) % 2**32
        own[(apex, "SOA")] = (APEX_TTL, [f"{ns} hostmaster.{apex} {serial} 3600 600 86400 {APEX_TTL}"])
        own[(apex, "NS")] = (APEX_TTL, [ns])
        own.setdefault((ns, "A"), (APEX_TTL, [ns_address]))
        return cls(apex, own, kind)

    def at(self, name: str) -> dict[str, tuple[int, list[str]]]:
        return {rtype: rr for (owner, rtype), rr in self.records.items() if owner == name}

    def exists(self, name: str) -> bool:
        """The name holds records, or names under it do (an empty non-terminal exists too)."""
        return any(owner == name or owner.endswith("." + name) for owner, _unused in self.records)


def _rrset(name: str, rtype: str, ttl: int, values: list[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name, ttl, dns.rdataclass.IN, rtype, values,
                                    origin=dns.name.root, relativize=False)


def _add(section: list[dns.rrset.RRset], rrset: dns.rrset.RRset) -> None:
    if rrset not in section:
        section.append(rrset)


def build_response(query: dns.message.Message, find_zone: Callable[[str], ZoneView | None]) -> dns.message.Message:
    """The authoritative answer to ``query`` from the zones ``find_zone`` gives (pure but for it).

    ``find_zone(name)`` returns the view of the zone whose apex is the longest suffix of ``name``,
    or None when no zone holds it."""
    resp = dns.message.make_response(query)
    resp.flags &= ~dns.flags.RA
    if query.opcode() != dns.opcode.QUERY:
        resp.set_rcode(dns.rcode.NOTIMP)
        return resp
    if len(query.question) != 1:
        resp.set_rcode(dns.rcode.FORMERR)
        return resp
    q = query.question[0]
    qname, qtype = q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)
    zone = find_zone(qname) if q.rdclass == dns.rdataclass.IN else None
    if zone is None:
        resp.set_rcode(dns.rcode.REFUSED)
        return resp
    resp.flags |= dns.flags.AA
    name, seen = qname, {qname}
    while True:
        here = zone.at(name)
        if qtype == "ANY" and here:
            for rtype, (ttl, values) in sorted(here.items()):
                _add(resp.answer, _rrset(name, rtype, ttl, values))
            break
        if qtype in here:
            ttl, values = here[qtype]
            _add(resp.answer, _rrset(name, qtype, ttl, values))
            break
        if "CNAME" in here:
            ttl, values = here["CNAME"]
            _add(resp.answer, _rrset(name, "CNAME", ttl, values))
            target = fqdn(values[0])
            nxt = find_zone(target)
            if nxt is None or target in seen or len(seen) > MAX_CHAIN:
                break  # another authority's name (or a loop): the client follows it
            seen.add(target)
            zone, name = nxt, target
            continue
        if not here and not zone.exists(name):
            resp.set_rcode(dns.rcode.NXDOMAIN)
        ttl, values = zone.records[(zone.apex, "SOA")]
        _add(resp.authority, _rrset(zone.apex, "SOA", ttl, values))
        break
    for rrset in list(resp.answer):
        if rrset.rdtype == dns.rdatatype.NS:
            _glue(resp, zone, rrset)
    return resp


def _glue(resp: dns.message.Message, zone: ZoneView, ns: dns.rrset.RRset) -> None:
    for rdata in ns:
        target = rdata.target.to_text().lower()
        for rtype in ("A", "AAAA"):
            if (target, rtype) in zone.records:
                ttl, values = zone.records[(target, rtype)]
                _add(resp.additional, _rrset(target, rtype, ttl, values))


def _formerr(data: bytes) -> bytes | None:
    """A FORMERR header for a message that is not DNS, when its id can be read (else no answer)."""
    if len(data) < 12:
        return None
    (ident,) = struct.unpack("!H", data[:2])
    return struct.pack("!HHHHHH", ident, 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)


# --------------------------------------------------------------------------- the server
class LabDns:
    """An authoritative DNS server on ``host`` (UDP and TCP, one port) for its sources' zones.

    ``start()`` binds and serves in background threads (cheap: no provider is read before the first
    query); ``stop()`` ends it; ``address`` is ``(host, port)``. ``sources`` may be replaced while it
    runs. Also a context manager."""

    def __init__(self, sources: Sequence[RecordSource] = (), host: str = "127.0.0.1", port: int = 0):
        self.sources: list[RecordSource] = list(sources)
        self.host, self._port = host, port
        self.queries = 0        # queries answered (any rcode)
        self.failures = 0       # SERVFAIL answers: a source could not be read
        self.last_error = ""
        self._frozen: dict[str, ZoneView] | None = None
        self._zone_index: tuple[float, list[tuple[str, int]]] | None = None
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "LabDns":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self._port

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def start(self) -> "LabDns":
        if self._servers:
            return self
        for _attempt in range(20):  # a UDP port the OS chose may be taken for TCP: choose again
            udp = _UdpServer((self.host, self._port), self)
            port = udp.server_address[1]
            try:
                tcp = _TcpServer((self.host, port), self)
            except OSError:
                udp.server_close()
                if self._port:
                    raise
                continue
            self._port = port
            self._servers = [udp, tcp]
            break
        else:
            raise OSError(f"no port on {self.host} is free for both UDP and TCP")
        for server, proto in zip(self._servers, ("udp", "tcp")):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _POLL_S},
                                      name=f"lab-dns-{proto}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both listeners (idempotent)."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(2.0)
        self._servers, self._threads = [], []

    def status(self) -> dict[str, Any]:
        return {"address": f"{self.host}:{self._port}", "frozen": self.frozen, "queries": self.queries,
                "failures": self.failures, "last_error": self.last_error,
                "sources": [s.kind for s in self.sources]}

    # ------------------------------------------------------------------ stale answers on purpose
    def freeze(self) -> list[str]:
        """Read every zone of every source now and answer from that copy until :meth:`thaw`.
        Returns the frozen zones' apexes."""
        snapshot: dict[str, ZoneView] = {}
        for apex, i in self._zones(fresh=True)[0]:
            source = self.sources[i]
            snapshot.setdefault(apex, ZoneView.of(apex, source.records(apex), source.kind, self.host))
        with self._lock:
            self._frozen = snapshot
        return sorted(snapshot)

    def thaw(self) -> None:
        """Answer the providers' live state again."""
        with self._lock:
            self._frozen = None

    # ------------------------------------------------------------------ answering
    def _zones(self, fresh: bool = False) -> tuple[list[tuple[str, int]], bool]:
        """((apex, source index) of every zone, longest apex first; whether it was read just now).
        The list is kept for a second (zones come and go rarely; records are read on every query)."""
        with self._lock:
            cached = self._zone_index
        if cached is not None and not fresh and time.monotonic() - cached[0] < ZONE_LIST_CACHE_S:
            return cached[1], False
        found: dict[str, int] = {}
        for i, source in enumerate(list(self.sources)):
            for apex in source.zones():
                found.setdefault(fqdn(apex), i)  # an apex two sources claim: the first source's
        index = sorted(found.items(), key=lambda item: (-len(item[0]), item[0]))
        with self._lock:
            self._zone_index = (time.monotonic(), index)
        return index, True

    def find_zone(self, name: str) -> ZoneView | None:
        """The view of the zone that holds ``name`` (the longest apex ending it), read now."""
        name = fqdn(name)
        with self._lock:
            frozen = self._frozen
        if frozen is not None:
            apexes: list[tuple[str, Any]] = sorted(frozen.items(), key=lambda item: -len(item[0]))
            return next((view for apex, view in apexes if _under(name, apex)), None)
        index, fresh = self._zones()
        if not any(_under(name, apex) for apex, _unused in index) and not fresh:
            index, fresh = self._zones(fresh=True)  # a zone made in the last second is answered at once
        for apex, i in index:
            if _under(name, apex):
                source = self.sources[i]
                return ZoneView.of(apex, source.records(apex), source.kind, self.host)
        return None

    def answer_wire(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The wire answer to one wire query (None: nothing to answer)."""
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return _formerr(data)
        self.queries += 1
        limit = 65535 if tcp else max(UDP_SIZE, query.payload if query.edns >= 0 else UDP_SIZE)
        try:
            resp = build_response(query, self.find_zone)
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            short = dns.message.make_response(query)
            short.flags |= dns.flags.TC | (resp.flags & dns.flags.AA)
            return short.to_wire()
        except Exception as exc:  # noqa: BLE001 - a provider that cannot be read is SERVFAIL, not a crash
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            failed = dns.message.make_response(query)
            failed.set_rcode(dns.rcode.SERVFAIL)
            return failed.to_wire()


def _under(name: str, apex: str) -> bool:
    return name == apex or name.endswith("." + apex) or apex == "."


class _UdpHandler(socketserver.BaseRequestHandler):
    server: "_UdpServer"

    def handle(self) -> None:
        data, sock = self.request
        out = self.server.dns.answer_wire(data, tcp=False)
        if out is not None:
            with contextlib.suppress(OSError):
                sock.sendto(out, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    server: "_TcpServer"

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(TCP_IDLE_S)
        with contextlib.suppress(OSError):
            while True:  # several queries may come on one connection (RFC 7766)
                head = _recv_exact(sock, 2)
                if head is None:
                    return
                data = _recv_exact(sock, struct.unpack("!H", head)[0])
                if data is None:
                    return
                out = self.server.dns.answer_wire(data, tcp=True)
                if out is None:
                    return
                sock.sendall(struct.pack("!H", len(out)) + out)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], lab_dns: LabDns):
        self.dns = lab_dns
        super().__init__(address, _UdpHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a lab client going away is not an error worth a traceback."""


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], lab_dns: LabDns):
        self.dns = lab_dns
        super().__init__(address, _TcpHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet, as the UDP side."""
