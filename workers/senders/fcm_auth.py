"""FCM auth: the Google service-account credential and its OAuth2 access token.

The access token comes from the JWT-bearer grant (RFC 7523) against the
service account's own `token_uri`, is cached until 5 minutes before it expires,
and is shared by every concurrent send of the process: one exchange at a time.
The exchange is a form POST over the senders' HTTP/2 client (Google's token
endpoint speaks HTTP/2, as do the local mocks).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from workers.senders.clients import ClientPool, LoopLock
from workers.senders.errors import CredentialError, OAuthError
from workers.senders.h2client import H2Client, TransportError
from workers.senders.private_keys import load_private_key
from workers.senders.wire import json_object, retry_after

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
EARLY_REFRESH = 300  # seconds before `expires_in` runs out
FAILURE_HOLD = 5.0  # an exchange that just failed is not retried by every waiting stream


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, the key its client is kept under."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def validate_fcm_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """Check a Google service-account JSON and return it (a copy, with trimmed fields)."""
    if not isinstance(credential, dict):
        raise CredentialError("FCM credential must be the service account JSON object")
    if credential.get("type") != "service_account":
        raise CredentialError("FCM credential must be a service account key ('type': 'service_account')")
    normalized = dict(credential)
    for name in ("project_id", "private_key", "client_email", "token_uri"):
        value = credential.get(name)
        if not isinstance(value, str) or not value.strip():
            raise CredentialError(f"FCM service account JSON needs a non-empty string {name!r}")
        normalized[name] = value.strip()
    if "@" not in normalized["client_email"]:
        raise CredentialError("FCM client_email must be the service account's email address")
    try:
        origin_of(normalized["token_uri"])
    except ValueError:
        raise CredentialError("FCM token_uri must be an http(s) URL") from None
    load_private_key(normalized["private_key"], expected=rsa.RSAPrivateKey, what="the service account's RSA key")
    return normalized


class AccessToken:
    """The cached OAuth2 access token of one service account."""

    def __init__(
        self, credential: dict[str, Any], clients: ClientPool[str, H2Client], clock: Callable[[], float] = time.time
    ) -> None:
        self.clock = clock
        self._email: str = credential["client_email"]
        self._token_uri: str = credential["token_uri"]
        self._key_id: str | None = credential.get("private_key_id")
        self._key = load_private_key(credential["private_key"], expected=rsa.RSAPrivateKey, what="an RSA key")
        self._clients = clients
        self._lock = LoopLock()
        self._token = ""
        self._expires_at = 0.0
        self._failure: tuple[float, OAuthError] | None = None
        self.exchanges = 0  # how many exchanges were attempted, for logs and tests

    def __repr__(self) -> str:
        return f"<AccessToken for {self._email!r}>"

    async def get(self) -> str:
        """A valid access token, exchanging a new one when the cached one is near expiry."""
        if self._token and self.clock() < self._expires_at:
            return self._token
        async with self._lock.get():
            if not (self._token and self.clock() < self._expires_at):
                await self._exchange()
            return self._token

    async def refresh(self, stale: str) -> str:
        """Replace `stale` after FCM answered 401; a no-op if another stream already did."""
        async with self._lock.get():
            if self._token == stale:
                await self._exchange()
            return self._token

    async def _exchange(self) -> None:
        if self._failure and self.clock() - self._failure[0] < FAILURE_HOLD:
            raise self._failure[1]
        self.exchanges += 1
        try:
            self._token, lifetime = await self._request_token()
        except OAuthError as exc:
            self._failure = (self.clock(), exc)
            raise
        self._failure = None
        self._expires_at = self.clock() + max(lifetime - EARLY_REFRESH, lifetime / 2)

    async def _request_token(self) -> tuple[str, float]:
        now = int(self.clock())
        claims = {
            "iss": self._email, "scope": SCOPE, "aud": self._token_uri, "iat": now, "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        parts = urlsplit(self._token_uri)
        client = self._clients.get(origin_of(self._token_uri))
        form = urlencode({"grant_type": GRANT_TYPE, "assertion": assertion}).encode()
        try:
            response = await client.post(
                (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                content=form, headers={"content-type": "application/x-www-form-urlencoded"},
            )
        except TransportError:
            raise OAuthError("fcm:oauth:TransportError", temporary=True) from None
        body = json_object(response.content) or {}
        status = response.status_code
        if status != 200:
            error = body.get("error")
            code = error if isinstance(error, str) and error.isprintable() and len(error) < 64 else "unreadable"
            temporary = status == 429 or status >= 500
            wait = retry_after(response.headers.get("retry-after"))
            raise OAuthError(f"fcm:oauth:{status}:{code}", temporary=temporary, retry_after=wait)
        token, expires_in = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
            raise OAuthError("fcm:oauth:200:unreadable", temporary=True)
        return token, float(expires_in)
