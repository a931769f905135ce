"""Browsers' Web Push subscriptions, as a Beams web device's token holds them.

The Beams Web SDK registers ``btoa(JSON.stringify(pushSubscription))``: the
standard base64 of ``{"endpoint": "https://...", "expirationTime": null,
"keys": {"p256dh": "<base64url>", "auth": "<base64url>"}}``. The token stays
the device's identity (the same subscription registered again is the same
device); the sender decodes it for what it needs: the endpoint to POST to,
the browser's P-256 public key and its 16-byte auth secret (RFC 8291).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from pushlite import url_guard

# The push services of the major browsers: Chrome and other Chromium browsers
# (FCM; android.googleapis.com for subscriptions made before FCM), Firefox
# (Mozilla autopush), Safari (Apple: web.push.apple.com) and Edge (WNS:
# wns2-<region>.notify.windows.com).
DEFAULT_ENDPOINT_ALLOWLIST = (
    "https://fcm.googleapis.com/*, https://android.googleapis.com/*, "
    "https://updates.push.services.mozilla.com/*, https://*.push.apple.com/*, https://*.notify.windows.com/*"
)
MAX_TOKEN_LENGTH = 4096


class InvalidSubscription(ValueError):
    """A token that is not a usable push subscription; the message says why."""


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: bytes  # the browser's public key: a 65-byte uncompressed P-256 point
    auth: bytes  # the browser's 16-byte auth secret

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.p256dh)


def b64decode(value: str) -> bytes:
    """Standard or URL-safe base64, padded or not (browsers and SDKs differ)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of keys in Web Push (and of VAPID keys)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key(keys: dict, name: str, size: int, what: str) -> bytes:
    value = keys.get(name)
    try:
        raw = b64decode(value) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise InvalidSubscription(f"keys.{name} must be {what} in base64url.")
    return raw


def decode(token: str) -> Subscription:
    """The subscription a token holds; InvalidSubscription when it holds none."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidSubscription(f"The token must be a string of 1-{MAX_TOKEN_LENGTH} characters.")
    try:
        value = json.loads(b64decode(token))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise InvalidSubscription("The token must be the base64 of a push subscription's JSON.")
    endpoint = value.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith("https://"):
        raise InvalidSubscription("The subscription's endpoint must be an https URL.")
    keys = value.get("keys")
    if not isinstance(keys, dict):
        raise InvalidSubscription("The subscription has no keys (p256dh and auth).")
    p256dh = _key(keys, "p256dh", 65, "a 65-byte uncompressed P-256 public key")
    auth = _key(keys, "auth", 16, "a 16-byte secret")
    subscription = Subscription(endpoint, p256dh, auth)
    try:
        subscription.public_key()
    except ValueError:
        raise InvalidSubscription("keys.p256dh is not a point on the P-256 curve.") from None
    return subscription


def check(token: str, allowlist: str) -> Subscription:
    """The subscription, if its endpoint may be called: the endpoint allowlist
    and public addresses only (``pushlite.url_guard``), as for delivery."""
    subscription = decode(token)
    try:
        url_guard.allowed(subscription.endpoint, allowlist)
    except url_guard.UnsafeURL as exc:
        raise InvalidSubscription(f"The subscription's endpoint is refused: {exc}") from None
    return subscription
