"""The drill's load client: what a user's program would have seen while the drill ran.

One :class:`LoadClient` per name the service is reached by (each routing binding: a Route 53 or
Cloud DNS record, a Traffic Manager profile's ``<profile>.trafficmanager.net``, a load balancer's
DNS name for ARC zonal shift) runs in a thread for the whole drill. Like a program behind a
caching stub resolver, it asks the lab's DNS server (:mod:`failover_engine.lab.dns`) for the name,
keeps the answer until its TTL runs out (``min_ttl`` raises short TTLs, as resolvers that clamp
TTLs do), and every ``interval`` (50 ms) sends ``GET /`` with the name as ``Host`` to the address
of its answer, taking the answer's values in turn (round robin over several). The lab's records
hold documentation addresses, so an answer is mapped to the local server that plays its endpoint
(:func:`client_targets`: a record's values, a Traffic Manager endpoint's target, a zone's node
address, or the resolve step's ``expect``, name the endpoint; the lab's region server of that name
serves it). Every request is a :class:`~failover_engine.core.client_log.ClientRequest`.

:class:`DrillClients` runs the clients and a small HTTP API on 127.0.0.1 for the drill's playbook::

    GET /status            every client's last request and answer
    GET /wait?timeout=S    until every client's last request succeeded with the answer the DNS
                           server gives now (the client caught up with the switch), or S seconds
                           (default: 5 + 2 x the longest TTL seen); {"caught_up": bool, ...}
"""
from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dns.exception
import dns.message
import dns.query
import dns.rcode

from failover_engine.core.client_log import ClientRequest
from failover_engine.core.model import Service, Strategy
from failover_engine.core.propagation import canonical_value
from failover_engine.detection.resolve import answer_values
from failover_engine.lab.dns_zonal import load_balancer_name, zone_address
from failover_engine.lab.seed_trafficmanager import trafficmanager_steady_state

__all__ = ["ClientTarget", "DrillClients", "LoadClient", "client_targets", "drill_clients"]

INTERVAL_S = 0.05
REQUEST_TIMEOUT_S = 1.0
DNS_TIMEOUT_S = 1.0
_JOIN_S = 5.0


