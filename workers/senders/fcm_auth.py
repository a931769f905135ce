"""FCM auth: the Google service-account credential and its OAuth2 access token.

The access token comes from the JWT-bearer grant (RFC 7523) against the
service account's own `token_uri`, is cached until 5 minutes before it expires,
and is shared by every concurrent send of the process: one exchange at a time.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from workers.senders.base import CredentialError, SenderError
from workers.senders.keys import load_private_key
from workers.senders.transport import ClientPool, LoopLock, json_object, origin_of, retry_after

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
EARLY_REFRESH = 300  # seconds before `expires_in` runs out
FAILURE_HOLD = 5.0  # an exchange that just failed is not retried by every waiting stream


class OAuthError(SenderError):
    """The token exchange failed; `temporary` says whether a later try may work."""

    def __init__(self, reason: str, *, temporary: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.retry_after = retry_after


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
        self, credential: dict[str, Any], clients: ClientPool, clock: Callable[[], float] = time.time
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
        claims = {"iss": self._email, "scope": SCOPE, "aud": self._token_uri, "iat": now, "exp": now + ASSERTION_LIFETIME}
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        client = self._clients.httpx(origin_of(self._token_uri))
        try:
            response = await client.post(self._token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion})
        except httpx.HTTPError as exc:
            raise OAuthError(f"fcm:oauth:{type(exc).__name__}", temporary=True) from None
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
