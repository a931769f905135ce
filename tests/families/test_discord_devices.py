"""Discord-style devices: ``/users/@me/devices`` register, unregister, sync
token and sync, with the caller named by a user JWT; both backends."""
from __future__ import annotations

import jwt
import pytest

from pushlite.storage import devices, instances, keys, records
from pushlite.storage.devices import MAX_DEVICES_PER_USER
from tests.conftest import ADMIN
from tests.families.conftest_matrix import apns_token, auth, fcm_token, user_jwt

DEVICES = "/users/@me/devices"


def register(client, instance, body: dict, user: str = "alice"):
    return client.post(DEVICES, json=body, headers=auth(instance, user))


def device_of(redis_client, instance, platform: str, token: str) -> records.Device:
    device_id = records.derive_id(instance["id"], platform, token)
    return devices.get(redis_client, instance["id"], device_id)


def user_devices(redis_client, instance, user: str) -> list[str]:
    return devices.user_device_ids(redis_client, instance["id"], user)


def assert_error(response, status: int, code: int, text: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert text in body["message"], body
    return body


# --- register ------------------------------------------------------------------


@pytest.mark.parametrize("provider, platform, environment", [
    ("gcm", "fcm", None),
    ("apns", "apns", "production"),
    ("apns_internal", "apns", "sandbox"),
    ("apns_voip", "apns_voip", "production"),
    ("apns_internal_voip", "apns_voip", "sandbox"),
])
def test_register_each_provider(client, redis_client, instance, provider, platform, environment):
    token = fcm_token(1) if provider == "gcm" else apns_token(1)
    response = register(client, instance, {"provider": provider, "token": token})
    assert response.status_code == 204 and response.get_data() == b""
    device = device_of(redis_client, instance, platform, token)
    assert (device.platform, device.environment, device.token, device.users) == (platform, environment, token, ["alice"])
    assert user_devices(redis_client, instance, "alice") == [device.id]


def test_register_with_a_voip_token_registers_two_devices(client, redis_client, instance):
    body = {"provider": "apns", "token": apns_token(1), "voip_provider": "apns_internal_voip", "voip_token": apns_token(2)}
    assert register(client, instance, body).status_code == 204
    alert = device_of(redis_client, instance, "apns", apns_token(1))
    voip = device_of(redis_client, instance, "apns_voip", apns_token(2))
    assert (voip.environment, voip.users) == ("sandbox", ["alice"])
    assert user_devices(redis_client, instance, "alice") == [alert.id, voip.id]


def test_register_again_is_idempotent_and_updates_the_environment(client, redis_client, instance):
    token = apns_token(3)
    assert register(client, instance, {"provider": "apns", "token": token}).status_code == 204
    assert register(client, instance, {"provider": "apns_internal", "token": token}).status_code == 204
    device = device_of(redis_client, instance, "apns", token)
    assert (device.environment, device.users) == ("sandbox", ["alice"])
    assert user_devices(redis_client, instance, "alice") == [device.id]


def test_a_token_registered_through_beams_is_the_same_device(client, redis_client, instance):
    beams = client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": fcm_token(4)})
    device_id = beams.get_json()["id"]
    client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm/{device_id}/interests/news")
    assert register(client, instance, {"provider": "gcm", "token": fcm_token(4)}).status_code == 204
    device = devices.get(redis_client, instance["id"], device_id)
    assert (device.users, device.interests) == (["alice"], ["news"])
    # Beams sees the user too.
    got = client.get(f"/device_api/v1/instances/{instance['id']}/devices/fcm/{device_id}")
    assert got.get_json()["userId"] == "alice"


def test_one_device_can_belong_to_several_users(client, redis_client, instance):
    for user in ("alice", "bob"):
        assert register(client, instance, {"provider": "gcm", "token": fcm_token(5)}, user).status_code == 204
    device = device_of(redis_client, instance, "fcm", fcm_token(5))
    assert device.users == ["alice", "bob"]
    assert user_devices(redis_client, instance, "bob") == [device.id]


@pytest.mark.parametrize("body, field, text", [
    ({"token": fcm_token()}, "provider", "required"),
    ({"provider": None, "token": fcm_token()}, "provider", "required"),
    ({"provider": "", "token": fcm_token()}, "provider", "required"),
    ({"provider": 7, "token": fcm_token()}, "provider", "string"),
    ({"provider": "webpush", "token": fcm_token()}, "provider", "Unknown push provider"),
    ({"provider": "gcm"}, "token", "required"),
    ({"provider": "gcm", "token": ""}, "token", "required"),
    ({"provider": "gcm", "token": ["x"]}, "token", "string"),
    ({"provider": "gcm", "token": "short"}, "token", "Invalid FCM token"),
    ({"provider": "apns", "token": "not-hex"}, "token", "Invalid APNs token"),
    ({"provider": "apns", "token": apns_token(), "voip_token": apns_token(1)}, "voip_provider", "Required with"),
    ({"provider": "apns", "token": apns_token(), "voip_provider": "apns_voip"}, "voip_token", "Required with"),
    ({"provider": "apns", "token": apns_token(), "voip_provider": "apns", "voip_token": apns_token(1)},
     "voip_provider", "apns_voip or apns_internal_voip"),
    ({"provider": "apns", "token": apns_token(), "voip_provider": "apns_voip", "voip_token": "zz"},
     "voip_token", "Invalid APNs VoIP token"),
])
def test_register_validation(client, redis_client, instance, body, field, text):
    error = assert_error(register(client, instance, body), 400, 50035, "Invalid Form Body")
    assert f": {field}: " in error["message"] and text in error["message"], error
    assert user_devices(redis_client, instance, "alice") == []


@pytest.mark.parametrize("data, content_type", [
    ("not json", "application/json"),
    ('["a list"]', "application/json"),
    ('{"provider": "gcm"}', "text/plain"),
    ("", "application/json"),
    ('{"provider": "gcm", "token": "\\ud800"}', "application/json"),  # a lone surrogate
    ("[" * 100_000 + "]" * 100_000, "application/json"),  # deeper than Python's recursion limit
])
def test_a_body_that_is_not_a_json_object(client, instance, data, content_type):
    response = client.post(DEVICES, data=data, content_type=content_type, headers=auth(instance))
    assert_error(response, 400, 50109, "invalid JSON")


def test_unknown_fields_are_ignored(client, instance):
    body = {"provider": "gcm", "token": fcm_token(), "extra": {"x": 1}}
    assert register(client, instance, body).status_code == 204


# --- the 100-device cap --------------------------------------------------------


def test_the_device_cap_holds_through_discord_registration(client, redis_client, instance):
    for n in range(MAX_DEVICES_PER_USER):
        devices.register_for_user(redis_client, instance["id"], "alice", [("fcm", None, fcm_token(n))])
    # A device the user already has is fine; a new one is not.
    assert register(client, instance, {"provider": "gcm", "token": fcm_token(0)}).status_code == 204
    error = assert_error(register(client, instance, {"provider": "gcm", "token": fcm_token(100)}), 400, 30000)
    assert "100" in error["message"]
    assert len(user_devices(redis_client, instance, "alice")) == MAX_DEVICES_PER_USER
    # The refused device was not even created.
    assert not redis_client.hexists(keys.device_bucket(instance["id"], records.derive_id(
        instance["id"], "fcm", fcm_token(100))), records.derive_id(instance["id"], "fcm", fcm_token(100)))


def test_token_and_voip_token_are_registered_together_or_not_at_all(client, redis_client, instance):
    for n in range(MAX_DEVICES_PER_USER - 1):
        devices.register_for_user(redis_client, instance["id"], "alice", [("fcm", None, fcm_token(n))])
    body = {"provider": "apns", "token": apns_token(1), "voip_provider": "apns_voip", "voip_token": apns_token(2)}
    assert_error(register(client, instance, body), 400, 30000)
    assert len(user_devices(redis_client, instance, "alice")) == MAX_DEVICES_PER_USER - 1
    assert not any(d.platform.startswith("apns") for d in devices.load_many(
        redis_client, instance["id"], [records.derive_id(instance["id"], "apns", apns_token(1)),
                                       records.derive_id(instance["id"], "apns_voip", apns_token(2))]).values())


def test_the_cap_holds_under_concurrent_registrations(app, client, redis_client, instance):
    from tests.test_beams_concurrency import concurrently

    headers = auth(instance)
    calls = [
        (lambda c, n=n: c.post(DEVICES, json={"provider": "gcm", "token": fcm_token(n)}, headers=headers))
        for n in range(MAX_DEVICES_PER_USER + 20)
    ]
    statuses = [r.status_code for r in concurrently(app, calls)]
    assert statuses.count(204) == MAX_DEVICES_PER_USER and statuses.count(400) == 20
    assert len(user_devices(redis_client, instance, "alice")) == MAX_DEVICES_PER_USER


# --- unregister ----------------------------------------------------------------


def test_unregister_deletes_a_device_nobody_else_has(client, redis_client, instance):
    register(client, instance, {"provider": "gcm", "token": fcm_token(1)})
    response = client.delete(DEVICES, json={"provider": "gcm", "token": fcm_token(1)}, headers=auth(instance))
    assert response.status_code == 204 and response.get_data() == b""
    assert user_devices(redis_client, instance, "alice") == []
    assert devices.load_many(redis_client, instance["id"], [records.derive_id(instance["id"], "fcm", fcm_token(1))]) == {}


def test_unregister_only_detaches_the_caller_from_a_shared_device(client, redis_client, instance):
    for user in ("alice", "bob"):
        register(client, instance, {"provider": "gcm", "token": fcm_token(1)}, user)
    response = client.delete(DEVICES, json={"provider": "gcm", "token": fcm_token(1)}, headers=auth(instance, "bob"))
    assert response.status_code == 204
    assert device_of(redis_client, instance, "fcm", fcm_token(1)).users == ["alice"]
    assert user_devices(redis_client, instance, "bob") == []


def test_unregister_never_touches_another_users_device(client, redis_client, instance):
    register(client, instance, {"provider": "apns", "token": apns_token(1)}, "alice")
    response = client.delete(DEVICES, json={"provider": "apns", "token": apns_token(1)}, headers=auth(instance, "eve"))
    assert response.status_code == 204
    assert device_of(redis_client, instance, "apns", apns_token(1)).users == ["alice"]


def test_unregister_an_unknown_token_is_204(client, instance):
    response = client.delete(DEVICES, json={"provider": "gcm", "token": fcm_token(9)}, headers=auth(instance))
    assert response.status_code == 204


def test_unregister_leaves_a_device_without_the_caller_alone_even_without_users(client, redis_client, instance):
    beams = client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": fcm_token(2)})
    device_id = beams.get_json()["id"]
    client.delete(DEVICES, json={"provider": "gcm", "token": fcm_token(2)}, headers=auth(instance))
    assert devices.get(redis_client, instance["id"], device_id).users == []


def test_unregister_the_apns_environments_are_one_device(client, redis_client, instance):
    register(client, instance, {"provider": "apns_internal", "token": apns_token(1)})
    client.delete(DEVICES, json={"provider": "apns", "token": apns_token(1)}, headers=auth(instance))
    assert user_devices(redis_client, instance, "alice") == []


@pytest.mark.parametrize("body, field", [
    ({"token": fcm_token()}, "provider"),
    ({"provider": "gcm"}, "token"),
    ({"provider": "nope", "token": fcm_token()}, "provider"),
])
def test_unregister_validation(client, instance, body, field):
    error = assert_error(client.delete(DEVICES, json=body, headers=auth(instance)), 400, 50035)
    assert f": {field}: " in error["message"]


# --- sync token and sync -------------------------------------------------------


def sync_token(client, instance, user: str) -> str:
    response = client.get(f"{DEVICES}/sync-token", headers=auth(instance, user))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token"}
    return body["token"]


def test_sync_token_looks_like_discords(client, instance):
    token = sync_token(client, instance, "alice")
    assert token.count(".") == 2 and all(token.split("."))


def test_sync_registers_the_device_for_every_valid_account(client, redis_client, instance):
    bob, carol = sync_token(client, instance, "bob"), sync_token(client, instance, "carol")
    body = {"provider": "gcm", "token": fcm_token(1), "push_sync_tokens": [bob, carol]}
    response = client.put(f"{DEVICES}/sync", json=body, headers=auth(instance, "alice"))
    assert response.status_code == 200
    assert response.get_json() == {"invalid_push_sync_tokens": []}
    device = device_of(redis_client, instance, "fcm", fcm_token(1))
    assert device.users == ["alice", "bob", "carol"]
    for user in ("alice", "bob", "carol"):
        assert user_devices(redis_client, instance, user) == [device.id]


def test_sync_lists_the_invalid_tokens(client, redis_client, instance):
    bob = sync_token(client, instance, "bob")
    payload, timestamp, signature = bob.split(".")
    tampered = f"{payload}.{timestamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    foreign = sync_token(client, other, "dave")
    tokens = [bob, tampered, "garbage", foreign, "", bob]
    body = {"provider": "apns", "token": apns_token(1), "push_sync_tokens": tokens}
    response = client.put(f"{DEVICES}/sync", json=body, headers=auth(instance, "alice"))
    assert response.status_code == 200
    assert response.get_json() == {"invalid_push_sync_tokens": [tampered, "garbage", foreign, ""]}
    assert device_of(redis_client, instance, "apns", apns_token(1)).users == ["alice", "bob"]
    assert user_devices(redis_client, other, "dave") == []


def test_sync_with_an_account_at_its_cap_lists_its_token(client, redis_client, instance):
    for n in range(MAX_DEVICES_PER_USER):
        devices.register_for_user(redis_client, instance["id"], "bob", [("fcm", None, fcm_token(100 + n))])
    bob = sync_token(client, instance, "bob")
    body = {"provider": "gcm", "token": fcm_token(1), "push_sync_tokens": [bob]}
    response = client.put(f"{DEVICES}/sync", json=body, headers=auth(instance, "alice"))
    assert response.get_json() == {"invalid_push_sync_tokens": [bob]}
    assert device_of(redis_client, instance, "fcm", fcm_token(1)).users == ["alice"]


def test_sync_token_signed_with_a_rotated_secret_is_invalid(client, redis_client, instance):
    bob = sync_token(client, instance, "bob")
    rotated = instances.rotate_secret(redis_client, instance["id"])
    fresh = {**instance, "secret_key": rotated.secret_key}
    body = {"provider": "gcm", "token": fcm_token(1), "push_sync_tokens": [bob]}
    response = client.put(f"{DEVICES}/sync", json=body, headers=auth(fresh, "alice"))
    assert response.get_json() == {"invalid_push_sync_tokens": [bob]}


@pytest.mark.parametrize("body, field", [
    ({"provider": "gcm", "token": fcm_token()}, "push_sync_tokens"),
    ({"provider": "gcm", "token": fcm_token(), "push_sync_tokens": "x.y.z"}, "push_sync_tokens"),
    ({"provider": "gcm", "token": fcm_token(), "push_sync_tokens": [1]}, "push_sync_tokens"),
    ({"provider": "gcm", "token": fcm_token(), "push_sync_tokens": ["t"] * 101}, "push_sync_tokens"),
    ({"provider": "gcm", "push_sync_tokens": []}, "token"),
    ({"provider": "aol", "token": fcm_token(), "push_sync_tokens": []}, "provider"),
])
def test_sync_validation(client, instance, body, field):
    error = assert_error(client.put(f"{DEVICES}/sync", json=body, headers=auth(instance)), 400, 50035)
    assert f": {field}" in error["message"], error


# --- authentication ------------------------------------------------------------


def bad_headers(instance) -> list[tuple[str, dict]]:
    return [
        ("missing", {}),
        ("not bearer", {"Authorization": "Basic abc"}),
        ("not a jwt", {"Authorization": "Bearer not-a-jwt"}),
        ("expired", auth(instance, expires_in=-60)),
        ("wrong secret", auth(instance, secret="0" * 64)),
        ("no issuer", {"Authorization": "Bearer " + user_jwt(instance, iss=None)}),
        ("unknown issuer", auth(instance, issuer="https://example.com")),
        ("unknown instance", auth(instance, issuer="pushlite:00000000-0000-4000-8000-000000000000")),
        ("no sub", {"Authorization": "Bearer " + user_jwt(instance, sub=None)}),
        ("no exp", {"Authorization": "Bearer " + user_jwt(instance, exp=None)}),
        ("sub too long", auth(instance, "u" * 165)),
        ("alg none", {"Authorization": "Bearer " + jwt.encode(
            {"sub": "alice", "iss": f"pushlite:{instance['id']}", "exp": 9999999999}, None, algorithm="none")}),
        ("HS512", {"Authorization": "Bearer " + jwt.encode(
            {"sub": "alice", "iss": f"pushlite:{instance['id']}", "exp": 9999999999}, instance["secret_key"],
            algorithm="HS512")}),
    ]


@pytest.mark.parametrize("method, path", [
    ("post", DEVICES), ("delete", DEVICES), ("get", f"{DEVICES}/sync-token"), ("put", f"{DEVICES}/sync"),
])
def test_every_endpoint_needs_a_valid_user_jwt(client, instance, method, path):
    body = {"provider": "gcm", "token": fcm_token(), "push_sync_tokens": []}
    for name, headers in bad_headers(instance):
        response = getattr(client, method)(path, json=body, headers=headers)
        error = assert_error(response, 401, 0, "401: Unauthorized")
        assert error, name


def test_a_jwt_of_another_instance_cannot_register_here(client, redis_client, instance):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    forged = auth(instance, secret=other["secret_key"])  # names this instance, signed with another's key
    assert_error(client.post(DEVICES, json={"provider": "gcm", "token": fcm_token()}, headers=forged), 401, 0)
    assert user_devices(redis_client, instance, "alice") == []


def test_the_beams_sdk_issuer_is_accepted(client, redis_client, instance):
    headers = auth(instance, issuer=f"https://{instance['id']}.pushnotifications.pusher.com")
    assert client.post(DEVICES, json={"provider": "gcm", "token": fcm_token()}, headers=headers).status_code == 204


# --- other errors in the Discord shape -----------------------------------------


def test_unknown_route_and_method_are_in_the_discord_shape(client, instance):
    assert_error(client.get("/users/@me/nothing", headers=auth(instance)), 404, 0, "404: Not Found")
    assert_error(client.get(DEVICES, headers=auth(instance)), 405, 0, "405: Method Not Allowed")


def test_a_body_over_the_limit_is_413_in_the_discord_shape(client, instance):
    response = client.post(DEVICES, data="x" * (1024 * 1024 + 1), content_type="application/json",
                           headers=auth(instance))
    assert_error(response, 413, 0)


def test_the_family_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    assert {"post", "delete"} <= set(paths[DEVICES]) and "requestBody" in paths[DEVICES]["post"]
    assert "get" in paths[f"{DEVICES}/sync-token"] and "put" in paths[f"{DEVICES}/sync"]
    error = paths[DEVICES]["post"]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/DiscordError")
    assert set(spec["components"]["schemas"]["DiscordError"]["properties"]) == {"code", "message"}
