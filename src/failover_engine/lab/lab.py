"""The lab: a moto server plays Route 53, :class:`RegionServer` s play the regions, and a small
JSON control API lets a playbook inject failures. When the strategy template asks for them, the
package's Cloud DNS, Traffic Manager and ARC zonal shift emulators play Google Cloud DNS, Azure
Traffic Manager and AWS ARC zonal shift (see :mod:`.emulators`); every provider is seeded with the
steady state: the primary active, or every member of an active-active service in rotation.

Templates (``cloud``): ``aws`` (Route 53, the default), ``gcp`` (Cloud DNS), ``azure`` (Traffic
Manager), ``multi`` (one service steered by all three), ``zone`` (an active-active service over
three availability zones, regions az1/az2/az3, ARC zonal shift); or any file given as
``strategy_template``.

Control API (all JSON)::

    GET  /status                        lab_url, moto_url, strategy, regions {name: url, port, mode}
    GET  /regions/<name>                one region
    POST /regions/<name>/<mode>         mode: up, down, slow (?ms=300), errors, hang
    POST /regions/<name>/partition?source=127.0.0.3[&source=...]   reset connections from these
                                        client addresses (no source: heal the partition)
    POST /reset                         steady state: every region up, every provider seeded again
    GET  /dns                           the lab's DNS server: address, frozen, queries
    POST /dns/freeze                    it keeps answering the providers' state of now (a stale
                                        resolver) until POST /dns/thaw

The lab's authoritative DNS server (:class:`~failover_engine.lab.dns.LabDns`, UDP and TCP) answers
for every zone of moto and the emulators from their live state (``lab.dns``, ``FAILOVER_LAB_DNS``,
the ``{lab_dns}`` placeholder: ``127.0.0.1:PORT``).

Nothing leaves the machine: every server binds 127.0.0.1 on a port the OS chooses.

moto keeps its state in process-wide backends: every moto server of one Python process shares
the same Route 53 state. The lab resets moto when it starts, so run one lab per process at a time.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from failover_engine.config.loader import LoadedStrategy, load_strategy
from failover_engine.core.model import Route53Routing, Service, Strategy
from failover_engine.lab.dns import LabDns
from failover_engine.lab.dns_sources import lab_dns_sources
from failover_engine.lab.dns_zonal import ZonalShiftSource
from failover_engine.lab.emulators import LAB_TOKEN, start_clouddns, start_trafficmanager, start_zonalshift
from failover_engine.lab.regions import MODES, LabError, RegionServer
from failover_engine.lab.seed_clouddns import seed_clouddns
from failover_engine.lab.seed_trafficmanager import lab_token_vars, seed_trafficmanager

__all__ = ["CLOUDS", "Lab", "LabError", "seed_route53", "steady_state_records", "template_for"]

AWS_REGION = "us-east-1"
TEMPLATES = {"aws": "drill-strategy.yaml", "gcp": "drill-strategy-gcp.yaml",
             "azure": "drill-strategy-azure.yaml", "multi": "drill-strategy-multi.yaml",
             "zone": "drill-strategy-zone.yaml", "weighted": "drill-strategy-weighted.yaml",
             "terraform": "drill-strategy-terraform.yaml"}
# a template naming {terraform_dir} gets a Terraform working directory: the embedded stand-in for a
# pilot-light standby (lab/terraform/standby), copied into the run dir and applied at its pilot light
TERRAFORM_PLACEHOLDER = "{terraform_dir}"
TERRAFORM_PILOT_LIGHT = {"standby_capacity": 0}
# the TTL of the drill records ({record_ttl} in the templates, a Traffic Manager profile's DNS TTL,
# the load balancers' names): `failover drill` gives 1 s, so that its clients move within the drill
DEFAULT_RECORD_TTL = 30
CLOUDS = tuple(TEMPLATES)
DEFAULT_REGIONS = ("use1", "usw2")
# the local servers a template's endpoints are probed on, when not the primary and standby regions
TEMPLATE_REGIONS = {"zone": ("az1", "az2", "az3"), "weighted": ("use1", "usw2", "euw1")}
TEMPLATE = TEMPLATES["aws"]
# a template needs an emulator when it names one of its placeholders
EMULATOR_PLACEHOLDERS = {"clouddns": ("{clouddns_url}",),
                         "trafficmanager": ("{trafficmanager_url}", "{trafficmanager_ca}"),
                         "zonalshift": ("{zonalshift_url}",)}
# real clouds' settings a child process must not inherit (the lab sets its own where it needs them)
CLOUD_ENV_PREFIXES = ("AWS_", "EC2_", "AZURE_", "GOOGLE_", "CLOUDSDK_", "GCLOUD_")
_LEFTOVER = re.compile(r"\{(?:moto_url|lab_url|primary_port|standby_port|trafficmanager_ca|"
                       r"[A-Za-z0-9_.-]+_(?:port|url))\}")


def template_for(cloud: str) -> str:
    """The embedded drill template of ``cloud`` (one of :data:`CLOUDS`)."""
    try:
        return TEMPLATES[cloud]
    except KeyError:
        raise LabError(f"unknown cloud {cloud!r}; one of {', '.join(CLOUDS)}") from None


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


# --------------------------------------------------------------------------- Route 53 seeding
def steady_state_records(binding: Route53Routing, service: Service) -> list[dict[str, Any]]:
    """The ResourceRecordSets of a binding while the service's primary endpoint is active (pure).

    simple: one record with the primary's values; failover: primary PRIMARY, others SECONDARY;
    weighted: primary ``active_weight``, others ``inactive_weight`` (active_active: every member
    with its weight, as the Route 53 adapter scales it). A set identifier defaults to
    the endpoint's name, as the Route 53 adapter does.
    """
    primary = service.primary.name
    base = {"Name": _fqdn(binding.record), "Type": binding.type, "TTL": binding.ttl}
    if binding.mode == "simple":
        values = binding.endpoints[primary].values
        return [{**base, "ResourceRecords": [{"Value": v} for v in values]}]
    out = []
    for name, eb in binding.endpoints.items():
        rrset: dict[str, Any] = {**base, "SetIdentifier": eb.set_identifier or name,
                                 "ResourceRecords": [{"Value": v} for v in eb.values]}
        if binding.mode == "failover":
            rrset["Failover"] = "PRIMARY" if name == primary else "SECONDARY"
        elif service.strategy == "active_active":  # every member in rotation, with its own weight
            rrset["Weight"] = max(1, round(service.endpoint(name).weight * binding.active_weight / 100))
        else:
            rrset["Weight"] = binding.active_weight if name == primary else binding.inactive_weight
        if eb.health_check_id:
            rrset["HealthCheckId"] = eb.health_check_id
        out.append(rrset)
    return out


def ensure_hosted_zone(client: Any, binding: Route53Routing) -> str:
    """The id of the binding's hosted zone; a zone given by name is created when missing."""
    if binding.hosted_zone_id:
        return binding.hosted_zone_id.split("/")[-1]
    name = _fqdn(binding.hosted_zone or "")
    resp = client.list_hosted_zones_by_name(DNSName=name, MaxItems="1")
    for zone in resp.get("HostedZones", []):
        if _fqdn(zone["Name"]) == name:
            return zone["Id"].split("/")[-1]
    created = client.create_hosted_zone(Name=name, CallerReference=f"failover-lab-{uuid.uuid4()}")
    return created["HostedZone"]["Id"].split("/")[-1]


