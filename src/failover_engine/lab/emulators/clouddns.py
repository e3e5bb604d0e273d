"""A Google Cloud DNS v1 REST emulator: managed zones, record sets (routing policies included), changes.

The real SDK clients (google-cloud-dns, google-api-python-client's dns v1) talk to it over HTTP
with ``client_options={"api_endpoint": emulator.url}`` and anonymous credentials. State lives in
memory, so a test asserts on what a client really changed.

Emulated, after the documented behaviour of the v1 API:

* ``managedZones``: create (with the SOA and NS record sets at the apex and change ``"0"`` that
  added them), get, list (``dnsName`` filter, paging), delete (refused while the zone holds other
  record sets: 400 ``containerNotEmpty``). Projects exist implicitly.
* ``rrsets``: list with the ``name`` and ``type`` filters (``type`` needs ``name``, both exact
  and case-insensitive), ``maxResults``/``pageToken`` paging, and get by name/type. A record set
  holds either ``rrdatas`` or a ``routingPolicy`` (``wrr``, ``geo`` or ``primaryBackup``), never both.
* ``changes``: create is atomic: every addition and deletion is checked first, then all are
  applied or none. A deletion must match the existing record set exactly (ttl, rrdatas, routing
  policy; ``kind`` and default-valued fields ignored, rrdatas compared as a set): a missing one is
  404 ``notFound``, a different one 412 ``conditionNotMet``. An addition whose name/type exists and
  is not deleted by the same change is 409 ``alreadyExists``. The created change answers
  ``status: "pending"``; ``GET changes/{id}`` answers ``"done"`` (after ``pending_gets`` pending
  answers, 0 by default). Changes list (paging, ``sortOrder``).
* Errors in Google's JSON shape: ``{"error": {"code", "message", "status", "errors": [{"message",
  "domain", "reason"}]}}``. Unknown zone: 404 ``notFound``, "The 'parameters.managedZone' resource
  named 'x' does not exist.".
* ``fields=a,b`` partial responses (top-level fields only).

Not emulated: authentication and IAM (any or no bearer token is accepted), quotas (use fault
injection), DNSSEC, private zones, forwarding/peering, response policies, policies, the
``resourceRecordSets`` create/patch/delete shortcuts, record-data validation beyond A/AAAA
addresses, CNAME-exclusivity checks, health checking (routing policies are stored, not evaluated)
and DNS serving itself (nothing answers port 53).

Test helpers: :meth:`CloudDnsEmulator.fail_next` (or ``POST /_emulator/faults``) makes coming
requests answer an error - e.g. ``fail_next(1, 500, after=2)``: the third request answers 500;
``applied=True`` processes the request first (a write that succeeded but whose answer was lost).
``requests`` logs every API request; ``POST /_emulator/reset`` clears everything.

Command line (serves until Ctrl-C)::

    python -m failover_engine.lab.emulators.clouddns --port 8085 --project p --zone shop:shop.example. [--zone ...]
"""
from __future__ import annotations

import argparse
import base64
import copy
import ipaddress
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/dns/v1/projects/"
RECORD_TYPES = {"A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "IPSECKEY", "MX", "NAPTR", "NS",
                "PTR", "SOA", "SPF", "SRV", "SSHFP", "SVCB", "TLSA", "TXT"}
ZONE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
NAME_SERVERS = [f"ns-cloud-a{i}.googledomains.com." for i in range(1, 5)]
DEFAULT_PAGE = 1000
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                504: "DEADLINE_EXCEEDED"}
FAULT_TEXT = {429: ("rateLimitExceeded", "Rate Limit Exceeded"),
              500: ("backendError", "Internal error encountered."),
              502: ("backendError", "Bad Gateway"),
              503: ("backendError", "The service is currently unavailable."),
              504: ("backendError", "Deadline exceeded.")}


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": STATUS_NAMES.get(self.code, "UNKNOWN"),
                          "errors": [{"message": self.message, "domain": "global", "reason": self.reason}]}}


def _invalid(what: str, value: Any) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for '{what}': '{value}'")


# --------------------------------------------------------------------------- record sets
def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"


