"""Services from Terraform outputs: the output contract, its shape checks, and whole strategies.

The contract (what the modules in ``providers/`` output, what ``from_terraform`` and
``failover import-terraform`` read):

* an output ``failover_service`` whose value is one service::

    {name, strategy?, scope?,
     connections?: {name: connection object as in a strategy file},
     endpoints: [{name, role, region?, zone?, weight?, capacity?, probe?: {type: http, url: ...}}],
     routing: [routing binding objects exactly as in a strategy file]}

* or an output ``failover_services``: a map of service name -> the same object (``name`` optional,
  the key is the name).

Terraform emits ``null`` for unset optional attributes; null values are dropped (recursively)
before anything is checked, so ``probe = null`` is the same as no probe. The checks here are
about shape (objects, lists, the attributes the model requires, names to merge by); values are
checked by the strategy model afterwards, with the usual paths.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, get_args

from failover_engine.core.errors import Problem, StrategyError
from failover_engine.core.model import Connection, Endpoint, ProbeSpec, RoutingBinding, Service

SINGLE, MANY = "failover_service", "failover_services"
_CONTRACT = ("name", "strategy", "scope", "connections", "endpoints", "routing")
# other service fields a module may set too; from_terraform would be a loop
_SERVICE_FIELDS = frozenset(_CONTRACT) | (frozenset(Service.model_fields) - {"from_terraform"})


# --------------------------------------------------------------------------- the model's tagged unions
def _members(union: Any, tag: str) -> dict[str, type]:
    """tag value -> model class of a discriminated union (``Annotated[Union[Annotated[M, Tag]...]]``)."""
    inner = get_args(union)[0]
    out = {}
    for member in get_args(inner) or (inner,):
        cls = get_args(member)[0] if get_args(member) else member
        out[cls.model_fields[tag].default] = cls
    return out


_ROUTING = _members(RoutingBinding, "adapter")
_CONNECTIONS = _members(Connection, "type")
_PROBES = _members(ProbeSpec, "type")


def _required(cls: type) -> list[str]:
    return [n for n, f in cls.model_fields.items() if f.is_required()]  # type: ignore[attr-defined]


def _binding_class(cls: type) -> type:
    """The per-endpoint binding model of a routing model (``endpoints: dict[str, X]``)."""
    return get_args(cls.model_fields["endpoints"].annotation)[1]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- helpers
def drop_nulls(value: Any) -> Any:
    """``value`` without null attributes, at every depth (list items are kept, nulls included)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_map_of_services(output: str, value: Any) -> bool:
    if output == MANY:
        return True
    return (isinstance(value, dict) and bool(value) and not {"name", "endpoints", "routing"} & set(value)
            and all(isinstance(v, dict) for v in value.values()))


