"""Read a strategy file: YAML → :class:`Strategy`, with every problem reported at once.

Problems carry the file, a dotted path (``services.web.endpoints[1].probe.url``), the
line in the file when it can be found, and what is wrong.

A service with a ``from_terraform`` block is expanded here, before validation: the outputs of
its Terraform directory give its endpoints, routing and connections (see
:func:`expand_from_terraform` for the merge rules).

Input is read strictly and totally: whatever the bytes, the result is a :class:`Strategy` or a
:class:`StrategyError`, in bounded time and memory.

* Size: a file over ``FAILOVER_MAX_STRATEGY_BYTES`` (default 1 MiB, :data:`DEFAULT_MAX_BYTES`) is
  refused from its size, before it is read (a stream is read one byte past the limit at most).
* Encoding: UTF-8 only (a byte order mark is fine); otherwise "not UTF-8 at byte N".
* YAML: plain YAML only. A key given twice in one mapping is refused with both lines (YAML would
  silently keep the last); merge keys (``<<``) still work and an explicit key overrides a merged
  one. Nesting deeper than :data:`MAX_DEPTH` levels (aliases expanded) is refused while parsing,
  so no recursion error can escape; so are aliases that refer to themselves or that expand to
  more than :data:`MAX_VALUES` values (an "alias bomb"). Tags other than the core ones (``!!str``,
  ``!!int``, ...) are refused, and dates stay strings (no strategy field is a date).
* Problems: at most :data:`MAX_PROBLEMS` are reported, then how many more there are.
"""
from __future__ import annotations

import copy
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingEndEvent, ScalarEvent, SequenceEndEvent
from yaml.resolver import Resolver

try:  # libyaml: the scanner and parser in C (event by event); the composer below stays in Python
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

from failover_engine.core.errors import Problem, StrategyError, UnknownServiceError
from failover_engine.core.model import (
    Connection,
    ProbeSpec,
    RoutingBinding,
    SafetyRule,
    Service,
    Strategy,
    format_loc,
    semantic_problems,
)


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
            for k, v in reversed(node.value):  # the last one: the one a dict keeps (merged keys come first)
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
    for union in (ProbeSpec, RoutingBinding, Connection, SafetyRule):
        inner = get_args(union)[0]
        for member in get_args(inner) or (inner,):
            cls = get_args(member)[0] if get_args(member) else member  # Annotated[Model, Tag(...)]
            field = next(f for f in ("adapter", "rule", "type") if f in cls.model_fields)
            tags.add(cls.model_fields[field].default)
    return frozenset(tags)


_UNION_TAGS = _union_tags()


def _strip_union_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """pydantic puts the discriminator tag into loc (``probe.http.url``); keep only real keys."""
    out: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str):
            # a missing field (always last: it is what is wrong) is kept; a union tag is not a key
            if part not in _UNION_TAGS or i == len(loc) - 1:
                out.append(part)
        # else: tag of a discriminated union, dropped
    return tuple(out)


# --------------------------------------------------------------------------- strict YAML
DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB: a strategy of some 3,000 services; FAILOVER_MAX_STRATEGY_BYTES overrides
MAX_BYTES_ENV = "FAILOVER_MAX_STRATEGY_BYTES"
MAX_DEPTH = 64  # mappings and sequences inside each other, aliases expanded (a strategy needs about 10)
MAX_VALUES = 500_000  # values in the document, aliases expanded
MAX_PROBLEMS = 200  # problems reported one by one; the rest are counted

_CORE_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq",
                                                          "merge"))
_MERGE = "tag:yaml.org,2002:merge"


