"""Web Push sender: browsers, through their push services (RFC 8030).

A web device's token is a browser's push subscription (`pushlite.subscriptions`).
Each notification is one ``POST <endpoint>`` carrying:

- the message the browser's service worker reads (``{"notification", "data"}``,
  `pushlite.payloads.web_message`), encrypted for that browser with
  ``aes128gcm`` (RFC 8291: a fresh ECDH key pair and salt per message; the
  encryption itself is `http_ece`'s);
- ``Authorization: vapid t=<JWT>, k=<public key>`` (RFC 8292): an ES256 JWT
  signed with the instance's VAPID key, ``aud`` the endpoint's origin, ``sub``
  ``PUSHLITE_VAPID_SUBJECT``, valid 12 hours and reused until one is left;
- ``TTL`` (the payload's ``time_to_live``, default four weeks) and
  ``Urgency`` (its ``urgency``, default ``high``: each push shows a notification).

Connections: push services speak HTTP/2 (FCM, Mozilla's autopush, Apple's),
so requests go over `h2client.H2Client`, the HTTP/2 client the APNs and FCM
senders use in production: one connection per push service (origin and
checked address) for the life of the sender, each request a stream on it. A
service whose TLS handshake does not choose HTTP/2 is remembered and spoken
to with httpx over HTTP/1.1 keep-alive connections (httpx only as an HTTP/1.1
client here, never a second HTTP/2 one).

Endpoints are checked again before each batch (`pushlite.url_guard` with
``PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST``: the allowlist, and public addresses
for hosts it does not name), each host resolved once per batch, and the
connection goes to the address that was checked.

Answers: 2xx delivered; 404 and 410 mean the subscription is gone (dead: the
device is removed everywhere); 429 and 5xx are temporary (retried, never
before a ``Retry-After``); 413 fails the device (payload too large); any other
fails it with its status (a 401/403 is the push service refusing the VAPID
key, e.g. for a browser subscribed with a key the instance has since rotated).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from pushlite import payloads, subscriptions, url_guard
from pushlite.storage.vapid import public_key_of
from workers.senders.base import HTTPSender, Outcome, SenderSettings, Target
from workers.senders.clients import ClientPool, Http1Client
from workers.senders.errors import CredentialError
from workers.senders.h2client import H2Client, NoHTTP2
from workers.senders.private_keys import load_private_key
from workers.senders.wire import dumps

log = logging.getLogger(__name__)

JWT_LIFETIME = 12 * 3600  # RFC 8292 allows 24 hours
JWT_RENEW_BEFORE = 3600
MAX_CLIENTS = 64
DELIVERED = frozenset({200, 201, 202})
GONE = frozenset({404, 410})


class Vapid:
    """The instance's VAPID key and the JWTs made with it, one per push service origin."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, public_key: str, subject: str) -> None:
        self._key = private_key
        self.public_key = public_key
        self.subject = subject
        self._headers: dict[str, tuple[str, int]] = {}

    def authorization(self, audience: str) -> str:
        """The Authorization header value for requests to ``audience`` (an origin)."""
        now = time.time()
        cached = self._headers.get(audience)
        if cached is not None and cached[1] - now > JWT_RENEW_BEFORE:
            return cached[0]
        expires = int(now) + JWT_LIFETIME
        claims: dict[str, Any] = {"aud": audience, "exp": expires}
        if self.subject:
            claims["sub"] = self.subject
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})
        header = f"vapid t={token}, k={self.public_key}"
        self._headers[audience] = (header, expires)
        return header


@functools.lru_cache(maxsize=16384)
def decoded(token: str) -> tuple[subscriptions.Subscription, ec.EllipticCurvePublicKey]:
    """A web device's subscription and the browser's key, decoded once per
    process (tokens come back with every publish; a token never changes)."""
    subscription = subscriptions.decode(token)
    return subscription, subscription.public_key()


def encrypt(message: bytes, browser_key: ec.EllipticCurvePublicKey, auth: bytes) -> bytes:
    """The aes128gcm body of one message for one browser (RFC 8291)."""
    return http_ece.encrypt(
        message,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=browser_key,
        auth_secret=auth,
        version="aes128gcm",
    )


@dataclass(frozen=True, slots=True)
class Route:
    """One target's request: where it goes, and what it carries before encryption."""

    target: Target
    browser_key: ec.EllipticCurvePublicKey
    auth: bytes
    origin: str  # scheme://host[:port], the JWT's audience
    address: str  # the checked address to connect to
    path: str
    message: bytes
    headers: Mapping[str, str]


