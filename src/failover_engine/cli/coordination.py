"""`failover coordination create|status STRATEGY`: the DynamoDB table of a strategy whose
``coordination`` is ``type: dynamodb`` (several monitors, leases with fencing)."""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

from failover_engine.config.loader import load_strategy
from failover_engine.core.errors import StrategyError

HELP = """\
Several monitors (in several regions) coordinate through one DynamoDB table when the strategy says

  coordination:
    type: dynamodb
    table: failover-coordination    # default
    region: us-east-1
    lease: 15s                      # a dead leader is replaced within lease + one interval

  failover coordination create strategy.yaml   # make the table (idempotent): key pk, TTL on ttl
  failover coordination status strategy.yaml   # who leads, every lease and its epoch, the verdicts
"""


def _config(args: argparse.Namespace) -> Any:
    loaded = load_strategy(args.strategy, state_dir=args.state_dir)
    config = loaded.strategy.coordination
    if config.type != "dynamodb":
        raise StrategyError(f"{args.strategy}: coordination.type is {config.type!r}; `failover coordination` "
                            "works on type: dynamodb (see `failover coordination --help`)")
    return loaded, config


def cmd_create(args: argparse.Namespace) -> int:
    from failover_engine.coordination.dynamodb import DynamoTable

    _loaded, config = _config(args)
    created = DynamoTable(config).create()
    print(f"coordination table {config.table} in {config.region}: {'created' if created else 'already there'} "
          "(key pk, TTL on ttl)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from failover_engine.coordination.dynamodb import DynamoTable

    loaded, config = _config(args)
    table = DynamoTable(config)
    prefix = f"lease#{config.group}#"
    items: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while True:  # a small table: one scan (paged) of this group's items
        page = table.call("scan", ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
        items += page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    now = time.time()
    leases, verdicts = [], []
    for item in items:
        pk = item["pk"]["S"]
        if pk.startswith(prefix):
            expires = float(item.get("expires", {}).get("N", 0))
            holder = item.get("holder", {}).get("S")
            leases.append({"lease": pk[len(prefix):].replace("#", " "), "holder": holder,
                           "epoch": int(float(item.get("epoch", {}).get("N", 0))),
                           "purpose": item.get("purpose", {}).get("S"),
                           "state": ("held" if expires >= now else "lapsed") if holder else "free",
                           "expires_in_s": round(expires - now, 1) if holder else None})
        elif pk.startswith(f"verdict#{config.group}#"):
            at = float(item.get("at", {}).get("N", 0))
            verdicts.append({"observer": pk.split("#", 2)[2], "age_s": round(now - at, 1),
                             "fresh": now - at <= loaded.strategy.monitoring.verdict_ttl})
    status = {"table": config.table, "region": config.region, "group": config.group,
              "leases": sorted(leases, key=lambda x: x["lease"]), "verdicts": sorted(verdicts, key=lambda v: v["observer"])}
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"table {config.table} ({config.region}), group {config.group}")
    for lease in status["leases"]:
        left = f", {lease['expires_in_s']}s left" if lease["state"] == "held" else ""
        print(f"  {lease['lease']:<28} {lease['state']:<7} epoch {lease['epoch']:<5} "
              f"{lease['holder'] or '-'}{left}")
    for v in status["verdicts"]:
        print(f"  verdicts of {v['observer']:<16} {v['age_s']}s old{'' if v['fresh'] else ' (stale: ignored)'}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("coordination", help="the DynamoDB table several monitors coordinate through",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = s.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, text in (("create", cmd_create, "make the table (idempotent)"),
                             ("status", cmd_status, "who leads, the leases and their epochs, the verdicts")):
        a = actions.add_parser(name, help=text)
        a.add_argument("strategy", help="strategy file with coordination: {type: dynamodb, ...}")
        a.add_argument("--state-dir", default=None)
        if name == "status":
            a.add_argument("--json", action="store_true", help="machine-readable output")
        a.set_defaults(func=func)
