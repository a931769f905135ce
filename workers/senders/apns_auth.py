"""APNs token-based auth: the .p8 credential and the ES256 provider token.

Apple wants the provider token refreshed no more often than every 20 minutes
and no less often than every 60 (it answers `TooManyProviderTokenUpdates` and
`ExpiredProviderToken` otherwise), so one token is reused for 40 minutes.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workers.senders.errors import CredentialError
from workers.senders.private_keys import load_private_key

TOKEN_LIFETIME = 40 * 60  # seconds
ENVIRONMENTS = {"production": "production", "development": "development", "sandbox": "development"}
_APPLE_ID = re.compile(r"[A-Za-z0-9]{10}")


def _text(credential: dict[str, Any], name: str) -> str:
    value = credential.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CredentialError(f"APNs credential needs a non-empty string {name!r}")
    return value.strip()


def validate_apns_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """Check an APNs token credential and return it normalized.

    `{"key_id", "team_id", "private_key" (.p8 PEM, EC P-256), "topic",
    "environment": "production" | "development"}`; environment defaults to
    production, and "sandbox" is read as "development".
    """
    if not isinstance(credential, dict):
        raise CredentialError("APNs credential must be a JSON object")
    key_id, team_id = _text(credential, "key_id"), _text(credential, "team_id")
    for name, value in (("key_id", key_id), ("team_id", team_id)):
        if not _APPLE_ID.fullmatch(value):
            raise CredentialError(f"APNs {name} must be 10 letters or digits (as shown in the Apple developer account)")
    topic = _text(credential, "topic")
    if any(c.isspace() for c in topic):
        raise CredentialError("APNs topic (the app's bundle id) must not contain spaces")
    environment = credential.get("environment") or "production"
    if environment not in ENVIRONMENTS:
        raise CredentialError("APNs environment must be 'production' or 'development'")
    private_key = _text(credential, "private_key")
    key = load_private_key(private_key, expected=ec.EllipticCurvePrivateKey, what="an APNs .p8 EC P-256 key")
    if not isinstance(key.curve, ec.SECP256R1):
        raise CredentialError("private_key must be an EC P-256 key (an APNs .p8 key)")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "key_id": key_id,
        "team_id": team_id,
        "private_key": pem,
        "topic": topic,
        "environment": ENVIRONMENTS[environment],
    }


class ProviderToken:
    """The `authorization: bearer` JWT for APNs, made once and reused for `TOKEN_LIFETIME`."""

    def __init__(
        self, key_id: str, team_id: str, private_key: ec.EllipticCurvePrivateKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self._key_id = key_id
        self._team_id = team_id
        self._key = private_key
        self._token = ""
        self._issued_at = 0.0

    def __repr__(self) -> str:
        return f"<ProviderToken kid={self._key_id!r} iss={self._team_id!r}>"

    @property
    def value(self) -> str:
        """The current token, regenerated once it is `TOKEN_LIFETIME` old."""
        if not self._token or self.clock() - self._issued_at >= TOKEN_LIFETIME:
            self._generate()
        return self._token

    def refresh(self, stale: str) -> str:
        """Replace `stale` after APNs called it expired; a no-op if already replaced.

        Many streams of one batch can report the same expired token; only the
        first report makes a new one (APNs punishes rapid token changes).
        """
        if self._token == stale:
            self._generate()
        return self._token

    def _generate(self) -> None:
        now = self.clock()
        claims = {"iss": self._team_id, "iat": int(now)}
        self._token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._key_id})
        self._issued_at = now
