"""A local Azure Traffic Manager (ARM) emulator over HTTPS, for tests and demos.

The unmodified ``azure-mgmt-trafficmanager`` client and azure-core's bearer-token policy talk to
it: azure-core refuses bearer tokens over plain http, so the emulator serves TLS with a private
CA and a server certificate for 127.0.0.1/localhost, generated at start (``ca_file`` is the CA to
give the client as ``connection_verify``). It keeps state, so a test asserts on what an adapter
really changed.

Emulated (ARM REST, as documented for Microsoft.Network/trafficmanagerprofiles):

* profiles: GET, PUT (create, or replace the whole profile, endpoints included; endpoints may be
  embedded), PATCH (merge; an ``endpoints`` array replaces the list), DELETE (200, or 204 when absent);
* endpoints ``.../trafficmanagerprofiles/P/{AzureEndpoints|ExternalEndpoints|NestedEndpoints}/E``:
  GET, PUT (201 created / 200 replaced), PATCH (merge of the given properties), DELETE;
* every request needs ``api-version`` (400 MissingApiVersionParameter / InvalidApiVersionParameter)
  and ``Authorization: Bearer ...`` (401 AuthenticationFailed / InvalidAuthenticationToken when a
  fixed ``token`` is configured and another is sent);
* ARM's error body ``{"error": {"code", "message"}}``: 404 ResourceNotFound (profile, endpoint),
  404 ResourceGroupNotFound, 400 BadRequest for a broken document;
* the documented rules: priority and weight are integers 1-1000; no two endpoints of a profile
  share a priority; an endpoint created without one gets the next priority in order and weight 1;
  ExternalEndpoints need ``target``, Azure/Nested endpoints ``targetResourceId``; Performance
  profiles need ``endpointLocation`` on external and nested endpoints; names are case-insensitive
  and keep their case; read-only fields (``endpointMonitorStatus``, ``fqdn``, ``profileMonitorStatus``)
  are computed, never taken from a request;
* faults: :meth:`TrafficManagerEmulator.fail_next` (or ``POST /_emulator/faults``) makes chosen
  requests answer 429 (with Retry-After) or 5xx, without touching state.

Not emulated: health probing (``endpointMonitorStatus`` is CheckingEndpoint for an enabled endpoint
until a test sets it with :meth:`set_monitor_status`), DNS answers, Geographic/Subnet/MultiValue
rules, nested-profile semantics, global uniqueness of ``relativeName``, subscriptions (any id
exists), token validation beyond an optional fixed value, list and name-availability operations.

Run it by hand: ``python -m failover_engine.lab.emulators.trafficmanager --port 8443`` prints the URL and the CA
file and serves until Ctrl-C.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import ipaddress
import json
import re
import shutil
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROUTING_METHODS = ("Performance", "Priority", "Weighted", "Geographic", "MultiValue", "Subnet")
ENDPOINT_TYPES = {t.lower(): t for t in ("AzureEndpoints", "ExternalEndpoints", "NestedEndpoints")}
ENDPOINT_FIELDS = ("targetResourceId", "target", "endpointStatus", "weight", "priority", "endpointLocation",
                   "minChildEndpoints", "minChildEndpointsIPv4", "minChildEndpointsIPv6", "geoMapping",
                   "subnets", "customHeaders", "alwaysServe")
MONITOR_STATUSES = ("CheckingEndpoint", "Online", "Degraded", "Disabled", "Inactive", "Stopped", "Unmonitored")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Network/"
    r"trafficmanagerprofiles/(?P<profile>[^/]+)(?:/(?P<type>[^/]+)/(?P<endpoint>[^/]+))?/?$", re.I)


class ArmError(Exception):
    """An ARM error answer: status, code and message (``{"error": {"code", "message"}}``)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bad(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


@dataclass
class _Fault:
    remaining: int
    status: int
    skip: int = 0
    retry_after: float | None = None
    method: str | None = None
    code: str | None = None


# --------------------------------------------------------------------------- TLS material
def make_tls_files(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for ``hosts``: (ca.pem, server chain.pem, server key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Traffic Manager emulator test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file, chain_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    chain_file.write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, chain_file, key_file


# --------------------------------------------------------------------------- the emulator
class TrafficManagerEmulator:
    """ARM Traffic Manager over HTTPS on ``host:port`` (0: a free port). Use as a context manager
    or call :meth:`start`/:meth:`stop`. ``token``: accept only this bearer token (default: any).
    Resource groups exist once added (:meth:`add_resource_group`, :meth:`put_profile`), or all of
    them with ``any_resource_group=True``.

    ``requests`` records every API request (method, path, query, body, whether a bearer token was
    sent) in order; the admin routes under ``/_emulator/`` are not recorded.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 any_resource_group: bool = False):
        self.host, self._port, self.token = host, port, token
        self.any_resource_group = any_resource_group  # False: only groups added (404 ResourceGroupNotFound)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._groups: dict[tuple[str, str], str] = {}       # (sub, rg) lower -> rg as created
        self._profiles: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._dir: Path | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_file = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "TrafficManagerEmulator":
        self._dir = Path(tempfile.mkdtemp(prefix="tm-emulator-"))
        ca, chain, key = make_tls_files(self._dir, tuple(dict.fromkeys((self.host, "127.0.0.1", "localhost"))))
        self.ca_file = str(ca)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
        httpd = _Server((self.host, self._port), _Handler)
        httpd.emulator = self
        # the handshake happens in the handler's thread, so a silent client cannot stall accept()
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd, self._port = httpd, httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="trafficmanager-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "TrafficManagerEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self._port}"

    # ------------------------------------------------------------------ test controls
    def reset(self) -> None:
        """Forget every resource group, profile, fault and recorded request."""
        with self._lock:
            self._groups.clear()
            self._profiles.clear()
            self._faults.clear()
            self.requests.clear()

    def fail_next(self, count: int = 1, status: int = 500, *, retry_after: float | None = None, after: int = 0,
                  method: str | None = None, code: str | None = None) -> None:
        """Answer ``count`` API requests with ``status`` (429 or 5xx), after letting ``after`` matching
        requests through. ``method`` limits it to one HTTP method. A failed request changes nothing.
        ``fail_next(1, 500, after=2)``: the third request answers 500."""
        if count < 1 or not (status == 429 or 500 <= status <= 599):
            raise ValueError("fail_next needs count >= 1 and a status of 429 or 5xx")
        with self._lock:
            self._faults.append(_Fault(count, status, after, retry_after, method.upper() if method else None, code))

    def add_resource_group(self, subscription: str, resource_group: str) -> None:
        with self._lock:
            self._groups.setdefault((subscription.lower(), resource_group.lower()), resource_group)

    def put_profile(self, subscription: str, resource_group: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Seed a profile without HTTP (the resource group is created); same rules as a PUT."""
        self.add_resource_group(subscription, resource_group)
        with self._lock:
            return self._put_profile(subscription, resource_group, name, copy.deepcopy(body))[1]

    def profile(self, subscription: str, resource_group: str, name: str) -> dict[str, Any] | None:
        """The profile as a GET would answer it, or None."""
        with self._lock:
            p = self._profiles.get((subscription.lower(), resource_group.lower(), name.lower()))
            return self._render_profile(p) if p else None

    def endpoints(self, subscription: str, resource_group: str, name: str) -> dict[str, dict[str, Any]]:
        """Endpoint name -> its properties, for assertions."""
        p = self.profile(subscription, resource_group, name) or {"properties": {"endpoints": []}}
        return {e["name"]: e["properties"] for e in p["properties"]["endpoints"]}

    def set_monitor_status(self, subscription: str, resource_group: str, profile: str, endpoint: str,
                           status: str) -> None:
        """What the health probes would report for an enabled endpoint (Online, Degraded, ...)."""
        if status not in MONITOR_STATUSES:
            raise ValueError(f"unknown monitor status {status!r}; one of {', '.join(MONITOR_STATUSES)}")
        with self._lock:
            p = self._require_profile(subscription, resource_group, profile)
            self._require_endpoint(p, None, endpoint)["monitor"] = status

    def writes(self) -> list[dict[str, Any]]:
        """The recorded requests that may change state (PUT, PATCH, DELETE)."""
        with self._lock:
            return [r for r in self.requests if r["method"] in ("PUT", "PATCH", "DELETE")]

    # ------------------------------------------------------------------ request handling
    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        """One API request → (status, extra headers, JSON body or None)."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k.lower(): v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth = headers.get("authorization", "")
        with self._lock:
            self.requests.append({"method": method, "path": path, "query": parts.query,
                                  "body": _json_or_raw(raw), "bearer": auth.lower().startswith("bearer ")})
        try:
            self._check_auth(auth)
            self._check_api_version(query.get("api-version"))
            fault = self._take_fault(method)
            if fault is not None:
                return self._fault_answer(fault)
            m = _PATH.match(path)
            if not m:
                raise ArmError(404, "InvalidResourceType", f"no Traffic Manager route for {method} {path}")
            body = self._parse_body(method, raw)
            with self._lock:
                return self._route(method, m, body)
        except ArmError as err:
            return err.status, _auth_challenge(err), {"error": {"code": err.code, "message": err.message}}

    def _check_auth(self, auth: str) -> None:
        if not auth:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        scheme, _sep, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ArmError(401, "AuthenticationFailed",
                           "Authentication failed. The 'Authorization' header is provided in an invalid format.")
        if self.token is not None and token.strip() != self.token:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")

    @staticmethod
    def _check_api_version(values: list[str] | None) -> None:
        if not values or not values[0]:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if not _API_VERSION.match(values[0]):
            raise ArmError(400, "InvalidApiVersionParameter",
                           f"The api-version '{values[0]}' is invalid. The supported format is 'yyyy-mm-dd' "
                           "or 'yyyy-mm-dd-preview'.")

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method):
                    continue
                if fault.skip:
                    fault.skip -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_answer(fault: _Fault) -> tuple[int, dict[str, str], Any]:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        code = fault.code or {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(fault.status,
                                                                                     "InternalServerError")
        message = ("The request is being throttled." if fault.status == 429
                   else "The server encountered an internal error. Please retry the request.")
        return fault.status, headers, {"error": {"code": code, "message": message}}

    @staticmethod
    def _parse_body(method: str, raw: bytes) -> dict[str, Any] | None:
        if method not in ("PUT", "PATCH"):
            return None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           "deserialized.") from None
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body

    def _route(self, method: str, m: re.Match[str], body: dict[str, Any] | None) -> tuple[int, dict[str, str], Any]:
        sub, rg, name = m["sub"], m["rg"], m["profile"]
        if self.any_resource_group:
            self._groups.setdefault((sub.lower(), rg.lower()), rg)
        if (sub.lower(), rg.lower()) not in self._groups:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if m["type"] is None:
            if method == "GET":
                return 200, {}, self._render_profile(self._require_profile(sub, rg, name))
            if method == "PUT":
                created, out = self._put_profile(sub, rg, name, body or {})
                return (201 if created else 200), {}, out
            if method == "PATCH":
                return 200, {}, self._patch_profile(sub, rg, name, body or {})
            if method == "DELETE":
                gone = self._profiles.pop((sub.lower(), rg.lower(), name.lower()), None)
                return (200, {}, {}) if gone else (204, {}, None)
            raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on a profile")
        etype = ENDPOINT_TYPES.get(m["type"].lower())
        if etype is None:
            raise ArmError(400, "BadRequest", f"'{m['type']}' is not a Traffic Manager endpoint type; use "
                           "AzureEndpoints, ExternalEndpoints or NestedEndpoints.")
        profile = self._require_profile(sub, rg, name)
        if method == "GET":
            return 200, {}, self._render_endpoint(profile, self._require_endpoint(profile, etype, m["endpoint"]))
        if method == "PUT":
            created, ep = self._put_endpoint(profile, etype, m["endpoint"], body or {})
            return (201 if created else 200), {}, self._render_endpoint(profile, ep)
        if method == "PATCH":
            ep = self._patch_endpoint(profile, etype, m["endpoint"], body or {})
            return 200, {}, self._render_endpoint(profile, ep)
        if method == "DELETE":
            ep = _find(profile, m["endpoint"])
            if ep is None or ep["type"] != etype:
                return 204, {}, None
            profile["endpoints"].remove(ep)
            return 200, {}, {}
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on an endpoint")

    # ------------------------------------------------------------------ profiles
    def _require_profile(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        p = self._profiles.get((sub.lower(), rg.lower(), name.lower()))
        if p is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.Network/trafficmanagerprofiles/{name}' under resource group "
                           f"'{rg}' was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        return p

    def _put_profile(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        key = (sub.lower(), rg.lower(), name.lower())
        props = body.get("properties") or {}
        old = self._profiles.get(key)
        profile = {"sub": sub, "rg": self._groups[(sub.lower(), rg.lower())], "name": old["name"] if old else name,
                   "location": _location(body.get("location")), "tags": dict(body.get("tags") or {}),
                   "props": _profile_props(props, None), "endpoints": []}
        self._set_endpoints(profile, props.get("endpoints") or [])
        self._profiles[key] = profile
        return old is None, self._render_profile(profile)

    def _patch_profile(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        profile = self._require_profile(sub, rg, name)
        props = body.get("properties") or {}
        new = copy.deepcopy(profile)
        new["props"] = _profile_props(props, profile["props"])
        if "tags" in body:
            new["tags"] = dict(body.get("tags") or {})
        if props.get("endpoints") is not None:
            new["endpoints"] = []
            self._set_endpoints(new, props["endpoints"])
        else:
            for ep in new["endpoints"]:  # a routing-method change may break the endpoints' rules
                _validate_endpoint(new, ep, [e for e in new["endpoints"] if e is not ep])
        profile.clear()
        profile.update(new)
        return self._render_profile(profile)

    def _set_endpoints(self, profile: dict[str, Any], items: list[Any]) -> None:
        if not isinstance(items, list):
            raise _bad("properties.endpoints must be an array.")
        for item in items:
            if not isinstance(item, dict) or not item.get("name"):
                raise _bad("Every endpoint in properties.endpoints needs a name.")
            etype = ENDPOINT_TYPES.get(str(item.get("type", "")).rsplit("/", 1)[-1].lower())
            if etype is None:
                raise _bad(f"Endpoint '{item['name']}' has an invalid type '{item.get('type')}'.")
            if _find(profile, item["name"]) is not None:
                raise _bad(f"The endpoint name '{item['name']}' is used more than once in the profile.")
            self._put_endpoint(profile, etype, item["name"], item)

    # ------------------------------------------------------------------ endpoints
    def _require_endpoint(self, profile: dict[str, Any], etype: str | None, name: str) -> dict[str, Any]:
        ep = _find(profile, name)
        if ep is None or (etype is not None and ep["type"] != etype):
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.Network/trafficmanagerprofiles/{profile['name']}/"
                           f"{etype or 'endpoints'}/{name}' under resource group '{profile['rg']}' was not found.")
        return ep

    def _put_endpoint(self, profile: dict[str, Any], etype: str, name: str,
                      body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        old = _find(profile, name)
        if old is not None and old["type"] != etype:
            raise _bad(f"An endpoint named '{old['name']}' of type {old['type']} already exists in profile "
                       f"'{profile['name']}'.")
        props = {k: v for k, v in (body.get("properties") or {}).items() if k in ENDPOINT_FIELDS}
        ep = {"name": old["name"] if old else name, "type": etype, "props": props, "monitor": None}
        others = [e for e in profile["endpoints"] if e is not old]
        _validate_endpoint(profile, ep, others)
        if old is None:
            profile["endpoints"].append(ep)
        else:
            profile["endpoints"][profile["endpoints"].index(old)] = ep
        return old is None, ep

    def _patch_endpoint(self, profile: dict[str, Any], etype: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        old = self._require_endpoint(profile, etype, name)
        given = {k: v for k, v in (body.get("properties") or {}).items() if k in ENDPOINT_FIELDS}
        ep = {**old, "props": {**old["props"], **given}}
        if old["props"].get("endpointStatus") != ep["props"].get("endpointStatus"):
            ep["monitor"] = None
        _validate_endpoint(profile, ep, [e for e in profile["endpoints"] if e is not old])
        old.update(ep)
        return old

    # ------------------------------------------------------------------ rendering
    def _profile_id(self, p: dict[str, Any]) -> str:
        return (f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/Microsoft.Network/"
                f"trafficManagerProfiles/{p['name']}")

    def _render_endpoint(self, p: dict[str, Any], ep: dict[str, Any]) -> dict[str, Any]:
        segment = ep["type"][0].lower() + ep["type"][1:]
        props = copy.deepcopy(ep["props"])
        props["endpointMonitorStatus"] = ("Disabled" if props["endpointStatus"] == "Disabled"
                                          else ep["monitor"] or "CheckingEndpoint")
        return {"id": f"{self._profile_id(p)}/{segment}/{ep['name']}", "name": ep["name"],
                "type": f"Microsoft.Network/trafficManagerProfiles/{segment}", "properties": props}

    def _render_profile(self, p: dict[str, Any]) -> dict[str, Any]:
        props = copy.deepcopy(p["props"])
        endpoints = [self._render_endpoint(p, ep) for ep in p["endpoints"]]
        props["endpoints"] = endpoints
        props["dnsConfig"]["fqdn"] = f"{props['dnsConfig']['relativeName']}.trafficmanager.net".lower()
        monitors = [e["properties"]["endpointMonitorStatus"] for e in endpoints
                    if e["properties"]["endpointStatus"] == "Enabled"]
        if props["profileStatus"] == "Disabled":
            status = "Disabled"
        elif not monitors:
            status = "Inactive"
        elif "Online" in monitors:
            status = "Online"
        elif all(s in ("Degraded", "Stopped") for s in monitors):
            status = "Degraded"
        else:
            status = "CheckingEndpoints"
        props["monitorConfig"]["profileMonitorStatus"] = status
        return {"id": self._profile_id(p), "name": p["name"], "type": "Microsoft.Network/trafficManagerProfiles",
                "location": p["location"], "tags": copy.deepcopy(p["tags"]), "properties": props}


# --------------------------------------------------------------------------- validation (module-level, pure)
def _find(profile: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in profile["endpoints"] if e["name"].lower() == name.lower()), None)


def _location(value: Any) -> str:
    if value is None or str(value).lower() == "global":
        return "global"
    raise ArmError(400, "LocationNotAvailableForResourceType",
                   f"The provided location '{value}' is not available for resource type "
                   "'Microsoft.Network/trafficmanagerprofiles'. List of available regions for the resource "
                   "type is 'global'.")


def _enum(value: Any, allowed: tuple[str, ...], what: str) -> str:
    for a in allowed:
        if isinstance(value, str) and value.lower() == a.lower():
            return a
    raise _bad(f"{what} '{value}' is invalid; allowed values: {', '.join(allowed)}.")


def _int_in(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"{what} must be an integer between {low} and {high}; got {value!r}.")
    return value


def _profile_props(props: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """Profile properties (without endpoints) after a PUT (``old`` None) or a PATCH over ``old``."""
    base = copy.deepcopy(old) if old else {}
    for k in ("profileStatus", "trafficRoutingMethod", "trafficViewEnrollmentStatus", "maxReturn",
              "allowedEndpointRecordTypes"):
        if props.get(k) is not None:
            base[k] = props[k]
    if base.get("trafficRoutingMethod") is None:
        raise _bad("The traffic routing method (properties.trafficRoutingMethod) is required.")
    base["trafficRoutingMethod"] = _enum(base["trafficRoutingMethod"], ROUTING_METHODS, "trafficRoutingMethod")
    base["profileStatus"] = _enum(base.get("profileStatus", "Enabled"), ("Enabled", "Disabled"), "profileStatus")
    base.setdefault("trafficViewEnrollmentStatus", "Disabled")
    dns = {**base.get("dnsConfig", {}), **{k: v for k, v in (props.get("dnsConfig") or {}).items()
                                           if k in ("relativeName", "ttl")}}
    if not dns.get("relativeName"):
        raise _bad("The relative DNS name (properties.dnsConfig.relativeName) is required.")
    dns["ttl"] = _int_in(dns.get("ttl", 300), 0, 2147483647, "dnsConfig.ttl")
    base["dnsConfig"] = dns
    monitor = {"protocol": "HTTP", "port": 80, "path": "/", "intervalInSeconds": 30, "timeoutInSeconds": 10,
               "toleratedNumberOfFailures": 3, **base.get("monitorConfig", {}),
               **{k: v for k, v in (props.get("monitorConfig") or {}).items() if k != "profileMonitorStatus"}}
    monitor["protocol"] = _enum(monitor["protocol"], ("HTTP", "HTTPS", "TCP"), "monitorConfig.protocol")
    monitor["port"] = _int_in(monitor["port"], 1, 65535, "monitorConfig.port")
    if monitor["protocol"] != "TCP" and not str(monitor.get("path") or "").startswith("/"):
        raise _bad("monitorConfig.path must start with '/' for HTTP and HTTPS monitoring.")
    base["monitorConfig"] = monitor
    return base


def _validate_endpoint(profile: dict[str, Any], ep: dict[str, Any], others: list[dict[str, Any]]) -> None:
    """Check ``ep`` against the documented rules (completing defaults in place); ``others`` are the
    profile's other endpoints."""
    props, etype, name = ep["props"], ep["type"], ep["name"]
    props["endpointStatus"] = _enum(props.get("endpointStatus", "Enabled"), ("Enabled", "Disabled"),
                                    f"endpointStatus of endpoint '{name}'")
    if etype == "ExternalEndpoints":
        if not props.get("target"):
            raise _bad(f"The target of external endpoint '{name}' is required (a DNS name or IP address).")
        if props.get("targetResourceId"):
            raise _bad(f"targetResourceId is not applicable to external endpoint '{name}'.")
    elif not props.get("targetResourceId"):
        raise _bad(f"The targetResourceId of endpoint '{name}' ({etype}) is required.")
    if (profile["props"]["trafficRoutingMethod"] == "Performance" and etype != "AzureEndpoints"
            and not props.get("endpointLocation")):
        raise _bad(f"The location must be specified for endpoint '{name}' of type {etype} in a profile "
                   "with the 'Performance' traffic routing method.")
    props["weight"] = _int_in(props.get("weight", 1), 1, 1000, f"The weight of endpoint '{name}'")
    taken = {e["props"].get("priority"): e["name"] for e in others}
    if props.get("priority") is None:  # the next priority in order
        free = [p for p in range(max([p for p in taken if p] or [0]) + 1, 1001) if p not in taken]
        free = free or [p for p in range(1, 1001) if p not in taken]
        if not free:
            raise _bad(f"No priority is free for endpoint '{name}' (1-1000 are all taken).")
        props["priority"] = free[0]
    props["priority"] = _int_in(props["priority"], 1, 1000, f"The priority of endpoint '{name}'")
    if props["priority"] in taken:
        raise _bad(f"Priority {props['priority']} of endpoint '{name}' is already used by endpoint "
                   f"'{taken[props['priority']]}'; no two endpoints of a profile can share a priority value.")


def _json_or_raw(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _auth_challenge(err: ArmError) -> dict[str, str]:
    if err.status != 401:
        return {}
    return {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                                'error="invalid_token", error_description="The authentication failed."'}


# --------------------------------------------------------------------------- HTTP plumbing
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: TrafficManagerEmulator

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up or fail the TLS handshake are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1                   # one write per response (flushed after each request) ...
    disable_nagle_algorithm = True  # ... sent at once: no delayed-ACK stall on kept-alive connections
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        emulator = self.server.emulator
        if self.path.startswith("/_emulator/"):
            status, headers, body = self._admin(emulator, raw)
        else:
            hdrs = {k.lower(): v for k, v in self.headers.items()}
            status, headers, body = emulator.handle(self.command, self.path, hdrs, raw)
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        request_id = str(uuid.uuid4())
        self.send_header("x-ms-request-id", request_id)
        self.send_header("x-ms-correlation-request-id", self.headers.get("x-ms-correlation-request-id") or request_id)
        for k, v in headers.items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _admin(self, emulator: TrafficManagerEmulator, raw: bytes) -> tuple[int, dict[str, str], Any]:
        """POST /_emulator/reset; POST /_emulator/faults {count, status, retry_after, after, method, code};
        GET /_emulator/requests."""
        route = (self.command, self.path.split("?")[0])
        if route == ("POST", "/_emulator/reset"):
            emulator.reset()
            return 200, {}, {"reset": True}
        if route == ("POST", "/_emulator/faults"):
            spec = json.loads(raw or b"{}")
            emulator.fail_next(int(spec.get("count", 1)), int(spec.get("status", 500)),
                               retry_after=spec.get("retry_after"), after=int(spec.get("after", 0)),
                               method=spec.get("method"), code=spec.get("code"))
            return 200, {}, {"queued": True}
        if route == ("GET", "/_emulator/requests"):
            return 200, {}, {"requests": emulator.requests}
        return 404, {}, {"error": {"code": "NotFound", "message": f"no admin route {route[0]} {route[1]}"}}

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _dispatch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Azure Traffic Manager (ARM) emulator over HTTPS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--token", default=None, help="accept only this bearer token (default: any)")
    args = parser.parse_args(argv)
    emulator = TrafficManagerEmulator(args.host, args.port, token=args.token, any_resource_group=True).start()
    print(f"Traffic Manager emulator at {emulator.url}", flush=True)
    print(f"CA file (connection_verify / ca_bundle): {emulator.ca_file}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
