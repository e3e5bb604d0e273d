"""Cloud DNS API access: clients built lazily, bounded retries, errors mapped to CloudDnsError.

Record sets and changes go through google-api-python-client's dns v1 client, built from the
discovery document bundled with the library (``static_discovery=True``: no network for discovery);
the managed-zone lookup goes through google-cloud-dns. Both share one set of credentials:
``google.auth.default()`` unless the connection says ``credentials: anonymous`` (local emulators).
"""
from __future__ import annotations

import random
from typing import Any, Callable, Iterator

from ...errors import CloudDnsError
from ...model import CloudDnsConnection

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
HTTP_TIMEOUT = 30.0  # seconds per request
SCOPES = ["https://www.googleapis.com/auth/ndev.clouddns.readwrite"]
PAGE_SIZE = 500


def _error_parts(exc: BaseException) -> tuple[int, str, str] | None:
    """(HTTP status, reason, message) of an API error answer from either client; None otherwise."""
    from google.api_core.exceptions import GoogleAPICallError
    from googleapiclient.errors import HttpError

    if isinstance(exc, HttpError):
        details = exc.error_details if isinstance(exc.error_details, list) else []
        reason = next((d.get("reason", "") for d in details if isinstance(d, dict)), "")
        return int(exc.resp.status), reason, exc.reason or str(exc)
    if isinstance(exc, GoogleAPICallError):
        errors = [e for e in (exc.errors or []) if isinstance(e, dict)]
        reason = errors[0].get("reason", "") if errors else ""
        message = errors[0].get("message", "") if errors else ""
        return int(exc.code or 0), reason, message or exc.message
    return None


def _require_sdk() -> None:
    try:
        import google.auth  # noqa: F401
        import google.cloud.dns  # noqa: F401
        import googleapiclient  # noqa: F401
    except ImportError as exc:
        raise CloudDnsError(f"the Cloud DNS adapter needs the Google SDKs ({exc.name} is missing): "
                            "pip install 'failover-engine[gcp]'") from None


