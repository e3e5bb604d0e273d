"""The lab's local emulators of Cloud DNS, Traffic Manager and ARC zonal shift, started for the lab.

No usable emulator of these three exists (moto has none), so the package ships its own, one module
each: :mod:`.clouddns`, :mod:`.trafficmanager` (HTTPS, its certificates generated at start) and
:mod:`.zonalshift`. They are product code: ``failover drill`` and ``failover lab`` start them
from an installed wheel, and the tests import them from here. Each also runs on its own
(``python -m failover_engine.lab.emulators.clouddns --port 8085 ...``). All serve on 127.0.0.1,
on a port the OS chooses.

:func:`rest` is the plain JSON-over-HTTP(S) call the seeding uses: the lab seeds the emulators
through their public REST API, as any client would, not through their in-process helpers.
"""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from failover_engine.lab.regions import LabError

LAB_TOKEN = "lab-token"  # the only bearer token the lab's Traffic Manager emulator accepts
REST_TIMEOUT = 10.0


class RestError(LabError):
    """An emulator answered an error; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def start_clouddns() -> Any:
    """A started ``CloudDnsEmulator`` (empty; zones come from seeding). ``.url``, ``.stop()``."""
    from failover_engine.lab.emulators.clouddns import CloudDnsEmulator

    return CloudDnsEmulator().start()


def start_trafficmanager() -> Any:
    """A started ``TrafficManagerEmulator`` over HTTPS that accepts only :data:`LAB_TOKEN`; any
    resource group exists (as the emulator's command line does). ``.url``, ``.ca_file``, ``.stop()``."""
    from failover_engine.lab.emulators.trafficmanager import TrafficManagerEmulator

    return TrafficManagerEmulator(token=LAB_TOKEN, any_resource_group=True).start()


def start_zonalshift() -> Any:
    """A started ``ZonalShiftEmulator`` with no resource (the lab registers the strategy's). ``.url``,
    ``.stop()``, ``.reset()`` (forgets the shifts, keeps the resources)."""
    from failover_engine.lab.emulators.zonalshift import ZonalShiftEmulator

    return ZonalShiftEmulator().start()


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
