"""Per-service state kept between runs: last switch (for the cooldown) and an open incident.

An *incident* is what detection saw before anyone acted: the first probe that pointed to the
condition and the moment the threshold was crossed. Detection records it; the next failover or
failback of the service consumes it, so the RTO starts at the first failed probe and not at the
moment an operator or a playbook typed the command.

File modes of the state directory (this module owns the rule; the event log, the journal and the
reports follow it): every directory the engine writes in (the state directory, ``services/``,
``reports/``, ``locks/``, ``journal/``) is 0700 and every file 0600, whatever the umask. A directory
or file left looser by an older version, or by hand, is tightened the first time it is written in
(group and other bits dropped; only when this user owns it). Directories above the state
directory are not touched, except those :func:`private_dir` creates itself.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from failover_engine.engine.files import private_dir


@dataclass
class Incident:
    signal: str  # "failure" (for a failover) or "recovery" (for a failback)
    first_signal_at: float
    detected_at: float
    endpoints: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class ServiceState:
    last_switch_at: float | None = None
    last_action: str | None = None
    active: dict[str, int] | None = None
    incident: Incident | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StateStore:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def _path(self, service: str) -> Path:
        return self.directory / "services" / f"{service}.json"

    def load(self, service: str) -> ServiceState:
        try:
            data = json.loads(self._path(service).read_text())
        except (OSError, ValueError):
            return ServiceState()
        if not isinstance(data, dict):
            return ServiceState()
        inc = data.pop("incident", None)
        st = ServiceState(**{k: v for k, v in data.items() if k in ServiceState.__dataclass_fields__})
        st.incident = Incident(**inc) if inc else None
        return st

    def save(self, service: str, state: ServiceState) -> None:
        path = self._path(service)
        private_dir(self.directory)
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{service}.")  # 0600
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_dict(), fh, indent=2)
        os.replace(tmp, path)

    def record_incident(self, service: str, incident: Incident) -> None:
        st = self.load(service)
        st.incident = incident
        self.save(service, st)


def record_detection(state_dir: str | Path, service: str, awaited: str, endpoints: list[str],
                     first_signal_at: float | None, detected_at: float | None, reason: str) -> Incident:
    """Store what detection saw (for the next failover's RTO) and log it as a ``detected`` event."""
    from failover_engine.engine.events import EventLog

    signal = "failure" if awaited == "unhealthy" else "recovery"
    detected = detected_at if detected_at is not None else 0.0
    incident = Incident(signal, first_signal_at if first_signal_at is not None else detected, detected,
                        list(endpoints), reason)
    StateStore(state_dir).record_incident(service, incident)
    EventLog(Path(state_dir) / "events.jsonl").append(
        "detected", service, signal=signal, endpoints=list(endpoints), reason=reason,
        first_signal_at=incident.first_signal_at, detected_at=incident.detected_at)
    return incident