def _prune(value: Any) -> Any:
    """Drop ``kind`` and default-valued fields (proto3 JSON: 0, false, "", [] and {} are absent)."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items() if k != "kind"}
        return {k: v for k, v in out.items() if v not in (0, False, "", [], {}, None) or v is True}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _canonical(value: Any, key: str = "") -> Any:
    """Comparable form: pruned, numbers as floats, rrdata-like lists as sorted (DNS sets)."""
    if isinstance(value, dict):
        return {k: _canonical(v, k) for k, v in _prune(value).items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if key in ("rrdatas", "signatureRrdatas", "externalEndpoints"):
            return sorted(items, key=lambda v: str(v).lower())
        return items
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value.lower() if key in ("name", "location") and isinstance(value, str) else value


def _same_rrset(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _canonical(a) == _canonical(b)


def _check_address(value: Any, rtype: str, where: str) -> None:
    try:
        ip = ipaddress.ip_address(value)
    except (TypeError, ValueError):
        raise _invalid(where, value) from None
    if rtype in ("A", "AAAA") and ip.version != (4 if rtype == "A" else 6):
        raise _invalid(where, value)


def _check_rrdatas(rrdatas: Any, rtype: str, where: str) -> None:
    if not isinstance(rrdatas, list) or not rrdatas or not all(isinstance(r, str) and r for r in rrdatas):
        raise _invalid(where, rrdatas)
    if rtype in ("A", "AAAA"):
        for i, r in enumerate(rrdatas):
            _check_address(r, rtype, f"{where}[{i}]")


def _check_targets(targets: Any, rtype: str, where: str) -> None:
    if not isinstance(targets, dict):
        raise _invalid(where, targets)
    ext, ilb = targets.get("externalEndpoints") or [], targets.get("internalLoadBalancers") or []
    if bool(ext) == bool(ilb):
        raise _invalid(where, "set either internalLoadBalancers or externalEndpoints")
    for i, ip in enumerate(ext):
        _check_address(ip, rtype, f"{where}.externalEndpoints[{i}]")


def _check_items(items: Any, rtype: str, where: str, *, geo: bool) -> None:
    if not isinstance(items, list) or not items:
        raise _invalid(where, items)
    seen: set[str] = set()
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _invalid(at, item)
        if geo:
            loc = item.get("location")
            if not isinstance(loc, str) or not loc:
                raise _invalid(f"{at}.location", loc)
            if loc.lower() in seen:
                raise _invalid(f"{at}.location", f"{loc} (duplicate location)")
            seen.add(loc.lower())
        else:
            weight = item.get("weight", 0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise _invalid(f"{at}.weight", weight)
        if item.get("rrdatas"):
            _check_rrdatas(item["rrdatas"], rtype, f"{at}.rrdatas")
        elif item.get("healthCheckedTargets"):
            _check_targets(item["healthCheckedTargets"], rtype, f"{at}.healthCheckedTargets")
        else:
            raise _invalid(f"{at}.rrdatas", "<empty>")


def _check_policy(policy: Any, rtype: str, where: str) -> None:
    if not isinstance(policy, dict):
        raise _invalid(where, policy)
    kinds = [k for k in ("geo", "wrr", "primaryBackup") if policy.get(k)]
    if len(kinds) != 1:
        raise _invalid(where, "exactly one of geo, wrr, primaryBackup")
    body = policy[kinds[0]]
    if kinds[0] == "wrr":
        _check_items(body.get("items"), rtype, f"{where}.wrr.items", geo=False)
    elif kinds[0] == "geo":
        _check_items(body.get("items"), rtype, f"{where}.geo.items", geo=True)
    else:
        _check_targets(body.get("primaryTargets"), rtype, f"{where}.primaryBackup.primaryTargets")
        backup = body.get("backupGeoTargets") or {}
        _check_items(backup.get("items"), rtype, f"{where}.primaryBackup.backupGeoTargets.items", geo=True)
        trickle = body.get("trickleTraffic", 0)
        if isinstance(trickle, bool) or not isinstance(trickle, (int, float)) or not 0 <= trickle <= 1:
            raise _invalid(f"{where}.primaryBackup.trickleTraffic", trickle)


def _normalise_rrset(raw: Any, dns_name: str, where: str) -> dict[str, Any]:
    """Validate one record set of a change and return it as stored (and answered)."""
    if not isinstance(raw, dict):
        raise _invalid(where, raw)
    name = raw.get("name")
    if not isinstance(name, str) or not name.endswith(".") or not (
            name.lower() == dns_name or name.lower().endswith("." + dns_name)):
        raise _invalid(f"{where}.name", name)
    rtype = raw.get("type")
    if rtype not in RECORD_TYPES:
        raise _invalid(f"{where}.type", rtype)
    try:
        ttl = int(raw.get("ttl", 0))  # google-cloud-dns sends the ttl as a string
    except (TypeError, ValueError):
        raise _invalid(f"{where}.ttl", raw.get("ttl")) from None
    if ttl < 0:
        raise _invalid(f"{where}.ttl", ttl)
    rrdatas, policy = raw.get("rrdatas"), raw.get("routingPolicy")
    if rrdatas and policy:
        raise ApiError(400, "invalid", f"The resource record set '{where}' is invalid: it holds both rrdatas "
                       "and a routing policy; a record set has one or the other.")
    if policy:
        _check_policy(policy, rtype, f"{where}.routingPolicy")
    else:
        _check_rrdatas(rrdatas, rtype, f"{where}.rrdatas")
    out: dict[str, Any] = {"kind": "dns#resourceRecordSet", "name": name.lower(), "type": rtype, "ttl": ttl}
    if policy:
        out["routingPolicy"] = _prune(copy.deepcopy(policy))
    else:
        out["rrdatas"] = list(rrdatas)
    if raw.get("signatureRrdatas"):
        out["signatureRrdatas"] = list(raw["signatureRrdatas"])
    return out


# --------------------------------------------------------------------------- state
@dataclass
class Zone:
    project: str
    resource: dict[str, Any]
    rrsets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    pending_gets: dict[str, int] = field(default_factory=dict)

    @property
    def dns_name(self) -> str:
        return self.resource["dnsName"]

    def sorted_rrsets(self) -> list[dict[str, Any]]:
        return [self.rrsets[k] for k in sorted(self.rrsets)]


@dataclass
class Fault:
    status: int
    count: int
    after: int = 0
    method: str | None = None
    path: str | None = None
    applied: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (self.path is None or self.path in path)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


class CloudDnsEmulator:
    """The emulator: ``start()`` serves on ``url`` from a thread; ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, pending_gets: int = 0):
        self.host, self.port = host, port
        self.pending_gets = pending_gets
        self.requests: list[Request] = []
        self._zones: dict[tuple[str, str], Zone] = {}
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "CloudDnsEmulator":
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="clouddns-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=2)
            self._server = None

    def __enter__(self) -> "CloudDnsEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self._zones.clear()
            self._faults.clear()
            self.requests.clear()
            self.pending_gets = 0

    # ------------------------------------------------------------------ test helpers (in process)
    def fail_next(self, n: int = 1, status: int = 500, *, after: int = 0, method: str | None = None,
                  path: str | None = None, applied: bool = False) -> None:
        """The next ``n`` matching requests, after ``after`` matching ones pass, answer ``status``.
        ``method``/``path`` (a substring) narrow which requests match; ``applied=True`` processes the
        request before answering the error (the write happened, the answer was lost)."""
        with self._lock:
            self._faults.append(Fault(status, n, after, method, path, applied))

    def create_zone(self, project: str, name: str, dns_name: str, description: str = "") -> dict[str, Any]:
        with self._lock:
            return self._create_zone(project, {"name": name, "dnsName": dns_name, "description": description})

    def apply_change(self, project: str, zone: str, additions: list[dict[str, Any]] | None = None,
                     deletions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A change made by someone else (no request logged, no fault); raises :class:`ApiError`."""
        with self._lock:
            return self._create_change(project, zone, {"additions": additions or [], "deletions": deletions or []})

    def rrsets(self, project: str, zone: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._zone(project, zone).sorted_rrsets())

    def rrset(self, project: str, zone: str, name: str, rtype: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._zone(project, zone).rrsets.get((name.lower(), rtype))
            return copy.deepcopy(found)

    def changes(self, project: str, zone: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._zone(project, zone).changes)

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        """Logged API requests, optionally of one method and with ``contains`` in the path."""
        return [r for r in list(self.requests) if (method is None or r.method == method) and contains in r.path]

    # ------------------------------------------------------------------ request dispatch
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if path.startswith("/_emulator/"):
            return self._admin(method, path, body)
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            return 400, ApiError(400, "parseError", "Parse Error").body()
        with self._lock:
            self.requests.append(Request(method, path, query, payload))
            fault = self._take_fault(method, path)
            if fault is not None and not fault.applied:
                return fault.status, self._fault_body(fault.status)
            try:
                status, result = self._route(method, path, query, payload)
            except ApiError as exc:
                status, result = exc.code, exc.body()
            if fault is not None:
                return fault.status, self._fault_body(fault.status)
        if status == 200 and query.get("fields") and isinstance(result, dict):
            wanted = {f.strip().split("/")[0].split("(")[0] for f in query["fields"].split(",")}
            result = {k: v for k, v in result.items() if k in wanted}
        return status, result

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.count > 0 and fault.matches(method, path):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.count -= 1
                return fault
        return None

    @staticmethod
    def _fault_body(status: int) -> dict[str, Any]:
        reason, message = FAULT_TEXT.get(status, ("error", f"injected error {status}"))
        return ApiError(status, reason, message).body()

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        if method == "POST" and path == "/_emulator/faults":
            spec = json.loads(body or b"{}")
            self.fail_next(int(spec.get("count", 1)), int(spec.get("status", 500)), after=int(spec.get("after", 0)),
                           method=spec.get("method"), path=spec.get("path"), applied=bool(spec.get("applied")))
            return 200, {"ok": True}
        if method == "POST" and path == "/_emulator/reset":
            self.reset()
            return 200, {"ok": True}
        if method == "GET" and path == "/_emulator/requests":
            return 200, {"requests": [r.__dict__ for r in self.calls()]}
        return 404, ApiError(404, "notFound", f"no emulator route {method} {path}").body()

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any] | None]:
        if not path.startswith(API_PREFIX):
            raise ApiError(404, "notFound", f"The requested URL {path} was not found on this server.")
        parts = path[len(API_PREFIX):].strip("/").split("/")
        project, rest = parts[0], parts[1:]
        if not project or not rest or rest[0] != "managedZones":
            raise ApiError(404, "notFound", f"The requested URL {path} was not found on this server.")
        if len(rest) == 1:
            if method == "GET":
                return 200, self._list_zones(project, query)
            if method == "POST":
                return 200, self._create_zone(project, body)
        elif len(rest) == 2:
            if method == "GET":
                return 200, copy.deepcopy(self._zone(project, rest[1]).resource)
            if method == "DELETE":
                self._delete_zone(project, rest[1])
                return 204, None
        elif rest[2] == "rrsets" and method == "GET":
            if len(rest) == 3:
                return 200, self._list_rrsets(project, rest[1], query)
            if len(rest) == 5:
                return 200, self._get_rrset(project, rest[1], rest[3], rest[4])
        elif rest[2] == "changes":
            if len(rest) == 3 and method == "POST":
                return 200, self._create_change(project, rest[1], body)
            if len(rest) == 3 and method == "GET":
                return 200, self._list_changes(project, rest[1], query)
            if len(rest) == 4 and method == "GET":
                return 200, self._get_change(project, rest[1], rest[3])
        raise ApiError(405 if len(rest) <= 5 else 404, "methodNotAllowed" if len(rest) <= 5 else "notFound",
                       f"{method} is not supported on {path}")

    # ------------------------------------------------------------------ zones
    def _zone(self, project: str, name: str) -> Zone:
        zone = self._zones.get((project, name))
        if zone is None:
            raise ApiError(404, "notFound", f"The 'parameters.managedZone' resource named '{name}' does not exist.")
        return zone

    def _create_zone(self, project: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("name"):
            raise ApiError(400, "required", "The 'entity.managedZone.name' parameter is required but was missing.")
        if not body.get("dnsName"):
            raise ApiError(400, "required", "The 'entity.managedZone.dnsName' parameter is required but was missing.")
        name, dns_name = body["name"], str(body["dnsName"]).lower()
        if not ZONE_NAME.match(name):
            raise _invalid("entity.managedZone.name", name)
        if not dns_name.endswith(".") or dns_name == ".":
            raise _invalid("entity.managedZone.dnsName", body["dnsName"])
        if (project, name) in self._zones:
            raise ApiError(409, "alreadyExists", f"The resource 'entity.managedZone' named '{name}' already exists")
        resource = {"kind": "dns#managedZone", "name": name, "dnsName": dns_name,
                    "description": body.get("description", ""), "id": str(next(self._ids) * 7919 + 10 ** 15),
                    "nameServers": list(NAME_SERVERS), "creationTime": _now(),
                    "visibility": body.get("visibility", "public")}
        zone = Zone(project, resource)
        apex = [{"kind": "dns#resourceRecordSet", "name": dns_name, "type": "NS", "ttl": 21600,
                 "rrdatas": list(NAME_SERVERS)},
                {"kind": "dns#resourceRecordSet", "name": dns_name, "type": "SOA", "ttl": 21600,
                 "rrdatas": [f"{NAME_SERVERS[0]} cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300"]}]
        for rrs in apex:
            zone.rrsets[(rrs["name"], rrs["type"])] = rrs
        zone.changes.append({"kind": "dns#change", "id": "0", "startTime": resource["creationTime"],
                             "status": "done", "isServing": True, "additions": copy.deepcopy(apex)})
        self._zones[(project, name)] = zone
        return copy.deepcopy(resource)

    def _delete_zone(self, project: str, name: str) -> None:
        zone = self._zone(project, name)
        if any(t not in ("SOA", "NS") or n != zone.dns_name for n, t in zone.rrsets):
            raise ApiError(400, "containerNotEmpty", f"The resource named '{name}' cannot be deleted because it is "
                           "not empty")
        del self._zones[(project, name)]

    def _list_zones(self, project: str, query: dict[str, str]) -> dict[str, Any]:
        dns_name = query.get("dnsName")
        if dns_name is not None and not dns_name.endswith("."):
            raise _invalid("parameters.dnsName", dns_name)
        zones = [z.resource for (p, _unused), z in sorted(self._zones.items()) if p == project
                 and (dns_name is None or z.dns_name == dns_name.lower())]
        return self._page("managedZones", "dns#managedZonesListResponse", zones, query)

    # ------------------------------------------------------------------ record sets
    def _list_rrsets(self, project: str, zone_name: str, query: dict[str, str]) -> dict[str, Any]:
        zone = self._zone(project, zone_name)
        name, rtype = query.get("name"), query.get("type")
        if name is not None and not name.endswith("."):
            raise _invalid("parameters.name", name)
        if rtype is not None:
            if name is None:
                raise _invalid("parameters.name", "")
            if rtype not in RECORD_TYPES:
                raise _invalid("parameters.type", rtype)
        found = [r for r in zone.sorted_rrsets()
                 if (name is None or r["name"] == name.lower()) and (rtype is None or r["type"] == rtype)]
        return self._page("rrsets", "dns#resourceRecordSetsListResponse", found, query)

    def _get_rrset(self, project: str, zone_name: str, name: str, rtype: str) -> dict[str, Any]:
        found = self._zone(project, zone_name).rrsets.get((name.lower(), rtype))
        if found is None:
            raise ApiError(404, "notFound", f"The 'parameters.name' resource named '{name}' does not exist.")
        return copy.deepcopy(found)

    @staticmethod
    def _page(key: str, kind: str, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        try:
            size = int(query.get("maxResults", DEFAULT_PAGE))
        except ValueError:
            raise _invalid("parameters.maxResults", query.get("maxResults")) from None
        if size <= 0:
            raise _invalid("parameters.maxResults", size)
        start = 0
        if query.get("pageToken"):
            try:
                start = int(base64.urlsafe_b64decode(query["pageToken"].encode()).decode())
            except ValueError:
                raise _invalid("parameters.pageToken", query["pageToken"]) from None
        out: dict[str, Any] = {"kind": kind, key: copy.deepcopy(items[start:start + size])}
        if start + size < len(items):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return out

    # ------------------------------------------------------------------ changes
    def _create_change(self, project: str, zone_name: str, body: Any) -> dict[str, Any]:
        zone = self._zone(project, zone_name)
        body = body if isinstance(body, dict) else {}
        raw_add, raw_del = body.get("additions") or [], body.get("deletions") or []
        if not raw_add and not raw_del:
            raise ApiError(400, "required", "The 'entity.change' parameter is required but was missing.")
        additions = [_normalise_rrset(r, zone.dns_name, f"entity.change.additions[{i}]") for i, r in enumerate(raw_add)]
        deletions = [_normalise_rrset(r, zone.dns_name, f"entity.change.deletions[{i}]") for i, r in enumerate(raw_del)]
        deleted: set[tuple[str, str]] = set()
        for i, rrs in enumerate(deletions):  # every deletion must match what is there, exactly
            key = (rrs["name"], rrs["type"])
            current = zone.rrsets.get(key)
            if current is None or key in deleted:
                raise ApiError(404, "notFound", f"The 'entity.change.deletions[{i}]' resource named "
                               f"'{rrs['name']} ({rrs['type']})' does not exist.")
            if not _same_rrset(current, rrs):
                raise ApiError(412, "conditionNotMet", f"Precondition not met for 'entity.change.deletions[{i}]'")
            deleted.add(key)
        added: set[tuple[str, str]] = set()
        for i, rrs in enumerate(additions):
            key = (rrs["name"], rrs["type"])
            if (key in zone.rrsets and key not in deleted) or key in added:
                raise ApiError(409, "alreadyExists", f"The 'entity.change.additions[{i}]' resource named "
                               f"'{rrs['name']} ({rrs['type']})' already exists")
            added.add(key)
        for key in deleted:  # the apex must keep exactly one SOA and one NS record set
            if key[0] == zone.dns_name and key[1] in ("SOA", "NS") and key not in added:
                raise ApiError(400, "invalidZoneApex", f"The resource record set '{key[0]} ({key[1]})' cannot be "
                               "deleted: a zone must contain exactly one SOA and one NS record set at its apex.")
        for key in deleted:  # all checks passed: apply everything at once
            del zone.rrsets[key]
        for rrs in additions:
            zone.rrsets[(rrs["name"], rrs["type"])] = rrs
        change = {"kind": "dns#change", "id": str(len(zone.changes)), "startTime": _now(), "status": "pending",
                  "isServing": True, "additions": copy.deepcopy(additions), "deletions": copy.deepcopy(deletions)}
        zone.changes.append(change)
        zone.pending_gets[change["id"]] = self.pending_gets
        return copy.deepcopy(change)

    def _get_change(self, project: str, zone_name: str, change_id: str) -> dict[str, Any]:
        zone = self._zone(project, zone_name)
        found = next((c for c in zone.changes if c["id"] == change_id), None)
        if found is None:
            raise ApiError(404, "notFound", f"The 'parameters.changeId' resource named '{change_id}' does not exist.")
        if zone.pending_gets.get(change_id, 0) > 0:
            zone.pending_gets[change_id] -= 1
        else:
            found["status"] = "done"
        return copy.deepcopy(found)

    def _list_changes(self, project: str, zone_name: str, query: dict[str, str]) -> dict[str, Any]:
        changes = list(self._zone(project, zone_name).changes)
        if query.get("sortOrder", "ascending") not in ("ascending", "descending"):
            raise _invalid("parameters.sortOrder", query["sortOrder"])
        if query.get("sortOrder") == "descending":
            changes.reverse()
        return self._page("changes", "dns#changesListResponse", changes, query)


class _Handler(BaseHTTPRequestHandler):
    emulator: CloudDnsEmulator
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, delayed ACKs cost 40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, result = self.emulator.handle(self.command, self.path, body)
        data = json.dumps(result).encode() if result is not None else b""
        self.send_response(status)
        if result is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve  # noqa: N815 - http.server naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Google Cloud DNS v1 REST emulator (in memory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--project", default="emulator-project", help="project of the --zone entries")
    parser.add_argument("--zone", action="append", default=[], metavar="NAME:DNSNAME",
                        help="create a managed zone at start, e.g. shop:shop.example. (repeatable)")
    args = parser.parse_args(argv)
    emulator = CloudDnsEmulator(args.host, args.port)
    for spec in args.zone:
        name, sep, dns_name = spec.partition(":")
        if not sep or not dns_name:
            parser.error(f"--zone {spec!r}: use NAME:DNSNAME, e.g. shop:shop.example.")
        emulator.create_zone(args.project, name, dns_name if dns_name.endswith(".") else dns_name + ".")
    emulator.start()
    print(f"Cloud DNS emulator on {emulator.url} (project {args.project}); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
