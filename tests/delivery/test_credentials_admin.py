"""Provider credentials through the admin API: set, list, replace, delete;
credentials that cannot work are refused with a clear 400; key material is
never shown and is encrypted in Redis."""
from __future__ import annotations

import json
import uuid

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushlite.storage import keys
from tests.conftest import ADMIN
from tests.mocks.providers import pem


def base(instance_id: str) -> str:
    return f"/admin/v1/instances/{instance_id}/credentials"


def key_body(pem_text: str) -> str:
    """A recognisable piece of the key's base64 body."""
    return pem_text.splitlines()[2]


def assert_admin_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == status
    return body


def assert_no_key_material(text: str, *pems: str) -> None:
    assert "PRIVATE KEY" not in text
    for pem_text in pems:
        for line in pem_text.splitlines()[1:-1]:
            assert line not in text


# --- set, list, delete --------------------------------------------------------


def test_set_list_and_delete(client, instance, apns_credential, service_account):
    iid = instance["id"]
    assert client.get(base(iid), headers=ADMIN).get_json() == {}

    fcm = client.put(f"{base(iid)}/fcm", json={"service_account": service_account}, headers=ADMIN)
    assert fcm.status_code == 200, fcm.get_json()
    assert fcm.get_json() == {"fcm": {"project_id": service_account["project_id"],
                                      "client_email": service_account["client_email"],
                                      "private_key_id": service_account["private_key_id"]}}

    apns = client.put(f"{base(iid)}/apns", json=apns_credential, headers=ADMIN)
    assert apns.status_code == 200, apns.get_json()
    expected_apns = {"key_id": apns_credential["key_id"], "team_id": apns_credential["team_id"],
                     "topic": apns_credential["topic"], "environment": "production"}
    assert apns.get_json()["apns"] == expected_apns

    listed = client.get(base(iid), headers=ADMIN)
    assert listed.status_code == 200
    assert set(listed.get_json()) == {"apns", "fcm"}
    assert listed.get_json()["apns"] == expected_apns
    for response in (fcm, apns, listed):
        assert_no_key_material(response.get_data(as_text=True), apns_credential["private_key"],
                               service_account["private_key"])

    deleted = client.delete(f"{base(iid)}/fcm", headers=ADMIN)
    assert deleted.status_code == 204
    assert set(client.get(base(iid), headers=ADMIN).get_json()) == {"apns"}
    assert_admin_error(client.delete(f"{base(iid)}/fcm", headers=ADMIN), 404)
    assert client.delete(f"{base(iid)}/apns", headers=ADMIN).status_code == 204
    assert client.get(base(iid), headers=ADMIN).get_json() == {}