class CloudDnsApi:
    """The calls the adapter makes, each with bounded, jittered retries on 429 and 5xx.

    ``calls`` counts every request sent (retries included); ``last_attempts`` is how many
    attempts the last call took (an answer after a retry may describe the retry, not the first try).
    """

    def __init__(self, connection: CloudDnsConnection, *, sleep: Callable[[float], None]):
        self.connection = connection
        self._sleep = sleep
        self._project: str | None = connection.project or None
        self._credentials: Any = None
        self._records: Any = None
        self._zones: Any = None
        self.calls = 0
        self.last_attempts = 0

    # ------------------------------------------------------------------ credentials and clients
    def _auth(self) -> Any:
        if self._credentials is None:
            _require_sdk()
            if self.connection.credentials == "anonymous":
                from google.auth.credentials import AnonymousCredentials

                self._credentials = AnonymousCredentials()
            else:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError

                try:
                    self._credentials, found_project = google.auth.default(scopes=SCOPES)
                except DefaultCredentialsError as exc:
                    raise CloudDnsError(
                        "no Google credentials found: run `gcloud auth application-default login` or set "
                        "GOOGLE_APPLICATION_CREDENTIALS (for a local emulator, give `credentials: anonymous` "
                        f"in the connection): {exc}") from None
                self._project = self._project or found_project
        return self._credentials

    @property
    def project(self) -> str:
        if not self._project:
            self._auth()
        if not self._project:
            raise CloudDnsError("no Google Cloud project: give `project` in the clouddns connection")
        return self._project

    def _endpoint(self) -> str | None:
        url = self.connection.endpoint_url
        return url.rstrip("/") if url else None

    @property
    def records(self) -> Any:
        """google-api-python-client's dns v1 service (record sets and changes)."""
        if self._records is None:
            credentials = self._auth()
            import google_auth_httplib2
            import httplib2
            from googleapiclient.discovery import build

            http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=HTTP_TIMEOUT))
            options = {"api_endpoint": self._endpoint() + "/"} if self._endpoint() else None
            self._records = build("dns", "v1", http=http, static_discovery=True, cache_discovery=False,
                                  client_options=options)
        return self._records

    @property
    def zones(self) -> Any:
        """google-cloud-dns's client (managed zones)."""
        if self._zones is None:
            credentials = self._auth()
            from google.cloud import dns

            options = {"api_endpoint": self._endpoint()} if self._endpoint() else None
            self._zones = dns.Client(project=self.project, credentials=credentials, client_options=options)
        return self._zones

    # ------------------------------------------------------------------ one call, retried
    def call(self, op: str, resource: str, send: Callable[[], Any]) -> Any:
        """``send()`` with up to ``max_attempts`` attempts on 429/5xx; any other failure raises
        a CloudDnsError naming the operation, the resource and the API's status and reason."""
        attempts = self.connection.max_attempts
        for attempt in range(1, attempts + 1):
            self.calls += 1
            self.last_attempts = attempt
            try:
                return send()
            except CloudDnsError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised as is
                parts = _error_parts(exc)
                if parts is None:
                    mapped = self._transport_error(op, resource, exc)
                    if mapped is exc:
                        raise
                    raise mapped from None
                status, reason, message = parts
                if status in RETRYABLE_STATUS and attempt < attempts:
                    self._sleep(min(20.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0))
                    continue
                raise self._error(op, resource, status, reason, message, attempt) from None
        raise AssertionError("unreachable")

    def _transport_error(self, op: str, resource: str, exc: Exception) -> Exception:
        """A failure before any answer: unreachable endpoint, timeout, credentials not refreshable."""
        import httplib2
        import requests
        from google.auth.exceptions import RefreshError, TransportError

        if isinstance(exc, RefreshError):
            return CloudDnsError(f"{op}: the Google credentials could not be refreshed: {exc}", resource=resource,
                                 code="credentials")
        if isinstance(exc, (OSError, httplib2.HttpLib2Error, requests.exceptions.RequestException, TransportError)):
            where = self.connection.endpoint_url or "dns.googleapis.com"
            return CloudDnsError(f"{op}: cannot reach Cloud DNS at {where}: {exc}", resource=resource,
                                 code="unreachable")
        return exc

    def _error(self, op: str, resource: str, status: int, reason: str, message: str, attempts: int) -> CloudDnsError:
        code = f"{status} {reason}".strip()
        if status == 404 and "managedZone" in message:
            zone = resource.split("/")[0]
            text = (f"managed zone {zone!r} not found in project {self.project!r}: check `managed_zone` (the zone's "
                    "name, not its DNS name) and the connection's `project`")
        elif status == 412:
            text = (f"{op}: the record set changed since it was read (a deletion must match it exactly); "
                    "nothing was changed: re-plan and retry")
        elif status == 409:
            text = f"{op}: a record set to add already exists (created since it was read); nothing was changed: re-plan"
        elif status == 404 and "deletions" in message:
            text = (f"{op}: a record set to replace no longer exists (deleted since it was read); "
                    "nothing was changed: re-plan")
        elif status in (401, 403):
            text = (f"{op}: permission denied in project {self.project!r}: the credentials need roles/dns.admin "
                    f"(dns.changes.create, dns.resourceRecordSets.list): {message}")
        elif status in RETRYABLE_STATUS:
            text = f"{op} failed after {attempts} attempt(s): {message}"
        else:
            text = f"{op} refused: {message}"
        err = CloudDnsError(text, resource=resource, code=code)
        err.status = status  # type: ignore[attr-defined]
        return err

    # ------------------------------------------------------------------ operations
    def list_rrsets(self, zone: str, name: str | None = None, rtype: str | None = None) -> Iterator[dict[str, Any]]:
        """Record sets of ``zone`` (filtered by name and type when given), page after page."""
        kw: dict[str, Any] = {"project": self.project, "managedZone": zone, "maxResults": PAGE_SIZE}
        if name:
            kw["name"] = name
        if rtype:
            kw["type"] = rtype
        resource = f"{zone}/{name}/{rtype}" if name else zone
        while True:
            page = self.call("list record sets", resource, self.records.resourceRecordSets().list(**kw).execute)
            yield from page.get("rrsets", [])
            if not page.get("nextPageToken"):
                return
            kw["pageToken"] = page["nextPageToken"]

    def create_change(self, zone: str, body: dict[str, Any]) -> dict[str, Any]:
        request = self.records.changes().create(project=self.project, managedZone=zone, body=body)
        return self.call("create change", zone, request.execute)

    def get_change(self, zone: str, change_id: str) -> dict[str, Any]:
        request = self.records.changes().get(project=self.project, managedZone=zone, changeId=change_id)
        return self.call("get change", zone, request.execute)

    def zone_dns_name(self, zone: str) -> str:
        """The DNS name of a managed zone (google-cloud-dns ``ManagedZone.reload``)."""
        managed = self.zones.zone(zone)
        self.call("get managed zone", zone, managed.reload)
        return managed.dns_name
