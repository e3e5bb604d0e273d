"""Azure Traffic Manager: promote by priority, enable/disable endpoints, or move weights.

Modes (see :class:`~failover_engine.core.model.TrafficManagerRouting`): ``priority`` gives the active
endpoint priority 1 and the others 2, 3, ... (every bound endpoint Enabled, so Traffic Manager's
own health-based fallback down the list keeps working); ``status`` enables the active endpoint and
disables the others; ``weighted`` gives the active endpoint ``active_weight`` and the others
``inactive_weight`` and Disabled (weights cannot be 0).

Reads are one ``profiles.get`` per profile (endpoints are embedded). Writes are per-endpoint
``endpoints.update`` (PATCH, only the managed properties), because Traffic Manager has no atomic
multi-endpoint call we can trust: a profile PUT replaces the whole profile (monitor and DNS settings,
unmanaged endpoints, properties newer than this SDK's models) from a read-modify-write without
If-Match, and what a profile PATCH does with ``endpoints[]`` is not documented. So the adapter
orders the PATCHes (:func:`order_updates`) so that every intermediate state is valid for the API
(priorities unique, 1-1000) and never drops traffic: endpoints are enabled before others are
disabled, an endpoint in the way of a priority is first parked on a free priority, and in a
Priority profile the endpoint answering DNS goes from the old one straight to the new one (the
hand-over is one PATCH; with two endpoints: park the old primary, promote the standby, put the
old primary behind it).
``ATOMIC_BATCH`` is therefore not declared.

Writes are checked, never blind. Traffic Manager has no compare-and-swap for endpoints: the ARM
resources carry no ``etag`` and the SDK (azure-mgmt-trafficmanager 2.0.0, api-version 2026-09-01)
has neither an ``etag`` field nor an ``If-Match`` parameter on profiles or endpoints, so an
``If-Match`` header would not be honoured. Instead the profile is read just before writing: an
endpoint whose managed attributes no longer hold the change's ``before`` was edited since the plan,
and the apply is refused (:class:`~failover_engine.core.errors.TrafficManagerConcurrentEditError`,
nothing written in that profile). The profile is read again just before each further PATCH and
every endpoint of the binding compared with the state this apply put it in (a parked priority,
say); a difference stops the sequence there (the PATCHes before it are in ``written``, each one a
valid intermediate state). The remaining window: an edit that lands between that GET and the
PATCH after it (one round trip, tens of milliseconds) is not seen, and the PATCH, which sets only
the managed properties, overwrites those properties of that one endpoint.

Profiles are independent: their sequences run in parallel (up to :data:`PROFILE_CONCURRENCY` at
a time), each one serial. A PATCH whose answer was lost (5xx, reset, read timeout on the last
attempt) is reported in the error's ``unknown``, not in ``written``.
"""
from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any, Callable, Sequence

from failover_engine.core.errors import TrafficManagerConcurrentEditError, TrafficManagerError
from failover_engine.core.model import TrafficManagerConnection, TrafficManagerRouting
from failover_engine.core.plan import Assignment, Attrs, Change, ResourceKey
from failover_engine.adapters.base import Adapter, ApplyReceipt, Capability
from failover_engine.adapters.trafficmanager_order import (
    DISABLED,
    ENABLED,
    PRIORITY_MAX,
    EndpointState,
    OrderingError,
    order_updates,
)

MAX_RETRY_AFTER = 60.0   # longest Retry-After honoured; a longer one fails the call at once
MAX_BACKOFF = 20.0
PROFILE_CONCURRENCY = 8  # profiles written at the same time (each profile's PATCHes stay in order)
RETRYABLE_CODES = {"TooManyRequests", "RetryableError", "AnotherOperationInProgress"}  # besides 429 and 5xx
REST_NAMES = {"priority": "priority", "weight": "weight", "endpoint_status": "endpointStatus"}
MODE_ATTRS = {"priority": ("priority", "endpoint_status"), "status": ("endpoint_status",),
              "weighted": ("weight", "endpoint_status")}
MODE_METHOD = {"priority": "Priority", "weighted": "Weighted"}  # status mode works with any method
ENDPOINT_TYPES = {t.lower(): t for t in ("AzureEndpoints", "ExternalEndpoints", "NestedEndpoints")}


