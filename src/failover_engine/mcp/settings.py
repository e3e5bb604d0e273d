"""The operator's settings of `failover-mcp`: command-line options, and the same in a config file.

``--config FILE`` (YAML) holds any of::

    connections: {name: {type: route53, ...}}     # as --connections
    allow:
      zones: [example.com., clouddns:prod-zone, trafficmanager:rg-prod/shop]
      records: ["*.example.com."]
      probes: [203.0.113.0/24, "*.svc.example.com"]
    limits:
      max_document_bytes: 262144
      max_services: 100
      max_endpoints: 16
      max_string: 1024
      probe_timeout: 0.1-10
      probe_interval: 0.25-3600
    http:
      auth_token_file: /etc/failover/mcp-token
      allowed_hosts: ["failover.internal:8765"]
      allowed_origins: ["https://ops.example"]
    work:
      workers: 8
      queue: 64
      per_client: 4
      call_timeout: 60

Command-line options add to the lists and override the rest. Unknown keys are refused.
"""
from __future__ import annotations

import argparse
import ipaddress
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from failover_engine.mcp.policy import DestinationPolicy, Limits, OperatorPolicy, parse_range


class SettingsError(Exception):
    """A setting the server cannot start with (the message says which and what to do)."""


@dataclass
class WorkSettings:
    workers: int = 8          # worker threads per lane
    queue: int = 64           # calls waiting per lane, beyond which a call is refused as busy
    per_client: int = 4       # calls of one client running at a time, per lane
    call_timeout: float = 60.0  # seconds a probing or reading call may take


@dataclass
class ServerSettings:
    home: Path
    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8765
    token_ttl: float = 300.0
    playbook_timeout: int = 900
    allow_code_probes: bool = False
    connections: dict[str, Any] | None = None
    allow_client_connections: bool = False
    keep_runs: int = 100
    collection_root: Path | None = None
    policy: OperatorPolicy = field(default_factory=OperatorPolicy)
    auth_token: str | None = None
    auth_token_file: Path | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    work: WorkSettings = field(default_factory=WorkSettings)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--home", type=Path, default=None,
                    help="where strategies, state, event log and run artefacts live "
                         "(default $FAILOVER_MCP_HOME or ~/.local/state/failover-mcp)")
    ap.add_argument("--config", type=Path, default=None,
                    help="YAML file of operator settings (connections, allow, limits, http, work); "
                         "options below add to its lists and override the rest")
    ap.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="stdio (default) or streamable HTTP")
    ap.add_argument("--host", default="127.0.0.1",
                    help="HTTP listen address (default 127.0.0.1; off loopback needs --auth-token-file)")
    ap.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    ap.add_argument("--auth-token-file", type=Path, default=None,
                    help="file holding the bearer token HTTP clients must send (Authorization: Bearer TOKEN); "
                         "0600, at least 16 characters")
    ap.add_argument("--allow-host", action="append", default=[], metavar="HOST[:PORT]",
                    help="another Host header value HTTP clients may use (default: the listen address)")
    ap.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                    help="an Origin (scheme://host[:port]) browsers may call from (default: the listen address)")
    ap.add_argument("--token-ttl", type=float, default=None, help="seconds a confirmation token lives (default 300)")
    ap.add_argument("--playbook-timeout", type=int, default=None, help="seconds a playbook run may take (default 900)")
    ap.add_argument("--allow-code-probes", action="store_true",
                    help="accept command and python probes from clients (they run code on this host)")
    ap.add_argument("--connections", type=Path, default=None,
                    help="YAML file of the connections clients may use (name: {type, endpoint_url, ...}, "
                         "or a strategy file's `connections:`); clients reference them by name")
    ap.add_argument("--allow-client-connections", action="store_true",
                    help="accept connections from clients (they decide where credentials are sent: labs only)")
    ap.add_argument("--allow-zone", action="append", default=[], metavar="ZONE",
                    help="a hosted zone (name or id), managed zone, Traffic Manager profile (RG/PROFILE), load "
                         "balancer or target group / resource ARN clients may touch; optionally ADAPTER:ZONE "
                         "(default: none)")
    ap.add_argument("--allow-record", action="append", default=[], metavar="GLOB",
                    help="record names clients may touch (e.g. '*.example.com.'; default: any record inside an "
                         "allowed zone)")
    ap.add_argument("--allow-probe", action="append", default=[], metavar="HOST|CIDR",
                    help="where client-defined probes may go (IP, network, host name or *.domain; default: "
                         "nowhere). Loopback, link-local and cloud metadata addresses need an entry of their own")
    ap.add_argument("--max-document-bytes", type=int, default=None, help="bytes per define (default 262144)")
    ap.add_argument("--max-services", type=int, default=None, help="services stored (default 100)")
    ap.add_argument("--max-endpoints", type=int, default=None, help="endpoints per service (default 16)")
    ap.add_argument("--max-string", type=int, default=None, help="characters per string (default 1024)")
    ap.add_argument("--probe-timeout-range", default=None, metavar="MIN-MAX",
                    help="seconds a client's detection.timeout may be (default 0.1-10)")
    ap.add_argument("--probe-interval-range", default=None, metavar="MIN-MAX",
                    help="seconds a client's detection.interval may be (default 0.25-3600)")
    ap.add_argument("--workers", type=int, default=None, help="worker threads per kind of work (default 8)")
    ap.add_argument("--queue", type=int, default=None, help="calls waiting per kind of work (default 64)")
    ap.add_argument("--per-client", type=int, default=None,
                    help="calls of one client running at once, per kind of work (default 4)")
    ap.add_argument("--call-timeout", type=float, default=None,
                    help="seconds a probing or reading tool call may take (default 60)")
    ap.add_argument("--keep-runs", type=int, default=None, help="run directories kept under HOME/runs (default 100)")
    ap.add_argument("--collection-root", type=Path, default=None,
                    help="the collection resilience.failover whose playbooks run: a checkout, or an installed "
                    "collection's directory (default: the checkout holding the cwd, else the installed collection)")


