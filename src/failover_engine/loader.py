"""Read a strategy file: YAML → :class:`Strategy`, with every problem reported at once.

Problems carry the file, a dotted path (``services.web.endpoints[1].probe.url``), the
line in the file when it can be found, and what is wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
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


def parse_strategy(text: str, *, file: str | None = None) -> tuple[Strategy, Any]:
    """Parse and validate YAML text. Raises :class:`StrategyError` with every problem."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        raise StrategyError([Problem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}", file)], file) from None
    if not isinstance(data, dict):
        raise StrategyError([Problem("", "a strategy file is a YAML mapping with `services:`", file)], file)
    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _strip_union_tags(tuple(err["loc"]), data)
            line = _line_of(root, loc)
            path = format_loc(loc)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; `failover schema` lists the fields)"
            elif err["type"] == "string_pattern_mismatch":
                msg = f"invalid value {err.get('input')!r}: " + _PATTERN_HINTS.get(str(loc[-1]) if loc else "", msg)
            problems.append(Problem(f"{path} (line {line})" if line else path, msg, file))
        raise StrategyError(problems, file) from None
    sem = semantic_problems(strategy)
    if sem:
        problems = []
        for loc, msg in sem:
            line = _line_of(root, loc)
            path = format_loc(loc)
            problems.append(Problem(f"{path} (line {line})" if line else path, msg, file))
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
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "failover-engine strategy file"
    return json.dumps(schema, indent=2)