def classify(status: int) -> str:
    if status in DELIVERED:
        return "delivered"
    if status in GONE:
        return "dead"
    if status == 429 or status >= 500:
        return "retry"
    return "failed"


class WebPushSender(HTTPSender[Route]):
    """Sends one notification to many browsers, with the instance's VAPID key."""

    provider = "web"

    def __init__(self, credential: dict[str, Any], settings: SenderSettings) -> None:
        super().__init__(credential, settings)
        self.vapid = Vapid(credential["key"], credential["public_key"], settings.vapid_subject)
        self.allowlist = settings.webpush_endpoint_allowlist
        # By (origin, checked address, whether the origin speaks only HTTP/1.1).
        self._clients: ClientPool[tuple[str, str, bool], H2Client | Http1Client] = ClientPool(
            self._new_client, limit=MAX_CLIENTS
        )
        self._http1_origins: set[str] = set()

    @classmethod
    def validate_credential(cls, credential: dict[str, Any]) -> dict[str, Any]:
        """The stored VAPID pair (`pushlite.storage.vapid`), with its key loaded."""
        private_key, public_key = credential.get("private_key"), credential.get("public_key")
        if not isinstance(private_key, str) or not isinstance(public_key, str):
            raise CredentialError("a VAPID credential has a private_key (PEM) and a public_key")
        key = load_private_key(private_key, expected=ec.EllipticCurvePrivateKey, what="a P-256 key")
        if not isinstance(key.curve, ec.SECP256R1):
            raise CredentialError("the VAPID private_key is not a P-256 key")
        if public_key != public_key_of(key):
            raise CredentialError("the VAPID public_key is not the private_key's")
        return {"key": key, "public_key": public_key}

    async def requests(self, targets: Sequence[Target], payload: dict[str, Any], outcome: Outcome) -> list[Route]:
        message = dumps(payloads.web_message(payload))
        headers = {
            "ttl": str(payload.get("time_to_live", payloads.WEB_MAX_TTL)),
            "urgency": payload.get("urgency", "high"),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
        }
        return await asyncio.to_thread(self._routes, targets, message, headers, outcome)

    @staticmethod
    def device_ids(request: Route) -> list[str]:
        return [request.target.device_id]

    def _routes(
        self, targets: Sequence[Target], message: bytes, headers: Mapping[str, str], outcome: Outcome
    ) -> list[Route]:
        """Decode and check each target's subscription (in a thread: it may
        resolve host names, each once). Targets that cannot be sent to fail."""
        resolved: dict[tuple[str, int], list[tuple[Any, ...]]] = {}

        def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
            if (host, port) not in resolved:
                resolved[host, port] = socket.getaddrinfo(host, port, **kwargs)
            return resolved[host, port]

        routes = []
        for target in targets:
            try:
                subscription, browser_key = decoded(target.token)
            except subscriptions.InvalidSubscription:
                outcome.failed.append((target.device_id, "web:invalid-subscription"))
                continue
            try:
                destination = url_guard.check(subscription.endpoint, self.allowlist, resolve)
            except url_guard.UnsafeURL as exc:
                log.warning("web: refusing the endpoint of device %s: %s", target.device_id, exc)
                outcome.failed.append((target.device_id, "web:unsafe-endpoint"))
                continue
            origin = f"{destination.scheme}://{destination.authority}"
            routes.append(Route(target, browser_key, subscription.auth, origin, destination.addresses[0],
                                destination.target, message, headers))
        return routes

    async def post(self, request: Route, outcome: Outcome) -> None:
        device_id = request.target.device_id
        body = encrypt(request.message, request.browser_key, request.auth)
        headers = {**request.headers, "authorization": self.vapid.authorization(request.origin)}
        try:
            response = await outcome.timed(self._client(request).post(request.path, content=body, headers=headers))
        except NoHTTP2:
            self._http1_origins.add(request.origin)
            response = await outcome.timed(self._client(request).post(request.path, content=body, headers=headers))
        kind = classify(response.status_code)
        status = response.status_code
        outcome.record(device_id, kind, response, "web:413:PayloadTooLarge" if status == 413 else f"web:{status}")

    def _client(self, route: Route) -> H2Client | Http1Client:
        return self._clients.get((route.origin, route.address, route.origin in self._http1_origins))

    def _new_client(self, key: tuple[str, str, bool]) -> H2Client | Http1Client:
        origin, address, http1 = key
        timeout = self.settings.timeout
        return Http1Client(origin, address, timeout) if http1 else H2Client(origin, timeout, address)

    async def aclose(self) -> None:
        await self._clients.aclose()
