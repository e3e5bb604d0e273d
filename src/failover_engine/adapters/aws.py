"""What every AWS adapter shares: the boto3 client and one owner for retries.

The SDK client makes one attempt (standard retry mode, ``total_max_attempts`` 1); :meth:`_call`
retries throttling codes, 5xx and unreadable answers with jittered, bounded backoff, counts every
attempt in ``calls`` and maps failures to the adapter's own error class with the operation,
the resource and the provider's code. An adapter sets the class attributes and, if it wants,
overrides :meth:`_hint` to add what to do about a given error.
"""
from __future__ import annotations

import random
from typing import Any, Callable, ClassVar

from ..errors import AdapterError


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
                config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
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

    def _call(self, op: str, resource: str | None = None, *, service: str | None = None, **kwargs: Any) -> Any:
        """One API call (on ``service``, default the adapter's own) with bounded, jittered retries on
        throttling codes, 5xx and unreadable answers."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
        from botocore.parsers import ResponseParserError

        err = self.error_class
        attempts = self.connection.max_attempts
        for attempt in range(1, attempts + 1):
            self.calls += 1
            try:
                return getattr(self.client_for(service or self.aws_service), op)(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if (code in self.retryable_codes or status >= 500) and attempt < attempts:
                    self._backoff(attempt)
                    continue
                msg = exc.response.get("Error", {}).get("Message", str(exc))
                raise err(f"{op} failed: {msg}{self._hint(op, code, exc.response)}",
                          resource=resource, code=code) from None
            except ResponseParserError as exc:  # a proxy's or server's 5xx page, not the API's answer
                if attempt < attempts:
                    self._backoff(attempt)
                    continue
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise err(f"{op} failed: unreadable answer after {attempts} attempt(s) ({first})",
                          resource=resource, code="BadResponse") from None
            except NoCredentialsError:
                raise err(f"{op}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                          "AWS_SECRET_ACCESS_KEY, or give `profile` in the connection", resource=resource) from None
            except BotoCoreError as exc:
                where = self.connection.endpoint_url or "AWS"
                raise err(f"{op}: cannot reach {self.aws_label} at {where}: {exc}", resource=resource,
                          code="Unreachable") from None
        raise AssertionError("unreachable")
