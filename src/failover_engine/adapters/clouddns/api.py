"""Cloud DNS API access: clients built lazily, bounded retries, errors mapped to CloudDnsError.

Record sets and changes go through google-api-python-client's dns v1 client, built from the
discovery document bundled with the library (``static_discovery=True``: no network for discovery);
the managed-zone lookup goes through google-cloud-dns. Both share one set of credentials:
``google.auth.default()`` unless the connection says ``credentials: anonymous`` (local emulators).

Timeouts come from the connection: ``connect_timeout`` for the TCP connection and TLS handshake,
``read_timeout`` for each answer (httplib2 has one socket timeout, so its connections set the
first while connecting and the second after; google-cloud-dns's requests session gets the pair).

A request whose answer was lost after it was sent (5xx, a reset connection, a read timeout) may
have been carried out: :meth:`CloudDnsApi.call` records it in ``last_lost``. That includes the
request httplib2 sends again on its own, once, when a kept-alive connection drops before the
status line (the connections count what they put on the wire). A reset is retried like a 5xx
(a change sent twice fails its own deletions, never applies twice); a read timeout is not.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Iterator

from failover_engine.core.errors import CloudDnsError
from failover_engine.core.model import CloudDnsConnection

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
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
    attempts the last call took (an answer after a retry may describe the retry, not the first try);
    ``last_lost`` says whether some attempt of the last call was sent and lost its answer.
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
        self.last_lost = False
        self._http: Any = None

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
            from googleapiclient.discovery import build

            self._http = _timed_http(self.connection.connect_timeout, self.connection.read_timeout)
            http = google_auth_httplib2.AuthorizedHttp(credentials, http=self._http)
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
            session = _timed_session(credentials, (self.connection.connect_timeout, self.connection.read_timeout))
            self._zones = dns.Client(project=self.project, credentials=credentials, client_options=options,
                                     _http=session)
        return self._zones

    # ------------------------------------------------------------------ one call, retried
    def call(self, op: str, resource: str, send: Callable[[], Any]) -> Any:
        """``send()`` with up to ``max_attempts`` attempts on 429/5xx and connection resets; any other
        failure raises a CloudDnsError naming the operation, the resource and the API's status and
        reason (``answer_lost`` on it: the request may have been carried out)."""
        attempts = self.connection.max_attempts
        self.last_lost = False
        for attempt in range(1, attempts + 1):
            self.calls += 1
            self.last_attempts = attempt
            sends = self._sends()
            try:
                return send()
            except CloudDnsError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised as is
                resent = self._sends() - sends > 1  # httplib2 sent it again: the first answer was lost
                parts = _error_parts(exc)
                if parts is None:
                    mapped = self._transport_error(op, resource, exc)
                    if mapped is exc:
                        raise
                    lost = resent or not getattr(exc, "failover_not_sent", False)
                    self.last_lost = self.last_lost or lost
                    if lost and mapped.code == "unreachable" and attempt < attempts:  # a reset: repeat
                        self._backoff(attempt)
                        continue
                    mapped.answer_lost = lost  # type: ignore[attr-defined]
                    raise mapped from None
                status, reason, message = parts
                self.last_lost = self.last_lost or resent or status >= 500
                if status in RETRYABLE_STATUS and attempt < attempts:
                    self._backoff(attempt)
                    continue
                err = self._error(op, resource, status, reason, message, attempt)
                err.answer_lost = resent or status >= 500  # type: ignore[attr-defined]
                raise err from None
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(20.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0))

    def _sends(self) -> int:
        return getattr(self._http, "sends", 0)

    def _transport_error(self, op: str, resource: str, exc: Exception) -> Exception:
        """A failure before any answer: unreachable endpoint, timeout, credentials not refreshable."""
        import httplib2
        import requests
        from google.auth.exceptions import RefreshError, TransportError

        if isinstance(exc, RefreshError):
            return CloudDnsError(f"{op}: the Google credentials could not be refreshed: {exc}", resource=resource,
                                 code="credentials")
        where = self.connection.endpoint_url or "dns.googleapis.com"
        timed_out = isinstance(exc, (TimeoutError, requests.exceptions.ReadTimeout))
        if timed_out and not getattr(exc, "failover_not_sent", False):
            return CloudDnsError(f"{op}: no answer from Cloud DNS at {where} within read_timeout "
                                 f"{self.connection.read_timeout:g}s", resource=resource, code="timeout")
        if isinstance(exc, (OSError, httplib2.HttpLib2Error, requests.exceptions.RequestException, TransportError)):
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
        tokens: set[str] = set()  # progress guard: a token given before would page forever
        while True:
            page = self.call("list record sets", resource, self.records.resourceRecordSets().list(**kw).execute)
            yield from page.get("rrsets", [])
            token = page.get("nextPageToken")
            if not token:
                return
            if token in tokens:
                raise CloudDnsError(f"list record sets: the page token did not advance ({str(token)[:40]!r} was "
                                    f"given before, after {len(tokens) + 1} page(s)); stopped rather than list "
                                    "the same record sets forever (a provider fault: try again later)",
                                    resource=resource, code="PagingStuck")
            tokens.add(token)
            kw["pageToken"] = token

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


def _timed_http(connect_timeout: float, read_timeout: float) -> Any:
    """An ``httplib2.Http`` whose connections wait ``connect_timeout`` to connect (TCP and TLS) and
    ``read_timeout`` for each answer, and count in ``sends`` every request they put on the wire.
    A connection that cannot be made marks its error ``failover_not_sent`` (nothing was sent)."""
    import urllib.parse

    import httplib2

    class TimedHttp(httplib2.Http):
        sends = 0

        def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None,
                    redirections: int = httplib2.DEFAULT_MAX_REDIRECTS, connection_type: Any = None,
                    **kwargs: Any) -> Any:
            scheme = urllib.parse.urlsplit(uri).scheme.lower()
            return super().request(uri, method, body, headers, redirections,
                                   connection_type or connections.get(scheme), **kwargs)

    http = TimedHttp(timeout=read_timeout)

    def timed(base: Any) -> Any:
        class Connection(base):  # type: ignore[misc, valid-type]
            def connect(self) -> None:
                self.timeout = connect_timeout
                try:
                    super().connect()
                except OSError as exc:
                    exc.failover_not_sent = True  # type: ignore[attr-defined]
                    raise
                finally:
                    self.timeout = read_timeout
                if self.sock is not None:
                    self.sock.settimeout(read_timeout)

            def request(self, *args: Any, **kwargs: Any) -> None:
                http.sends += 1
                super().request(*args, **kwargs)

        return Connection

    connections = {"http": timed(httplib2.HTTPConnectionWithTimeout),
                   "https": timed(httplib2.HTTPSConnectionWithTimeout)}
    return http


def _timed_session(credentials: Any, timeouts: tuple[float, float]) -> Any:
    """google-auth's requests session for google-cloud-dns, every request with (connect, read)
    timeouts (google-cloud-core passes its own 60 s otherwise)."""
    from google.auth.transport.requests import AuthorizedSession

    class TimedSession(AuthorizedSession):
        def request(self, method: str, url: str, data: Any = None, headers: Any = None, max_allowed_time: Any = None,
                    timeout: Any = None, **kwargs: Any) -> Any:
            return super().request(method, url, data=data, headers=headers, max_allowed_time=max_allowed_time,
                                   timeout=timeouts, **kwargs)

    return TimedSession(credentials)
