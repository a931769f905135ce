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
import ssl
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import http_ece
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from pushlite import payloads, subscriptions, url_guard
from pushlite.storage.vapid import public_key_of
from workers.senders.base import CredentialError, Outcome, Sender, SenderSettings, Target, retry_reason
from workers.senders.h2client import H2Client, NoHTTP2, tls_context
from workers.senders.keys import load_private_key
from workers.senders.transport import TRANSPORT_ERRORS, Answer, bounded_gather, dumps, retry_after

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
    """Where one target's request goes."""

    target: Target
    browser_key: ec.EllipticCurvePublicKey
    auth: bytes
    origin: str  # scheme://host[:port], the JWT's audience
    address: str  # the checked address to connect to
    path: str


def classify(status: int) -> str:
    if status in DELIVERED:
        return "delivered"
    if status in GONE:
        return "dead"
    if status == 429 or status >= 500:
        return "retry"
    return "failed"


def _http1_tls() -> ssl.SSLContext:
    context = tls_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class Http1Client:
    """HTTP/1.1 keep-alive requests to one push service that offers no HTTP/2,
    at its checked address (the host still in the Host header and TLS SNI)."""

    def __init__(self, origin: str, address: str, timeout: float) -> None:
        parts = httpx.URL(origin)
        literal = f"[{address}]" if ":" in address else address
        self._base = f"{parts.scheme}://{literal}:{parts.port or 443}"
        self._host = parts.netloc.decode()
        self._sni = {"sni_hostname": parts.host}
        self._client = httpx.AsyncClient(
            verify=_http1_tls(), timeout=timeout, follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    async def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self._client.post(
            self._base + path, content=content, headers={**headers, "host": self._host}, extensions=self._sni
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class WebPushSender(Sender):
    """Sends one notification to many browsers, with the instance's VAPID key."""

    provider = "web"

    def __init__(self, credential: dict[str, Any], settings: SenderSettings) -> None:
        super().__init__(credential, settings)
        self.vapid = Vapid(credential["key"], credential["public_key"], settings.vapid_subject)
        self.allowlist = settings.webpush_endpoint_allowlist
        self._clients: OrderedDict[tuple[str, str, bool], H2Client | Http1Client] = OrderedDict()
        self._http1_origins: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

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

    async def send(self, targets: Sequence[Target], payload: dict[str, Any]) -> Outcome:
        outcome = Outcome()
        message = dumps(payloads.web_message(payload))
        headers = {
            "ttl": str(payload.get("time_to_live", payloads.WEB_MAX_TTL)),
            "urgency": payload.get("urgency", "high"),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
        }
        routes = await asyncio.to_thread(self._routes, targets, outcome)

        async def deliver(route: Route) -> None:
            try:
                await self._deliver(route, message, headers, outcome)
            except Exception:  # a bug must not lose the rest of the batch
                log.exception("web: unexpected error sending to device %s", route.target.device_id)
                outcome.retry_later([route.target.device_id], None, "unexpected")

        await bounded_gather(self.settings.max_concurrency, routes, deliver)
        if outcome.failed:
            log.warning("web: %d of %d failed, first: %s", len(outcome.failed), len(targets), outcome.failed[0])
        return outcome

    def _routes(self, targets: Sequence[Target], outcome: Outcome) -> list[Route]:
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
                                destination.target))
        return routes

    async def _deliver(self, route: Route, message: bytes, headers: dict[str, str], outcome: Outcome) -> None:
        device_id = route.target.device_id
        body = encrypt(message, route.browser_key, route.auth)
        request = {**headers, "authorization": self.vapid.authorization(route.origin)}
        try:
            try:
                response: Answer = await outcome.timed(
                    self._client(route).post(route.path, content=body, headers=request))
            except NoHTTP2:
                self._http1_origins.add(route.origin)
                response = await outcome.timed(self._client(route).post(route.path, content=body, headers=request))
        except TRANSPORT_ERRORS as exc:
            log.info("web: %s sending to device %s; will retry", type(exc).__name__, device_id)
            outcome.retry_later([device_id], None, "network")
            return
        kind = classify(response.status_code)
        if kind == "delivered":
            outcome.delivered.append(device_id)
        elif kind == "dead":
            outcome.dead.append(device_id)
        elif kind == "retry":
            outcome.retry_later([device_id], retry_after(response.headers.get("retry-after")),
                                retry_reason(response.status_code))
        elif response.status_code == 413:
            outcome.failed.append((device_id, "web:413:PayloadTooLarge"))
        else:
            outcome.failed.append((device_id, f"web:{response.status_code}"))

    def _client(self, route: Route) -> H2Client | Http1Client:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._clients, self._loop = OrderedDict(), loop
        http1 = route.origin in self._http1_origins
        key = (route.origin, route.address, http1)
        client = self._clients.get(key)
        if client is None:
            timeout = self.settings.timeout
            client = (Http1Client(route.origin, route.address, timeout) if http1
                      else H2Client(route.origin, timeout, route.address))
            self._clients[key] = client
            if len(self._clients) > MAX_CLIENTS:
                _, oldest = self._clients.popitem(last=False)
                loop.create_task(oldest.aclose())
        else:
            self._clients.move_to_end(key)
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, OrderedDict()
        if self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)