def max_strategy_bytes(file: str | None = None) -> int:
    """The size limit: ``FAILOVER_MAX_STRATEGY_BYTES`` when set (a positive number of bytes), else
    :data:`DEFAULT_MAX_BYTES`."""
    raw = os.environ.get(MAX_BYTES_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise StrategyError([Problem("", f"{MAX_BYTES_ENV}={_short(raw)} is not a positive number of bytes", file)],
                            file)
    return value


def _short(value: Any, limit: int = 60) -> str:
    """repr of a value, cut to ``limit`` characters (a problem never echoes a megabyte back)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _too_big(size: str, limit: int, file: str | None) -> StrategyError:
    return StrategyError([Problem("", f"the strategy is {size}, over the limit of {limit} bytes (set "
                                      f"{MAX_BYTES_ENV} to allow more)", file)], file)


class _Resolver(Resolver):
    """YAML 1.1's implicit types less timestamps: `2024-01-01` stays a string (no field is a date,
    and an impossible date such as 2024-13-45 would not even load)."""

    yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(":timestamp")]
                               for first, resolvers in Resolver.yaml_implicit_resolvers.items()}


class _Refused(yaml.YAMLError):
    """The document breaks a limit of the strict reader; ``path`` and ``line`` say where."""

    def __init__(self, message: str, path: tuple[Any, ...], mark: Any):
        super().__init__(message)
        self.message, self.path, self.line = message, path, (mark.line + 1 if mark is not None else None)


class _StrictComposer(Composer):
    """PyYAML's composer, checking as it goes: depth (aliases expanded), aliases, duplicate keys and
    tags. Each node's weight (values, levels) is kept, so an alias costs what it expands to."""

    def __init__(self) -> None:
        super().__init__()
        self._path: list[Any] = []
        self._open: set[int] = set()  # collections being composed: an alias to one refers to itself
        self._weight: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels), aliases expanded
        self.duplicates: list[tuple[tuple[Any, ...], Any, int, int]] = []  # (path, key, first line, second)

    def _refuse(self, message: str, mark: Any) -> None:
        raise _Refused(message, tuple(self._path), mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            if event.anchor in self.anchors and id(self.anchors[event.anchor]) in self._open:
                self._refuse(f"alias *{event.anchor} refers to itself (a recursive structure)", event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _CORE_TAGS:
            self._refuse(f"tag {_short(tag)} is not allowed: a strategy file is plain YAML", event.start_mark)
        if not self.check_event(ScalarEvent) and len(self._open) >= MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        return super().compose_node(parent, index)

    def _weigh(self, node: Any, children: list[Any]) -> None:
        values, levels = 1, 0
        for child in children:
            v, lv = self._weight.get(id(child), (1, 0))
            values, levels = values + v, max(levels, lv)
        self._weight[id(node)] = (values, levels + 1)
        if levels + 1 > MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels (aliases expanded)", node.start_mark)
        if values > MAX_VALUES:
            self._refuse(f"more than {MAX_VALUES} values (aliases expanded): split the file, or check its "
                         "aliases", node.start_mark)

    def compose_sequence_node(self, anchor: Any) -> Any:
        start = self.peek_event()
        node = yaml.SequenceNode(self.resolve(yaml.SequenceNode, None, start.implicit)
                                 if start.tag in (None, "!") else start.tag, [], start.start_mark, None,
                                 flow_style=start.flow_style)
        self.get_event()
        if anchor is not None:
            self.anchors[anchor] = node
        self._open.add(id(node))
        while not self.check_event(SequenceEndEvent):
            self._path.append(len(node.value))
            node.value.append(self.compose_node(node, len(node.value)))
            self._path.pop()
        node.end_mark = self.get_event().end_mark
        self._open.discard(id(node))
        self._weigh(node, node.value)
        return node

    def compose_mapping_node(self, anchor: Any) -> Any:
        start = self.peek_event()
        node = yaml.MappingNode(self.resolve(yaml.MappingNode, None, start.implicit)
                                if start.tag in (None, "!") else start.tag, [], start.start_mark, None,
                                flow_style=start.flow_style)
        self.get_event()
        if anchor is not None:
            self.anchors[anchor] = node
        self._open.add(id(node))
        seen: dict[Any, int] = {}
        while not self.check_event(MappingEndEvent):
            self._path.append("<key>")
            key = self.compose_node(node, None)
            self._path[-1] = key.value if isinstance(key, yaml.ScalarNode) else "<key>"
            ident = self._identity(key)
            if ident is not None:
                line = key.start_mark.line + 1
                if ident in seen:
                    self.duplicates.append(((*self._path[:-1], str(ident)), ident, seen[ident], line))
                seen.setdefault(ident, line)
            value = self.compose_node(node, key)
            self._path.pop()
            node.value.append((key, value))
        node.end_mark = self.get_event().end_mark
        self._open.discard(id(node))
        self._weigh(node, [n for pair in node.value for n in pair])
        return node

    def _identity(self, key: Any) -> Any:
        """What a scalar key loads as, compared as a dict compares keys (``yes`` and ``true`` are one
        key); None for merge keys and collections (the constructor refuses those as keys)."""
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            return None
        try:
            value = self.construct_object(key)  # type: ignore[attr-defined]
            hash(value)
        except Exception:  # noqa: BLE001 - the constructor reports it when it meets the key again
            return None
        return value


class _StrictSafeConstructor(SafeConstructor):
    def construct_object(self, node: Any, deep: bool = False) -> Any:
        self.last_node = node  # where a value that cannot be built is (the line of the problem)
        return super().construct_object(node, deep)


if _CParser is not None:
    class _StrictLoader(_StrictComposer, _CParser, _StrictSafeConstructor, _Resolver):  # type: ignore[misc]
        def __init__(self, stream: str):
            _CParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            _StrictSafeConstructor.__init__(self)
            _Resolver.__init__(self)
else:  # pragma: no cover
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _StrictLoader(Reader, Scanner, Parser, _StrictComposer, _StrictSafeConstructor, _Resolver):  # type: ignore[no-redef]
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _StrictComposer.__init__(self)
            _StrictSafeConstructor.__init__(self)
            _Resolver.__init__(self)


def _yaml_problem(exc: yaml.YAMLError, text: str, file: str | None) -> Problem:
    """A YAML error as a problem at its line and column."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow (control characters)
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        at = text.find(char) if isinstance(char, str) else -1
        at = at if at >= 0 else exc.position
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        return Problem(f"line {line}, column {column}", f"not valid YAML: {exc.reason} (character "
                       f"{exc.character if isinstance(exc.character, str) else hex(exc.character)})", file)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
    problem = getattr(exc, "problem", None) or str(exc)
    if "maximum nesting depth" in problem:  # libyaml's own limit (1,000 levels), found while it looks ahead
        return Problem(where, f"nested deeper than {MAX_DEPTH} levels", file)
    return Problem(where, f"not valid YAML: {problem}", file)


def _read_yaml(text: str, file: str | None) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """(data, root node, duplicate-key problems) of YAML text read strictly; raises
    :class:`StrategyError` with the one problem that stopped the reading."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        path = format_loc(exc.path) if exc.path else ""
        where = f"{path} (line {exc.line})" if path and exc.line else (path or f"line {exc.line}")
        raise StrategyError([Problem(where, exc.message, file)], file) from None
    except yaml.YAMLError as exc:
        raise StrategyError([_yaml_problem(exc, text, file)], file) from None
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise ValueError and kin for odd scalars
        node = getattr(loader, "last_node", None)
        where = f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}" if node else "<yaml>"
        raise StrategyError([Problem(where, f"cannot read this value: {_short(str(exc), 200)}", file)],
                            file) from None
    finally:
        loader.dispose()
    duplicates = [Problem(f"{format_loc(path)} (line {second})", f"duplicate key {_short(key)} "
                          f"({f'lines {first} and {second}' if first != second else f'twice on line {first}'}): "
                          "YAML would keep only the last; remove one", file)
                  for path, key, first, second in loader.duplicates]
    return data, root, duplicates


def read_yaml(text: str, *, file: str | None = None, max_bytes: int | None = None) -> Any:
    """YAML text as data, read as strictly as a strategy file is (size, UTF-8, depth, aliases, tags,
    duplicate keys: see the module's docstring). Raises :class:`StrategyError` with every problem.
    For any YAML an operator or a client supplies, not only whole strategy files."""
    _check_text(text, max_bytes if max_bytes is not None else max_strategy_bytes(file), file)
    data, _unused, duplicates = _read_yaml(text, file)
    if duplicates:
        raise StrategyError(duplicates[:MAX_PROBLEMS], file)
    return data


def _check_text(text: str, limit: int, file: str | None) -> None:
    """Refuse text over the size limit (fast: before any parsing) or not encodable as UTF-8."""
    if len(text) > limit:
        raise _too_big(f"at least {len(text)} bytes", limit, file)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise StrategyError([Problem(f"line {line}", f"not UTF-8: {_short(text[exc.start])} at character "
                                     f"{exc.start} is a lone surrogate", file)], file) from None
    if size > limit:
        raise _too_big(f"{size} bytes", limit, file)


def _decode(data: bytes, file: str | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StrategyError([Problem(f"line {line}", f"not UTF-8 at byte {exc.start} ({exc.reason}, "
                                     f"{data[exc.start:exc.start + 4]!r}): save the file as UTF-8", file)],
                            file) from None


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
            note, line, _unused = self.connections[loc[1]]
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
    src: list[tuple[bool, set[str]]] = [(True, set()) for _i in out]
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
    from failover_engine.config import terraform
    from failover_engine.core.errors import FailoverError
    from failover_engine.config.tfoutputs import service_from_outputs

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
            _unused, tf_svc, tf_conns = service_from_outputs(outputs, output=output, key=key or name)
        except StrategyError as exc:
            out.problems.extend(Problem(path, f"{p.path}: {p.message} (terraform directory {directory})", file)
                                for p in exc.problems)
            out.failed.add(name)
            continue
        note = f"from terraform output {output} in {directory}"
        merged = copy.deepcopy(tf_svc)
        tf_keys = set(tf_svc)
        endpoints_src: list[tuple[bool, set[str]]] = [(True, set()) for _i in tf_svc.get("endpoints", [])]
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


def parse_strategy(text: str, *, file: str | None = None, max_bytes: int | None = None) -> tuple[Strategy, Any]:
    """Parse and validate YAML text. Raises :class:`StrategyError` with every problem (at most
    :data:`MAX_PROBLEMS`, then a count of the rest); text over ``max_bytes`` (default: the
    :func:`max_strategy_bytes` limit) is refused before it is parsed.

    Services with ``from_terraform`` are filled in from Terraform outputs first (relative
    directories against ``file``'s directory, or the current directory without a file)."""
    _check_text(text, max_bytes if max_bytes is not None else max_strategy_bytes(file), file)
    data, root, problems = _read_yaml(text, file)
    if not isinstance(data, dict):
        raise StrategyError([Problem("", "a strategy file is a YAML mapping with `services:`", file)], file)
    tf = expand_from_terraform(data, root, file)
    problems += tf.problems

    def where(loc: tuple[Any, ...]) -> tuple[str, str]:
        """(path with its line, note to add to the message) of a problem at ``loc``."""
        note, line = tf.origin(loc)
        line = line or _line_of(root, loc)
        path = format_loc(loc)
        return (f"{path} (line {line})" if line else path), (f" ({note})" if note else "")

    dropped = 0
    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = _strip_union_tags(tuple(err["loc"]), data)
            if err["type"] == "missing" and len(loc) == 3 and loc[1] in tf.failed and loc[2] in ("endpoints", "routing"):
                continue  # the service's from_terraform problem says why they are missing
            if len(problems) >= MAX_PROBLEMS:
                dropped += 1  # counted, not described (nor looked up)
                continue
            path, note = where(loc)
            msg = err["msg"]
            if err["type"] == "value_error":
                msg = msg.removeprefix("Value error, ")
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; `failover schema` lists the fields)"
            elif err["type"] == "string_pattern_mismatch":
                msg = f"invalid value {_short(err.get('input'))}: " + _PATTERN_HINTS.get(str(loc[-1]) if loc else "", msg)
            problems.append(Problem(path, msg + note, file))
        raise StrategyError(_capped(problems, dropped, file), file) from None
    if problems:
        raise StrategyError(_capped(problems, dropped, file), file)
    sem = semantic_problems(strategy)
    if sem:
        for loc, msg in sem[:MAX_PROBLEMS]:
            path, note = where(loc)
            problems.append(Problem(path, msg + note, file))
        raise StrategyError(_capped(problems, len(sem) - len(problems), file), file)
    return strategy, data


def _capped(problems: list[Problem], dropped: int, file: str | None) -> list[Problem]:
    """The first :data:`MAX_PROBLEMS` problems, and one that counts the rest."""
    more = dropped + max(0, len(problems) - MAX_PROBLEMS)
    if not more:
        return problems
    return problems[:MAX_PROBLEMS] + [Problem("", f"... and {more} more problem(s): fix these first", file)]


def load_strategy(path: str | Path, *, state_dir: str | Path | None = None,
                  max_bytes: int | None = None) -> LoadedStrategy:
    """Load a strategy file. ``state_dir`` overrides the file's own setting. A file over the size
    limit (``max_bytes``, default :func:`max_strategy_bytes`) is refused from its size, unread."""
    p = Path(path)
    limit = max_bytes if max_bytes is not None else max_strategy_bytes(str(p))
    try:
        st = p.stat()
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise _too_big(f"{st.st_size} bytes", limit, str(p))
        with p.open("rb") as fh:
            data = fh.read(limit + 1)  # a stream (a FIFO, /dev/zero) has no size: read one byte past
    except OSError as exc:
        raise StrategyError([Problem("", f"cannot read file: {exc.strerror or exc}", str(p))], str(p)) from None
    if len(data) > limit:
        raise _too_big(f"more than {limit} bytes", limit, str(p))
    strategy, _unused = parse_strategy(_decode(data, str(p)), file=str(p), max_bytes=limit)
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