class _Checker:
    def __init__(self, where: Callable[[str], str], file: str | None):
        self.where, self.file = where, file
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.where(path), message, self.file))

    def obj(self, value: Any, path: str, what: str = "an object") -> bool:
        if not isinstance(value, dict):
            self.add(path, f"must be {what}, not {_kind(value)}")
            return False
        return True

    def required(self, value: dict[str, Any], path: str, names: list[str]) -> None:
        for n in names:
            if n not in value:
                self.add(f"{path}.{n}", "missing")

    def string(self, value: dict[str, Any], path: str, name: str) -> None:
        if name in value and not isinstance(value[name], str):
            self.add(f"{path}.{name}", f"must be a string, not {_kind(value[name])}")

    # ------------------------------------------------------------------ parts of a service
    def service(self, svc: Any, path: str, *, name_required: bool) -> None:
        if not self.obj(svc, path):
            return
        unknown = [k for k in svc if k not in _SERVICE_FIELDS]
        for k in unknown:
            self.add(f"{path}.{k}", f"unknown attribute (the contract has: {', '.join(_CONTRACT)})")
        self.required(svc, path, (["name"] if name_required else []) + ["endpoints", "routing"])
        for k in ("name", "strategy", "scope"):
            self.string(svc, path, k)
        if "connections" in svc:
            self.connections(svc["connections"], f"{path}.connections")
        if "endpoints" in svc:
            self.endpoints(svc["endpoints"], f"{path}.endpoints")
        if "routing" in svc:
            self.routing(svc["routing"], f"{path}.routing")

    def connections(self, conns: Any, path: str) -> None:
        if not self.obj(conns, path, "an object of connection objects (name -> connection)"):
            return
        for cname, conn in conns.items():
            at = f"{path}.{cname}"
            if not self.obj(conn, at):
                continue
            ctype = conn.get("type", "route53")
            cls = _CONNECTIONS.get(ctype) if isinstance(ctype, str) else None
            if cls is None:
                self.add(f"{at}.type", f"unknown connection type {ctype!r}; one of {', '.join(_CONNECTIONS)}")
                continue
            self.required(conn, at, _required(cls))

    def endpoints(self, eps: Any, path: str) -> None:
        if not isinstance(eps, list):
            self.add(path, f"must be a list of objects, not {_kind(eps)}")
            return
        for i, ep in enumerate(eps):
            at = f"{path}[{i}]"
            if not self.obj(ep, at, "an endpoint object"):
                continue
            self.required(ep, at, _required(Endpoint))
            self.string(ep, at, "name")
            self.string(ep, at, "role")
            for key in ("probe", "gate"):
                if key in ep:
                    self.probe(ep[key], f"{at}.{key}")
        names = [ep.get("name") for ep in eps if isinstance(ep, dict) and isinstance(ep.get("name"), str)]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            self.add(path, f"endpoint name {dup!r} appears more than once")

    def probe(self, probe: Any, path: str) -> None:
        if not self.obj(probe, path):
            return
        ptype = probe.get("type", "http")
        cls = _PROBES.get(ptype) if isinstance(ptype, str) else None
        if cls is None:
            self.add(f"{path}.type", f"unknown probe type {ptype!r}; one of {', '.join(_PROBES)}")
            return
        self.required(probe, path, _required(cls))

    def routing(self, routing: Any, path: str) -> None:
        if not isinstance(routing, list):
            self.add(path, f"must be a list of objects, not {_kind(routing)}")
            return
        for i, binding in enumerate(routing):
            at = f"{path}[{i}]"
            if not self.obj(binding, at, "a routing binding object"):
                continue
            adapter = binding.get("adapter", "route53")
            cls = _ROUTING.get(adapter) if isinstance(adapter, str) else None
            if cls is None:
                self.add(f"{at}.adapter", f"unknown adapter {adapter!r}; one of {', '.join(_ROUTING)}")
                continue
            self.required(binding, at, _required(cls))
            eps = binding.get("endpoints")
            if eps is None or not self.obj(eps, f"{at}.endpoints", "an object (endpoint name -> binding)"):
                continue
            needed = _required(_binding_class(cls))
            for ename, eb in eps.items():
                if self.obj(eb, f"{at}.endpoints.{ename}"):
                    self.required(eb, f"{at}.endpoints.{ename}", needed)


