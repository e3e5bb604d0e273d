"""Read a strategy file: YAML → :class:`Strategy`, with every problem reported at once.

Problems carry the file, a dotted path (``services.web.endpoints[1].probe.url``), the
line in the file when it can be found, and what is wrong.

A service with a ``from_terraform`` block is expanded here, before validation: the outputs of
its Terraform directory give its endpoints, routing and connections (see
:func:`expand_from_terraform` for the merge rules).
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from .errors import Problem, StrategyError, UnknownServiceError
from .model import Connection, ProbeSpec, RoutingBinding, Service, Strategy, format_loc, semantic_problems


@dataclass(frozen=True)
class LoadedStrategy:
    strategy: Strategy
    path: Path | None
    state_dir: Path

    def service(self, name: str) -> Service:
        try:
            return self.strategy.services[name]
        except KeyError:
            raise UnknownServiceError(name, list(self.strategy.services), str(self.path)) from None


_PATTERN_HINTS = {
    "url": "must be an http:// or https:// URL",
    "name": "use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit",
}


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number (1-based) for a path, from the composed YAML node tree."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v
                    break
            if nxt is None:
                return best
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return best
        best = node.start_mark.line + 1
    return best


def _union_tags() -> frozenset[str]:
    """The discriminator values of the model's tagged unions (pydantic puts them into error paths)."""
    tags = set()
    for union in (ProbeSpec, RoutingBinding, Connection):
        inner = get_args(union)[0]
        for member in get_args(inner) or (inner,):
            cls = get_args(member)[0] if get_args(member) else member  # Annotated[Model, Tag(...)]
            field = "adapter" if "adapter" in cls.model_fields else "type"
            tags.add(cls.model_fields[field].default)
    return frozenset(tags)


_UNION_TAGS = _union_tags()


def _strip_union_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """pydantic puts the discriminator tag into loc (``probe.http.url``); keep only real keys."""
    out: list[Any] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str):
            # a union tag, or a missing field: keep missing fields (they are what is wrong)
            if part not in _UNION_TAGS or "type" not in cur and "adapter" not in cur:
                out.append(part)
        # else: tag of a discriminated union, dropped
    return tuple(out)


# --------------------------------------------------------------------------- from_terraform
_RUNNERS = ("auto", "binary", "embedded")


@dataclass
class _Expansion:
    """What :func:`expand_from_terraform` did: its problems, the services it could not expand, and
    where values came from (to say so in problems about them)."""

    problems: list[Problem] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    # service -> (note, line of from_terraform, top-level keys from Terraform, per merged endpoint:
    # (made by Terraform, fields the file set))
    services: dict[str, tuple[str, int | None, set[str], list[tuple[bool, set[str]]]]] = field(default_factory=dict)
    connections: dict[str, tuple[str, int | None, Any]] = field(default_factory=dict)

    def origin(self, loc: tuple[Any, ...]) -> tuple[str | None, int | None]:
        """(note, line) when the value at ``loc`` came from Terraform, else (None, None)."""
        if len(loc) >= 2 and loc[0] == "connections" and loc[1] in self.connections:
            note, line, _ = self.connections[loc[1]]
            return note, line
        if len(loc) < 3 or loc[0] != "services" or loc[1] not in self.services:
            return None, None
        note, line, tf_keys, endpoints = self.services[loc[1]]
        key, rest = loc[2], loc[3:]
        if key not in tf_keys:
            return None, None
        if key == "endpoints" and rest and isinstance(rest[0], int) and rest[0] < len(endpoints):
            made, file_fields = endpoints[rest[0]]
            if not made or (len(rest) > 1 and rest[1] in file_fields):
                return None, None
        return note, line


def _merge_endpoints(tf_eps: list[Any], file_eps: list[Any]) -> tuple[list[Any], list[tuple[bool, set[str]]]]:
    """The output's endpoints with the file's merged in by name, field by field (the file's fields
    win); file endpoints Terraform did not make are appended."""
    out = [dict(ep) for ep in tf_eps]
    src: list[tuple[bool, set[str]]] = [(True, set()) for _ in out]
    index = {ep.get("name"): i for i, ep in enumerate(out)}
    for ep in file_eps:
        name = ep.get("name") if isinstance(ep, dict) else None
        i = index.get(name) if isinstance(name, str) else None
        if i is None:
            out.append(ep)
            src.append((False, set()))
        else:
            out[i].update(ep)
            src[i] = (True, src[i][1] | (set(ep) - {"name"}))
    return out, src


