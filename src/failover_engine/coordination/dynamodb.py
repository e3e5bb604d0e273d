"""Coordination of several hosts through one DynamoDB table: leases with fencing epochs, the
monitors' leader, and the observers' verdicts.

The table has one string partition key, ``pk``, and a TTL attribute, ``ttl`` (only verdicts carry
it: a lease item is never deleted, so its epoch only grows). Items:

``lease#<group>#service#<name>``, ``lease#<group>#region#<name>``, ``lease#<group>#leader``
    ``holder`` (set while held), ``epoch`` (number, +1 at every acquisition), ``expires`` (epoch
    seconds), ``purpose``, ``since``.
``verdict#<group>#<observer>``
    ``report`` (the observer's JSON report), ``at``, ``ttl``.

Every change of a lease is one conditional ``UpdateItem``:

- acquire: ``attribute_not_exists(holder) OR expires < :now``; sets a new holder and epoch + 1, and
  returns the old item, so a holder whose lease lapsed (maybe dead mid-run) is known to its successor;
- renew and fence: ``holder = :me AND epoch = :epoch``; a holder that was paused or cut off past its
  lease, and replaced, fails here and writes nothing more (:class:`LeaseLost`);
- release: the same condition; removes the holder.

A provider write that was already on the wire when the lease lapsed is the one case a fence cannot
stop; the adapters' compare-and-swap writes (Route 53 DELETE+CREATE of the exact record, Cloud DNS
deletions of what was read, Traffic Manager re-reads) refuse it when the successor has changed the
resource since. Clocks: a lease is judged by the local clock of whoever reads it, so keep the lease
length well above the hosts' clock skew (NTP keeps it to milliseconds; the default lease is 15 s).
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from failover_engine.coordination.locks import LockProvider
from failover_engine.core.errors import CoordinationError, LeaseLost, LockHeld
from failover_engine.detection.quorum import ObserverReport

if TYPE_CHECKING:
    from failover_engine.core.model import DynamoDbCoordination

Clock = Callable[[], float]


class _Conflict(Exception):
    """A conditional write's condition was false."""