_CONFIG_KEYS = {"connections": None, "allow": {"zones", "records", "probes"},
                "limits": {"max_document_bytes", "max_services", "max_endpoints", "max_string", "probe_timeout",
                           "probe_interval"},
                "http": {"auth_token_file", "allowed_hosts", "allowed_origins"},
                "work": {"workers", "queue", "per_client", "call_timeout"},
                "token_ttl": None, "playbook_timeout": None, "keep_runs": None}


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read the config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: a mapping of sections ({', '.join(_CONFIG_KEYS)})")
    problems = [f"unknown section {k!r}" for k in data if k not in _CONFIG_KEYS]
    for section, keys in _CONFIG_KEYS.items():
        value = data.get(section)
        if keys and value is not None:
            if not isinstance(value, dict):
                problems.append(f"{section}: a mapping of {', '.join(sorted(keys))}")
            else:
                problems += [f"{section}.{k}: unknown setting" for k in value if k not in keys]
    if problems:
        raise SettingsError(f"config file {path}: " + "; ".join(problems))
    return data


def read_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the auth token file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(f"the auth token file {path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
                            f"chmod 600 {path}")
    if len(token) < 16 or any(c.isspace() for c in token):
        raise SettingsError(f"the auth token in {path} must be one word of at least 16 characters")
    return token


