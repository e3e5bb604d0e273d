"""What every AWS adapter shares: the boto3 client and one owner for retries.

The SDK client makes one attempt (standard retry mode, ``total_max_attempts`` 1) with the
connection's ``connect_timeout`` and ``read_timeout``; :meth:`_call` retries throttling codes, 5xx
and unreadable answers with jittered, bounded backoff, counts every attempt in ``calls`` and maps
failures to the adapter's own error class with the operation, the resource and the provider's code.
An adapter sets the class attributes and, if it wants, overrides :meth:`_hint` to add what to do
about a given error.

A request whose answer was lost after it was sent (5xx, an unreadable answer, a read timeout, a
reset connection) may have been carried out. :meth:`_call` records that in ``last_lost`` (some
attempt of the last call lost its answer) and marks the error it raises with ``answer_lost``, so
that a writer can confirm by reading what happened. A connection reset after sending is retried
only when the caller says a repeat is safe (``retry_lost=True``: reads, compare-and-swap writes);
a read timeout is never repeated (a hung endpoint would cost ``max_attempts`` x ``read_timeout``).
"""
from __future__ import annotations

import random
from typing import Any, Callable, ClassVar

from failover_engine.core.errors import AdapterError


class AwsCalls:
    """Mixin. The adapter provides ``connection`` (endpoint_url, region, profile, max_attempts),
    ``_client`` (None or an injected client), ``_sleep`` and ``calls``."""

    aws_service: ClassVar[str]  # boto3 service name, e.g. "route53"
    aws_label: ClassVar[str]  # for messages, e.g. "Route 53"
    error_class: ClassVar[type[AdapterError]]
    retryable_codes: ClassVar[frozenset[str]] = frozenset({"Throttling", "ThrottlingException",
                                                           "RequestLimitExceeded"})

    connection: Any
    _client: Any
    _sleep: Callable[[float], None]
    calls: int
    last_attempts: int = 0  # attempts the last _call made
    last_lost: bool = False  # some attempt of the last _call was sent and lost its answer

    @property
    def client(self) -> Any:
        return self.client_for(self.aws_service)

    def client_for(self, service: str) -> Any:
        """The boto3 client of ``service`` (the adapter's own, or another such as "ec2"), built once.
        Injected clients: ``_client`` for the adapter's service, ``_other_clients[service]`` for others."""
        others: dict[str, Any] = self.__dict__.setdefault("_other_clients", {})
        current = self._client if service == self.aws_service else others.get(service)
        if current is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(profile_name=self.connection.profile)
            current = session.client(
                service,
                region_name=self.connection.region,
                endpoint_url=self.connection.endpoint_url,
                config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                              connect_timeout=self.connection.connect_timeout,
                              read_timeout=self.connection.read_timeout),
            )
            if service == self.aws_service:
                self._client = current
            else:
                others[service] = current
        return current

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(20.0, 0.2 * 2 ** attempt) * random.uniform(0.5, 1.0))

    def _hint(self, op: str, code: str, response: dict[str, Any]) -> str:
        """Extra text for an error (what to do); empty by default."""
        return ""

    def _call(self, op: str, resource: str | None = None, *, service: str | None = None,
              retry_lost: bool = False, **kwargs: Any) -> Any:
        """One API call (on ``service``, default the adapter's own) with bounded, jittered retries on
        throttling codes, 5xx and unreadable answers (and, with ``retry_lost``, on a connection reset
        after sending)."""
        from botocore.exceptions import (BotoCoreError, ClientError, HTTPClientError, NoCredentialsError,
                                         ReadTimeoutError)
        from botocore.parsers import ResponseParserError

        err = self.error_class
        attempts = self.connection.max_attempts
        self.last_lost = False
        for attempt in range(1, attempts + 1):
            self.calls += 1
            self.last_attempts = attempt
            try:
                return getattr(self.client_for(service or self.aws_service), op)(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                self.last_lost = self.last_lost or status >= 500
                if (code in self.retryable_codes or status >= 500) and attempt < attempts:
                    self._backoff(attempt)
                    continue
                msg = exc.response.get("Error", {}).get("Message", str(exc))
                raise _lost(err(f"{op} failed: {msg}{self._hint(op, code, exc.response)}",
                                resource=resource, code=code), status >= 500) from None
            except ResponseParserError as exc:  # a proxy's or server's 5xx page, not the API's answer
                self.last_lost = True
                if attempt < attempts:
                    self._backoff(attempt)
                    continue
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise _lost(err(f"{op} failed: unreadable answer after {attempts} attempt(s) ({first})",
                                resource=resource, code="BadResponse"), True) from None
            except NoCredentialsError:
                raise err(f"{op}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                          "AWS_SECRET_ACCESS_KEY, or give `profile` in the connection", resource=resource) from None
            except BotoCoreError as exc:
                where = self.connection.endpoint_url or "AWS"
                lost = isinstance(exc, HTTPClientError)  # sent, then a read timeout or a reset connection
                self.last_lost = self.last_lost or lost
                timed_out = isinstance(exc, ReadTimeoutError)  # not repeated: a hung server would cost N x
                if lost and retry_lost and not timed_out and attempt < attempts:
                    self._backoff(attempt)
                    continue
                if timed_out:
                    raise _lost(err(f"{op}: no answer from {self.aws_label} at {where} within read_timeout "
                                    f"{self.connection.read_timeout:g}s", resource=resource, code="ReadTimeout"),
                                True) from None
                raise _lost(err(f"{op}: cannot reach {self.aws_label} at {where}: {exc}", resource=resource,
                                code="Unreachable"), lost) from None
        raise AssertionError("unreachable")


def _lost(exc: AdapterError, lost: bool) -> AdapterError:
    """Mark whether the failed request's answer was lost after sending (it may have been carried out)."""
    exc.answer_lost = lost  # type: ignore[attr-defined]
    return exc