def holder_id() -> str:
    """Who holds a lease: host, pid and a random part (a restarted process is a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DynamoTable:
    """The coordination table: a lazily built client, every call counted (``calls``), errors as
    CoordinationError (unreachable, throttled, missing table) or _Conflict (a false condition)."""

    def __init__(self, config: "DynamoDbCoordination", client: Any = None):
        self.config = config
        self.name = config.table
        self._client = client
        self._make = threading.Lock()
        self.calls = 0
        self.seconds = 0.0

    @property
    def client(self) -> Any:
        with self._make:
            if self._client is None:
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError:  # pragma: no cover - boto3 is a base dependency
                    raise CoordinationError("coordination type dynamodb needs boto3: pip install failover-engine[aws]")
                session = boto3.session.Session(profile_name=self.config.profile, region_name=self.config.region)
                self._client = session.client(
                    "dynamodb", endpoint_url=str(self.config.endpoint_url) if self.config.endpoint_url else None,
                    config=Config(connect_timeout=self.config.connect_timeout, read_timeout=self.config.read_timeout,
                                  retries={"max_attempts": 2, "mode": "standard"}))
            return self._client

    def call(self, op: str, *, whole: bool = False, **kw: Any) -> dict[str, Any]:
        """One API call on this table (``whole``: a call that names its tables itself, BatchGetItem)."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.calls += 1
        start = time.perf_counter()
        try:
            return getattr(self.client, op)(**kw) if whole else getattr(self.client, op)(TableName=self.name, **kw)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _Conflict(exc.response.get("Item")) from None
            if code == "ResourceNotFoundException":
                raise CoordinationError(f"coordination table {self.name!r} does not exist in {self.config.region}: "
                                        "create it with `failover coordination create STRATEGY`") from None
            raise CoordinationError(f"DynamoDB {op} on {self.name!r} failed: {code}: "
                                    f"{exc.response.get('Error', {}).get('Message', '')}") from None
        except BotoCoreError as exc:
            raise CoordinationError(f"coordination table {self.name!r} unreachable ({op}): {exc}") from None
        finally:
            self.seconds += time.perf_counter() - start

    def create(self, wait: float = 60.0) -> bool:
        """Make the table (pay per request, key ``pk``, TTL on ``ttl``); False when it was there
        already (its TTL is still switched on). Idempotent."""
        created = True
        try:
            self.call("create_table", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                      KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        except CoordinationError as exc:
            if "ResourceInUseException" not in str(exc):
                raise
            created = False
        deadline = time.monotonic() + wait
        while True:
            status = self.call("describe_table")["Table"].get("TableStatus")
            if status == "ACTIVE":
                break
            if time.monotonic() > deadline:
                raise CoordinationError(f"coordination table {self.name!r} is still {status} after {wait:.0f}s")
            time.sleep(1.0)
        ttl = self.call("describe_time_to_live").get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            self.call("update_time_to_live", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
        return created


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _num(item: dict[str, Any], name: str, default: float = 0.0) -> float:
    v = item.get(name)
    return float(v["N"]) if v and "N" in v else default


def _str(item: dict[str, Any], name: str) -> str | None:
    v = item.get(name)
    return v.get("S") if v else None


@dataclass
class Lease:
    key: str
    holder: str
    epoch: int
    expires: float
    purpose: str = ""
    previous: dict[str, Any] | None = None  # the holder whose lapsed lease this one replaced
    lost: str | None = None  # why it is no longer ours (a renewal failed its condition)
    meta: dict[str, Any] = field(default_factory=dict)


class Leases:
    """Acquire, renew (= fence) and release leases of one group in the table."""

    def __init__(self, table: DynamoTable, length: float, *, group: str = "default", clock: Clock = time.time,
                 holder: str | None = None):
        self.table = table
        self.length = float(length)
        self.group = group
        self.clock = clock
        self.holder = holder or holder_id()

    def key(self, kind: str, name: str = "") -> str:
        return f"lease#{self.group}#{kind}" + (f"#{name}" if name else "")

    def acquire(self, key: str, purpose: str) -> Lease:
        """The lease, with a new epoch; LockHeld (naming the holder) when someone else holds it."""
        now = self.clock()
        try:
            old = self.table.call(
                "update_item", Key={"pk": {"S": key}},
                UpdateExpression="SET holder = :me, epoch = if_not_exists(epoch, :zero) + :one, "
                                 "expires = :exp, purpose = :purpose, since = :now",
                ConditionExpression="attribute_not_exists(holder) OR expires < :now",
                ExpressionAttributeValues={":me": {"S": self.holder}, ":zero": _n(0), ":one": _n(1),
                                           ":exp": _n(now + self.length), ":purpose": {"S": purpose[:512]},
                                           ":now": _n(now)},
                ReturnValues="ALL_OLD").get("Attributes", {})
        except _Conflict:
            raise LockHeld(key.split("#", 2)[-1].replace("#", " ", 1), self.describe(key)) from None
        epoch = int(_num(old, "epoch")) + 1
        previous = None
        if _str(old, "holder"):  # held, but lapsed: its holder stopped renewing (dead, paused, cut off)
            previous = {"holder": _str(old, "holder"), "epoch": int(_num(old, "epoch")),
                        "purpose": _str(old, "purpose") or "", "expired_at": _num(old, "expires")}
        return Lease(key, self.holder, epoch, now + self.length, purpose, previous)

    def renew(self, lease: Lease) -> None:
        """Extend the lease; LeaseLost when it is no longer this holder's at this epoch (the fence)."""
        if lease.lost:
            raise LeaseLost(lease.key, lease.epoch, lease.lost)
        now = self.clock()
        try:
            self.table.call("update_item", Key={"pk": {"S": lease.key}}, UpdateExpression="SET expires = :exp",
                            ConditionExpression="holder = :me AND epoch = :epoch",
                            ExpressionAttributeValues={":me": {"S": self.holder}, ":epoch": _n(lease.epoch),
                                                       ":exp": _n(now + self.length)})
        except _Conflict:
            lease.lost = f"now {self.describe(lease.key)}"
            raise LeaseLost(lease.key, lease.epoch, lease.lost) from None
        lease.expires = now + self.length

    def release(self, lease: Lease) -> bool:
        """Give the lease up (False when it was not ours any more)."""
        try:
            self.table.call("update_item", Key={"pk": {"S": lease.key}},
                            UpdateExpression="REMOVE holder SET expires = :zero",
                            ConditionExpression="holder = :me AND epoch = :epoch",
                            ExpressionAttributeValues={":me": {"S": self.holder}, ":epoch": _n(lease.epoch),
                                                       ":zero": _n(0)})
        except _Conflict:
            return False
        return True

    def read(self, key: str) -> dict[str, Any]:
        return self.table.call("get_item", Key={"pk": {"S": key}}, ConsistentRead=True).get("Item", {})

    def read_many(self, keys: list[str]) -> list[dict[str, Any]]:
        """The items of these keys that exist (consistent reads, 100 keys per BatchGetItem)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(keys), 100):
            pending: dict[str, Any] = {self.table.name: {"Keys": [{"pk": {"S": k}} for k in keys[i:i + 100]],
                                                         "ConsistentRead": True}}
            for _attempt in range(5):
                resp = self.table.call("batch_get_item", whole=True, RequestItems=pending)
                out += resp.get("Responses", {}).get(self.table.name, [])
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
        return out

    def describe(self, key: str) -> str:
        try:
            item = self.read(key)
        except CoordinationError:
            return "a holder that could not be read"
        if not _str(item, "holder"):
            return "nobody (it was just released)"
        left = _num(item, "expires") - self.clock()
        return (f"{_str(item, 'holder')} at epoch {int(_num(item, 'epoch'))} ({_str(item, 'purpose') or '-'}, "
                f"lease {'ends in %.1fs' % left if left >= 0 else 'lapsed %.1fs ago' % -left})")

    def is_held(self, key: str) -> bool:
        item = self.read(key)
        return bool(_str(item, "holder")) and _num(item, "expires") >= self.clock()


class _Renewer:
    """Renews held leases every third of their length, in a daemon thread. A lease whose renewal
    fails its condition is marked lost (every later fence raises); an unreachable table is retried
    until the lease would have lapsed, then the lease is marked lost too."""

    def __init__(self, leases: Leases):
        self.leases = leases
        self.held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self._lock:
            self.held[lease.key] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lease-renewer", daemon=True)
                self._thread.start()

    def remove(self, lease: Lease) -> None:
        with self._lock:
            if self.held.get(lease.key) is lease:
                del self.held[lease.key]

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.leases.length / 3)
            with self._lock:
                leases = list(self.held.values())
                if not leases:
                    self._thread = None
                    return
            for lease in leases:
                if lease.lost:
                    continue
                try:
                    self.leases.renew(lease)
                except LeaseLost:
                    pass  # marked lost by renew
                except CoordinationError as exc:
                    if self.leases.clock() >= lease.expires:
                        lease.lost = f"not renewed before it lapsed: {exc}"


class DynamoLock(LockProvider):
    """The engine's lock on DynamoDB leases: one lease per service (and per region run), renewed
    while held, checked by a conditional write at every fence."""

    def __init__(self, leases: Leases):
        self.leases = leases
        self._renewer = _Renewer(leases)
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def _key(self, name: str) -> str:
        kind, _sep, rest = name.partition(":")
        return self.leases.key("region", rest) if kind == "region" and rest else self.leases.key("service", name)

    @contextlib.contextmanager
    def hold(self, service: str, purpose: str) -> Iterator[None]:
        try:
            lease = self.leases.acquire(self._key(service), purpose)
        except LockHeld as exc:
            raise LockHeld(service, exc.holder) from None
        with self._lock:
            self._held[service] = lease
        self._renewer.add(lease)
        try:
            yield
        finally:
            self._renewer.remove(lease)
            with self._lock:
                if self._held.get(service) is lease:
                    del self._held[service]
            with contextlib.suppress(CoordinationError):
                self.leases.release(lease)

    def lease(self, service: str) -> Lease | None:
        with self._lock:
            return self._held.get(service)

    def fence(self, services: Iterable[str]) -> None:
        for name in services:
            lease = self.lease(name)
            if lease is None:
                raise LeaseLost(self._key(name), 0, "not held by this process")
            self.leases.renew(lease)

    def epochs(self, services: Iterable[str]) -> dict[str, int]:
        return {n: lease.epoch for n in services if (lease := self.lease(n)) is not None}

    def taken_over(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {n: lease.previous for n in services if (lease := self.lease(n)) is not None and lease.previous}

    def is_held(self, service: str) -> bool:
        try:
            return self.leases.is_held(self._key(service))
        except CoordinationError:
            return True  # cannot tell: never guess a holder dead

    def lapsed(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Service leases still naming a holder that stopped renewing them (one BatchGetItem per 100)."""
        names = list(services)
        keys = {self._key(n): n for n in names}
        out: dict[str, dict[str, Any]] = {}
        now = self.leases.clock()
        for item in self.leases.read_many(list(keys)):
            holder = _str(item, "holder")
            if holder and holder != self.leases.holder and _num(item, "expires") < now:
                out[keys[item["pk"]["S"]]] = {"holder": holder, "epoch": int(_num(item, "epoch")),
                                              "purpose": _str(item, "purpose") or "",
                                              "expired_at": _num(item, "expires")}
        return out


class Leadership:
    """One monitor of a group acts at a time: the holder of the group's leader lease. ``leading()``
    is called every tick: a follower tries to take a free or lapsed lease, the leader renews it.
    A leader that cannot renew (lost, or the table unreachable past its lease) steps down."""

    def __init__(self, leases: Leases, name: str):
        self.leases = leases
        self.name = name
        self.lease: Lease | None = None
        self.error: str | None = None
        self.changes: list[dict[str, Any]] = []  # every gain and loss, for the monitor's events

    @property
    def key(self) -> str:
        return self.leases.key("leader")

    def leading(self) -> bool:
        if self.lease is not None:
            try:
                self.leases.renew(self.lease)
                self.error = None
                return True
            except LeaseLost as exc:
                self._lost(str(exc))
                return False
            except CoordinationError as exc:
                self.error = str(exc)
                if self.leases.clock() < self.lease.expires:
                    return True  # still ours until it lapses; the fence protects every write
                self._lost(f"not renewed before it lapsed: {exc}")
                return False
        try:
            self.lease = self.leases.acquire(self.key, f"leader {self.name}")
        except LockHeld:
            self.error = None
            return False
        except CoordinationError as exc:
            self.error = str(exc)
            return False
        self.changes.append({"event": "leader_elected", "observer": self.name, "epoch": self.lease.epoch,
                             "previous": self.lease.previous, "at": self.leases.clock()})
        return True

    def _lost(self, why: str) -> None:
        assert self.lease is not None
        self.changes.append({"event": "leader_lost", "observer": self.name, "epoch": self.lease.epoch,
                             "reason": why, "at": self.leases.clock()})
        self.lease = None

    def step_down(self) -> None:
        if self.lease is not None:
            with contextlib.suppress(CoordinationError):
                self.leases.release(self.lease)
            self.lease = None

    def current(self) -> dict[str, Any]:
        """Who leads now, as the table says (for status and drills)."""
        item = self.leases.read(self.key)
        return {"holder": _str(item, "holder"), "epoch": int(_num(item, "epoch")),
                "purpose": _str(item, "purpose"), "expires": _num(item, "expires")}


class DynamoExchange:
    """The observers' verdicts in the table: each observer's latest report is one item (TTL-expiring);
    ``collect`` reads every declared observer's item in one BatchGetItem."""

    def __init__(self, table: DynamoTable, observers: Iterable[str], ttl: float, *, group: str = "default"):
        self.table = table
        self.observers = list(observers)
        self.ttl = float(ttl)
        self.group = group

    def _key(self, observer: str) -> str:
        return f"verdict#{self.group}#{observer}"

    def publish(self, report: ObserverReport) -> None:
        self.table.call("put_item", Item={"pk": {"S": self._key(report.observer)}, "report": {"S": report.to_json()},
                                          "at": _n(float(report.at)), "ttl": _n(int(report.at + self.ttl + 60))})

    def collect(self, now: float) -> list[ObserverReport]:
        keys = [{"pk": {"S": self._key(o)}} for o in self.observers]
        out: list[ObserverReport] = []
        for i in range(0, len(keys), 100):  # BatchGetItem takes 100 keys
            pending: dict[str, Any] = {self.table.name: {"Keys": keys[i:i + 100], "ConsistentRead": True}}
            for _i in range(5):
                resp = self.table.call("batch_get_item", whole=True, RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table.name, []):
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        report = ObserverReport.from_json(item["report"]["S"])
                        if now - report.at <= self.ttl:
                            out.append(report)
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
        return out


def dynamodb_from(config: "DynamoDbCoordination", *, observers: Iterable[str] = (), verdict_ttl: float = 30.0,
                  clock: Clock = time.time) -> tuple[DynamoLock, DynamoExchange, Leases]:
    table = DynamoTable(config)
    leases = Leases(table, config.lease, group=config.group, clock=clock)
    return DynamoLock(leases), DynamoExchange(table, observers, verdict_ttl, group=config.group), leases