def seed_route53(client: Any, strategy: Strategy) -> dict[str, str]:
    """UPSERT the steady state (primary active) of every Route 53 binding of every service.

    One atomic ChangeResourceRecordSets batch per binding. Returns zone name (or id) → zone id.
    """
    zones: dict[str, str] = {}
    for service in strategy.services.values():
        for binding in service.routing:
            if binding.adapter != "route53":
                continue
            zone_id = ensure_hosted_zone(client, binding)
            zones[_fqdn(binding.hosted_zone) if binding.hosted_zone else zone_id] = zone_id
            changes = [{"Action": "UPSERT", "ResourceRecordSet": rr}
                       for rr in steady_state_records(binding, service)]
            client.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Comment": "failover lab steady state", "Changes": changes})
    return zones


def register_zonal_resources(emulator: Any, strategy: Strategy) -> dict[str, list[str]]:
    """Register the resource of every zonal shift binding with its zones in the emulator; its steady
    state is no shift (every zone in rotation), which the emulator's reset restores.

    Returns resource identifier → zones."""
    registered: dict[str, list[str]] = {}
    for service in strategy.services.values():
        for binding in service.routing:
            if binding.adapter == "zonalshift":
                zones = registered.setdefault(binding.resource_identifier, [])
                zones.extend(eb.zone for eb in binding.endpoints.values() if eb.zone not in zones)
    for resource, zones in registered.items():
        emulator.resources[resource] = list(zones)
    return registered


