"""An AWS ARC zonal shift REST emulator (``arc-zonal-shift``, API version 2022-10-30).

The real boto3 client talks to it over HTTP with ``endpoint_url=emulator.url`` (any credentials:
requests are not signed-checked). State lives in memory, so a test asserts on what a client
really changed. moto has no ARC, hence this emulator.

Emulated, after the documented behaviour of the API (routes from botocore's service model):

* ``POST /zonalshifts`` (StartZonalShift, 201): ``resourceIdentifier``, ``awayFrom``,
  ``expiresIn`` and ``comment`` all required. The resource must be registered (404
  ``ResourceNotFoundException``), ``awayFrom`` one of its zones (400 ``ValidationException``,
  reason ``InvalidAz``), ``expiresIn`` a whole number of minutes or hours (``30m``, ``2h``) from
  1 minute to 3 days (72h) (400, ``InvalidExpiresIn``), ``comment`` at most 128 characters. A
  resource has at most one active shift: a second one is 409 ``ConflictException``
  (``ZonalShiftAlreadyExists``, naming the active one's ``zonalShiftId``).
* ``GET /managedresources/{resourceIdentifier}`` (GetManagedResource): ``arn``, ``name``,
  ``appliedWeights`` (0.0 for the zone shifted away from, 1.0 for the others), ``zonalShifts``
  (the active ones, ``appliedStatus: APPLIED``) and ``availabilityZones``.
* ``GET /zonalshifts`` (ListZonalShifts): ``status`` (``ACTIVE``/``EXPIRED``/``CANCELED``; every
  status when absent) and ``resourceIdentifier`` filters, ``maxResults`` (1-100) / ``nextToken``.
* ``PATCH /zonalshifts/{id}`` (UpdateZonalShift): a new ``expiresIn`` counts from now; needs
  ``expiresIn`` or ``comment``; only an active shift (409 ``ZonalShiftStatusNotActive``).
* ``DELETE /zonalshifts/{id}`` (CancelZonalShift): only an active shift (409), answers it CANCELED.
* A shift's status is evaluated against the emulator's clock: ``EXPIRED`` once its
  ``expiryTime`` has passed. :meth:`ZonalShiftEmulator.advance` moves the clock forward.
* Errors as the AWS REST-JSON protocol has them: header ``x-amzn-ErrorType`` and a JSON body
  ``{"message", "reason"?}``, so botocore raises the modelled exception codes.

Not emulated: authentication and IAM, zonal autoshift and practice runs, ListManagedResources,
the 3-day retention of ended shifts, real traffic (appliedWeights are reported, not enforced).

Test helpers: :meth:`fail_next` (or ``POST /_emulator/faults``) makes coming requests answer an
error (500 ``InternalServerException``, 429 ``ThrottlingException``, ...); ``requests`` logs every
API request; :meth:`start_shift` starts a shift as someone else would (no request logged).

Command line (serves until Ctrl-C)::

    python -m failover_engine.lab.emulators.zonalshift --port 8086 \\
        --resource arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1:use1-az1,use1-az2
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXPIRES_IN = re.compile(r"^([1-9][0-9]*)(m|h)$")
MAX_EXPIRY_S = 3 * 24 * 3600
STATUSES = ("ACTIVE", "EXPIRED", "CANCELED")
FAULT_TYPES = {429: "ThrottlingException", 500: "InternalServerException", 502: "InternalServerException",
               503: "ServiceUnavailableException", 504: "InternalServerException", 403: "AccessDeniedException"}


class ApiError(Exception):
    """An error answer in the REST-JSON shape: ``x-amzn-ErrorType`` plus ``{"message", ...}``."""

    def __init__(self, status: int, error_type: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.error_type, self.message, self.extra = status, error_type, message, extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra}


def _validation(reason: str, message: str) -> ApiError:
    return ApiError(400, "ValidationException", message, reason=reason)


def parse_expires_in(value: Any) -> int:
    """``"30m"``/``"2h"`` → seconds; ValidationException (InvalidExpiresIn) for anything else."""
    m = EXPIRES_IN.match(value) if isinstance(value, str) else None
    seconds = int(m.group(1)) * (60 if m.group(2) == "m" else 3600) if m else 0
    if not m or seconds > MAX_EXPIRY_S:
        raise _validation("InvalidExpiresIn", f"expiresIn {value!r} is invalid: use minutes or hours, "
                          "e.g. 30m or 2h, from 1 minute up to 3 days (72h)")
    return seconds


@dataclass
class Fault:
    status: int
    count: int
    after: int = 0
    method: str | None = None
    path: str | None = None
    applied: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (self.path is None or self.path in path)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


class ZonalShiftEmulator:
    """The emulator: ``start()`` serves on ``url`` from a thread; ``stop()`` ends it.

    ``resources`` maps a resource identifier (ARN) to its availability zones."""

    def __init__(self, resources: dict[str, list[str]] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.resources: dict[str, list[str]] = {k: list(v) for k, v in (resources or {}).items()}
        self.requests: list[Request] = []
        self._shifts: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._offset = 0.0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "ZonalShiftEmulator":
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="zonalshift-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=2)
            self._server = None

    def __enter__(self) -> "ZonalShiftEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget shifts, faults, requests and clock advances (registered resources stay)."""
        with self._lock:
            self._shifts.clear()
            self._faults.clear()
            self.requests.clear()
            self._offset = 0.0

    # ------------------------------------------------------------------ test helpers (in process)
    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (shifts past their expiryTime become EXPIRED)."""
        with self._lock:
            self._offset += seconds

    def fail_next(self, n: int = 1, status: int = 500, *, after: int = 0, method: str | None = None,
                  path: str | None = None, applied: bool = False) -> None:
        """The next ``n`` matching requests, after ``after`` matching ones pass, answer ``status``.
        ``method``/``path`` (a substring) narrow which requests match; ``applied=True`` processes the
        request before answering the error (the write happened, the answer was lost)."""
        with self._lock:
            self._faults.append(Fault(status, n, after, method, path, applied))

    def start_shift(self, resource: str, away_from: str, expires_in: str = "1h", comment: str = "") -> dict[str, Any]:
        """Start a shift as someone else would (no request logged, no fault); raises :class:`ApiError`."""
        with self._lock:
            return self._start({"resourceIdentifier": resource, "awayFrom": away_from,
                                "expiresIn": expires_in, "comment": comment})

    def shifts(self, status: str | None = None, resource: str | None = None) -> list[dict[str, Any]]:
        """Shifts as ListZonalShifts would list them (times as epoch seconds)."""
        with self._lock:
            return [self._view(s) for s in self._shifts
                    if (status is None or self._status(s) == status)
                    and (resource is None or s["resourceIdentifier"] == resource)]

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        """Logged API requests, optionally of one method and with ``contains`` in the path."""
        return [r for r in list(self.requests) if (method is None or r.method == method) and contains in r.path]

    # ------------------------------------------------------------------ request dispatch
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any] | None, str | None]:
        """(status, JSON body, error type for x-amzn-ErrorType) of one request."""
        parsed = urllib.parse.urlsplit(raw_path)
        # split before unquoting: a resource ARN in the path carries an encoded "/"
        segments = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/")]
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if segments[:1] == ["_emulator"]:
            return self._admin(method, segments, body)
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            err = ApiError(400, "SerializationException", "request body is not valid JSON")
            return err.status, err.body(), err.error_type
        with self._lock:
            self.requests.append(Request(method, "/" + "/".join(segments), query, payload))
            fault = self._take_fault(method, "/" + "/".join(segments))
            if fault is not None and not fault.applied:
                return self._fault_answer(fault.status)
            try:
                status, result = self._route(method, segments, query, payload)
                answer: tuple[int, dict[str, Any] | None, str | None] = (status, result, None)
            except ApiError as exc:
                answer = (exc.status, exc.body(), exc.error_type)
            if fault is not None:
                return self._fault_answer(fault.status)
            return answer

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.count > 0 and fault.matches(method, path):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.count -= 1
                return fault
        return None

    @staticmethod
    def _fault_answer(status: int) -> tuple[int, dict[str, Any], str]:
        error_type = FAULT_TYPES.get(status, "InternalServerException")
        return status, {"message": f"injected {error_type} ({status})"}, error_type

    def _admin(self, method: str, segments: list[str], body: bytes) -> tuple[int, dict[str, Any] | None, str | None]:
        what = segments[1] if len(segments) > 1 else ""
        if method == "POST" and what == "faults":
            spec = json.loads(body or b"{}")
            self.fail_next(int(spec.get("count", 1)), int(spec.get("status", 500)), after=int(spec.get("after", 0)),
                           method=spec.get("method"), path=spec.get("path"), applied=bool(spec.get("applied")))
            return 200, {"ok": True}, None
        if method == "POST" and what == "reset":
            self.reset()
            return 200, {"ok": True}, None
        if method == "POST" and what == "advance":
            self.advance(float(json.loads(body or b"{}").get("seconds", 0)))
            return 200, {"ok": True, "now": self.now()}, None
        if method == "GET" and what == "requests":
            return 200, {"requests": [r.__dict__ for r in self.calls()]}, None
        return 404, {"message": f"no emulator route {method} /{'/'.join(segments)}"}, "ResourceNotFoundException"

    def _route(self, method: str, segments: list[str], query: dict[str, str],
               body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        head, rest = segments[0] if segments else "", segments[1:]
        if head == "zonalshifts" and not rest:
            if method == "POST":
                return 201, self._start(body)
            if method == "GET":
                return 200, self._list(query)
        elif head == "zonalshifts" and len(rest) == 1:
            if method == "PATCH":
                return 200, self._update(rest[0], body)
            if method == "DELETE":
                return 200, self._cancel(rest[0])
        elif head == "managedresources" and len(rest) == 1 and method == "GET":
            return 200, self._managed_resource(rest[0])
        raise ApiError(404, "UnknownOperationException", f"no operation {method} /{'/'.join(segments)}")

    # ------------------------------------------------------------------ shifts
    def _status(self, shift: dict[str, Any]) -> str:
        if shift["canceled"]:
            return "CANCELED"
        return "EXPIRED" if self.now() >= shift["expiryTime"] else "ACTIVE"

    def _view(self, shift: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in shift.items() if k != "canceled"}
        out["status"] = self._status(shift)
        return copy.deepcopy(out)

    def _resource(self, identifier: Any) -> list[str]:
        if not isinstance(identifier, str) or not 8 <= len(identifier) <= 1024:
            raise _validation("InvalidResourceIdentifier", f"resourceIdentifier {identifier!r} is invalid")
        if identifier not in self.resources:
            raise ApiError(404, "ResourceNotFoundException",
                           f"The resource {identifier} is not registered with ARC zonal shift")
        return self.resources[identifier]

    def _shift(self, shift_id: str) -> dict[str, Any]:
        for s in self._shifts:
            if s["zonalShiftId"] == shift_id:
                return s
        raise ApiError(404, "ResourceNotFoundException", f"The zonal shift {shift_id} does not exist")

    def _active(self, resource: str) -> dict[str, Any] | None:
        return next((s for s in self._shifts if s["resourceIdentifier"] == resource
                     and self._status(s) == "ACTIVE"), None)

    @staticmethod
    def _comment(value: Any) -> str:
        if value is None:
            raise _validation("MissingValue", "comment is required")
        if not isinstance(value, str) or len(value) > 128:
            # the API's reason enum has no value for this constraint violation: no reason given
            raise ApiError(400, "ValidationException", "comment must be a string of at most 128 characters")
        return value

    def _start(self, body: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("resourceIdentifier", "awayFrom", "expiresIn", "comment") if body.get(k) is None]
        if missing:
            raise _validation("MissingValue", f"missing required field(s): {', '.join(missing)}")
        zones = self._resource(body["resourceIdentifier"])
        if body["awayFrom"] not in zones:
            raise _validation("InvalidAz", f"awayFrom {body['awayFrom']!r} is not an availability zone of "
                              f"{body['resourceIdentifier']} ({', '.join(zones)})")
        seconds = parse_expires_in(body["expiresIn"])
        comment = self._comment(body["comment"])
        active = self._active(body["resourceIdentifier"])
        if active is not None:
            raise ApiError(409, "ConflictException",
                           f"A zonal shift is already active for resource {body['resourceIdentifier']}",
                           reason="ZonalShiftAlreadyExists", zonalShiftId=active["zonalShiftId"])
        now = self.now()
        shift = {"zonalShiftId": f"{next(self._ids):08d}-{int(now * 1000) % 10**12:012d}",
                 "resourceIdentifier": body["resourceIdentifier"], "awayFrom": body["awayFrom"],
                 "expiryTime": now + seconds, "startTime": now, "comment": comment,
                 "shiftType": "ZONAL_SHIFT", "canceled": False}
        self._shifts.append(shift)
        return self._view(shift)

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise _validation("InvalidStatus", f"status {status!r} is not one of {', '.join(STATUSES)}")
        try:
            limit = int(query.get("maxResults", 100))
            start = int(query.get("nextToken", 0))
        except ValueError:
            raise _validation("InvalidToken", "maxResults or nextToken is invalid") from None
        if not 1 <= limit <= 100:
            raise _validation("InvalidToken", "maxResults must be 1-100")
        items = self.shifts(status, query.get("resourceIdentifier"))
        page = items[start:start + limit]
        out: dict[str, Any] = {"items": page}
        if start + limit < len(items):
            out["nextToken"] = str(start + limit)
        return out

    def _update(self, shift_id: str, body: dict[str, Any]) -> dict[str, Any]:
        shift = self._shift(shift_id)
        if body.get("expiresIn") is None and body.get("comment") is None:
            raise _validation("MissingValue", "give expiresIn or comment")
        if self._status(shift) != "ACTIVE":
            raise ApiError(409, "ConflictException", f"The zonal shift {shift_id} is not active",
                           reason="ZonalShiftStatusNotActive", zonalShiftId=shift_id)
        if body.get("expiresIn") is not None:
            shift["expiryTime"] = self.now() + parse_expires_in(body["expiresIn"])
        if body.get("comment") is not None:
            shift["comment"] = self._comment(body["comment"])
        return self._view(shift)

    def _cancel(self, shift_id: str) -> dict[str, Any]:
        shift = self._shift(shift_id)
        if self._status(shift) != "ACTIVE":
            raise ApiError(409, "ConflictException", f"The zonal shift {shift_id} is not active",
                           reason="ZonalShiftStatusNotActive", zonalShiftId=shift_id)
        shift["canceled"] = True
        return self._view(shift)

    def _managed_resource(self, identifier: str) -> dict[str, Any]:
        zones = self._resource(identifier)
        active = [s for s in self._shifts if s["resourceIdentifier"] == identifier and self._status(s) == "ACTIVE"]
        away = {s["awayFrom"] for s in active}
        in_resource = []
        for s in active:
            view = self._view(s)
            view.pop("status")
            in_resource.append({**view, "appliedStatus": "APPLIED"})
        return {"arn": identifier, "name": identifier.rsplit("/", 2)[-2] if "/" in identifier else identifier,
                "appliedWeights": {z: 0.0 if z in away else 1.0 for z in zones},
                "zonalShifts": in_resource, "autoshifts": [], "availabilityZones": list(zones)}


class _Handler(BaseHTTPRequestHandler):
    emulator: ZonalShiftEmulator
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, result, error_type = self.emulator.handle(self.command, self.path, body)
        data = json.dumps(result).encode() if result is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("x-amzn-RequestId", f"emulator-{time.monotonic_ns()}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve  # noqa: N815 - http.server naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AWS ARC zonal shift REST emulator (in memory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--resource", action="append", default=[], metavar="ARN:AZ1,AZ2",
                        help="register a resource and its zones; the zones follow the last ':' (repeatable)")
    args = parser.parse_args(argv)
    resources: dict[str, list[str]] = {}
    for spec in args.resource:
        arn, sep, zones = spec.rpartition(":")
        if not sep or not arn or not zones:
            parser.error(f"--resource {spec!r}: use ARN:AZ1,AZ2, e.g. arn:...:loadbalancer/app/web/1:use1-az1,use1-az2")
        resources[arn] = [z.strip() for z in zones.split(",") if z.strip()]
    emulator = ZonalShiftEmulator(resources, args.host, args.port).start()
    print(f"ARC zonal shift emulator on {emulator.url} ({len(resources)} resource(s)); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
