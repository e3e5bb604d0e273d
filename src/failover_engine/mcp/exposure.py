"""What the HTTP transport exposes, and to whom: allowed Host and Origin headers, bearer tokens.

* The SDK's :class:`TransportSecuritySettings` are always passed: a request whose Host header is
  not the listen address (or one the operator added) is refused with 421, one whose Origin is
  foreign with 403. The SDK only enables this by itself for the exact names 127.0.0.1, localhost
  and ::1, so a server on 127.0.0.2 or 0.0.0.0 took any Host, which is what DNS rebinding needs.
* With ``--auth-token-file`` every request needs ``Authorization: Bearer TOKEN`` (401 otherwise),
  checked by :class:`StaticBearerToken`, the SDK's ``TokenVerifier`` interface.
* Off loopback the server does not start without a token (settings.build_settings).
"""
from __future__ import annotations

import hmac

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from failover_engine.mcp.settings import ServerSettings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class StaticBearerToken:
    """A TokenVerifier accepting exactly the operator's token (compared in constant time)."""

    def __init__(self, token: str):
        self._token = token.encode("utf-8")

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self._token):
            return AccessToken(token="operator-token", client_id="operator", scopes=[])
        return None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def allowed_hosts(s: ServerSettings) -> list[str]:
    """Host header values accepted: the listen address (loopback names too on loopback or a
    wildcard address) and the operator's --allow-host entries (with and without the port)."""
    out = []
    if s.loopback or s.host in ("0.0.0.0", "::"):
        out += [f"{h}:{s.port}" for h in LOOPBACK_NAMES]
    if s.host not in ("0.0.0.0", "::", "localhost"):
        out.append(_hostport(s.host, s.port))
    for entry in s.allowed_hosts:
        has_port = entry.rsplit(":", 1)[-1].isdigit() and (not entry.startswith("[") or "]:" in entry)
        out += [entry] if has_port else [entry, f"{entry}:{s.port}"]
    return list(dict.fromkeys(out))


def allowed_origins(s: ServerSettings) -> list[str]:
    """Origins accepted (a request without Origin, as MCP clients send, is always accepted):
    the server's own, and the operator's --allow-origin entries."""
    own = [f"http://{h}" for h in allowed_hosts(s) if h.rsplit(":", 1)[-1].isdigit()]
    return list(dict.fromkeys(own + [o.rstrip("/") for o in s.allowed_origins]))


def transport_security(s: ServerSettings) -> TransportSecuritySettings:
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts(s),
                                     allowed_origins=allowed_origins(s))


def auth_settings(s: ServerSettings) -> AuthSettings | None:
    if s.auth_token is None:
        return None
    return AuthSettings(issuer_url=f"http://{_hostport(s.host, s.port)}", resource_server_url=None)


def exposure_lines(s: ServerSettings) -> list[str]:
    """What the server exposes, said once at start-up (stderr)."""
    lim = s.policy.limits
    lines = []
    if s.transport == "stdio":
        lines.append("transport stdio: only the client that started this process can call it")
    else:
        auth = (f"bearer token from {s.auth_token_file}" if s.auth_token else
                "OFF (loopback only: anyone on this host can call it)")
        lines.append(f"listening on http://{_hostport(s.host, s.port)}/mcp; authentication {auth}")
        lines.append("allowed Host headers: " + ", ".join(allowed_hosts(s)))
        lines.append("allowed Origins: " + ", ".join(allowed_origins(s)) + " (and requests without Origin)")
    p = s.policy
    lines.append("clients may touch zones: " + (", ".join(p.zones) or "none (--allow-zone)")
                 + "; records: " + (", ".join(p.records) or "any inside an allowed zone"))
    lines.append("client probes may reach: " + (", ".join(p.destinations.allow) or "nowhere (--allow-probe)")
                 + "; code probes " + ("ALLOWED" if s.allow_code_probes else "refused")
                 + "; client connections " + ("ALLOWED" if s.allow_client_connections else "refused"))
    lines.append(f"limits: {lim.describe()}; work: {s.work.workers} workers, {s.work.queue} waiting, "
                 f"{s.work.per_client} per client per kind of work, calls {s.work.call_timeout:g}s")
    return lines