def build_settings(args: argparse.Namespace, home: Path) -> ServerSettings:
    """Settings from the config file (if any) and the options; raises SettingsError (or
    StrategyError for a connections file)."""
    cfg = read_config(args.config) if args.config else {}
    allow, limits_cfg = cfg.get("allow") or {}, cfg.get("limits") or {}
    http, work_cfg = cfg.get("http") or {}, cfg.get("work") or {}

    def pick(option: Any, section: dict[str, Any], key: str, default: Any) -> Any:
        return option if option is not None else section.get(key, default)

    try:
        base = Limits()
        limits = Limits(
            max_document_bytes=int(pick(args.max_document_bytes, limits_cfg, "max_document_bytes", base.max_document_bytes)),
            max_services=int(pick(args.max_services, limits_cfg, "max_services", base.max_services)),
            max_endpoints=int(pick(args.max_endpoints, limits_cfg, "max_endpoints", base.max_endpoints)),
            max_string=int(pick(args.max_string, limits_cfg, "max_string", base.max_string)),
            probe_timeout=_range(pick(args.probe_timeout_range, limits_cfg, "probe_timeout", base.probe_timeout)),
            probe_interval=_range(pick(args.probe_interval_range, limits_cfg, "probe_interval", base.probe_interval)))
        if min(limits.max_document_bytes, limits.max_services, limits.max_endpoints, limits.max_string) < 1:
            raise ValueError("limits are positive numbers")
        destinations = DestinationPolicy(list(allow.get("probes") or []) + args.allow_probe)
        policy = OperatorPolicy(limits=limits, zones=list(allow.get("zones") or []) + args.allow_zone,
                                records=list(allow.get("records") or []) + args.allow_record,
                                destinations=destinations, allow_code_probes=args.allow_code_probes)
        work = WorkSettings(workers=int(pick(args.workers, work_cfg, "workers", 8)),
                            queue=int(pick(args.queue, work_cfg, "queue", 64)),
                            per_client=int(pick(args.per_client, work_cfg, "per_client", 4)),
                            call_timeout=float(pick(args.call_timeout, work_cfg, "call_timeout", 60.0)))
        if work.workers < 1 or work.queue < 0 or work.per_client < 1 or work.call_timeout <= 0:
            raise ValueError("work: workers and per_client at least 1, queue at least 0, call_timeout positive")
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from None

    connections = None
    if cfg.get("connections") is not None:
        connections = parse_connections(cfg["connections"], f"{args.config}: connections")
    if args.connections:
        connections = {**(connections or {}), **load_connections(args.connections)}
    token_file = args.auth_token_file or (Path(http["auth_token_file"]) if http.get("auth_token_file") else None)
    settings = ServerSettings(
        home=home, transport=args.transport, host=args.host, port=args.port,
        token_ttl=float(pick(args.token_ttl, cfg, "token_ttl", 300.0)),
        playbook_timeout=int(pick(args.playbook_timeout, cfg, "playbook_timeout", 900)),
        allow_code_probes=args.allow_code_probes, connections=connections,
        allow_client_connections=args.allow_client_connections,
        keep_runs=int(pick(args.keep_runs, cfg, "keep_runs", 100)), collection_root=args.collection_root,
        policy=policy, auth_token_file=token_file,
        auth_token=read_token(token_file.expanduser()) if token_file else None,
        allowed_hosts=list(http.get("allowed_hosts") or []) + args.allow_host,
        allowed_origins=list(http.get("allowed_origins") or []) + args.allow_origin, work=work)
    if settings.transport == "http" and not settings.loopback and settings.auth_token is None:
        raise SettingsError(f"refusing to listen on {settings.host}, which is not a loopback address, without "
                            "authentication: give --auth-token-file FILE (clients then send Authorization: Bearer "
                            "TOKEN), or listen on 127.0.0.1")
    return settings


def _range(value: Any) -> tuple[float, float]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return parse_range(f"{value[0]}-{value[1]}")
    return parse_range(str(value))


def load_connections(path: Path) -> dict[str, Any]:
    """The operator's connections file, validated as a strategy file's connections are."""
    from failover_engine.core.errors import Problem, StrategyError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StrategyError([Problem("", f"cannot read connections: {exc}", str(path))], str(path)) from None
    if isinstance(data, dict) and isinstance(data.get("connections"), dict):
        data = data["connections"]
    return parse_connections(data, str(path))


def parse_connections(data: Any, where: str) -> dict[str, Any]:
    from pydantic import TypeAdapter, ValidationError

    from failover_engine.core.errors import Problem, StrategyError
    from failover_engine.core.model import Connection, Name, format_loc

    try:
        parsed = TypeAdapter(dict[Name, Connection]).validate_python(data)
    except ValidationError as exc:
        raise StrategyError([Problem(format_loc(tuple(e["loc"])), e["msg"], where) for e in exc.errors()],
                            where) from None
    return {name: conn.model_dump(mode="json", exclude_defaults=True) | {"type": conn.type}
            for name, conn in parsed.items()}
