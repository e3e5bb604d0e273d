"""The MCP server's strategy store: one strategy file in the server's home, changed only whole.

``define`` merges a strategy document (its connections and services replace same-named ones)
and ``configure`` sets a service's standby endpoints; either way the input is first checked raw
against the operator's limits (size, depth, string length: :mod:`.policy`), then the merged
document is validated as a whole (structure, then cross-field rules, then the operator's
policy: identifiers, counts, timings, zones, records, probe destinations, code probes) and
written atomically (0600) only when every check passes. A rejected input changes nothing.
YAML text from a client is read strictly: no aliases, no duplicate keys, bounded nesting.
"""
from __future__ import annotations

import copy
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from failover_engine.core.errors import Problem, StrategyError
from failover_engine.engine.events import redact
from failover_engine.config.loader import LoadedStrategy, load_strategy, parse_strategy
from failover_engine.core.model import Strategy
from failover_engine.mcp.policy import INPUT, OperatorPolicy, mask_headers


class StoreRejected(Exception):
    """Every problem found in a client's input; nothing was stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _problem(path: str, message: str) -> Problem:
    return Problem(path, message, INPUT)


class _StrictLoader(yaml.SafeLoader):
    """YAML from clients: aliases (a billion laughs) and duplicate keys refused, nesting bounded."""

    max_depth = 32

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(None, None, "aliases (*name) are not accepted in MCP input", mark)
        depth = getattr(self, "_depth", 0)
        if depth >= self.max_depth:
            raise yaml.MarkedYAMLError(None, None, f"nested deeper than {self.max_depth} levels",
                                       self.peek_event().start_mark)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _unused in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.MarkedYAMLError(None, None, "merge keys (<<) are not accepted in MCP input",
                                           key_node.start_mark)
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.MarkedYAMLError(None, None, f"duplicate key {str(key)[:64]!r} (first on line "
                                                       f"{seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class StrategyStore:
    """``home/strategy.yaml`` (state in ``home/state``), guarded by a lock for writers."""

    def __init__(self, home: str | Path, *, allow_code_probes: bool = False,
                 connections: dict[str, Any] | None = None, allow_client_connections: bool = False,
                 policy: OperatorPolicy | None = None):
        self.home = Path(home).resolve()
        self.path = self.home / "strategy.yaml"
        self.state_dir = self.home / "state"
        self.policy = policy or OperatorPolicy(allow_code_probes=allow_code_probes)
        if allow_code_probes:
            self.policy.allow_code_probes = True
        # connections say where credentials go (endpoint_url, token_env_var, profile...): the
        # operator's, from --connections; a client's only with --allow-client-connections (labs)
        self.connections = copy.deepcopy(connections or {})
        self.allow_client_connections = allow_client_connections
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def document(self) -> dict[str, Any]:
        """The stored document (empty when nothing was defined yet)."""
        if not self.path.exists():
            return {}
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        return data if isinstance(data, dict) else {}

    def services(self) -> list[str]:
        return sorted((self.document().get("services") or {}).keys())

    def loaded(self) -> LoadedStrategy:
        """The stored strategy, loaded as every other entry point loads a strategy file."""
        if not self.path.exists():
            raise StrategyError([Problem("", "no strategy is defined yet: call failover.define first", None)])
        return load_strategy(self.path, state_dir=self.state_dir)

    def yaml_text(self, service: str | None = None) -> str:
        """The stored strategy as YAML, with secret-looking values and every probe header's value
        masked (for resources)."""
        doc = self.document()
        if service is not None:
            svc = (doc.get("services") or {}).get(service)
            if svc is None:
                raise KeyError(service)
            doc = {"services": {service: svc}}
        return yaml.safe_dump(mask_headers(redact(doc)), sort_keys=False)

    # ------------------------------------------------------------------ writing
    def define(self, incoming: dict[str, Any] | str) -> tuple[Strategy, list[str]]:
        """Merge ``incoming`` into the stored document; validate; store. Returns the stored
        strategy and the names of the services ``incoming`` defined. Raises StoreRejected."""
        data = self._parse_input(incoming)
        problems = [_problem(str(k)[:64], "not a section of a strategy a client may send (version, connections, "
                                          "services, monitoring)")
                    for k in data if k not in ("version", "connections", "services", "monitoring", "state_dir")]
        if "services" in data and isinstance(data["services"], dict):
            problems += [_problem(f"services.{k}", "a service name is a string") for k in data["services"]
                         if not isinstance(k, str)]
        if "state_dir" in data:
            problems.append(_problem("state_dir", "set by the server (its home), not by a client"))
        if not isinstance(data.get("services"), dict) or not data["services"]:
            problems.append(_problem("services", "a strategy defines at least one service (a mapping of name to service)"))
        for key in ("connections", "monitoring"):
            if key in data and not isinstance(data[key], dict):
                problems.append(_problem(key, "must be a mapping"))
        if isinstance(data.get("connections"), dict) and not self.allow_client_connections:
            known = ", ".join(sorted(self.connections)) or "none configured"
            for name in data["connections"]:
                problems.append(_problem(f"connections.{name}", "connections (where credentials are sent) are set by "
                                         "the server operator (failover-mcp --connections FILE), not by clients: "
                                         f"reference one by name (known: {known})"))
        services = data["services"] if isinstance(data.get("services"), dict) else {}
        for sname, svc in services.items():
            if isinstance(svc, dict) and "from_terraform" in svc:
                problems.append(_problem(f"services.{sname}.from_terraform", "paths are not accepted from MCP "
                                         "clients: import the Terraform outputs with `failover import-terraform` "
                                         "and define the result"))
            if isinstance(svc, dict) and "promotion" in svc:
                problems.append(_problem(f"services.{sname}.promotion", "a promotion runs terraform apply in a "
                                         "directory of this host: not accepted from MCP clients (put it in a "
                                         "strategy file the operator runs with the CLI or the playbooks)"))
        if problems:
            raise StoreRejected(problems)
        with self._lock:
            merged = self.document()
            merged.pop("state_dir", None)
            for key in ("connections", "services"):
                merged.setdefault(key, {}).update(copy.deepcopy(data.get(key) or {}))
            if "monitoring" in data:
                merged["monitoring"] = copy.deepcopy(data["monitoring"])
            if "version" in data:
                merged["version"] = data["version"]
            return self._validate_and_write(merged, sorted(services), "monitoring" in data), sorted(services)

    def configure(self, service: str, standbys: list[dict[str, Any]], *, replace: bool,
                  active: list[str] | None) -> Strategy:
        """Set (``replace``) or add/update a service's standby endpoints, each with its routing
        bindings (one per routing entry of the service, in order). ``active``: the endpoints
        taking traffic now (None when unknown); a standby among them is never removed."""
        problems = self.policy.input_problems(standbys)
        if problems:
            raise StoreRejected([Problem(f"standbys{p.path}", p.message, INPUT) for p in problems])
        with self._lock:
            doc = self.document()
            svc = (doc.get("services") or {}).get(service)
            if svc is None:
                raise StoreRejected([_problem("service", f"no service named {service!r} is defined "
                                                         f"(defined: {', '.join(self.services()) or 'none'})")])
            if svc.get("strategy", "active_passive") != "active_passive":
                raise StoreRejected([_problem("service", f"{service!r} is active_active: its members are set with "
                                                         "failover.define, standbys are for active_passive services")])
            routing = svc.get("routing") or []
            problems = []
            names = [s.get("name") for s in standbys]
            for i, sb in enumerate(standbys):
                bindings = sb.get("routing") or []
                if len(bindings) != len(routing):
                    problems.append(_problem(f"standbys[{i}].routing", f"give one binding per routing entry of "
                                             f"{service!r} ({len(routing)}), in order; got {len(bindings)}"))
            endpoints = list(svc.get("endpoints") or [])
            old_standbys = [e.get("name") for e in endpoints if e.get("role") == "standby"]
            removed = [n for n in old_standbys if n not in names] if replace else []
            live = [n for n in removed if active is None or n in active]
            if live:
                why = "takes traffic now" if active is not None else "may take traffic (the routing state could not be read)"
                problems.append(_problem("standbys", f"replacing would remove {', '.join(live)}, which {why}: "
                                                     "fail back or over first"))
            if problems:
                raise StoreRejected(problems)
            keep = [e for e in endpoints if e.get("name") not in names and e.get("name") not in removed]
            for sb in standbys:
                ep = {k: v for k, v in sb.items() if k != "routing" and v is not None}
                ep["role"] = "standby"
                keep.append(ep)
            svc["endpoints"] = keep
            for r, binding in enumerate(routing):
                eps = {k: v for k, v in (binding.get("endpoints") or {}).items() if k not in removed}
                for sb in standbys:
                    eps[sb["name"]] = sb["routing"][r]
                binding["endpoints"] = eps
            return self._validate_and_write(doc, [service], False)

    # ------------------------------------------------------------------ internals
    def _parse_input(self, incoming: Any) -> dict[str, Any]:
        """The client's document, checked raw against the limits before anything else reads it."""
        problems = self.policy.input_problems(incoming)
        if problems:
            raise StoreRejected(problems)
        if isinstance(incoming, str):
            try:
                data = yaml.load(incoming, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                raise StoreRejected([_problem(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]) from None
            except RecursionError:
                raise StoreRejected([_problem("", "nested too deeply")]) from None
            problems = self.policy.input_problems(data)
            if problems:
                raise StoreRejected(problems)
        else:
            data = incoming
        if not isinstance(data, dict):
            raise StoreRejected([_problem("", "a strategy is a mapping with `services:` (and `connections:`)")])
        return data

    def _validate_and_write(self, doc: dict[str, Any], services: list[str], monitoring: bool) -> Strategy:
        doc["state_dir"] = "state"
        doc.setdefault("connections", {}).update(copy.deepcopy(self.connections))  # the operator's win
        text = yaml.safe_dump(doc, sort_keys=False)
        try:
            strategy, _unused = parse_strategy(text, file=INPUT)
        except StrategyError as exc:
            raise StoreRejected([Problem(_strip_line(p.path), p.message, INPUT) for p in exc.problems]) from None
        problems = self.policy.strategy_problems(strategy, services, monitoring=monitoring)
        if problems:
            raise StoreRejected(problems)
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".strategy-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return strategy


def _strip_line(path: str) -> str:
    """'services.x.ttl (line 12)' -> 'services.x.ttl': lines of the merged file mean nothing to a client."""
    return path.split(" (line ", 1)[0]
