"""Encrypted Matrix pushers (`encryption: {"method": "aes-hmac-sha256", ...}`):
checked at pushers/set (both backends), applied at delivery. What the gateway
mock receives is decrypted here by an independent implementation of the
scheme the README states (HKDF written out with hmac, AES-256-CTR from
cryptography's primitives), never with pushlite's own code."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.delivery.conftest import drain, publish
from tests.families.conftest_matrix import auth
from tests.families.conftest import LOCAL_GATEWAYS as LOCAL
from tests.families.test_matrix_delivery import NOTIFICATION, target
from tests.families.test_matrix_pushers import assert_matrix_error, get_pushers, pusher, set_pusher
from workers.senders import SenderSettings
from workers.senders.matrix import MatrixSender

ISS = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
SEED_ENCRYPTION = {"method": "aes-hmac-sha256", "initial_key_period": "2023-10", "iss": ISS,
                   "key_identifier": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
CLEAR = {"event_id", "room_id", "counts", "prio"}


def this_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


# --- an independent implementation of the README's scheme ---------------------------


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def unbase64(text: str) -> bytes:
    assert "=" not in text, "unpadded base64"
    return base64.b64decode(text + "=" * (-len(text) % 4))


def decrypt(encrypted: dict[str, Any], iss: str = ISS) -> dict[str, Any]:
    material = hkdf_sha256(bytes.fromhex(iss), bytes(32), encrypted["key_period"].encode(), 64)
    aes_key, mac_key = material[:32], material[32:]
    iv, ciphertext = unbase64(encrypted["iv"]), unbase64(encrypted["ciphertext"])
    assert len(iv) == 16 and iv[8] & 0x80 == 0, "a 16-byte IV with bit 63 cleared"
    expected = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    assert hmac.compare_digest(expected, unbase64(encrypted["mac"])), "the MAC verifies"
    decryptor = Cipher(algorithms.AES(aes_key), modes.CTR(iv)).decryptor()
    return json.loads(decryptor.update(ciphertext) + decryptor.finalize())


def send(targets, payload: dict = NOTIFICATION):
    async def run():
        async with MatrixSender({}, SenderSettings(matrix_gateway_allowlist=LOCAL, timeout=5)) as sender:
            return await sender.send(targets, payload)
    return asyncio.run(run())


def encrypted_target(n: int, pushkey: str, url: str, encryption: dict | None = None, **data: Any):
    t = target(n, pushkey, url, **data)
    metadata = dict(t.metadata)
    metadata["encryption"] = encryption or SEED_ENCRYPTION
    return type(t)(t.device_id, t.token, t.platform, t.environment, t.bundle_id, metadata)


# --- pushers/set checks the encryption object ------------------------------------------


def test_the_seed_example_is_stored_as_given(client, instance):
    assert set_pusher(client, instance, pusher(encryption=SEED_ENCRYPTION)).status_code == 200
    assert get_pushers(client, instance)[0]["encryption"] == SEED_ENCRYPTION


def test_the_initial_key_period_defaults_to_this_month(client, instance):
    encryption = {k: v for k, v in SEED_ENCRYPTION.items() if k != "initial_key_period"}
    assert set_pusher(client, instance, pusher(encryption=encryption)).status_code == 200
    assert get_pushers(client, instance)[0]["encryption"] == {**encryption, "initial_key_period": this_month()}


@pytest.mark.parametrize("change, text", [
    ({"method": "aes-gcm"}, "method"),
    ({"method": None}, "method"),
    ({"iss": None}, "iss"),
    ({"iss": ISS[:-2]}, "iss"),
    ({"iss": ISS + "00"}, "iss"),
    ({"iss": "zz" * 32}, "iss"),
    ({"iss": 5}, "iss"),
    ({"key_identifier": None}, "key_identifier"),
    ({"key_identifier": ""}, "key_identifier"),
    ({"key_identifier": 7}, "key_identifier"),
    ({"initial_key_period": "2023-13"}, "initial_key_period"),
    ({"initial_key_period": "2023-1"}, "initial_key_period"),
    ({"initial_key_period": "23-10"}, "initial_key_period"),
    ({"initial_key_period": "2023-10-01"}, "initial_key_period"),
    ({"initial_key_period": 202310}, "initial_key_period"),
])
def test_an_encryption_pushlite_cannot_apply_is_refused(client, instance, change, text):
    encryption = {k: v for k, v in {**SEED_ENCRYPTION, **change}.items() if v is not None}
    error = assert_matrix_error(set_pusher(client, instance, pusher(encryption=encryption)), 400, "M_INVALID_PARAM")
    assert text in error["error"]
    assert get_pushers(client, instance) == []


def test_encryption_null_means_none(client, instance):
    assert set_pusher(client, instance, pusher(encryption=None)).status_code == 200
    assert "encryption" not in get_pushers(client, instance)[0]


# --- the sender encrypts what the gateway does not need ---------------------------------


def test_the_content_is_encrypted_and_decrypts_with_the_readme_scheme(gateway):
    outcome = send([encrypted_target(1, "secret", gateway.url), target(2, "clear", gateway.url)])
    assert sorted(outcome.delivered) == ["000000000001", "000000000002"]
    by_key = {r.pushkeys[0]: r.notification for r in gateway.requests}

    sealed = by_key["secret"]
    assert set(sealed) == CLEAR | {"encrypted", "devices"}
    assert {k: sealed[k] for k in CLEAR} == {k: NOTIFICATION[k] for k in CLEAR}
    encrypted = sealed["encrypted"]
    assert set(encrypted) == {"key_identifier", "key_period", "iv", "ciphertext", "mac"}
    assert encrypted["key_identifier"] == SEED_ENCRYPTION["key_identifier"]
    assert encrypted["key_period"] == this_month()  # later than the initial 2023-10
    assert decrypt(encrypted) == {k: v for k, v in NOTIFICATION.items() if k not in CLEAR}
    assert "I'm floating" not in json.dumps(sealed)

    # A pusher without encryption still gets the content in clear.
    assert by_key["clear"]["content"] == NOTIFICATION["content"] and "encrypted" not in by_key["clear"]


def test_the_key_period_is_never_before_the_initial_one(gateway):
    later = {**SEED_ENCRYPTION, "initial_key_period": "2999-01"}
    send([encrypted_target(1, "future", gateway.url, later)])
    encrypted = gateway.requests[0].notification["encrypted"]
    assert encrypted["key_period"] == "2999-01"
    assert decrypt(encrypted)["content"] == NOTIFICATION["content"]


def test_each_key_gets_its_own_request_and_each_request_its_own_iv(gateway):
    other = {**SEED_ENCRYPTION, "iss": "ff" * 32, "key_identifier": "other"}
    send([encrypted_target(1, "a", gateway.url), encrypted_target(2, "b", gateway.url, other),
          encrypted_target(3, "c", gateway.url)])
    by_keys = {tuple(r.pushkeys): r.notification["encrypted"] for r in gateway.requests}
    assert set(by_keys) == {("a", "c"), ("b",)}
    assert decrypt(by_keys[("b",)], iss="ff" * 32)["content"] == NOTIFICATION["content"]
    send([encrypted_target(1, "a", gateway.url)])
    assert gateway.requests[-1].notification["encrypted"]["iv"] != by_keys[("a", "c")]["iv"]


def test_event_id_only_has_nothing_to_encrypt(gateway):
    send([encrypted_target(1, "slim", gateway.url, format="event_id_only")])
    notification = gateway.requests[0].notification
    assert set(notification) == CLEAR | {"devices"}


def test_an_encryption_stored_before_it_was_checked_is_never_sent_in_clear(gateway):
    """Pushers set before pushlite checked `encryption` may hold one it cannot apply."""
    outcome = send([encrypted_target(1, "old", gateway.url, {"method": "aes-hmac-sha256", "iss": "nope"}),
                    encrypted_target(2, "odd", gateway.url, {"method": "something-else"})])
    assert sorted(outcome.failed) == [("000000000001", "matrix:invalid-encryption"),
                                      ("000000000002", "matrix:invalid-encryption")]
    assert gateway.requests == []


# --- end to end: set through the API, published through Beams ---------------------------


def test_a_publish_reaches_an_encrypted_pusher_encrypted(web, runtime, tenant, gateway):
    encryption = {k: v for k, v in SEED_ENCRYPTION.items() if k != "initial_key_period"}
    body = {"kind": "http", "app_id": "com.example.ios", "pushkey": "pk-e", "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "data": {"url": gateway.url}, "encryption": encryption}
    assert web.post("/_matrix/client/v3/pushers/set", json=body, headers=auth(tenant)).status_code == 200
    pid = publish(web, tenant, "users", ["alice"], fcm={"notification": {"title": "Hello", "body": "World"}})
    assert drain(runtime, web, tenant, pid)["delivered"] == 1
    notification = gateway.requests[0].notification
    assert "content" not in notification and "room_name" not in notification
    assert decrypt(notification["encrypted"]) == {"type": "m.room.message", "room_name": "Hello",
                                                  "content": {"msgtype": "m.text", "body": "World"}}
