"""Device sync tokens: ``<account>.<timestamp>.<signature>``, like Discord's.

A sync token lets a phone signed in to several accounts register its push
token for each of them from one session. It is an itsdangerous timestamp
signature, keyed with the instance's secret key and a salt naming its purpose,
over the instance id and the user id; it is valid for 30 days and checked
without storage. Rotating the instance's secret key invalidates every token.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

from itsdangerous import BadSignature, TimestampSigner

SALT = "pushlite.discord.device-sync-token"
MAX_AGE_SECONDS = 30 * 24 * 3600

Clock = Callable[[], float]


class _Signer(TimestampSigner):
    """A timestamp signer with a clock the caller chooses (tests freeze it)."""

    def __init__(self, secret_key: str, now: Clock) -> None:
        super().__init__(secret_key, salt=SALT, digest_method=hashlib.sha256)
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now())


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode(value: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def issue(instance_id: str, secret_key: str, user_id: str, now: Clock = time.time) -> str:
    """A sync token naming the instance and the user."""
    return _Signer(secret_key, now).sign(_encode(f"{instance_id}\n{user_id}")).decode()


def verify(token: object, instance_id: str, secret_key: str, now: Clock = time.time) -> str | None:
    """The user id a sync token names, or None when it is not a token of this
    instance, was tampered with, or is older than 30 days (or from the future)."""
    if not isinstance(token, str) or not token.isascii():
        return None
    signer = _Signer(secret_key, now)
    try:
        payload = signer.unsign(token, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    # Base64 leaves spare bits in the signature's last character: accept only
    # the one spelling pushlite issues, so a changed token is never valid.
    signed, signature = token.rsplit(".", 1)
    if not hmac.compare_digest(signer.get_signature(signed).decode(), signature):
        return None
    named = _decode(payload.decode())
    if named is None or "\n" not in named:
        return None
    token_instance, user_id = named.split("\n", 1)
    if token_instance != instance_id or not user_id:
        return None
    return user_id