def lab_route53_client(endpoint_url: str, config_file: Path) -> Any:
    """A Route 53 client for the lab's moto that ignores the user's AWS profile and config."""
    return lab_aws_client("route53", endpoint_url, config_file)


def lab_aws_client(service: str, endpoint_url: str, config_file: Path) -> Any:
    """A client of ``service`` for the lab's moto that ignores the user's AWS profile and config."""
    import boto3
    import botocore.session

    isolated = {"profile": (None, None, None, None),
                "config_file": (None, None, str(config_file), None),
                "credentials_file": (None, None, str(config_file), None)}
    session = boto3.session.Session(
        botocore_session=botocore.session.Session(session_vars=isolated),
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=AWS_REGION)
    return session.client(service, endpoint_url=endpoint_url)


# --------------------------------------------------------------------------- moto
def start_moto() -> tuple[Any, str]:
    """Start moto's threaded server on 127.0.0.1 (OS-chosen port) and clear its state."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] comes with the extra "lab"
        raise LabError(f"the lab needs failover-engine's extra 'lab' ({exc.name} is not installed): "
                       "pip install 'failover-engine[lab]'") from None

    from failover_engine.lab import moto_dynamodb
    from failover_engine.lab.moto_route53 import install

    install()  # Route 53 change batches as AWS checks them (exact DELETEs, atomic): see moto_route53
    moto_dynamodb.install()  # a conditional write checked and applied at once, as DynamoDB does
    werkzeug_log = logging.getLogger("werkzeug")
    if werkzeug_log.level == logging.NOTSET:
        werkzeug_log.setLevel(logging.WARNING)  # moto logs one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        reset_moto(url)
    except BaseException:
        stop_moto(server)
        raise
    return server, url


def reset_moto(moto_url: str) -> None:
    """Clear every moto backend (zones, records, health checks) of this process."""
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    no_proxy.open(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()


def stop_moto(server: Any) -> None:
    """Stop moto without waiting out werkzeug's 0.5 s poll: a connection wakes its select loop."""
    host, port = server.get_host_and_port()
    stopper = threading.Thread(target=server.stop, name="moto-stop", daemon=True)
    stopper.start()
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=0.2).close()
        stopper.join(0.05)