def expand_from_terraform(data: dict[str, Any], root: yaml.Node | None, file: str | None) -> _Expansion:
    """Fill in, in place, every service of ``data`` that has a ``from_terraform`` mapping, from the
    outputs of its Terraform directory (``dir`` relative to ``file``'s directory, else the cwd).

    Merge rules: the file's own service fields win over the output's; ``endpoints`` in the file are
    merged by name into the output's endpoints, field by field (a file can add a probe or capacity
    to an endpoint Terraform made; other file endpoints are appended); ``routing`` in the file
    replaces the output's; the output's ``connections`` are added unless the file has that name.
    The ``from_terraform`` block stays. Problems (unreadable directory, Terraform errors, a missing
    or malformed output) are at ``services.<name>.from_terraform``, naming the directory and output."""
    from . import terraform
    from .errors import FailoverError
    from .tfoutputs import service_from_outputs

    out = _Expansion()
    services = data.get("services")
    if not isinstance(services, dict):
        return out
    base = Path(file).resolve().parent if file else Path.cwd()
    for name, svc in services.items():
        if not isinstance(svc, dict) or not isinstance(svc.get("from_terraform"), dict):
            continue  # absent, or not a mapping (the model says so)
        ft = svc["from_terraform"]
        d, output, key, kind = ft.get("dir"), ft.get("output", "failover_service"), ft.get("key"), ft.get("runner", "auto")
        if not isinstance(d, str) or not isinstance(output, str) or kind not in _RUNNERS \
                or not (key is None or isinstance(key, str)):
            out.failed.add(name)  # the model reports the bad field
            continue
        at = ("services", name, "from_terraform")
        line = _line_of(root, at)
        path = f"{format_loc(at)} (line {line})" if line else format_loc(at)
        directory = Path(os.path.normpath(base / Path(d).expanduser()))
        try:
            outputs = terraform.runner(kind).outputs(directory)
        except FailoverError as exc:
            out.problems.append(Problem(path, f"cannot read output {output}: {exc}", file))
            out.failed.add(name)
            continue
        try:
            _, tf_svc, tf_conns = service_from_outputs(outputs, output=output, key=key or name)
        except StrategyError as exc:
            out.problems.extend(Problem(path, f"{p.path}: {p.message} (terraform directory {directory})", file)
                                for p in exc.problems)
            out.failed.add(name)
            continue
        note = f"from terraform output {output} in {directory}"
        merged = copy.deepcopy(tf_svc)
        tf_keys = set(tf_svc)
        endpoints_src: list[tuple[bool, set[str]]] = [(True, set()) for _ in tf_svc.get("endpoints", [])]
        for k, v in svc.items():
            if k == "endpoints" and isinstance(v, list):
                merged["endpoints"], endpoints_src = _merge_endpoints(merged["endpoints"], v)
            else:
                merged[k] = v
                tf_keys.discard(k)
        services[name] = merged
        out.services[name] = (note, line, tf_keys, endpoints_src)
        conns = data.setdefault("connections", {}) if tf_conns else None
        if not isinstance(conns, dict):
            continue
        for cname, conn in tf_conns.items():
            if cname in out.connections:
                if out.connections[cname][2] != conn:
                    out.problems.append(Problem(path, f"output {output}.connections.{cname} differs from the "
                                                      f"connection {cname!r} another service's from_terraform "
                                                      f"added ({out.connections[cname][0]}); name one under "
                                                      "`connections` in the file", file))
                continue
            if cname not in conns:
                conns[cname] = conn
                out.connections[cname] = (note, line, conn)
    return out


def parse_strategy(text: str, *, file: str | None = None) -> tuple[Strategy, Any]:
    """Parse and validate YAML text. Raises :class:`StrategyError` with every problem.

    Services with ``from_terraform`` are filled in from Terraform outputs first (relative
    directories against ``file``'s directory, or the current directory without a file)."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        raise StrategyError([Problem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}", file)], file) from None
    if not isinstance(data, dict):
        raise StrategyError([Problem("", "a strategy file is a YAML mapping with `services:`", file)], file)
    tf = expand_from_terraform(data, root, file)
    problems = list(tf.problems)

    def where(loc: tuple[Any, ...]) -> tuple[str, str]:
        """(path with its line, note to add to the message) of a problem at ``loc``."""
        note, line = tf.origin(loc)
        line = line or _line_of(root, loc)
        path = format_loc(loc)
        return (f"{path} (line {line})" if line else path), (f" ({note})" if note else "")

    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _strip_union_tags(tuple(err["loc"]), data)
            if err["type"] == "missing" and len(loc) == 3 and loc[1] in tf.failed and loc[2] in ("endpoints", "routing"):
                continue  # the service's from_terraform problem says why they are missing
            path, note = where(loc)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; `failover schema` lists the fields)"
            elif err["type"] == "string_pattern_mismatch":
                msg = f"invalid value {err.get('input')!r}: " + _PATTERN_HINTS.get(str(loc[-1]) if loc else "", msg)
            problems.append(Problem(path, msg + note, file))
        raise StrategyError(problems, file) from None
    if problems:
        raise StrategyError(problems, file)
    sem = semantic_problems(strategy)
    if sem:
        for loc, msg in sem:
            path, note = where(loc)
            problems.append(Problem(path, msg + note, file))
        raise StrategyError(problems, file)
    return strategy, data


def load_strategy(path: str | Path, *, state_dir: str | Path | None = None) -> LoadedStrategy:
    """Load a strategy file. ``state_dir`` overrides the file's own setting."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise StrategyError([Problem("", f"cannot read file: {exc.strerror or exc}", str(p))], str(p)) from None
    strategy, _ = parse_strategy(text, file=str(p))
    if state_dir is not None:
        sd = Path(state_dir)
    elif strategy.state_dir:
        sd = Path(strategy.state_dir)
        if not sd.is_absolute():
            sd = p.resolve().parent / sd
    else:
        sd = p.resolve().parent / ".failover-state"
    return LoadedStrategy(strategy=strategy, path=p, state_dir=sd)


def json_schema() -> str:
    schema = Strategy.model_json_schema()
    service = schema.get("$defs", {}).get("Service", {})
    if set(service.get("required", [])) >= {"endpoints", "routing"}:
        # with from_terraform, the outputs give them
        service["required"] = [r for r in service["required"] if r not in ("endpoints", "routing")]
        service["anyOf"] = [{"required": ["endpoints", "routing"]}, {"required": ["from_terraform"]}]
        if not service["required"]:
            del service["required"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "failover-engine strategy file"
    return json.dumps(schema, indent=2)
