"""Pytest fixtures for the local APNs and FCM mocks: test keys made at run
time, the mock servers (started once per session, reset before each test) and
credentials they verify. Imported by the conftests that need them."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.mocks.apns_mock import APNsMock
from tests.mocks.fcm_mock import FCMMock
from tests.mocks.webpush_mock import PushService, WebPushMock, self_signed_certificate

APNS_KEY_ID = "ABC123DEFG"
APNS_TEAM_ID = "TEAM123456"
APNS_TOPIC = "com.example.app"
FCM_PROJECT = "pushlite-test"
FCM_EMAIL = "pusher@pushlite-test.iam.gserviceaccount.com"
VAPID_SUBJECT = "mailto:ops@example.com"


def pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def apns_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def fcm_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def _apns_server(apns_key: ec.EllipticCurvePrivateKey) -> Iterator[APNsMock]:
    with APNsMock(apns_key.public_key(), APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def _fcm_server(fcm_key: rsa.RSAPrivateKey) -> Iterator[FCMMock]:
    with FCMMock(fcm_key.public_key(), FCM_EMAIL, FCM_PROJECT) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def apns_mock(_apns_server: APNsMock) -> APNsMock:
    _apns_server.reset()
    return _apns_server


@pytest.fixture
def fcm_mock(_fcm_server: FCMMock) -> FCMMock:
    _fcm_server.reset()
    return _fcm_server


@pytest.fixture
def apns_credential(apns_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The body of PUT .../credentials/apns."""
    return {
        "key_id": APNS_KEY_ID,
        "team_id": APNS_TEAM_ID,
        "private_key": pem(apns_key),
        "topic": APNS_TOPIC,
        "environment": "production",
    }


@pytest.fixture
def service_account(fcm_key: rsa.RSAPrivateKey, _fcm_server: FCMMock) -> dict[str, Any]:
    """A Google service account JSON whose token_uri is the mock's token endpoint."""
    return {
        "type": "service_account",
        "project_id": FCM_PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": pem(fcm_key),
        "client_email": FCM_EMAIL,
        "client_id": "1234567890",
        "token_uri": _fcm_server.token_uri,
    }


@pytest.fixture(scope="session")
def webpush_certificate(tmp_path_factory) -> tuple[str, str]:
    """The local push services' TLS certificate (its own CA): (cert file, key file)."""
    return self_signed_certificate(tmp_path_factory.mktemp("webpush-tls"))


@pytest.fixture(scope="session")
def _webpush_server(webpush_certificate: tuple[str, str]) -> Iterator[WebPushMock]:
    with WebPushMock(webpush_certificate) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def webpush_mock(_webpush_server: WebPushMock, webpush_certificate: tuple[str, str], monkeypatch) -> PushService:
    """The push service (reset), whose certificate the senders trust (SSL_CERT_FILE, as an operator would)."""
    monkeypatch.setenv("SSL_CERT_FILE", webpush_certificate[0])
    _webpush_server.service.reset()
    return _webpush_server.service
