"""Confirmation tokens for the two-step trigger: bound to one plan, expiring, single use.

A token is ``base64url(payload).base64url(hmac-sha256)``, signed with a key that lives only in
the server process (a restart invalidates every token). The payload names the condition it was
issued for and the fingerprint of each service's plan; the playbook run refuses a plan whose
fingerprint changed since (the state changed: the token is stale). Nothing in a token is secret,
but nobody without the key can make or alter one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any


class TokenRefused(Exception):
    """Why a token cannot be used (forged, expired, used, issued for something else)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: this condition, these plans."""

    condition: dict[str, Any]
    plans: dict[str, str]  # service -> plan fingerprint
    expires: float
    nonce: str


class TokenBook:
    def __init__(self, ttl: float = 300.0, *, key: bytes | None = None, clock=time.time):
        self.ttl = ttl
        self._key = key or secrets.token_bytes(32)
        self._clock = clock
        self._used: dict[str, float] = {}  # nonce -> expiry (forgotten once expired)
        self._lock = threading.Lock()

    def issue(self, condition: dict[str, Any], plans: dict[str, str]) -> tuple[str, float]:
        expires = self._clock() + self.ttl
        payload = {"c": condition, "p": plans, "e": round(expires, 3), "n": secrets.token_hex(8)}
        body = _b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}", expires

    def redeem(self, token: str, condition: dict[str, Any]) -> Grant:
        """Check and consume ``token`` for ``condition``; raises TokenRefused saying why."""
        grant = self.peek(token, condition)
        with self._lock:
            now = self._clock()
            self._used = {n: e for n, e in self._used.items() if e > now}
            if grant.nonce in self._used:
                raise TokenRefused("this confirmation token was already used: trigger again for a new plan")
            self._used[grant.nonce] = grant.expires
        return grant

    def peek(self, token: str, condition: dict[str, Any]) -> Grant:
        """Check ``token`` without consuming it."""
        body, _sep, sig = (token or "").strip().partition(".")
        if not body or not sig or not hmac.compare_digest(sig, self._sign(body)):
            raise TokenRefused("the confirmation token is not one this server issued (forged, altered or from "
                               "another server process): trigger a dry run first")
        try:
            payload = json.loads(_unb64(body))
        except ValueError:  # cannot happen for a signed token, kept for safety
            raise TokenRefused("the confirmation token is malformed") from None
        if payload["c"] != condition:
            raise TokenRefused("the confirmation token was issued for another condition "
                               f"({_describe(payload['c'])}), not for {_describe(condition)}")
        if self._clock() > payload["e"]:
            raise TokenRefused(f"the confirmation token expired {self._clock() - payload['e']:.0f}s ago "
                               f"(tokens live {self.ttl:.0f}s): trigger a dry run again")
        return Grant(payload["c"], payload["p"], payload["e"], payload["n"])

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def _describe(condition: dict[str, Any]) -> str:
    what = f"service {condition.get('service')}" if condition.get("service") else f"region {condition.get('region')}"
    return f"{condition.get('action', 'failover')} of {what}" + (f" to {condition['target']}" if condition.get("target") else "")
