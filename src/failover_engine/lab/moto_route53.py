"""Route 53 change batches with AWS's semantics, on top of moto (5.2.x) in this process (the lab installs it).

moto keeps Route 53 record sets faithfully but checks a ChangeResourceRecordSets batch loosely
(verified against moto 5.2.6 over HTTP):

* a DELETE is matched only by name and type against *any record ever created there* with the
  same TTL and values (a journal, not the current record): a DELETE whose role, weight, health
  check or SetIdentifier differ from the record is accepted;
* a DELETE with a SetIdentifier removes every record of the zone with that SetIdentifier,
  whatever its name (``FakeZone.delete_rrset_by_id``);
* a CREATE identical to one the zone saw before fails "already exists" whenever any record has
  that name and type, even after the first one was deleted: the third DELETE+CREATE flip of a
  failover pair fails;
* a DELETE of a record that was never created is InvalidInput ("Expected exactly one of ...").

:func:`install` replaces ``Route53Backend.change_resource_record_sets`` with the documented
behaviour: every change of the batch is checked first against what the zone holds (a record
set is identified by name, type and SetIdentifier), then all are applied or none; a DELETE must
match the current record exactly (TTL, values in any order, Failover, Weight, HealthCheckId,
AliasTarget, GeoLocation, Region, MultiValueAnswer), a CREATE needs the record to be absent;
one batch at a time (moto's server answers in threads: two writers racing for the same record get
one success and one refusal, as on AWS, never two successes).
Refusals are ``InvalidChangeBatch`` with AWS's messages ("Tried to delete resource record set
[name='x.', type='A', set-identifier='a'] but the values provided do not match the current
values", "... but it was not found", "Tried to create ... but it already exists"). Everything
else (zones, listing, paging, limits, health checks) stays moto's.

The server runs in this process (``ThreadedMotoServer``), so patching the class changes what
every client sees over HTTP. ``uninstall`` restores moto's own method.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any, Iterator

_ORIGINAL: Any = None
_BATCHES = threading.Lock()
MATCHED = ("Failover", "Weight", "HealthCheckId", "GeoLocation", "Region", "MultiValueAnswer")
ATTRS = {"Failover": "failover", "Weight": "weight", "HealthCheckId": "health_check_id",
         "GeoLocation": "geo_location", "Region": "region", "MultiValueAnswer": "multi_value_answer"}


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _ident(name: str, rtype: str, set_identifier: str | None) -> tuple[str, str, str | None]:
    return _fqdn(name), rtype, set_identifier or None


def _describe(ident: tuple[str, str, str | None]) -> str:
    sid = f", set-identifier='{ident[2]}'" if ident[2] else ""
    return f"[name='{ident[0]}', type='{ident[1]}'{sid}]"


def _norm(value: Any) -> Any:
    """Comparable form of a parsed field: numbers and booleans as strings, dict keys sorted."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items()) if _norm(v) is not None}
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    return str(value).rstrip(".").lower() if isinstance(value, str) and value.endswith(".") else str(value)


def _matches(current: Any, wanted: dict[str, Any]) -> bool:
    """Does a DELETE's record set describe the current record exactly?"""
    if _norm(current.ttl) != _norm(wanted.get("TTL")):
        return False
    have = sorted(str(v) for v in current.records or [])
    want = sorted(str(r["Value"]) if isinstance(r, dict) else str(r) for r in wanted.get("ResourceRecords") or [])
    if have != want:
        return False
    if _norm(current.alias_target) != _norm(wanted.get("AliasTarget")):
        return False
    return all(_norm(getattr(current, ATTRS[f])) == _norm(wanted.get(f)) for f in MATCHED)


def _change_resource_record_sets(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
    with _BATCHES:  # moto's server answers in threads: two batches are never checked against one state
        _apply_batch(self, zoneid, change_list)


def _apply_batch(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
    from moto.route53.exceptions import DnsNameInvalidForZone, InvalidActionValue, Route53ClientError
    from moto.route53.models import RecordSet
    from moto.route53.utils import validate_domain_name

    zone = self.get_hosted_zone(zoneid)
    # what the zone holds, in its order; checked and changed on paper, change after change
    state = {_ident(r.name, r.type, r.set_identifier): r for r in zone.rrsets}
    problems: list[str] = []
    for value in change_list:
        action, rrs = value["Action"], value["ResourceRecordSet"]
        validate_domain_name(rrs["Name"], code="InvalidChangeBatch")
        if action not in ("CREATE", "UPSERT", "DELETE"):
            raise InvalidActionValue(action)
        if not _fqdn(rrs["Name"]).rstrip(".").endswith(zone.name.strip(".").lower()):
            raise DnsNameInvalidForZone(name=rrs["Name"], zone_name=zone.name)
        ident = _ident(rrs["Name"], rrs["Type"], rrs.get("SetIdentifier"))
        if action == "CREATE" and ident in state:
            problems.append(f"Tried to create resource record set {_describe(ident)} but it already exists")
        elif action in ("CREATE", "UPSERT"):
            state[ident] = RecordSet(_as_stored(rrs))
        elif ident not in state:
            problems.append(f"Tried to delete resource record set {_describe(ident)} but it was not found")
        elif not _matches(state[ident], rrs):
            problems.append(f"Tried to delete resource record set {_describe(ident)} but the values provided "
                            "do not match the current values")
        else:
            del state[ident]
    if problems:
        raise Route53ClientError("InvalidChangeBatch", "; ".join(problems))
    zone.rrsets = list(state.values())  # every change checked: all of them at once
    zone.rr_changes.extend(copy.deepcopy(value) for value in change_list)


def _as_stored(rrs: dict[str, Any]) -> dict[str, Any]:
    """A record set as moto stores it: the name ends with a dot, ResourceRecords are the values."""
    out = copy.deepcopy(rrs)
    if not out["Name"].endswith("."):
        out["Name"] += "."
    if "ResourceRecords" in out:
        out["ResourceRecords"] = [r["Value"] if isinstance(r, dict) else r for r in out["ResourceRecords"]]
    return out


def install() -> None:
    """Give this process's moto Route 53 AWS's change-batch semantics (idempotent)."""
    global _ORIGINAL
    from moto.route53.models import Route53Backend

    if _ORIGINAL is None:
        _ORIGINAL = Route53Backend.change_resource_record_sets
        Route53Backend.change_resource_record_sets = _change_resource_record_sets  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to moto's own change-batch handling."""
    global _ORIGINAL
    from moto.route53.models import Route53Backend

    if _ORIGINAL is not None:
        Route53Backend.change_resource_record_sets = _ORIGINAL  # type: ignore[method-assign]
        _ORIGINAL = None


@contextlib.contextmanager
def plain_moto() -> Iterator[None]:
    """moto's own (loose) change-batch handling for the duration, whatever was installed."""
    was = _ORIGINAL is not None
    uninstall()
    try:
        yield
    finally:
        if was:
            install()