# --------------------------------------------------------------------------- credentials
class EnvTokenCredential:
    """A TokenCredential whose bearer token is read from an environment variable at each request
    (CI, local emulators). The token is never logged or put in an error message."""

    def __init__(self, env_var: str):
        self.env_var = env_var

    def token(self) -> str:
        value = os.environ.get(self.env_var, "").strip()
        if not value:
            raise TrafficManagerError(
                f"credentials: token_env, but the environment variable {self.env_var} is not set or empty; "
                f"export a bearer token for https://management.azure.com there (e.g. `az account "
                f"get-access-token --query accessToken -o tsv`) or use credentials: default",
                code="MissingToken")
        return value

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token(), int(time.time()) + 300)


# --------------------------------------------------------------------------- the adapter
class TrafficManagerAdapter(Adapter):
    kind = "trafficmanager"
    capabilities = frozenset({Capability.SIMPLE_SWAP, Capability.FAILOVER_RECORDS, Capability.WEIGHTED,
                              Capability.READ_BACK})

    def __init__(self, connection: TrafficManagerConnection | None = None, *, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connection = connection or TrafficManagerConnection(
            subscription_id=os.environ.get("AZURE_SUBSCRIPTION_ID", ""))
        self._client = client
        self._sleep = sleep
        self.calls = 0
        self._lock = threading.Lock()  # calls, and what apply() records, from parallel profiles
        self._bound: dict[str, set[tuple[str, str]]] = defaultdict(set)  # profile -> (type, name) bound

    # ------------------------------------------------------------------ client and retries
    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from azure.identity import DefaultAzureCredential
                from azure.mgmt.trafficmanager import TrafficManagerManagementClient
            except ImportError as exc:
                raise TrafficManagerError(f"the Azure SDK is not installed ({exc.name}); install "
                                          "failover-engine[azure]", code="MissingDependency") from None
            conn = self.connection
            if not conn.subscription_id:
                raise TrafficManagerError("no subscription_id: give it in the connection or set "
                                          "AZURE_SUBSCRIPTION_ID", code="MissingSubscription")
            if conn.credentials == "token_env":
                cred: Any = EnvTokenCredential(conn.token_env_var)
                cred.token()  # fail now, with a clear message, rather than inside the SDK's pipeline
            else:
                cred = DefaultAzureCredential()
            kwargs: dict[str, Any] = {"retry_total": 0,  # _call owns the retries: bounded, counted, not multiplied
                                      "connection_timeout": conn.connect_timeout, "read_timeout": conn.read_timeout}
            if conn.ca_bundle:
                kwargs["connection_verify"] = conn.ca_bundle
            self._client = TrafficManagerManagementClient(cred, conn.subscription_id,
                                                          base_url=(conn.endpoint_url or "").rstrip("/") or None,
                                                          **kwargs)
        return self._client

    def _call(self, op: str, resource: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One API call with bounded retries: 429 after its Retry-After, 5xx and transport errors
        with jittered backoff (a read timeout is not repeated); every attempt is counted in
        ``calls``. The error raised says in ``answer_lost`` whether the request may have been
        carried out (sent, and its answer lost)."""
        from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ServiceRequestError,
                                           ServiceResponseError, ServiceResponseTimeoutError)

        attempts = self.connection.max_attempts
        for attempt in range(1, attempts + 1):
            with self._lock:
                self.calls += 1
            backoff = min(MAX_BACKOFF, 0.2 * 2 ** attempt) * random.uniform(0.5, 1.0)
            try:
                return fn(*args)
            except ClientAuthenticationError as exc:
                if exc.response is None:  # the credential could not get a token
                    raise TrafficManagerError(
                        f"{op}: no Azure credentials: {_first_line(exc)}; sign in (`az login`), set "
                        "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use credentials: token_env",
                        resource=resource, code="CredentialUnavailable") from None
                raise self._error(op, resource, exc) from None
            except HttpResponseError as exc:
                status = exc.status_code or 0
                if status == 429 or status >= 500 or getattr(exc.error, "code", None) in RETRYABLE_CODES:
                    wait = _retry_after(exc.response) if status == 429 else None
                    if wait is not None and wait > MAX_RETRY_AFTER:
                        raise self._error(op, resource, exc, f" (Retry-After {wait:.0f}s is longer than the "
                                          f"{MAX_RETRY_AFTER:.0f}s this adapter waits; try again later)") from None
                    if attempt < attempts:
                        self._sleep(wait if wait is not None else backoff)
                        continue
                    raise _lost(self._error(op, resource, exc, f" (gave up after {attempts} attempt(s))"),
                                status >= 500) from None
                raise self._error(op, resource, exc) from None
            except ServiceResponseTimeoutError:
                where = self.connection.endpoint_url or "Azure Resource Manager"
                raise _lost(TrafficManagerError(
                    f"{op}: no answer from {where} within read_timeout {self.connection.read_timeout:g}s",
                    resource=resource, code="ReadTimeout"), True) from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                if attempt < attempts:
                    self._sleep(backoff)
                    continue
                where = self.connection.endpoint_url or "Azure Resource Manager"
                raise _lost(TrafficManagerError(f"{op}: cannot reach {where} after {attempts} attempt(s): "
                                                f"{_first_line(exc)}", resource=resource, code="ServiceUnreachable"),
                            isinstance(exc, ServiceResponseError)) from None
        raise AssertionError("unreachable")

    def _error(self, op: str, resource: str, exc: Any, note: str = "") -> TrafficManagerError:
        err = getattr(exc, "error", None)
        code = getattr(err, "code", None) or f"HTTP{exc.status_code}"
        message = getattr(err, "message", None) or _first_line(exc)
        hint = ""
        if code == "ResourceNotFound" and "/" in resource:
            rg, _sep, rest = resource.partition("/")
            hint = (f"; check resource_group ({rg}) and profile ({rest.split('/')[0]}) in the strategy, and that "
                    f"subscription {self.connection.subscription_id} holds them")
        elif code == "ResourceGroupNotFound":
            hint = f"; check resource_group and subscription_id ({self.connection.subscription_id})"
        return TrafficManagerError(f"{op} failed: {message.rstrip('.')}{note}{hint}", resource=resource, code=code)

    # ------------------------------------------------------------------ validation (pure)
    # ------------------------------------------------------------------ desired state (pure)
    @staticmethod
    def scope(binding: TrafficManagerRouting) -> str:
        return f"{binding.resource_group}/{binding.profile}"

    def _key(self, binding: TrafficManagerRouting, endpoint: str) -> ResourceKey:
        eb = binding.endpoints[endpoint]
        self._bound[self.scope(binding)].add((eb.endpoint_type.lower(), eb.endpoint.lower()))
        return ResourceKey("trafficmanager", self.scope(binding), eb.endpoint, eb.endpoint_type)

    def desired(self, binding: TrafficManagerRouting, assignment: Assignment) -> dict[ResourceKey, Attrs]:
        active = [ep for ep, w in assignment.items() if w > 0 and ep in binding.endpoints]
        if not active or (binding.mode == "priority" and len(active) != 1):
            raise TrafficManagerError(f"{binding.mode} mode needs {'exactly' if binding.mode == 'priority' else 'at least'}"
                                      f" one active endpoint, got {active}", resource=self.scope(binding))
        out: dict[ResourceKey, Attrs] = {}
        rank = {n: i for i, n in enumerate(active + [n for n in binding.endpoints if n not in active], start=1)}
        for name in binding.endpoints:
            on = name in active
            if binding.mode == "priority":
                attrs: dict[str, Any] = {"priority": rank[name], "endpoint_status": ENABLED}
            elif binding.mode == "status":
                attrs = {"endpoint_status": ENABLED if on else DISABLED}
            elif on:
                weight = max(1, min(PRIORITY_MAX, round(assignment[name] * binding.active_weight / 100)))
                attrs = {"weight": weight, "endpoint_status": ENABLED}
            else:
                attrs = {"weight": binding.inactive_weight, "endpoint_status": DISABLED}
            out[self._key(binding, name)] = attrs
        return out

    def active_of(self, binding: TrafficManagerRouting, current: dict[ResourceKey, Attrs | None]) -> Assignment | None:
        states = {n: current.get(self._key(binding, n)) for n in binding.endpoints}
        if any(s is None for s in states.values()):
            return None
        enabled = {n: s for n, s in states.items() if s and s.get("endpoint_status") == ENABLED}
        if not enabled:
            return None
        if binding.mode == "priority":
            if any(s.get("priority") is None for s in enabled.values()):
                return None
            return {min(enabled, key=lambda n: enabled[n]["priority"]): 100}
        if binding.mode == "status":
            return {n: 100 for n in enabled}
        if any(s.get("weight") is None for s in enabled.values()):
            return None
        return {n: max(1, round(s["weight"] * 100 / binding.active_weight)) for n, s in enabled.items()}

    # ------------------------------------------------------------------ read (I/O: one GET per profile)
    def read(self, bindings: Sequence[TrafficManagerRouting]) -> dict[ResourceKey, Attrs | None]:
        by_profile: dict[str, list[TrafficManagerRouting]] = defaultdict(list)
        for b in bindings:
            by_profile[self.scope(b)].append(b)
        out: dict[ResourceKey, Attrs | None] = {}
        for scope, group in by_profile.items():
            method, endpoints = self._get_profile(scope)
            for b in group:
                need = MODE_METHOD.get(b.mode)
                if need and method.lower() != need.lower():
                    raise TrafficManagerError(
                        f"profile uses the {method} traffic-routing method; mode {b.mode!r} needs {need} "
                        f"(or use mode 'status')", resource=scope, code="RoutingMethodMismatch")
                for name in b.endpoints:
                    k = self._key(b, name)
                    found = endpoints.get((k.type.lower(), k.name.lower()))
                    out[k] = {a: found[a] for a in MODE_ATTRS[b.mode]} if found else None
        return out

    def _get_profile(self, scope: str) -> tuple[str, dict[tuple[str, str], dict[str, Any]]]:
        """(routing method, {(endpoint type, name) lower: attrs}) of a profile, in one call."""
        rg, _sep, name = scope.partition("/")
        profile = self._call("profiles.get", scope, self.client.profiles.get, rg, name)
        props = profile.properties
        endpoints: dict[tuple[str, str], dict[str, Any]] = {}
        for ep in props.endpoints or []:
            p = ep.properties
            etype = str(ep.type or "").rsplit("/", 1)[-1]  # .../trafficManagerProfiles/externalEndpoints
            etype = ENDPOINT_TYPES.get(etype.lower(), etype)
            status = _text(p.endpoint_status) or ENABLED
            endpoints[(etype.lower(), str(ep.name).lower())] = {
                "name": ep.name, "type": etype, "priority": p.priority, "weight": p.weight,
                "endpoint_status": ENABLED if status.lower() == "enabled" else DISABLED, "target": p.target,
                "endpoint_monitor_status": _text(p.endpoint_monitor_status)}
        return _text(props.traffic_routing_method), endpoints

    # ------------------------------------------------------------------ apply (I/O: ordered PATCHes)
    def apply(self, changes: Sequence[Change]) -> ApplyReceipt:
        start = self.calls
        receipt = ApplyReceipt()
        by_profile: dict[str, list[Change]] = defaultdict(list)
        for c in changes:
            if c.action == "noop":
                continue
            if c.after is None or c.before is None:
                raise TrafficManagerError(
                    f"endpoint {c.key.name} ({c.key.type}) is {'absent' if c.before is None else 'to be removed'}; "
                    "this adapter changes existing endpoints only: create it in the profile first",
                    resource=f"{c.key.scope}/{c.key.type}/{c.key.name}", code="EndpointMissing")
            by_profile[c.key.scope].append(c)
        if not by_profile:
            return receipt
        _client = self.client  # built once, before any thread uses it
        written: list[ResourceKey] = []
        unknown: list[ResourceKey] = []
        failed = threading.Event()  # a profile failed: start no other

        def one(scope: str) -> dict[str, Any] | BaseException | None:
            if failed.is_set():
                return None
            try:
                return self._apply_profile(scope, by_profile[scope], written, unknown)
            except TrafficManagerError as exc:
                failed.set()
                return exc

        scopes = list(by_profile)
        if len(scopes) == 1:
            results = [one(scopes[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(PROFILE_CONCURRENCY, len(scopes)),
                                    thread_name_prefix="trafficmanager-apply") as pool:
                results = list(pool.map(one, scopes))
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            err = errors[0]  # the first failed profile, in the order of the changes
            err.written = tuple(written)  # type: ignore[attr-defined]
            err.unknown = tuple(unknown)  # type: ignore[attr-defined]
            raise err
        receipt.batches.extend(r for r in results if isinstance(r, dict))
        receipt.calls = self.calls - start
        return receipt

    def _apply_profile(self, scope: str, changes: list[Change], written: list[ResourceKey],
                       unknown: list[ResourceKey]) -> dict[str, Any]:
        """One profile: read, refuse if the plan's endpoints changed since, then the ordered PATCHes,
        each after a read that shows the profile as this apply left it."""
        method, endpoints = self._get_profile(scope)
        by_key = {(c.key.type.lower(), c.key.name.lower()): c for c in changes}
        missing = [f"{c.key.name} ({c.key.type})" for k, c in by_key.items() if k not in endpoints]
        if missing:
            raise TrafficManagerError(f"no endpoint(s) {', '.join(missing)} in the profile", resource=scope,
                                      code="EndpointMissing")
        conflicts = [(c.key, c.before, {a: endpoints[k][a] for a in (c.before or {})})
                     for k, c in by_key.items() if {a: endpoints[k][a] for a in (c.before or {})} != dict(c.before or {})]
        if conflicts:
            key, expected, found = conflicts[0]
            raise TrafficManagerConcurrentEditError(key, expected, found, conflicts=conflicts,
                                                    detail="seen when reading the profile just before writing")
        current = {e["name"]: EndpointState(e["priority"], e["weight"], e["endpoint_status"])
                   for e in endpoints.values()}
        types = {e["name"]: e["type"] for e in endpoints.values()}
        keys = {endpoints[k]["name"]: c.key for k, c in by_key.items()}
        # endpoints bound to a service but not changing may step aside and come back (see order_updates)
        wanted: dict[str, dict[str, Any]] = {endpoints[k]["name"]: {} for k in self._bound[scope] if k in endpoints}
        wanted.update({endpoints[k]["name"]: dict(c.after or {}) for k, c in by_key.items()})
        try:
            steps = order_updates(current, wanted, priority_routing=method.lower() == "priority")
        except OrderingError as exc:
            raise TrafficManagerError(str(exc), resource=scope, code="InvalidTargetState") from None
        rg, _sep, profile = scope.partition("/")
        state = dict(current)  # the profile as this apply leaves it, PATCH after PATCH
        for i, (name, attrs) in enumerate(steps):
            key = keys.get(name) or ResourceKey("trafficmanager", scope, name, types[name])
            if i:
                self._check_as_left(scope, {n: state[n] for n in wanted}, keys, types)
            body = {"properties": {REST_NAMES[k]: v for k, v in attrs.items()}}
            try:
                self._call("endpoints.update", f"{scope}/{types[name]}/{name}", self.client.endpoints.update,
                           rg, profile, types[name], name, body)
            except TrafficManagerError as exc:
                if getattr(exc, "answer_lost", False):
                    with self._lock:
                        unknown.append(key)
                raise
            state[name] = replace(state[name], **attrs)
            with self._lock:
                written.append(key)
        return {"profile": scope, "updates": [{"endpoint": n, "set": a} for n, a in steps]}

    def _check_as_left(self, scope: str, expected: dict[str, EndpointState], keys: dict[str, ResourceKey],
                       types: dict[str, str]) -> None:
        """Read the profile again: every bound endpoint must be as this apply left it."""
        _unused, endpoints = self._get_profile(scope)
        now = {e["name"]: EndpointState(e["priority"], e["weight"], e["endpoint_status"]) for e in endpoints.values()}
        conflicts = [(keys.get(n) or ResourceKey("trafficmanager", scope, n, types[n]), asdict(want),
                      asdict(now[n]) if n in now else None)
                     for n, want in expected.items() if now.get(n) != want]
        if conflicts:
            key, want, found = conflicts[0]
            raise TrafficManagerConcurrentEditError(
                key, want, found, conflicts=conflicts, detail="seen when reading the profile before the next PATCH",
                withheld="Nothing more was written (the PATCHes before, in `written`, each left a valid profile)")


def _lost(exc: TrafficManagerError, lost: bool) -> TrafficManagerError:
    """Mark whether the failed request's answer was lost after sending (it may have been carried out)."""
    exc.answer_lost = lost  # type: ignore[attr-defined]
    return exc


def _retry_after(response: Any) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or retry-after-ms/x-ms-retry-after-ms."""
    headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, when.timestamp() - time.time())
    return None


def _text(value: Any) -> str:
    """An SDK enum member or a string, as the API's string ("" for None)."""
    return "" if value is None else str(getattr(value, "value", value))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