# --------------------------------------------------------------------------- canonical order
def _order(value: dict[str, Any], cls: type | None) -> dict[str, Any]:
    """``value``'s keys in the model's field order (Terraform sorts object keys alphabetically)."""
    if cls is None:
        return value
    rank = {n: i for i, n in enumerate(cls.model_fields)}  # type: ignore[attr-defined]
    return dict(sorted(value.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _tagged(value: Any, classes: dict[str, type], tag: str, default: str) -> Any:
    return _order(value, classes.get(value.get(tag, default))) if isinstance(value, dict) else value


def _canonical(svc: dict[str, Any]) -> dict[str, Any]:
    """A checked service with every object's keys in the strategy model's order, as a person
    would write them (adapter and type first, endpoints and routing before detection)."""
    svc = _order(svc, Service)
    eps = []
    for ep in svc.get("endpoints", []):
        ep = _order(ep, Endpoint)
        for key in ("probe", "gate"):
            if key in ep:
                ep[key] = _tagged(ep[key], _PROBES, "type", "http")
        eps.append(ep)
    routing = []
    for binding in svc.get("routing", []):
        cls = _ROUTING.get(binding.get("adapter", "route53"))
        binding = _order(binding, cls)
        if cls is not None and isinstance(binding.get("endpoints"), dict):
            # Terraform emits maps sorted by key: put the bindings back in the endpoints' declared
            # order, which adapters use to rank standbys (Traffic Manager priorities 2, 3, ...)
            declared = {ep.get("name"): i for i, ep in enumerate(eps) if isinstance(ep, dict)}
            items = sorted(binding["endpoints"].items(), key=lambda kv: declared.get(kv[0], len(declared)))
            binding["endpoints"] = {n: _order(b, _binding_class(cls)) if isinstance(b, dict) else b
                                    for n, b in items}
        routing.append(binding)
    if "endpoints" in svc:
        svc["endpoints"] = eps
    if "routing" in svc:
        svc["routing"] = routing
    return svc


# --------------------------------------------------------------------------- one service
def service_from_outputs(outputs: dict[str, Any], *, output: str = SINGLE, key: str | None = None,
                         where: Callable[[str], str] = str, file: str | None = None,
                         ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(service name, service fields as under ``services.<name>``, connections) from the outputs of
    a Terraform directory (name -> value, as :meth:`TerraformRunner.outputs` returns them).

    ``output``: the output to read (``failover_service``, or a map of services such as
    ``failover_services``); ``key``: the entry of a map of services (optional when it has exactly
    one). Null values are dropped first. Raises :class:`StrategyError` with every problem, each at
    ``where("output <name>.<place>")`` (``where`` maps the path, e.g. to prefix it) in ``file``.
    """
    chk = _Checker(where, file)

    def fail() -> StrategyError:
        return StrategyError(chk.problems, file)

    if not isinstance(outputs, dict):
        chk.add(f"output {output}", f"the outputs must be an object (name -> value), not {_kind(outputs)}")
        raise fail()
    if output not in outputs:
        if not outputs:
            chk.add(f"output {output}", "unknown output; the directory has no outputs (has `terraform apply` run there? "
                                        "without state Terraform reports none)")
        else:
            hint = ""
            other = {SINGLE: MANY, MANY: SINGLE}.get(output)
            if other in outputs:
                hint = f" (set output: {other})"
            chk.add(f"output {output}", f"unknown output; the directory has outputs: {', '.join(sorted(outputs))}{hint}")
        raise fail()
    value = drop_nulls(outputs[output])
    path = f"output {output}"
    if value is None:
        chk.add(path, "is null")
        raise fail()
    name_required = True
    if _is_map_of_services(output, value):
        if not chk.obj(value, path, "an object (service name -> service)"):
            raise fail()
        if not value:
            chk.add(path, "has no services")
            raise fail()
        if key is None:
            if len(value) != 1:
                chk.add(path, f"holds several services ({', '.join(sorted(value))}): say which with key")
                raise fail()
            key = next(iter(value))
        if key not in value:
            chk.add(path, f"has no service {key!r}; it has: {', '.join(sorted(value))}")
            raise fail()
        value, path, name_required = value[key], f"{path}.{key}", False
    chk.service(value, path, name_required=name_required)
    if chk.problems:
        raise fail()
    svc = copy.deepcopy(value)
    name = svc.pop("name", None) or key
    connections = {n: _tagged(c, _CONNECTIONS, "type", "route53") for n, c in (svc.pop("connections", {}) or {}).items()}
    return str(name), _canonical(svc), connections


# --------------------------------------------------------------------------- whole strategies
def choose_output(outputs: dict[str, Any], output: str | None) -> str:
    """``output`` if given, else ``failover_service``, or ``failover_services`` when only that exists."""
    if output:
        return output
    return MANY if MANY in outputs and SINGLE not in outputs else SINGLE


def strategy_from_outputs(outputs: dict[str, Any], *, output: str | None = None, service: str | None = None,
                          source: str | None = None) -> dict[str, Any]:
    """A strategy document (version 1, connections, services) from a directory's outputs.

    With a map of services, ``service`` picks one entry (default: every entry); with one service,
    ``service`` renames it. ``source`` names where the outputs came from in problems."""
    output = choose_output(outputs, output)
    problems: list[Problem] = []
    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    value = drop_nulls(outputs.get(output)) if isinstance(outputs, dict) else None
    keys: list[str | None] = [None]
    if isinstance(outputs, dict) and output in outputs and _is_map_of_services(output, value) \
            and isinstance(value, dict) and value:
        keys = [service] if service else list(value)
    for key in keys:
        try:
            found.append(service_from_outputs(outputs, output=output, key=key, file=source))
        except StrategyError as exc:
            problems.extend(exc.problems)
    connections: dict[str, Any] = {}
    origin: dict[str, str] = {}
    services: dict[str, Any] = {}
    for name, svc, conns in found:
        if service and keys == [None]:
            name = service
        services[name] = svc
        for cname, conn in conns.items():
            if cname in connections and connections[cname] != conn:
                problems.append(Problem(f"output {output}.{name}.connections.{cname}",
                                        f"differs from the connection {cname!r} of service {origin[cname]!r}", source))
            connections.setdefault(cname, conn)
            origin.setdefault(cname, name)
    if problems:
        raise StrategyError(problems, source)
    doc: dict[str, Any] = {"version": 1}
    if connections:
        doc["connections"] = connections
    doc["services"] = services
    return doc


def strategy_from_terraform(dir: str | Path, *, runner_kind: str = "auto", output: str | None = None,
                            service: str | None = None) -> dict[str, Any]:
    """A strategy document built from the outputs of the Terraform working directory ``dir``
    (what ``failover import-terraform`` prints). Raises :class:`TerraformError` when the outputs
    cannot be read and :class:`StrategyError` (every problem, ``file`` = the directory) when they
    do not follow the contract."""
    from failover_engine.config.terraform import runner

    outputs = runner(runner_kind).outputs(dir)  # type: ignore[arg-type]
    return strategy_from_outputs(outputs, output=output, service=service, source=str(dir))
