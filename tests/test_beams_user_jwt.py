"""Beams Set User Id: the user JWT (DESIGN.md "User JWTs"): what is accepted,
what is refused with which seed row, the one-user-per-device rule and the cap
of 100 devices per user."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from pusher_push_notifications import PushNotifications

from pushlite.storage import keys
from tests.conftest import ADMIN


def base(instance_id: str) -> str:
    return f"/device_api/v1/instances/{instance_id}/devices"


def register(client, instance_id: str, platform: str = "fcm", n: int = 0) -> str:
    if platform == "apns":
        body = {"token": f"{n:064x}", "bundleIdentifier": "com.example.app"}
    else:
        body = {"token": f"fcm-token-{n:020d}"}
    response = client.post(f"{base(instance_id)}/{platform}", json=body)
    assert response.status_code == 200
    return response.get_json()["id"]


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims_for(instance_id: str, **changes) -> dict:
    claims = {"sub": "alice", "iss": f"pushlite:{instance_id}", "exp": int(time.time()) + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not DROP}


DROP = object()
WRONG_KEY = "0" * 64  # as long as a real secret key, so only its value is wrong


def put_user(client, instance_id: str, device_id: str, token: str, platform: str = "fcm"):
    return client.put(f"{base(instance_id)}/{platform}/{device_id}/user", headers={"Authorization": f"Bearer {token}"})


def user_of(client, instance_id: str, device_id: str, platform: str = "fcm") -> str:
    return client.get(f"{base(instance_id)}/{platform}/{device_id}").get_json()["userId"]


def stored_user_devices(redis_client, instance_id: str, user_id: str) -> list[str]:
    value = redis_client.hget(keys.user_bucket(instance_id, user_id), user_id)
    return value.split(",") if value else []


def body_of(response) -> tuple[int, dict]:
    return response.status_code, response.get_json()


@pytest.fixture
def other(client) -> dict:
    response = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN)
    assert response.status_code == 201
    return response.get_json()


# --- accepted -------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_a_token_from_the_beams_server_sdk_is_accepted_unmodified(client, redis_client, instance, platform):
    iid = instance["id"]
    device_id = register(client, iid, platform)
    token = PushNotifications(iid, instance["secret_key"]).generate_token("alice")["token"]
    response = put_user(client, iid, device_id, token, platform)
    assert response.status_code == 200, response.get_json()
    assert user_of(client, iid, device_id, platform) == "alice"
    assert stored_user_devices(redis_client, iid, "alice") == [device_id]


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_the_pushlite_issuer_is_accepted(client, instance, platform):
    iid = instance["id"]
    device_id = register(client, iid, platform)
    token = jwt.encode(claims_for(iid, sub="bob"), instance["secret_key"], algorithm="HS256")
    assert put_user(client, iid, device_id, token, platform).status_code == 200
    assert user_of(client, iid, device_id, platform) == "bob"


@pytest.mark.parametrize("sub", ["a", "u" * 164, "alice@example.com", "user:42|éü"], ids=["1", "164", "email", "utf8"])
def test_user_ids_of_1_to_164_characters_are_accepted(client, instance, sub):
    iid = instance["id"]
    device_id = register(client, iid)
    token = jwt.encode(claims_for(iid, sub=sub), instance["secret_key"], algorithm="HS256")
    assert put_user(client, iid, device_id, token).status_code == 200
    assert user_of(client, iid, device_id) == sub


# --- refused: 401 ---------------------------------------------------------------


def forged(kind: str, instance: dict, other: dict) -> str:
    iid, key = instance["id"], instance["secret_key"]
    claims = claims_for(iid)
    if kind == "alg-none":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    if kind == "alg-none-uppercase":
        return f"{b64({'alg': 'NONE', 'typ': 'JWT'})}.{b64(claims)}."
    if kind == "signature-stripped":
        return jwt.encode(claims, key, algorithm="HS256").rsplit(".", 1)[0] + "."
    if kind == "payload-tampered":
        header, _, signature = jwt.encode(claims, key, algorithm="HS256").split(".")
        return f"{header}.{b64({**claims, 'sub': 'mallory'})}.{signature}"
    if kind == "wrong-key":
        return jwt.encode(claims, WRONG_KEY, algorithm="HS256")
    if kind == "other-instance-key":
        return jwt.encode(claims, other["secret_key"], algorithm="HS256")
    if kind == "hs512":
        return jwt.encode(claims, key, algorithm="HS512")
    if kind == "expired":
        return jwt.encode(claims_for(iid, exp=int(time.time()) - 60), key, algorithm="HS256")
    if kind == "not-yet-valid":
        return jwt.encode(claims_for(iid, nbf=int(time.time()) + 3600), key, algorithm="HS256")
    if kind == "wrong-key-and-no-exp":  # the signature is checked before any claim
        return jwt.encode(claims_for(iid, exp=DROP), WRONG_KEY, algorithm="HS256")
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["alg-none", "alg-none-uppercase", "signature-stripped", "payload-tampered", "wrong-key",
     "other-instance-key", "hs512", "expired", "not-yet-valid", "wrong-key-and-no-exp"],
)
def test_a_token_not_signed_by_the_instance_or_expired_is_401(client, redis_client, instance, other, kind):
    iid = instance["id"]
    device_id = register(client, iid)
    response = put_user(client, iid, device_id, forged(kind, instance, other))
    assert response.status_code == 401
    body = response.get_json()
    assert set(body) == {"error", "description"}
    assert body["error"] == "Unauthorized"
    assert body["description"]
    assert user_of(client, iid, device_id) == ""
    assert stored_user_devices(redis_client, iid, "alice") == []
    assert stored_user_devices(redis_client, iid, "mallory") == []


# --- refused: 400 claim rows and 403 issuer -------------------------------------


def bad_request(description: str) -> tuple[int, dict]:
    return 400, {"error": "Bad Request", "description": description}


SUB_LENGTH = bad_request("JWT subject (sub) must be between 1-164 characters long")
WRONG_ISSUER = (403, {"error": "Forbidden", "description": "Invalid JWT issuer."})


@pytest.mark.parametrize(
    "changes, expected",
    [
        pytest.param({"exp": DROP}, bad_request("Missing expiration (exp) field in JWT"), id="no-exp"),
        pytest.param({"sub": DROP}, bad_request("Missing subject (sub) field in JWT"), id="no-sub"),
        pytest.param({"iss": DROP}, bad_request("Missing issuer (iss) field in JWT"), id="no-iss"),
        pytest.param({"sub": ""}, SUB_LENGTH, id="sub-0-chars"),
        pytest.param({"sub": "u" * 165}, SUB_LENGTH, id="sub-165-chars"),
        pytest.param({"iss": "https://evil.example.com"}, WRONG_ISSUER, id="iss-foreign"),
        pytest.param({"iss": ""}, WRONG_ISSUER, id="iss-empty"),
        pytest.param({"iss": "pushlite:"}, WRONG_ISSUER, id="iss-pushlite-no-instance"),
        pytest.param({"iss": "OTHER_SDK"}, WRONG_ISSUER, id="iss-other-instance-sdk"),
        pytest.param({"iss": "OTHER_PUSHLITE"}, WRONG_ISSUER, id="iss-other-instance-pushlite"),
        pytest.param({"iss": "THIS_HTTP"}, WRONG_ISSUER, id="iss-this-instance-http"),
    ],
)
def test_claim_errors(client, redis_client, instance, other, changes, expected):
    iid = instance["id"]
    issuers = {
        "OTHER_SDK": f"https://{other['id']}.pushnotifications.pusher.com",
        "OTHER_PUSHLITE": f"pushlite:{other['id']}",
        "THIS_HTTP": f"http://{iid}.pushnotifications.pusher.com",
    }
    if changes.get("iss") in issuers:
        changes = {**changes, "iss": issuers[changes["iss"]]}
    device_id = register(client, iid)
    # Signed with this instance's own key: only the claim is wrong.
    token = jwt.encode(claims_for(iid, **changes), instance["secret_key"], algorithm="HS256")
    assert body_of(put_user(client, iid, device_id, token)) == expected
    assert user_of(client, iid, device_id) == ""
    assert redis_client.hlen(keys.user_bucket(iid, "alice")) == 0


def test_a_token_of_instance_a_is_refused_by_instance_b(client, redis_client, instance, other):
    device_in_b = register(client, other["id"])
    token_of_a = PushNotifications(instance["id"], instance["secret_key"]).generate_token("alice")["token"]
    response = put_user(client, other["id"], device_in_b, token_of_a)
    assert response.status_code in (401, 403)
    assert set(response.get_json()) == {"error", "description"}
    assert user_of(client, other["id"], device_in_b) == ""
    assert stored_user_devices(redis_client, other["id"], "alice") == []
    # B's issuer on a token signed with A's key is refused too.
    forged = jwt.encode(claims_for(other["id"]), instance["secret_key"], algorithm="HS256")
    assert put_user(client, other["id"], device_in_b, forged).status_code == 401


def test_a_rotated_secret_key_invalidates_old_tokens(client, instance):
    iid = instance["id"]
    device_id = register(client, iid)
    old = jwt.encode(claims_for(iid), instance["secret_key"], algorithm="HS256")
    response = client.post(f"/admin/v1/instances/{iid}/secret_key", headers=ADMIN)
    assert response.status_code in (200, 201)
    assert put_user(client, iid, device_id, old).status_code == 401
    new = jwt.encode(claims_for(iid), response.get_json()["secret_key"], algorithm="HS256")
    assert put_user(client, iid, device_id, new).status_code == 200


# --- one user per device ----------------------------------------------------------


def test_a_device_keeps_its_first_user(client, redis_client, instance):
    iid, key = instance["id"], instance["secret_key"]
    device_id = register(client, iid)
    alice = jwt.encode(claims_for(iid, sub="alice"), key, algorithm="HS256")
    bob = jwt.encode(claims_for(iid, sub="bob"), key, algorithm="HS256")
    assert put_user(client, iid, device_id, alice).status_code == 200
    assert body_of(put_user(client, iid, device_id, bob)) == bad_request(
        "A User Id is already associated with this device."
    )
    # The same user again is fine and changes nothing.
    assert put_user(client, iid, device_id, alice).status_code == 200
    assert user_of(client, iid, device_id) == "alice"
    assert stored_user_devices(redis_client, iid, "alice") == [device_id]
    assert stored_user_devices(redis_client, iid, "bob") == []


def test_a_deleted_and_registered_again_device_can_take_another_user(client, instance):
    iid, key = instance["id"], instance["secret_key"]
    device_id = register(client, iid)
    assert put_user(client, iid, device_id, jwt.encode(claims_for(iid), key, algorithm="HS256")).status_code == 200
    assert client.delete(f"{base(iid)}/fcm/{device_id}").status_code == 200
    device_id = register(client, iid)
    bob = jwt.encode(claims_for(iid, sub="bob"), key, algorithm="HS256")
    assert put_user(client, iid, device_id, bob).status_code == 200
    assert user_of(client, iid, device_id) == "bob"


# --- 100 devices per user -------------------------------------------------------


def test_the_101st_device_of_a_user_is_refused(client, redis_client, instance):
    iid = instance["id"]
    token = jwt.encode(claims_for(iid), instance["secret_key"], algorithm="HS256")
    devices = [register(client, iid, "apns" if n % 2 else "fcm", n) for n in range(101)]
    for n, device_id in enumerate(devices[:100]):
        response = put_user(client, iid, device_id, token, "apns" if n % 2 else "fcm")
        assert response.status_code == 200, (n, response.get_json())
    response = put_user(client, iid, devices[100], token, "fcm")
    assert body_of(response) == (
        422,
        {"error": "Unprocessable Entity", "description": "User already has reached the maximum of 100 devices."},
    )
    assert user_of(client, iid, devices[100]) == ""
    assert sorted(stored_user_devices(redis_client, iid, "alice")) == sorted(devices[:100])
    # A device already counted is not refused again.
    assert put_user(client, iid, devices[0], token, "fcm").status_code == 200

    # Deleting one of the 100 makes room.
    assert client.delete(f"{base(iid)}/apns/{devices[1]}").status_code == 200
    assert put_user(client, iid, devices[100], token, "fcm").status_code == 200
    assert len(stored_user_devices(redis_client, iid, "alice")) == 100


def test_the_cap_is_per_instance(client, instance, other):
    """Another instance's user of the same name has its own 100 devices."""
    iid = instance["id"]
    token = jwt.encode(claims_for(iid), instance["secret_key"], algorithm="HS256")
    for n in range(100):
        assert put_user(client, iid, register(client, iid, n=n), token).status_code == 200
    other_token = jwt.encode(claims_for(other["id"]), other["secret_key"], algorithm="HS256")
    assert put_user(client, other["id"], register(client, other["id"]), other_token).status_code == 200
