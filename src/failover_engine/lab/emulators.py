"""The Cloud DNS and Traffic Manager emulators of the checkout, started for the lab.

The emulators are test infrastructure: they live in ``tests/emulators/`` of a failover-engine
checkout, not in the package. The lab finds the checkout (the working directory or one of its
parents, else the source tree of an editable install) and imports them by file path, so an
installed wheel without the checkout fails with a clear :class:`LabError` instead of an
ImportError. Both serve on 127.0.0.1, on a port the OS chooses.

:func:`rest` is the plain JSON-over-HTTP(S) call the seeding uses: the lab seeds the emulators
through their public REST API, as any client would, not through their in-process helpers.
"""
from __future__ import annotations

import importlib.util
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

from failover_engine.lab.regions import LabError

EMULATORS = {"clouddns": ("clouddns.py", "Cloud DNS"), "trafficmanager": ("trafficmanager.py", "Traffic Manager"),
             "zonalshift": ("zonalshift.py", "ARC zonal shift")}
LAB_TOKEN = "lab-token"  # the only bearer token the lab's Traffic Manager emulator accepts
REST_TIMEOUT = 10.0


class RestError(LabError):
    """An emulator answered an error; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def emulators_dir() -> Path | None:
    """``tests/emulators`` of the checkout: the working directory's, else the editable install's."""
    from failover_engine.config.collection import find_repo_root

    for start in (None, Path(__file__).resolve().parent):
        root = find_repo_root(start)
        if root is not None and (root / "tests" / "emulators").is_dir():
            return root / "tests" / "emulators"
    return None


def load_emulator(kind: str) -> ModuleType:
    """The emulator module ``kind`` (clouddns, trafficmanager), imported by file path once."""
    filename, label = EMULATORS[kind]
    module_name = f"_failover_lab_emulator_{kind}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    directory = emulators_dir()
    path = directory / filename if directory else None
    if path is None or not path.is_file():
        raise LabError(f"the {label} emulator (tests/emulators/{filename}) is not here: it ships with a "
                       "checkout of failover-engine, not with the installed package; run the lab from a "
                       "checkout (git clone ... && make drill CLOUD=...)")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def start_clouddns() -> Any:
    """A started ``CloudDnsEmulator`` (empty; zones come from seeding). ``.url``, ``.stop()``."""
    return load_emulator("clouddns").CloudDnsEmulator().start()


def start_trafficmanager() -> Any:
    """A started ``TrafficManagerEmulator`` over HTTPS that accepts only :data:`LAB_TOKEN`; any
    resource group exists (as the emulator's command line does). ``.url``, ``.ca_file``, ``.stop()``."""
    module = load_emulator("trafficmanager")
    return module.TrafficManagerEmulator(token=LAB_TOKEN, any_resource_group=True).start()


def start_zonalshift() -> Any:
    """A started ``ZonalShiftEmulator`` with no resource (the lab registers the strategy's). ``.url``,
    ``.stop()``, ``.reset()`` (forgets the shifts, keeps the resources)."""
    return load_emulator("zonalshift").ZonalShiftEmulator().start()


def rest(method: str, url: str, body: Any = None, *, token: str | None = None,
         ca_file: str | None = None) -> tuple[int, Any]:
    """One JSON request to an emulator → (status, parsed body or None). Error answers raise
    :class:`RestError` with the emulator's message; the proxy settings of the environment are ignored."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    handlers: list[Any] = [urllib.request.ProxyHandler({})]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=REST_TIMEOUT) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode("utf-8", "replace")[:200] or exc.reason
        raise RestError(f"{method} {url}: {exc.code} {message}", exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RestError(f"{method} {url}: no answer ({getattr(exc, 'reason', exc)})") from None
