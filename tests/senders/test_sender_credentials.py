"""Credential validation: clear, secret-free messages for the admin API's 400s."""
from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.mocks.providers import pem
from workers.senders import CredentialError, sender_class

APNS = sender_class("apns")
FCM = sender_class("fcm")


def _encrypted(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-pass"),
    ).decode()


def test_apns_credential_is_normalized(apns_credential: dict[str, Any]) -> None:
    apns_credential.update(environment="sandbox", topic="  com.example.app ")
    normalized = APNS.validate_credential(apns_credential)
    assert normalized["environment"] == "development"
    assert normalized["topic"] == "com.example.app"
    assert normalized["private_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_apns_environment_defaults_to_production(apns_credential: dict[str, Any]) -> None:
    del apns_credential["environment"]
    assert APNS.validate_credential(apns_credential)["environment"] == "production"


def test_apns_accepts_a_p8_body_without_pem_lines(apns_credential: dict[str, Any]) -> None:
    body = "".join(line for line in apns_credential["private_key"].splitlines() if "-----" not in line)
    assert APNS.validate_credential({**apns_credential, "private_key": body})["private_key"].startswith("-----BEGIN")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key_id": "ABC"}, "key_id must be 10 letters or digits"),
        ({"key_id": "ABC123DEF!"}, "key_id must be 10 letters or digits"),
        ({"team_id": "TEAM-12345"}, "team_id must be 10 letters or digits"),
        ({"team_id": None}, "non-empty string 'team_id'"),
        ({"topic": ""}, "non-empty string 'topic'"),
        ({"topic": "com.example app"}, "must not contain spaces"),
        ({"environment": "staging"}, "'production' or 'development'"),
        ({"private_key": "not a key"}, "not a readable PEM private key"),
        ({"private_key": 42}, "non-empty string 'private_key'"),
    ],
)
def test_apns_credential_errors(apns_credential: dict[str, Any], change: dict[str, Any], message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        APNS.validate_credential({**apns_credential, **change})


def test_apns_rejects_other_key_kinds(apns_credential: dict[str, Any], fcm_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(CredentialError, match="wrong kind of key"):
        APNS.validate_credential({**apns_credential, "private_key": pem(fcm_key)})
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CredentialError, match="EC P-256"):
        APNS.validate_credential({**apns_credential, "private_key": pem(p384)})
    with pytest.raises(CredentialError, match="encrypted"):
        APNS.validate_credential({**apns_credential, "private_key": _encrypted(p384)})


def test_apns_credential_must_be_an_object() -> None:
    with pytest.raises(CredentialError, match="JSON object"):
        APNS.validate_credential(["key"])  # type: ignore[arg-type]


def test_fcm_credential_is_kept_whole(fcm_credential: dict[str, Any]) -> None:
    normalized = FCM.validate_credential({**fcm_credential, "project_id": " pushlite-test "})
    assert normalized["project_id"] == "pushlite-test"
    assert normalized["client_id"] == fcm_credential["client_id"]


def test_fcm_private_key_with_escaped_newlines_is_read(fcm_credential: dict[str, Any]) -> None:
    escaped = fcm_credential["private_key"].replace("\n", "\\n")
    FCM.validate_credential({**fcm_credential, "private_key": escaped})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "authorized_user"}, "service account key"),
        ({"project_id": ""}, "non-empty string 'project_id'"),
        ({"client_email": "nobody"}, "client_email must be"),
        ({"token_uri": "ftp://example.com/token"}, "token_uri must be an http"),
        ({"token_uri": None}, "non-empty string 'token_uri'"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}, "not a readable PEM"),
    ],
)
def test_fcm_credential_errors(fcm_credential: dict[str, Any], change: dict[str, Any], message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        FCM.validate_credential({**fcm_credential, **change})


def test_fcm_rejects_an_ec_key(fcm_credential: dict[str, Any], apns_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CredentialError, match="RSA"):
        FCM.validate_credential({**fcm_credential, "private_key": pem(apns_key)})


def test_no_credential_error_quotes_key_material(
    apns_credential: dict[str, Any], fcm_credential: dict[str, Any], fcm_key: rsa.RSAPrivateKey
) -> None:
    broken_apns = apns_credential["private_key"][:-80]
    broken_fcm = fcm_credential["private_key"].replace("A", "B", 5)
    attempts = [
        (APNS, {**apns_credential, "private_key": broken_apns}),
        (APNS, {**apns_credential, "private_key": pem(fcm_key)}),
        (FCM, {**fcm_credential, "private_key": broken_fcm}),
        (FCM, {**fcm_credential, "private_key": "garbage " + fcm_credential["private_key"][30:90]}),
    ]
    for cls, credential in attempts:
        with pytest.raises(CredentialError) as caught:
            cls.validate_credential(credential)
        text = str(caught.value) + repr(caught.value)
        body_lines = [line for line in credential["private_key"].splitlines() if "-----" not in line]
        assert not any(line[:16] in text for line in body_lines if len(line) >= 16)
        # the parser's own message is never chained into the traceback
        assert caught.value.__context__ is None or caught.value.__suppress_context__
