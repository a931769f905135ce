"""A local browser push service (RFC 8030), over TLS like the real ones, and
the browsers subscribed to it.

`Browser` is what a browser holds for one push subscription: its own P-256
key pair and auth secret (made here, by the test), the endpoint, and the
application server key it subscribed with. `Browser.token` is what the Beams
Web SDK registers: ``btoa(JSON.stringify(subscription))``.

`WebPushMock` (HTTP/2 with ALPN, `H2Server`) and `Http1WebPushMock`
(HTTP/1.1 only) answer ``POST /push/<name>`` as a push service would:

- the VAPID header (RFC 8292) must verify: ``k`` is the key the subscription
  was made with (else 403, as FCM and autopush answer a key mismatch), the
  ES256 JWT verifies with it, ``aud`` is this service's origin and ``exp`` is
  less than 24 hours ahead (else 401);
- ``Content-Encoding: aes128gcm`` and a ``TTL`` are required (400);
- the body is decrypted with the browser's private key and auth secret by
  `decrypt`, written here from RFC 8291 with `cryptography` alone (not with
  `http_ece`, which pushlite encrypts with), and must be JSON.

Then the subscription's name drives the answer:

| name prefix  | answer                                              |
|--------------|-----------------------------------------------------|
| `gone404`    | 404 (subscription expired)                          |
| `gone410`    | 410 (unsubscribed)                                  |
| `busy`       | 429 with `Retry-After: 1` the first time, then 201  |
| `down`       | 503 every time                                      |
| `flaky`      | 503 the first time, then 201                        |
| `big`        | 413 Payload Too Large                               |
| `drop`       | the connection is cut the first time, then 201      |
| anything else| 201 Created with a `Location`                       |
"""
from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from tests.mocks.h2server import H2Server, Request, Response


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """RFC 8291 section 3 / RFC 8188, the user agent's side: the aes128gcm
    header (salt, record size, the sender's public key as key id), then one
    record whose plaintext ends with the 0x02 delimiter and zero padding."""
    salt, record_size, id_length = body[:16], struct.unpack("!I", body[16:20])[0], body[20]
    as_public, ciphertext = body[21:21 + id_length], body[21 + id_length:]
    if id_length != 65 or len(ciphertext) > record_size:
        raise ValueError("not a single-record aes128gcm body with a P-256 key id")
    shared = ua_private.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public))
    ikm = _hkdf(auth_secret, shared, b"WebPush: info\x00" + raw_public_key(ua_private) + as_public, 32)
    key = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    padded = AESGCM(key).decrypt(nonce, ciphertext, None)
    content = padded.rstrip(b"\x00")
    if not content.endswith(b"\x02"):
        raise ValueError("the last record does not end with the 0x02 delimiter")
    return content[:-1]


@dataclass
class Browser:
    """One browser's push subscription."""

    name: str
    endpoint: str
    application_server_key: str  # the VAPID public key it subscribed with
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(raw_public_key(self.key)), "auth": b64url(self.auth)}}

    @property
    def token(self) -> str:
        """``btoa(JSON.stringify(subscription))``, as the Beams Web SDK registers it."""
        return base64.b64encode(json.dumps(self.subscription(), separators=(",", ":")).encode()).decode()

    def decrypt(self, body: bytes) -> bytes:
        return decrypt(body, self.key, self.auth)


@dataclass
class Received:
    """One push message the service accepted (VAPID verified, decrypted, answered 201)."""

    browser: str
    headers: dict[str, str]
    claims: dict[str, Any]
    message: Any
    as_public: bytes  # the sender's one-time ECDH key (the aes128gcm key id)
    salt: bytes


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A certificate for IP 127.0.0.1 that is its own CA: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushlite web push mock")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "webpush-cert.pem", directory / "webpush-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


class PushService:
    """What both front ends share: subscriptions, checks, answers, records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.origin = ""
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.browsers: dict[str, Browser] = {}
            self.received: list[Received] = []
            self.refused: list[tuple[str, int, str]] = []  # (browser, status, why)
            self.seen: Counter[str] = Counter()
            self.arrived: dict[str, list[float]] = {}

    def subscribe(self, name: str, application_server_key: str) -> Browser:
        """A browser subscribing with an application server (VAPID) public key."""
        browser = Browser(name, f"{self.origin}/push/{name}", application_server_key)
        with self._lock:
            self.browsers[name] = browser
        return browser

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]]]:
        name = path.removeprefix("/push/")
        with self._lock:
            browser = self.browsers.get(name) if method == "POST" and path.startswith("/push/") else None
        if browser is None:
            return 404, []
        with self._lock:
            self.seen[name] += 1
            count = self.seen[name]
            self.arrived.setdefault(name, []).append(time.time())
        checked = self._check(browser, headers, body)
        if isinstance(checked, tuple):
            with self._lock:
                self.refused.append((name, *checked))
            return checked[0], []
        if name.startswith("gone404"):
            return 404, []
        if name.startswith("gone410"):
            return 410, []
        if name.startswith("busy") and count == 1:
            return 429, [("retry-after", "1")]
        if name.startswith("down") or (name.startswith("flaky") and count == 1):
            return 503, []
        if name.startswith("big"):
            return 413, []
        if name.startswith("drop") and count == 1:
            return 0, []
        with self._lock:
            self.received.append(checked)
        return 201, [("location", f"{self.origin}/message/{name}-{count}")]

    def _check(self, browser: Browser, headers: dict[str, str], body: bytes) -> tuple[int, str] | Received:
        """(status, why) when the request is one a push service refuses; else what it carried."""
        authorization = headers.get("authorization", "")
        if not authorization.startswith("vapid "):
            return 401, "no vapid authorization"
        params = dict(part.strip().split("=", 1) for part in authorization[len("vapid "):].split(","))
        if params.get("k") != browser.application_server_key:
            return 403, "not the key the subscription was made with"
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(params["k"]))
        try:
            claims = jwt.decode(params.get("t", ""), public_key, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["aud", "exp"]})
        except jwt.PyJWTError as exc:
            return 401, f"JWT: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return 401, "JWT expires more than 24 hours ahead"
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return 400, "no aes128gcm content encoding or no TTL"
        try:
            message = json.loads(browser.decrypt(body))
        except (ValueError, KeyError) as exc:
            return 400, f"does not decrypt: {exc!r}"
        id_length = body[20]
        return Received(browser.name, dict(headers), claims, message, body[21:21 + id_length], body[:16])

    def messages(self, name: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.browser == name]


class WebPushMock(H2Server):
    """The push service over HTTP/2 with TLS (ALPN h2), as FCM, autopush and Apple's are."""

    def __init__(self, cert: tuple[str, str]) -> None:
        super().__init__()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert)
        context.set_alpn_protocols(["h2"])
        self.ssl_context = context
        self.service = PushService()

    def start(self) -> "WebPushMock":
        super().start()
        self.service.origin = self.url
        return self

    async def handler(self, request: Request) -> Response:
        status, headers = self.service.answer(request.method, request.path, request.headers, request.body)
        if status == 0:
            return Response(0, then="drop")
        return Response(status, b"", headers)


class _Http1Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service: PushService

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra = self.service.answer("POST", self.path, headers, body)
        if status == 0:
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Http1WebPushMock:
    """The same push service over HTTP/1.1 only (TLS without HTTP/2), with a thread per connection."""

    def __init__(self, cert: tuple[str, str]) -> None:
        self.service = PushService()
        handler = type("Handler", (_Http1Handler,), {"service": self.service})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert)
        context.set_alpn_protocols(["http/1.1"])
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.service.origin = self.url
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "Http1WebPushMock":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