@dataclass
class ClientTarget:
    """One name a client resolves, and how its answers map to local servers."""

    label: str                                            # e.g. "route53 shop.drill.example."
    name: str                                             # fully qualified
    rdtype: str = "A"
    endpoints: dict[str, str] = field(default_factory=dict)  # canonical answer value -> endpoint
    urls: dict[str, str] = field(default_factory=dict)       # endpoint -> http://127.0.0.1:PORT

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "name": self.name, "type": self.rdtype, "endpoints": self.endpoints,
                "urls": self.urls}


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _base_url(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def client_targets(strategy: Strategy, service_name: str, region_urls: dict[str, str] | None = None,
                   zonal_resources: dict[str, list[str]] | None = None) -> list[ClientTarget]:
    """The names clients reach ``service_name`` by, one per routing binding that has a DNS name
    (pure). ``region_urls``: endpoint -> the local server playing it (default: the endpoint's
    probe URL's scheme, host and port); ``zonal_resources``: a zonal shift resource's zones in the
    emulator's order (default: the binding's)."""
    service = strategy.services[service_name]
    urls = {ep.name: (region_urls or {}).get(ep.name) or _base_url(getattr(ep.probe, "url", "") or "") or ""
            for ep in service.endpoints}
    urls = {k: v for k, v in urls.items() if v}
    out: dict[tuple[str, str], ClientTarget] = {}
    for binding in service.routing:
        target = _binding_target(strategy, service, binding, zonal_resources or {})
        if target is not None and (target.name, target.rdtype) not in out:
            target.urls = urls
            out[(target.name, target.rdtype)] = target
    resolve = service.validation.resolve
    if resolve is not None and resolve.name and isinstance(resolve.expect, dict):
        key = (_fqdn(resolve.name), resolve.type or "A")
        named = out.setdefault(key, ClientTarget(f"resolve {key[0]}", key[0], key[1], urls=urls))
        for ep, values in resolve.expect.items():
            for v in values:
                named.endpoints.setdefault(canonical_value(v), ep)
    return [t for t in out.values() if t.endpoints]


def _binding_target(strategy: Strategy, service: Service, binding: Any,
                    zonal_resources: dict[str, list[str]]) -> ClientTarget | None:
    kind = binding.adapter
    if kind in ("route53", "clouddns"):
        values = {canonical_value(v): ep for ep, eb in binding.endpoints.items() for v in eb.values}
        return ClientTarget(f"{kind} {_fqdn(binding.record)}", _fqdn(binding.record), binding.type, values)
    if kind == "trafficmanager":
        conn = strategy.connections.get(binding.connection or "")
        profile = trafficmanager_steady_state(binding, service, getattr(conn, "subscription_id", "lab"))
        by_name = {eb.endpoint: ep for ep, eb in binding.endpoints.items()}
        values = {}
        for doc in profile["properties"]["endpoints"]:
            target = doc["properties"].get("target")
            if target and doc["name"] in by_name:
                values[canonical_value(target)] = by_name[doc["name"]]
        name = _fqdn(f"{binding.profile.lower()}.trafficmanager.net")
        return ClientTarget(f"trafficmanager {name}", name, "A", values)
    if kind == "zonalshift":
        name = load_balancer_name(binding.resource_identifier)
        if name is None:
            return None
        zones = zonal_resources.get(binding.resource_identifier) or list(
            dict.fromkeys(eb.zone for eb in binding.endpoints.values()))
        by_zone = {eb.zone: ep for ep, eb in binding.endpoints.items()}
        values = {zone_address(i): by_zone[z] for i, z in enumerate(zones) if z in by_zone}
        return ClientTarget(f"zonalshift {_fqdn(name)}", _fqdn(name), "A", values)
    return None


# --------------------------------------------------------------------------- one client
class LoadClient:
    """Resolves ``target.name`` at ``nameserver`` like a caching stub and requests the answer every
    ``interval`` seconds in a background thread, until :meth:`stop`."""

    def __init__(self, target: ClientTarget, nameserver: tuple[str, int], *, interval: float = INTERVAL_S,
                 min_ttl: float = 0.0, timeout: float = REQUEST_TIMEOUT_S):
        self.target = target
        self.nameserver = nameserver
        self.interval = interval
        self.min_ttl = min_ttl
        self.timeout = timeout
        self.requests: list[ClientRequest] = []
        self.resolutions: list[dict[str, Any]] = []   # every DNS query: at, answer, ttl, error
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._cache: tuple[float, list[str], float] | None = None  # (expires, values, ttl)
        self._turn = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "LoadClient":
        if self._thread is None:
            self.started_at = time.time()
            self._thread = threading.Thread(target=self._loop, name=f"drill-client-{self.target.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(_JOIN_S)
        if self.stopped_at is None:
            self.stopped_at = time.time()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                request = self.request_once()
            except Exception as exc:  # noqa: BLE001 - a request that broke is a failed request, not a dead client
                request = ClientRequest(time.time(), False, error=f"client: {type(exc).__name__}: {exc}"[:200])
            with self._changed:
                self.requests.append(request)
                self._changed.notify_all()
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # late (a busy machine): go on from now, no burst to catch up
                next_at = time.monotonic()
            elif self._stop.wait(delay):
                return

    # ------------------------------------------------------------------ DNS
    def ask(self) -> tuple[list[str], float | None, str | None]:
        """(values, TTL, error) of one query to the nameserver now (no cache)."""
        host, port = self.nameserver
        try:
            resp = dns.query.udp(dns.message.make_query(self.target.name, self.target.rdtype), host,
                                 timeout=DNS_TIMEOUT_S, port=port)
        except dns.exception.Timeout:
            return [], None, f"dns: no answer within {DNS_TIMEOUT_S:g} s"
        except (OSError, dns.exception.DNSException) as exc:
            return [], None, f"dns: {type(exc).__name__}: {exc}"[:200]
        if resp.rcode() != dns.rcode.NOERROR:
            return [], None, f"dns: {dns.rcode.to_text(resp.rcode())}"
        values, _longest = answer_values(resp, self.target.name, self.target.rdtype)
        values = sorted(values)  # a set's order is not kept by DNS: round robin over a stable order
        ttls = [rrset.ttl for rrset in resp.answer]
        if not values:
            return [], None, "dns: no answer (NODATA)"
        return values, float(min(ttls)) if ttls else 0.0, None

    def _answer(self) -> tuple[list[str], float | None, str | None]:
        now = time.monotonic()
        if self._cache is not None and now < self._cache[0]:
            return self._cache[1], self._cache[2], None
        at = time.time()
        values, ttl, error = self.ask()
        self.resolutions.append({"at": round(at, 6), "answer": values, "ttl": ttl, "error": error})
        if error is None and ttl is not None:
            self._cache = (now + max(ttl, self.min_ttl), values, ttl)
        else:
            self._cache = None
        return values, ttl, error

    # ------------------------------------------------------------------ one request
    def request_once(self) -> ClientRequest:
        at = time.time()
        values, ttl, error = self._answer()
        if error is not None:
            return ClientRequest(at, False, error=error)
        answer_eps = tuple(dict.fromkeys(self.target.endpoints.get(canonical_value(v), "?") for v in values))
        value = values[self._turn % len(values)]
        self._turn += 1
        endpoint = self.target.endpoints.get(canonical_value(value))
        base = dict(at=at, endpoint=endpoint, address=value, answer=tuple(values), answer_endpoints=answer_eps,
                    ttl=ttl)
        url = self.target.urls.get(endpoint or "")
        if not url:
            return ClientRequest(ok=False, error=f"no local server plays {value}", **base)  # type: ignore[arg-type]
        parts = urlsplit(url)
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        started = time.monotonic()
        conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
        try:
            conn.request("GET", "/", headers={"Host": self.target.name.rstrip("."), "Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except ConnectionRefusedError:
            return ClientRequest(ok=False, error="connection refused", **base)  # type: ignore[arg-type]
        except (OSError, http.client.HTTPException) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return ClientRequest(ok=False, error=f"{kind}: {exc}"[:200], **base)  # type: ignore[arg-type]
        finally:
            conn.close()
        latency = round((time.monotonic() - started) * 1000, 2)
        return ClientRequest(ok=status == 200, status=status, error=None if status == 200 else f"status {status}",
                             latency_ms=latency, **base)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ state
    def last(self) -> ClientRequest | None:
        with self._changed:
            return self.requests[-1] if self.requests else None

    def caught_up(self) -> bool:
        """The last request succeeded with the answer the nameserver gives now."""
        last = self.last()
        if last is None or not last.ok:
            return False
        values, _ttl, error = self.ask()
        return error is None and {canonical_value(v) for v in values} == {canonical_value(v) for v in last.answer}

    def wait_for_request(self, after: int, timeout: float) -> bool:
        """Until more than ``after`` requests were made (or ``timeout``)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) > after or self._stop.is_set(), timeout)

    def max_ttl(self) -> float:
        return max((r["ttl"] for r in self.resolutions if r.get("ttl") is not None), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        with self._changed:
            requests = [r.to_dict() for r in self.requests]
        return {**self.target.to_dict(), "nameserver": "{}:{}".format(*self.nameserver),
                "interval_s": self.interval, "min_ttl_s": self.min_ttl, "started_at": self.started_at,
                "stopped_at": self.stopped_at, "requests": requests, "resolutions": list(self.resolutions)}


# --------------------------------------------------------------------------- the drill's clients
class DrillClients:
    """Every client of a drill, started and stopped together, with the control API (module doc)."""

    def __init__(self, targets: list[ClientTarget], nameserver: tuple[str, int], *, interval: float = INTERVAL_S,
                 min_ttl: float = 0.0):
        self.clients = [LoadClient(t, nameserver, interval=interval, min_ttl=min_ttl) for t in targets]
        self.interval = interval
        self.min_ttl = min_ttl
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "DrillClients":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return "" if self._server is None else f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "DrillClients":
        if self._server is None:
            self._server = _ControlServer(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="drill-client-control", daemon=True)
            self._thread.start()
            for client in self.clients:
                client.start()
        return self

    def stop(self) -> None:
        for client in self.clients:
            client.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(_JOIN_S)
            self._server = None

    def wait_caught_up(self, timeout: float | None = None) -> dict[str, Any]:
        """Until every client caught up with the DNS server's answer (event-driven: checked after
        each of its requests), or ``timeout`` (default 5 s + 2 x the longest TTL seen)."""
        if timeout is None:
            timeout = 5.0 + 2 * max((c.max_ttl() for c in self.clients), default=0.0)
        started = time.monotonic()
        deadline = started + timeout
        pending = list(self.clients)
        while pending and time.monotonic() < deadline:
            client = pending[0]
            seen = len(client.requests)
            if client.caught_up():
                pending.pop(0)
                continue
            client.wait_for_request(seen, max(0.0, deadline - time.monotonic()))
        return {"caught_up": not pending, "waited_s": round(time.monotonic() - started, 3), "timeout_s": timeout,
                "behind": [c.target.label for c in pending], "clients": self.status()["clients"]}

    def status(self) -> dict[str, Any]:
        out = []
        for c in self.clients:
            last = c.last()
            out.append({"label": c.target.label, "requests": len(c.requests),
                        "last": last.to_dict() if last is not None else None})
        return {"interval_s": self.interval, "min_ttl_s": self.min_ttl, "clients": out}

    def to_dict(self) -> dict[str, Any]:
        return {"interval_s": self.interval, "min_ttl_s": self.min_ttl, "clients": [c.to_dict() for c in self.clients]}


class _ControlHandler(BaseHTTPRequestHandler):
    server: "_ControlServer"
    server_version = "failover-drill-client/1"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        parts = urlsplit(self.path)
        if parts.path == "/status":
            return self._json(200, self.server.clients.status())
        if parts.path == "/wait":
            raw = parse_qs(parts.query).get("timeout", [None])[0]
            try:
                timeout = float(raw) if raw is not None else None
            except ValueError:
                return self._json(400, {"error": f"timeout must be a number of seconds, not {raw!r}"})
            return self._json(200, self.server.clients.wait_caught_up(timeout))
        return self._json(404, {"error": f"no such resource: GET {self.path}"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: no line per request on stderr."""


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, clients: DrillClients):
        self.clients = clients
        super().__init__(("127.0.0.1", 0), _ControlHandler)


def drill_clients(lab: Any, *, min_ttl: float = 0.0, interval: float = INTERVAL_S) -> DrillClients:
    """The clients of a started :class:`~failover_engine.lab.lab.Lab`: every name of every service
    of its strategy, resolved at the lab's DNS server, answered by its region servers."""
    strategy = lab.loaded.strategy
    urls = {name: region.url for name, region in lab.regions.items()}
    zonal = {k: list(v) for k, v in lab.zonalshift.resources.items()} if lab.zonalshift is not None else None
    targets = [t for name in strategy.services for t in client_targets(strategy, name, urls, zonal)]
    return DrillClients(targets, lab.dns.address, interval=interval, min_ttl=min_ttl)