def test_replacing_a_credential(client, instance, apns_credential):
    iid = instance["id"]
    client.put(f"{base(iid)}/apns", json=apns_credential, headers=ADMIN)
    changed = {**apns_credential, "key_id": "NEWKEY0001", "topic": "com.example.other", "environment": "development"}
    response = client.put(f"{base(iid)}/apns", json=changed, headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json()["apns"] == {"key_id": "NEWKEY0001", "team_id": apns_credential["team_id"],
                                           "topic": "com.example.other", "environment": "development"}


def test_the_environment_defaults_to_production(client, instance, apns_credential):
    body = {k: v for k, v in apns_credential.items() if k != "environment"}
    response = client.put(f"{base(instance['id'])}/apns", json=body, headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json()["apns"]["environment"] == "production"


def test_credentials_are_encrypted_at_rest(client, instance, redis_client, apns_credential, service_account):
    iid = instance["id"]
    client.put(f"{base(iid)}/apns", json=apns_credential, headers=ADMIN)
    client.put(f"{base(iid)}/fcm", json={"service_account": service_account}, headers=ADMIN)
    stored = redis_client.hgetall(keys.credentials(iid))
    assert set(stored) == {"apns", "fcm", "web"}  # web: the instance's VAPID pair
    raw = json.dumps(stored)
    assert_no_key_material(raw, apns_credential["private_key"], service_account["private_key"])
    assert service_account["client_email"] not in raw and apns_credential["team_id"] not in raw
    # Every other key of the instance is free of key material too.
    for key in redis_client.scan_iter(match=keys.instance_pattern(iid)):
        if redis_client.type(key) == "hash":
            assert_no_key_material(json.dumps(redis_client.hgetall(key)), apns_credential["private_key"])
    # It is Fernet under PUSHLITE_ENCRYPTION_KEY.
    fernet = Fernet(client.application.config["PUSHLITE_ENCRYPTION_KEY"])
    assert json.loads(fernet.decrypt(stored["fcm"].encode()))["client_email"] == service_account["client_email"]


def test_deleting_the_instance_deletes_its_credentials(client, instance, redis_client, apns_credential):
    iid = instance["id"]
    client.put(f"{base(iid)}/apns", json=apns_credential, headers=ADMIN)
    assert client.delete(f"/admin/v1/instances/{iid}", headers=ADMIN).status_code == 204
    assert not redis_client.exists(keys.credentials(iid))


def test_credentials_of_two_instances_are_separate(client, instance, apns_credential):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    client.put(f"{base(instance['id'])}/apns", json=apns_credential, headers=ADMIN)
    assert client.get(base(other["id"]), headers=ADMIN).get_json() == {}


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize("method, suffix", [("get", ""), ("put", "/apns"), ("put", "/fcm"), ("delete", "/apns")])
def test_unknown_instance_is_404(client, apns_credential, service_account, method, suffix):
    body = {"service_account": service_account} if suffix == "/fcm" else apns_credential
    kwargs = {"json": body} if method == "put" else {}
    response = getattr(client, method)(f"{base(str(uuid.uuid4()))}{suffix}", headers=ADMIN, **kwargs)
    assert_admin_error(response, 404)


@pytest.mark.parametrize("method, suffix", [("get", ""), ("put", "/apns"), ("delete", "/fcm")])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_the_admin_token_is_required(client, instance, apns_credential, method, suffix, headers):
    kwargs = {"json": apns_credential} if method == "put" else {}
    response = getattr(client, method)(f"{base(instance['id'])}{suffix}", headers=headers, **kwargs)
    assert_admin_error(response, 401)


def test_an_unknown_provider_is_404(client, instance):
    assert client.put(f"{base(instance['id'])}/gcm", json={}, headers=ADMIN).status_code in (404, 405)
    assert client.delete(f"{base(instance['id'])}/gcm", headers=ADMIN).status_code in (404, 405)


def _ec_p384() -> str:
    return pem(ec.generate_private_key(ec.SECP384R1()))


def _rsa() -> str:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _encrypted_ec() -> str:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()


APNS_ROWS = [
    ("missing-key-id", lambda c: {k: v for k, v in c.items() if k != "key_id"}),
    ("missing-team-id", lambda c: {k: v for k, v in c.items() if k != "team_id"}),
    ("missing-private-key", lambda c: {k: v for k, v in c.items() if k != "private_key"}),
    ("missing-topic", lambda c: {k: v for k, v in c.items() if k != "topic"}),
    ("empty-body", lambda c: {}),
    ("key-id-too-short", lambda c: {**c, "key_id": "ABC"}),
    ("team-id-with-symbols", lambda c: {**c, "team_id": "TEAM-12345"}),
    ("topic-with-space", lambda c: {**c, "topic": "com.example app"}),
    ("unknown-environment", lambda c: {**c, "environment": "staging"}),
    ("key-not-pem", lambda c: {**c, "private_key": "not a key at all"}),
    ("key-truncated", lambda c: {**c, "private_key": c["private_key"][:120]}),
    ("key-is-rsa", lambda c: {**c, "private_key": _rsa()}),
    ("key-is-p384", lambda c: {**c, "private_key": _ec_p384()}),
    ("key-is-encrypted", lambda c: {**c, "private_key": _encrypted_ec()}),
    ("key-not-a-string", lambda c: {**c, "private_key": 12345}),
]


@pytest.mark.parametrize("change", [row[1] for row in APNS_ROWS], ids=[row[0] for row in APNS_ROWS])
def test_apns_credentials_that_cannot_work_are_400(client, instance, apns_credential, change):
    body = change(apns_credential)
    response = client.put(f"{base(instance['id'])}/apns", json=body, headers=ADMIN)
    error = assert_admin_error(response, 400)
    assert error.get("message") or error.get("errors"), error
    assert_no_key_material(response.get_data(as_text=True), apns_credential["private_key"])
    assert client.get(base(instance["id"]), headers=ADMIN).get_json() == {}


FCM_ROWS = [
    ("no-service-account", lambda s: {}),
    ("service-account-not-an-object", lambda s: {"service_account": "{}"}),
    ("service-account-as-json-text", lambda s: {"service_account": json.dumps(s)}),
    ("not-a-service-account", lambda s: {"service_account": {**s, "type": "authorized_user"}}),
    ("missing-private-key", lambda s: {"service_account": {k: v for k, v in s.items() if k != "private_key"}}),
    ("missing-client-email", lambda s: {"service_account": {k: v for k, v in s.items() if k != "client_email"}}),
    ("missing-project-id", lambda s: {"service_account": {k: v for k, v in s.items() if k != "project_id"}}),
    ("missing-token-uri", lambda s: {"service_account": {k: v for k, v in s.items() if k != "token_uri"}}),
    ("token-uri-not-a-url", lambda s: {"service_account": {**s, "token_uri": "oauth2.googleapis.com/token"}}),
    ("email-without-at", lambda s: {"service_account": {**s, "client_email": "sender"}}),
    ("key-not-pem", lambda s: {"service_account": {**s, "private_key": "-----BEGIN PRIVATE KEY-----\nxx\n"}}),
    ("key-is-ec", lambda s: {"service_account": {**s, "private_key": _ec_p384()}}),
]


@pytest.mark.parametrize("change", [row[1] for row in FCM_ROWS], ids=[row[0] for row in FCM_ROWS])
def test_fcm_credentials_that_cannot_work_are_400(client, instance, service_account, change):
    response = client.put(f"{base(instance['id'])}/fcm", json=change(service_account), headers=ADMIN)
    error = assert_admin_error(response, 400)
    assert error.get("message") or error.get("errors"), error
    assert_no_key_material(response.get_data(as_text=True), service_account["private_key"])
    assert client.get(base(instance["id"]), headers=ADMIN).get_json() == {}


def test_the_400_says_what_is_wrong(client, instance, apns_credential, service_account):
    rsa_as_apns = client.put(f"{base(instance['id'])}/apns", json={**apns_credential, "private_key": _rsa()},
                             headers=ADMIN).get_json()
    assert "private_key" in rsa_as_apns["message"]
    no_email = {k: v for k, v in service_account.items() if k != "client_email"}
    missing = client.put(f"{base(instance['id'])}/fcm", json={"service_account": no_email}, headers=ADMIN).get_json()
    assert "client_email" in missing["message"]


def test_a_refused_credential_keeps_the_previous_one(client, instance, apns_credential):
    iid = instance["id"]
    client.put(f"{base(iid)}/apns", json=apns_credential, headers=ADMIN)
    refused = client.put(f"{base(iid)}/apns", json={**apns_credential, "key_id": "NEWKEY0001", "private_key": "x"},
                         headers=ADMIN)
    assert refused.status_code == 400
    assert client.get(base(iid), headers=ADMIN).get_json()["apns"]["key_id"] == apns_credential["key_id"]
