"""The history of past runs, read from their JSON reports (the phases and RTO are in
failover_engine.core.timeline)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def history(reports_dir: str | Path, service: str | None = None) -> list[dict[str, Any]]:
    """Summaries of past runs, oldest first, read from the JSON reports (named by start time to the µs)."""
    out = []
    for p in sorted(Path(reports_dir).glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(r, dict):
            continue
        if service and r.get("service") != service:
            continue
        tl = r.get("timeline") or {}
        out.append({"report": str(p), "service": r.get("service"), "action": r.get("action"),
                    "status": r.get("status"), "started": r.get("started"), "rto_s": tl.get("rto_s"),
                    "phases_s": tl.get("phases_s")})
    return out
