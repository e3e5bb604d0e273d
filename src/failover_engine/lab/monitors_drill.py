"""``failover drill --monitors 3`` (``make monitors-drill``): three monitors, one decision, a leader killed
mid-failover.

1. starts the lab (moto plays Route 53 and DynamoDB, two local servers play the regions) and three
   ``failover monitor`` processes as observers in three "regions" (source addresses 127.0.0.1-3),
   coordinating through a DynamoDB table on moto (:class:`~failover_engine.lab.monitors.MonitorFleet`);
   the first one started leads;
2. waits until every monitor sees the steady state, then takes the primary region down;
3. the moment the leader says it starts the failover (its ``failover to`` line), SIGKILLs it;
4. waits until another monitor is elected (the dead leader's lease lapses) and finishes the
   failover (``succeeded``), or finds it finished and validates it (``adopted``);
5. reads the records back, stops the monitors, prints who acted (each monitor's role and epochs),
   the hand-over and the RTO (first failed probe → validated, the hand-over included), and writes
   ``monitors-drill-report.json`` in the run directory.

Everything it starts is stopped at the end, also on failure or Ctrl-C. Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from failover_engine.core.errors import FailoverError
from failover_engine.lab.monitors import SERVICE, FleetSettings, MonitorFleet, MonitorProcess

REPORT = "monitors-drill-report.json"
ZONE = "drill.example."


def observers(count: int) -> list[tuple[str, str]]:
    """``count`` observers, obs-a, obs-b, ..., each with its own source address (127.0.0.1, .2, ...)."""
    return [(f"obs-{chr(ord('a') + i)}", f"127.0.0.{i + 1}") for i in range(count)]


def records(fleet: MonitorFleet) -> dict[str, str]:
    """Set identifier → failover role of the drill's record, read from moto with the lab's own client."""
    lab = fleet.lab
    assert lab.loaded is not None
    record = lab.loaded.strategy.services[SERVICE].routing[0].record
    sets = lab.route53_client().list_resource_record_sets(HostedZoneId=lab.zones[ZONE])["ResourceRecordSets"]
    return {r.get("SetIdentifier", ""): r.get("Failover", "") for r in sets if r["Name"] == record}


class MonitorsDrill:
    """One run of the drill on a started lab (see the module docstring); :meth:`run` → the report."""

    def __init__(self, fleet: MonitorFleet, *, timeout: float = 90.0, log: Any = None):
        self.fleet = fleet
        self.timeout = timeout
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.killed: dict[str, Any] = {}
        self._killed = threading.Event()

    def run(self) -> dict[str, Any]:
        fleet = self.fleet
        first = fleet.observers[0][0]
        fleet.start(order=[first], timeout=self.timeout)
        leader = fleet.monitors[first]
        self.log(f"drill: {len(fleet.monitors)} monitors started; {leader.observer} (pid {leader.pid}) leads")
        fleet.wait_steady(self.timeout)
        before = records(fleet)
        leader.on_line(rf"{SERVICE}: failover to", lambda line: self._kill_mid_run(leader, line))
        failed_at = time.time()
        fleet.lab.regions["use1"].set_mode("down")
        self.log("drill: region use1 is down; the leader is killed once it has journaled its failover")
        fleet.wait_for(self._killed.is_set, self.timeout, f"{leader.observer} to start the failover")
        heir = fleet.wait_leader(self.timeout, other_than=leader)
        self.log(f"drill: {heir.observer} (pid {heir.pid}) took over the lead")
        done = fleet.wait_for(lambda: next(iter(heir.events("succeeded", service=SERVICE)
                                                + [e for e in heir.events("adopted", service=SERVICE)
                                                   if e.get("healthy") and e.get("rto_s") is not None]), None),
                              self.timeout, f"the failover finished by {heir.observer}")
        after = records(fleet)
        service_lease = fleet.leases.read(fleet.leases.key("service", SERVICE))
        fleet.stop()
        return self.report(leader, heir, done, before, after, failed_at, service_lease)

    def _kill_mid_run(self, leader: MonitorProcess, line: str) -> None:
        """The leader started the failover: SIGKILL it once it holds the service's lease and has
        journaled its plan (the last step before its write), or after 5 s whatever it is doing."""
        journals = leader.state_dir / "journal"
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not any(journals.glob("*.jsonl")):
            time.sleep(0.001)
        at = time.time()
        leader.kill()
        self.killed = {"observer": leader.observer, "pid": leader.pid, "at": at, "line": line,
                       "journaled": any(journals.glob("*.jsonl")), "records_at_kill": records(self.fleet)}
        self._killed.set()

    # ------------------------------------------------------------------ the report
    def report(self, dead: MonitorProcess, heir: MonitorProcess, done: dict[str, Any], before: dict[str, str],
               after: dict[str, str], failed_at: float, service_lease: dict[str, Any]) -> dict[str, Any]:
        fleet = self.fleet
        detected = [e for m in fleet.monitors.values() for e in m.events("detected", service=SERVICE)]
        first_failure = min((e["first_signal_at"] for e in detected if e.get("first_signal_at")), default=None)
        elected = heir.events("leader_elected")[-1]
        monitors = []
        for m in fleet.monitors.values():
            roles = [{"event": e["event"], "epoch": e.get("epoch"), "t": e["t"],
                      "previous": _who(fleet, (e.get("previous") or {}).get("holder"))}
                     for e in m.events() if e["event"] in ("leader_elected", "leader_lost")]
            acted = [{"event": e["event"], "t": e["t"], "rto_s": e.get("rto_s"), "epoch": e.get("epoch"),
                      "active": e.get("active"), "healthy": e.get("healthy"), "stage": e.get("stage")}
                     for e in m.events(service=SERVICE)
                     if e["event"] in ("detected", "lease_taken_over", "adopted", "succeeded", "fenced", "lock_held")]
            role = "killed leader" if m is dead else "successor leader" if m is heir else "follower"
            monitors.append({"observer": m.observer, "source_address": m.source, "pid": m.pid, "role": role,
                             "leadership": roles, "acted": acted,
                             "standing_by": len(m.events("standing_by", service=SERVICE)),
                             "state_dir": str(m.state_dir), "log": str(m.log_path)})
        t0 = first_failure or failed_at
        took_over = heir.events("lease_taken_over", service=SERVICE)
        epochs = []  # the service lease's holders, in order
        if took_over:
            prev = took_over[0]["previous"]
            epochs.append({"epoch": prev["epoch"], "holder": _who(fleet, prev["holder"]), "why": "lapsed: killed"})
            epochs.append({"epoch": took_over[0]["epoch"], "holder": heir.observer,
                           "why": "adopting" if heir.events("adopted", service=SERVICE) else "the failover"})
        final = int(float(service_lease.get("epoch", {}).get("N", 0)))
        if not epochs or epochs[-1]["epoch"] != final:
            epochs.append({"epoch": final, "holder": heir.observer, "why": "the failover"})
        return {
            "result": "succeeded" if after.get("usw2-standby") == "PRIMARY" else "failed",
            "service": SERVICE, "settings": fleet.settings.__dict__,
            "primary_down_at": failed_at, "first_failed_probe_at": first_failure,
            "killed": {k: v for k, v in self.killed.items() if k != "line"} | {"ms_after_first_failure":
                                                                               _ms(self.killed.get("at"), t0)},
            "hand_over": {"from": dead.observer, "to": heir.observer, "leader_epoch": elected.get("epoch"),
                          "previous_epoch": (elected.get("previous") or {}).get("epoch"),
                          "elected_ms_after_kill": _ms(elected["t"], self.killed.get("at")),
                          "service_lease_taken_over": took_over[0] if took_over else None,
                          "service_lease_epochs": epochs},
            "finished_by": {"observer": heir.observer, "how": done["event"], "rto_s": done.get("rto_s"),
                            "validated_ms_after_first_failure": _ms(done["t"], t0)},
            "timeline_ms": {"first failed probe": 0, "leader killed": _ms(self.killed.get("at"), t0),
                            "successor elected": _ms(elected["t"], t0), "validated": _ms(done["t"], t0)},
            "records": {"before": before, "at_kill": self.killed.get("records_at_kill"), "after": after},
            "monitors": monitors,
        }


def _who(fleet: MonitorFleet, holder: str | None) -> str | None:
    """The observer of the monitor a lease holder id names (else the id itself)."""
    if not holder:
        return None
    found = fleet.by_holder(holder)
    return found.observer if found is not None else holder


def _ms(t: float | None, since: float | None) -> int | None:
    return None if t is None or since is None else round((t - since) * 1000)


def render(report: dict[str, Any]) -> str:
    """The report for people."""
    out = [f"Three-monitor drill of service '{report['service']}': {report['result'].upper()}", ""]
    for m in report["monitors"]:
        epochs = ", ".join(f"{r['event'].replace('leader_', '')} at epoch {r['epoch']}"
                           + (f" (after {r['previous']})" if r.get("previous") else "") for r in m["leadership"])
        who = f"{m['observer']} ({m['source_address']}, pid {m['pid']})"
        out.append(f"  {who}: {m['role']:<16} {epochs or 'never led'}")
        for a in m["acted"]:
            detail = {"detected": "detected the outage",
                      "lease_taken_over": f"took the service lease at epoch {a['epoch']}",
                      "adopted": f"adopted: active {a['active']}, {'healthy' if a['healthy'] else 'not healthy'}",
                      "succeeded": f"failover succeeded: active {a['active']}",
                      "fenced": f"fenced ({a['stage']})", "lock_held": "waited for the service lease"}[a["event"]]
            out.append(f"      {detail}" + (f", RTO {a['rto_s'] * 1000:.0f} ms" if a.get("rto_s") else ""))
        if m["standing_by"]:
            out.append("      stood by while another monitor led")
    h, k, f = report["hand_over"], report["killed"], report["finished_by"]
    out += ["", f"hand-over: {h['from']} SIGKILLed {k.get('ms_after_first_failure')} ms after the first failed probe, "
                + ("its plan journaled, " if k.get("journaled") else "") + "mid-failover "
                f"(records then: {_roles(k.get('records_at_kill'))});",
            f"           {h['to']} elected {h['elected_ms_after_kill']} ms later at leader epoch {h['leader_epoch']} "
            f"(was {h['previous_epoch']});",
            "           service lease: " + " -> ".join(
                f"epoch {e['epoch']} {e['holder']} ({e['why']})" for e in h["service_lease_epochs"]),
            f"finished by {f['observer']} ({f['how']}): RTO {f['rto_s'] * 1000:.0f} ms "
            "(first failed probe -> validated, hand-over included)" if f.get("rto_s") else
            f"finished by {f['observer']} ({f['how']})", "", "timeline (ms from the first failed probe):"]
    out += [f"  {name:<20} {ms:>6}" for name, ms in report["timeline_ms"].items() if ms is not None]
    out += ["", f"records before: {_roles(report['records']['before'])}",
            f"records after:  {_roles(report['records']['after'])}"]
    return "\n".join(out)


def _roles(records_: dict[str, str] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((records_ or {}).items())) or "-"


def run_monitors_drill(run_dir: Path, *, monitors: int = 3, settings: FleetSettings | None = None) -> int:
    """The drill (see the module docstring) in ``run_dir`` (emptied first); the exit code."""
    import importlib.util

    if importlib.util.find_spec("moto") is None:  # the lab's moto server
        print("failover drill: --monitors needs failover-engine's extra 'lab' (moto is not installed): "
              "pip install 'failover-engine[lab]'", file=sys.stderr)
        return 1
    if monitors < 3:
        print("failover drill: --monitors needs at least 3 (one is killed; the others still make a quorum)",
              file=sys.stderr)
        return 1
    from failover_engine.lab.lab import Lab

    run_dir = run_dir.resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    try:
        lab = Lab(run_dir / "lab").start()
    except (FailoverError, OSError) as exc:
        print(f"failover drill: cannot start the lab: {exc}", file=sys.stderr)
        return 1
    with lab:
        fleet = MonitorFleet(lab, run_dir, settings or FleetSettings(quorum=monitors // 2 + 1),
                             observers=observers(monitors))
        for name, url in lab.servers():
            print(f"lab: {name:<16} {url}", file=sys.stderr)
        print(f"lab: {'run dir':<16} {run_dir}", file=sys.stderr, flush=True)
        try:
            report = MonitorsDrill(fleet).run()
        except FailoverError as exc:
            print(f"failover drill: {exc}", file=sys.stderr)
            return 1
        finally:
            fleet.stop()
    path = run_dir / REPORT
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print("\n" + render(report))
    print(f"\nJSON report: {path}")
    return 0 if report["result"] == "succeeded" else 1


__all__ = ["MonitorsDrill", "REPORT", "observers", "render", "run_monitors_drill"]