# --------------------------------------------------------------------------- control API
class _ControlHandler(BaseHTTPRequestHandler):
    server: "_ControlServer"
    server_version = "failover-lab-control/1"

    def do_GET(self) -> None:  # noqa: N802
        lab, parts = self.server.lab, self._parts()
        if parts == ["status"]:
            return self._json(200, lab.status())
        if len(parts) == 2 and parts[0] == "regions":
            return self._region(parts[1], lambda r: self._json(200, {"region": r.name, **r.status()}))
        if parts == ["dns"] and lab.dns is not None:
            return self._json(200, lab.dns.status())
        self._json(404, {"error": f"no such resource: GET {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        lab, parts = self.server.lab, self._parts()
        if parts == ["reset"]:
            lab.reset()
            return self._json(200, lab.status())
        if len(parts) == 3 and parts[0] == "regions" and parts[2] == "partition":
            sources = parse_qs(urlsplit(self.path).query).get("source", [])
            return self._region(parts[1], lambda r: (r.partition(sources),
                                                     self._json(200, {"region": r.name, **r.status()})))
        if len(parts) == 3 and parts[0] == "regions" and parts[2] in MODES:
            return self._region(parts[1], lambda r: self._set_mode(r, parts[2]))
        if parts in (["dns", "freeze"], ["dns", "thaw"]) and lab.dns is not None:
            if parts[1] == "freeze":
                lab.dns.freeze()
            else:
                lab.dns.thaw()
            return self._json(200, lab.dns.status())
        self._json(404, {"error": f"no such action: POST {self.path}; modes: {', '.join(MODES)}"})

    def _set_mode(self, region: RegionServer, mode: str) -> None:
        opts: dict[str, Any] = {}
        if mode == "slow":
            ms = parse_qs(urlsplit(self.path).query).get("ms", [None])[0]
            if ms is not None:
                if not ms.isdigit():
                    return self._json(400, {"error": f"ms must be a whole number of milliseconds, not {ms!r}"})
                opts["delay_ms"] = int(ms)
        at = time.time()  # when it was asked: a client can see the failure before set_mode returns
        region.set_mode(mode, **opts)
        self.server.lab.actions.append({"at": round(at, 6), "region": region.name, "mode": mode})
        self._json(200, {"region": region.name, **region.status()})

    def _region(self, name: str, action: Callable[[RegionServer], None]) -> None:
        region = self.server.lab.regions.get(name)
        if region is None:
            known = ", ".join(self.server.lab.regions)
            return self._json(404, {"error": f"unknown region {name!r}; regions: {known}"})
        action(region)

    def _parts(self) -> list[str]:
        return [p for p in urlsplit(self.path).path.split("/") if p]

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: no line per request on stderr."""


class _ControlServer(ThreadingHTTPServer):
    def __init__(self, lab: "Lab"):
        self.lab = lab
        super().__init__(("127.0.0.1", 0), _ControlHandler)


# --------------------------------------------------------------------------- the lab
class Lab:
    """Regions, moto and the control API, started together and stopped together.

    Use as a context manager. ``regions[0]`` plays the primary, ``regions[1]`` the standby; by
    default use1 and usw2, or the template's own (az1, az2, az3 for ``cloud="zone"``).
    The strategy template may use ``{moto_url}``, ``{lab_url}``, ``{primary_port}``,
    ``{standby_port}`` and ``{<region>_port}`` / ``{<region>_url}`` for every region, and
    ``{clouddns_url}``, ``{trafficmanager_url}``, ``{trafficmanager_ca}``, ``{zonalshift_url}``:
    naming one starts that emulator. ``strategy_template`` (a file) wins over ``cloud`` (an embedded template).
    ``{record_ttl}`` is ``record_ttl``, the TTL of the templates' records (also a Traffic Manager
    profile's DNS TTL, the Terraform stand-in's record and the load balancers' names): 30 s by
    default, 1 s in `failover drill` so that its clients move within the drill.
    """

    def __init__(self, run_dir: Path, regions: Sequence[str] | None = None, *,
                 strategy_template: Path | None = None, cloud: str = "aws", record_ttl: int = DEFAULT_RECORD_TTL):
        if regions is None:
            regions = TEMPLATE_REGIONS.get(cloud, DEFAULT_REGIONS) if strategy_template is None else DEFAULT_REGIONS
        if not regions or len(set(regions)) != len(regions):
            raise LabError(f"the lab needs one or more distinct region names, got {list(regions)}")
        self.run_dir = Path(run_dir).resolve()
        self.strategy_template = strategy_template
        self.cloud = cloud
        self.record_ttl = record_ttl
        self.template_name = template_for(cloud)
        self.clouddns: Any = None        # the Cloud DNS emulator, when the template needs it
        self.trafficmanager: Any = None  # the Traffic Manager emulator, when the template needs it
        self.zonalshift: Any = None      # the ARC zonal shift emulator, when the template needs it
        self.dns: LabDns | None = None   # the authoritative DNS server of the lab's zones
        self._route53: Any = None
        self.regions: dict[str, RegionServer] = {name: RegionServer(name) for name in regions}
        self.actions: list[dict[str, Any]] = []  # region modes set through the control API: at, region, mode
        self.moto_url = ""
        self.lab_url = ""
        self.strategy_path = self.run_dir / "strategy.yaml"
        self.lab_json = self.run_dir / "lab.json"
        self.aws_config_file = self.run_dir / "aws" / "config"
        self.aws_credentials_file = self.run_dir / "aws" / "credentials"
        self.loaded: LoadedStrategy | None = None
        self.terraform_dir: Path | None = None  # the Terraform working dir, when the template names one
        self.zones: dict[str, str] = {}           # Route 53: zone name (or id) → zone id
        self.clouddns_zones: dict[str, str] = {}  # Cloud DNS: project/managed zone → DNS name
        self._stack = contextlib.ExitStack()
        self._started = False
        self._closed = False

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> "Lab":
        """Start everything; on any failure, stop what was started and re-raise."""
        if self._closed:
            raise LabError("this lab was closed; create a new Lab to start again")
        if self._started:
            return self
        self._started = True
        try:
            self._start_servers()
            self._start_emulators(self._template()[0])
            self._start_dns()
            self._start_terraform(self._template()[0])
            self._write_aws_files()
            self.strategy_path.write_text(self.render_strategy(), encoding="utf-8")
            self.loaded = load_strategy(self.strategy_path)
            if self.dns is not None:
                self.dns.sources = self.dns_sources()
            self._seed()
            self._write_lab_json()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the control API, the emulators, moto and the regions; remove lab.json. Idempotent."""
        self._closed = self._started
        self._stack.close()

    def reset(self) -> None:
        """Back to the steady state: every region up, moto and the emulators cleared and seeded again."""
        for region in self.regions.values():
            region.set_mode("up")
            region.partition(())
        reset_moto(self.moto_url)
        if self.dns is not None:
            self.dns.thaw()
        for emulator in (self.clouddns, self.trafficmanager, self.zonalshift):
            if emulator is not None:
                emulator.reset()
        if self.terraform_dir is not None:  # the standby back to its pilot light
            from failover_engine.config.terraform import runner

            runner().apply(self.terraform_dir, TERRAFORM_PILOT_LIGHT)
        if self.loaded is not None:
            self._seed()

    def _seed(self) -> None:
        """The steady state (primary active) of every binding, in moto and the running emulators."""
        assert self.loaded is not None
        strategy = self.loaded.strategy
        self.zones = seed_route53(self._own_route53_client(), strategy)
        kinds = {b.adapter for s in strategy.services.values() for b in s.routing}
        for kind, emulator in (("clouddns", self.clouddns), ("trafficmanager", self.trafficmanager),
                               ("zonalshift", self.zonalshift)):
            if kind in kinds and emulator is None:
                names = " or ".join(EMULATOR_PLACEHOLDERS[kind])
                raise LabError(f"the strategy has {kind} bindings but no connection uses {names}: the lab "
                               f"starts its {kind} emulator only for a template that names it")
        if self.clouddns is not None:
            self.clouddns_zones = seed_clouddns(self.clouddns.url, strategy)
        if self.trafficmanager is not None:
            seed_trafficmanager(self.trafficmanager.url, self.trafficmanager.ca_file, LAB_TOKEN, strategy,
                                dns_ttl=self.record_ttl)
        if self.zonalshift is not None:
            register_zonal_resources(self.zonalshift, strategy)

    def route53_client(self) -> Any:
        """A boto3 Route 53 client talking to the lab's moto (never to AWS)."""
        return lab_route53_client(self.moto_url, self.aws_config_file)

    def _own_route53_client(self) -> Any:
        """The lab's own client (seeding, the DNS server), made once: boto3 clients are thread-safe,
        and making one costs ~0.1 s of CPU."""
        if self._route53 is None:
            self._route53 = self.route53_client()
        return self._route53

    def _start_servers(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for region in self.regions.values():
            region.start()
            self._stack.callback(region.stop)
        moto, self.moto_url = start_moto()
        self._stack.callback(stop_moto, moto)
        control = _ControlServer(self)
        self._stack.callback(control.server_close)
        thread = threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="lab-control", daemon=True)
        thread.start()
        self._stack.callback(thread.join, 2.0)
        self._stack.callback(control.shutdown)
        self.lab_url = f"http://127.0.0.1:{control.server_address[1]}"

    def _start_emulators(self, template: str) -> None:
        """Start the emulators whose placeholders the template names (stopped by :meth:`close`)."""
        if any(p in template for p in EMULATOR_PLACEHOLDERS["clouddns"]):
            self.clouddns = start_clouddns()
            self._stack.callback(self.clouddns.stop)
        if any(p in template for p in EMULATOR_PLACEHOLDERS["trafficmanager"]):
            self.trafficmanager = start_trafficmanager()
            self._stack.callback(self.trafficmanager.stop)
        if any(p in template for p in EMULATOR_PLACEHOLDERS["zonalshift"]):
            self.zonalshift = start_zonalshift()
            self._stack.callback(self.zonalshift.stop)

    def _start_dns(self) -> None:
        """The DNS server, bound now (its port goes into the strategy) and given its sources once
        the strategy is loaded; it reads nothing before its first query."""
        self.dns = LabDns().start()
        self._stack.callback(self.dns.stop)

    def dns_sources(self) -> list[Any]:
        """What the DNS server answers from: every hosted zone of moto, the managed zones of the
        strategy's Cloud DNS projects and the strategy's Traffic Manager profiles (read live); with
        the zonal shift emulator, its load balancers' names (failover_engine.lab.dns_zonal)."""
        out = lab_dns_sources(self._own_route53_client, lambda: self.loaded.strategy if self.loaded else None,
                              self.clouddns, self.trafficmanager, LAB_TOKEN)
        if self.zonalshift is not None:
            out.append(ZonalShiftSource(self.zonalshift, self.record_ttl))
        return out

    def _start_terraform(self, template: str) -> None:
        """Copy the embedded Terraform stand-in into the run dir and apply it at its pilot light."""
        if TERRAFORM_PLACEHOLDER not in template:
            return
        from failover_engine.config.terraform import runner

        self.terraform_dir = self.run_dir / "terraform" / "standby"
        self.terraform_dir.mkdir(parents=True, exist_ok=True)
        source = resources.files("failover_engine.lab").joinpath("terraform", "standby", "main.tf")
        (self.terraform_dir / "main.tf").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        # every apply (the lab's, the promotions') reads it: the record keeps the lab's TTL
        (self.terraform_dir / "terraform.tfvars").write_text(f"record_ttl = {self.record_ttl}\n", encoding="utf-8")
        tf = runner()
        tf.init(self.terraform_dir)
        tf.apply(self.terraform_dir, TERRAFORM_PILOT_LIGHT)

    def _write_aws_files(self) -> None:
        self.aws_config_file.parent.mkdir(parents=True, exist_ok=True)
        self.aws_config_file.write_text("", encoding="utf-8")
        self.aws_credentials_file.write_text("", encoding="utf-8")

    def _write_lab_json(self) -> None:
        self.lab_json.write_text(json.dumps(self.status(), indent=2) + "\n", encoding="utf-8")
        self._stack.callback(self.lab_json.unlink, missing_ok=True)

    # ------------------------------------------------------------------ strategy
    def placeholders(self) -> dict[str, str]:
        """Placeholder → value for the strategy template."""
        regions = list(self.regions.values())
        values = {"moto_url": self.moto_url, "lab_url": self.lab_url, "primary_port": str(regions[0].port),
                  "record_ttl": str(self.record_ttl)}
        if len(regions) > 1:
            values["standby_port"] = str(regions[1].port)
        for region in regions:
            values[f"{region.name}_port"] = str(region.port)
            values[f"{region.name}_url"] = region.url
        if self.clouddns is not None:
            values["clouddns_url"] = self.clouddns.url
        if self.trafficmanager is not None:
            values["trafficmanager_url"] = self.trafficmanager.url
            values["trafficmanager_ca"] = self.trafficmanager.ca_file
        if self.zonalshift is not None:
            values["zonalshift_url"] = self.zonalshift.url
        if self.dns is not None:
            values["lab_dns"] = self.dns_address
        if self.terraform_dir is not None:
            values["terraform_dir"] = str(self.terraform_dir)
        return values

    def _template(self) -> tuple[str, str]:
        """(text, where it comes from) of the strategy template."""
        if self.strategy_template is not None:
            return Path(self.strategy_template).read_text(encoding="utf-8"), str(self.strategy_template)
        text = resources.files("failover_engine.lab").joinpath(self.template_name).read_text(encoding="utf-8")
        return text, f"failover_engine/lab/{self.template_name}"

    def render_strategy(self) -> str:
        """The template with every placeholder filled (plain replacement: YAML has braces too)."""
        text, source = self._template()
        for key, value in self.placeholders().items():
            text = text.replace("{" + key + "}", value)
        leftover = sorted(set(_LEFTOVER.findall(text)))
        if leftover:
            raise LabError(f"{source}: unknown placeholder(s) {', '.join(leftover)}; "
                           f"known: {', '.join('{' + k + '}' for k in self.placeholders())}")
        return text

    # ------------------------------------------------------------------ reporting
    def status(self) -> dict[str, Any]:
        out = {"lab_url": self.lab_url, "moto_url": self.moto_url, "strategy": str(self.strategy_path),
               "regions": {name: r.status() for name, r in self.regions.items()}}
        if self.clouddns is not None:
            out["clouddns_url"] = self.clouddns.url
        if self.trafficmanager is not None:
            out.update(trafficmanager_url=self.trafficmanager.url, trafficmanager_ca=self.trafficmanager.ca_file)
        if self.zonalshift is not None:
            out["zonalshift_url"] = self.zonalshift.url
        if self.dns is not None:
            out["dns"] = self.dns_address
        return out

    @property
    def dns_address(self) -> str:
        """``127.0.0.1:PORT`` of the lab's DNS server (UDP and TCP); empty before it starts."""
        return "" if self.dns is None else "{}:{}".format(*self.dns.address)

    def servers(self) -> list[tuple[str, str]]:
        """(name, URL) of every server, for people."""
        out = [("control", self.lab_url), ("moto (route53)", self.moto_url)]
        if self.dns is not None:
            out.append(("dns (udp+tcp)", self.dns_address))
        if self.clouddns is not None:
            out.append(("cloud dns", self.clouddns.url))
        if self.trafficmanager is not None:
            out.append(("traffic manager", self.trafficmanager.url))
        if self.zonalshift is not None:
            out.append(("arc zonal shift", self.zonalshift.url))
        if self.terraform_dir is not None:
            from failover_engine.config.terraform import runner

            tf = runner()
            out.append(("terraform", f"{self.terraform_dir} ({tf.kind} terraform {tf.version()})"))
        return out + [(f"region {name}", r.url) for name, r in self.regions.items()]

    def env(self) -> dict[str, str]:
        """Variables a child process needs: the strategy, the lab's URLs, fake AWS credentials and,
        with the Traffic Manager emulator, its fixed dummy bearer token.

        ``AWS_ENDPOINT_URL`` sends every AWS SDK call to moto, and the AWS config and credential
        files are empty files of the lab, so a real AWS profile is never used. Cloud DNS and
        Traffic Manager connections name the emulators in the strategy itself (``endpoint_url``,
        anonymous or token credentials): nothing here points at a real cloud.
        """
        out = {
            "FAILOVER_STRATEGY": str(self.strategy_path),
            "FAILOVER_LAB_URL": self.lab_url,
            "FAILOVER_MOTO_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": AWS_REGION,
            "AWS_REGION": AWS_REGION,
            "AWS_CONFIG_FILE": str(self.aws_config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_credentials_file),
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        if self.clouddns is not None:
            out["FAILOVER_CLOUDDNS_URL"] = self.clouddns.url
        if self.trafficmanager is not None:
            out["FAILOVER_TRAFFICMANAGER_URL"] = self.trafficmanager.url
            token_vars = lab_token_vars(self.loaded.strategy, self.trafficmanager.url) if self.loaded else []
            out.update({var: LAB_TOKEN for var in token_vars or ["AZURE_ACCESS_TOKEN"]})
        if self.zonalshift is not None:
            out["FAILOVER_ZONALSHIFT_URL"] = self.zonalshift.url
        if self.dns is not None:
            out["FAILOVER_LAB_DNS"] = self.dns_address
        return out

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: os.environ) without any variable of a real cloud (AWS_*, EC2_*,
        AZURE_*, GOOGLE_*, CLOUDSDK_*, GCLOUD_*), plus :meth:`env`."""
        source = dict(os.environ if base is None else base)
        kept = {k: v for k, v in source.items() if not k.upper().startswith(CLOUD_ENV_PREFIXES)}
        return {**kept, **self.env()}
