"""Seed the lab's Traffic Manager emulator with a strategy's steady state (the primary active).

For every ``trafficmanager`` binding: the profile, with the routing method its mode needs
(Priority for priority and status, Weighted for weighted), and one endpoint per bound service
endpoint as the mode holds it while the primary is active. A profile PUT replaces the whole
profile, so seeding again gives the same state. Plain ARM REST over HTTPS (the emulator's CA),
with the lab's bearer token.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from failover_engine.core.model import Service, Strategy, TrafficManagerConnection, TrafficManagerRouting
from failover_engine.lab.emulators import RestError, rest
from failover_engine.lab.regions import LabError

API_VERSION = "2022-04-01"
ROUTING_METHOD = {"priority": "Priority", "status": "Priority", "weighted": "Weighted"}
DNS_TTL = 30


def _target(binding: TrafficManagerRouting, name: str, subscription: str) -> dict[str, Any]:
    """Where a seeded endpoint points: a reserved ``.invalid`` name for external endpoints, a
    made-up resource id of this subscription for Azure and nested ones (nothing resolves them)."""
    eb = binding.endpoints[name]
    if eb.endpoint_type == "ExternalEndpoints":
        return {"target": f"{eb.endpoint}.{binding.profile}.lab.invalid".lower()}
    kind = "trafficManagerProfiles" if eb.endpoint_type == "NestedEndpoints" else "publicIPAddresses"
    rid = (f"/subscriptions/{subscription}/resourceGroups/{binding.resource_group}/providers/"
           f"Microsoft.Network/{kind}/{eb.endpoint}")
    extra = {"minChildEndpoints": 1} if eb.endpoint_type == "NestedEndpoints" else {}
    return {"targetResourceId": rid, **extra}


def trafficmanager_steady_state(binding: TrafficManagerRouting, service: Service,
                                subscription: str = "lab", dns_ttl: int = DNS_TTL) -> dict[str, Any]:
    """The profile document (ARM PUT body) of a binding while the primary is active (pure).

    Priorities: the primary 1, the other endpoints 2, 3, ... in the binding's order (every mode).
    priority: all Enabled; status: the primary Enabled, the others Disabled; weighted: the
    primary ``active_weight`` and Enabled, the others ``inactive_weight`` and Disabled.
    """
    primary = service.primary.name
    if primary not in binding.endpoints:
        raise LabError(f"trafficmanager binding {binding.resource_group}/{binding.profile}: the primary endpoint "
                       f"{primary!r} is not bound; the lab seeds the steady state with the primary active")
    order = [primary] + [n for n in binding.endpoints if n != primary]
    endpoints = []
    for priority, name in enumerate(order, start=1):
        eb, on = binding.endpoints[name], name == primary
        props: dict[str, Any] = {**_target(binding, name, subscription), "priority": priority,
                                 "endpointStatus": "Enabled" if on or binding.mode == "priority" else "Disabled"}
        if binding.mode == "weighted":
            props["weight"] = binding.active_weight if on else binding.inactive_weight
        endpoints.append({"name": eb.endpoint, "type": f"Microsoft.Network/trafficManagerProfiles/{eb.endpoint_type}",
                          "properties": props})
    return {"location": "global", "tags": {"managed-by": "failover-lab"}, "properties": {
        "profileStatus": "Enabled", "trafficRoutingMethod": ROUTING_METHOD[binding.mode],
        "dnsConfig": {"relativeName": binding.profile.lower(), "ttl": dns_ttl},
        "monitorConfig": {"protocol": "HTTP", "port": 80, "path": "/health"},
        "endpoints": endpoints}}


def _connection(strategy: Strategy, binding: TrafficManagerRouting, emulator_url: str) -> TrafficManagerConnection:
    conn = strategy.connections.get(binding.connection or "")
    if not isinstance(conn, TrafficManagerConnection) or (conn.endpoint_url or "").rstrip("/") != emulator_url:
        raise LabError(f"trafficmanager binding {binding.resource_group}/{binding.profile}: connection "
                       f"{binding.connection!r} must be a trafficmanager connection with endpoint_url: "
                       "\"{trafficmanager_url}\", ca_bundle: \"{trafficmanager_ca}\" and credentials: token_env; "
                       "the lab seeds and talks to its local emulator only")
    return conn


def lab_token_vars(strategy: Strategy, emulator_url: str) -> list[str]:
    """The token environment variables the strategy's connections to the emulator read."""
    emulator_url = emulator_url.rstrip("/")
    return sorted({c.token_env_var for c in strategy.connections.values()
                   if isinstance(c, TrafficManagerConnection) and c.credentials == "token_env"
                   and (c.endpoint_url or "").rstrip("/") == emulator_url})


def seed_trafficmanager(emulator_url: str, ca_file: str, token: str, strategy: Strategy,
                        dns_ttl: int = DNS_TTL) -> list[str]:
    """PUT the steady-state profile of every trafficmanager binding; returns ``rg/profile`` of each.

    One binding per profile: two bindings sharing a profile would need one merged document.
    """
    emulator_url = emulator_url.rstrip("/")
    seeded: dict[str, str] = {}  # rg/profile, lower case (Azure names are case-insensitive) → service
    scopes: list[str] = []
    for service_name, service in strategy.services.items():
        for binding in service.routing:
            if binding.adapter != "trafficmanager":
                continue
            conn = _connection(strategy, binding, emulator_url)
            scope = f"{binding.resource_group}/{binding.profile}"
            if scope.lower() in seeded:
                raise LabError(f"trafficmanager profile {scope} is bound by services {seeded[scope.lower()]!r} and "
                               f"{service_name!r}; the lab seeds one binding per profile")
            seeded[scope.lower()] = service_name
            scopes.append(scope)
            url = (f"{emulator_url}/subscriptions/{quote(conn.subscription_id)}/resourceGroups/"
                   f"{quote(binding.resource_group)}/providers/Microsoft.Network/trafficmanagerprofiles/"
                   f"{quote(binding.profile)}?api-version={API_VERSION}")
            body = trafficmanager_steady_state(binding, service, conn.subscription_id, dns_ttl)
            try:
                rest("PUT", url, body, token=token, ca_file=ca_file)
            except RestError as exc:
                raise LabError(f"seeding trafficmanager profile {scope}: {exc}") from None
    return scopes
