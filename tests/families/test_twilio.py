"""The Twilio-style API (``twilio-device-registrations.txt``) on both
backends: registrations in the seed's exact shape, users, sends and their
operations, every error in the Twilio shape, and the registration's hold on
the shared device (app name, user, 100-device cap, detach on delete)."""
from __future__ import annotations

import base64
import re
import time

import jwt
import pytest

import config
from pushlite.app import create_app
from pushlite.storage import devices, interests, keys, twilio
from pushlite.twilio.notifications import publish_id_of
from tests.conftest import ADMIN, RedisServer

# The seed's FCM token.
SEED_TOKEN = ("odJFCrnl2edlBDdz1C5Ja:APA91bu2RJtBRnlWmTSHf6pWkLUyifDLkDmWJ6UuVTAIjvFu7WICPhDeOZIiBOB-Y6sHrFH2ZUCr-"
              "lgotu2iXW7GboIRoL3u6aHwnMztVuaP_coUNEhEkk_iqq8vH2BzNZV45pFCiRcD")
APNS_TOKEN = "ab" * 32
REGISTRATIONS = "/v1/PushNotifications/DeviceRegistrations"
SEND = "/v1/PushNotifications"
REGISTRATION_ID = re.compile(r"comms_device_registration_[0-9a-f]{32}")
USER_ID = re.compile(r"comms_user_[0-9a-hjkmnp-tv-z]{26}")
OPERATION_ID = re.compile(r"comms_operation_[0-9a-f]{32}")


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture
def auth(instance) -> dict:
    return basic(instance["id"], instance["secret_key"])


def assert_twilio_error(response, status: int, code: int | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "message", "status"}, body
    assert body["status"] == status
    assert isinstance(body["code"], int) and body["code"] >= 20000
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


def register(client, auth: dict, token: str = SEED_TOKEN, provider: str = "FCM", app: str = "test_app",
             user: str | None = None, status: int = 201) -> dict:
    body = {"token": token, "appName": app, "provider": provider, **({"userId": user} if user else {})}
    response = client.post(REGISTRATIONS, json=body, headers=auth)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def seed_shape(registration: dict, user: str, token: str = SEED_TOKEN, provider: str = "FCM",
               app: str = "test_app") -> dict:
    """The seed's sample response, for this registration."""
    return {
        "appName": app,
        "userId": user,
        "devices": [{"provider": provider, "token": token}],
        "id": registration["id"],
        "related": [
            {"id": user, "name": "user", "uri": f"/Users/{user}"},
            {"id": app, "name": "push_notification_app", "uri": f"/PushNotifications/Apps/{app}"},
        ],
        "tags": {},
    }


def device_of(redis_client, instance: dict, registration: dict):
    found, device = twilio.get(redis_client, instance["id"], registration["id"])
    return device


# --- registrations ---------------------------------------------------------------


def test_register_with_a_user_id_gives_the_seed_shape(client, auth):
    registration = register(client, auth, user="comms_user_01h9krwprkeee8fzqspvwy6nq8")
    assert REGISTRATION_ID.fullmatch(registration["id"])
    assert registration == seed_shape(registration, "comms_user_01h9krwprkeee8fzqspvwy6nq8")
    assert list(registration) == ["appName", "userId", "devices", "id", "related", "tags"]


def test_register_without_a_user_id_creates_a_user(client, auth):
    first = register(client, auth)
    second = register(client, auth, token="fcm-token-another-0000001")
    for registration in (first, second):
        assert USER_ID.fullmatch(registration["userId"]), registration["userId"]
    assert first["userId"] != second["userId"]
    assert first == seed_shape(first, first["userId"])


def test_register_an_apns_token(client, auth):
    registration = register(client, auth, token=APNS_TOKEN, provider="APNS", app="ios.app", user="alice")
    assert registration == seed_shape(registration, "alice", APNS_TOKEN, "APNS", "ios.app")


def test_the_device_gets_the_app_name_and_the_user(client, instance, auth, redis_client):
    registration = register(client, auth, user="alice")
    device = device_of(redis_client, instance, registration)
    assert (device.platform, device.token, device.app, device.users) == ("fcm", SEED_TOKEN, "test_app", ["alice"])
    assert devices.user_device_ids(redis_client, instance["id"], "alice") == [device.id]


def test_the_same_token_again_returns_the_registration(client, auth):
    first = register(client, auth, user="alice")
    assert register(client, auth, user="alice", status=200) == first
    # Without a userId, the token's registration is returned as it is.
    assert register(client, auth, status=200) == first


@pytest.mark.parametrize("change", [{"user": "bob"}, {"app": "other_app"}], ids=["other-user", "other-app"])
def test_the_same_token_for_another_user_or_app_is_a_conflict(client, instance, auth, redis_client, change):
    first = register(client, auth, user="alice")
    body = {"token": SEED_TOKEN, "appName": change.get("app", "test_app"), "provider": "FCM",
            "userId": change.get("user", "alice")}
    error = assert_twilio_error(client.post(REGISTRATIONS, json=body, headers=auth), 409, 20409)
    assert first["id"] in error["message"]
    device = device_of(redis_client, instance, first)
    assert (device.users, device.app) == (["alice"], "test_app")


def test_a_device_of_another_family_keeps_its_user(client, instance, auth, redis_client):
    """Registration attaches the user without taking the device from the user it has."""
    iid = instance["id"]
    device_id, _ = devices.register(redis_client, iid, "fcm", SEED_TOKEN)
    devices.add_user(redis_client, iid, device_id, None, "beams-user", exclusive=True)
    registration = register(client, auth, user="alice")
    device = device_of(redis_client, instance, registration)
    assert device.id == device_id
    assert device.users == ["beams-user", "alice"]


def test_a_user_has_at_most_100_devices(client, instance, auth, redis_client):
    for n in range(100):
        register(client, auth, token=f"fcm-token-cap-{n:012d}", user="alice")
    body = {"token": "fcm-token-cap-one-too-many", "appName": "test_app", "provider": "FCM", "userId": "alice"}
    assert_twilio_error(client.post(REGISTRATIONS, json=body, headers=auth), 422, 20422)
    assert len(devices.user_device_ids(redis_client, instance["id"], "alice")) == 100
    # The refused token is not left behind as a device nothing holds.
    derived = devices.records.derive_id(instance["id"], "fcm", "fcm-token-cap-one-too-many")
    assert redis_client.hget(keys.device_bucket(instance["id"], derived), derived) is None


REGISTRATION_ROWS = [
    ("missing-token", {"appName": "a", "provider": "FCM"}, 400, 20001),
    ("missing-app", {"token": SEED_TOKEN, "provider": "FCM"}, 400, 20001),
    ("missing-provider", {"token": SEED_TOKEN, "appName": "a"}, 400, 20001),
    ("provider-gcm", {"token": SEED_TOKEN, "appName": "a", "provider": "GCM"}, 400, 20001),
    ("provider-lowercase", {"token": SEED_TOKEN, "appName": "a", "provider": "fcm"}, 400, 20001),
    ("null-token", {"token": None, "appName": "a", "provider": "FCM"}, 400, 20001),
    ("token-not-a-string", {"token": 5, "appName": "a", "provider": "FCM"}, 400, 20001),
    ("fcm-bad-token", {"token": "not a token", "appName": "a", "provider": "FCM"}, 400, 20001),
    ("apns-fcm-token", {"token": SEED_TOKEN, "appName": "a", "provider": "APNS"}, 400, 20001),
    ("empty-app", {"token": SEED_TOKEN, "appName": "", "provider": "FCM"}, 400, 20001),
    ("app-with-slash", {"token": SEED_TOKEN, "appName": "a/b", "provider": "FCM"}, 400, 20001),
    ("app-101", {"token": SEED_TOKEN, "appName": "a" * 101, "provider": "FCM"}, 400, 20001),
    ("app-trailing-newline", {"token": SEED_TOKEN, "appName": "a\n", "provider": "FCM"}, 400, 20001),
    ("empty-user", {"token": SEED_TOKEN, "appName": "a", "provider": "FCM", "userId": ""}, 400, 20001),
    ("user-165", {"token": SEED_TOKEN, "appName": "a", "provider": "FCM", "userId": "u" * 165}, 400, 20001),
    ("user-control-char", {"token": SEED_TOKEN, "appName": "a", "provider": "FCM", "userId": "a\x1eb"}, 400, 20001),
]


@pytest.mark.parametrize("body, status, code", [r[1:] for r in REGISTRATION_ROWS], ids=[r[0] for r in REGISTRATION_ROWS])
def test_registration_errors(client, instance, auth, redis_client, body, status, code):
    error = assert_twilio_error(client.post(REGISTRATIONS, json=body, headers=auth), status, code)
    assert "parameter" in error["message"]
    assert redis_client.hlen(keys.twilio_registrations(instance["id"])) == 0


def test_body_and_content_type(client, auth):
    assert_twilio_error(client.post(REGISTRATIONS, data="{}", headers=auth), 415, 20415)
    assert_twilio_error(client.post(REGISTRATIONS, data="[]", headers=auth, content_type="application/json"),
                        400, 20001)
    assert_twilio_error(client.post(SEND, data="{nope", headers=auth, content_type="application/json"), 400, 20001)
    # Python's json reads these; a lone surrogate cannot be stored, deep nesting overflows the stack.
    lone_surrogate = '{"token": "%s", "appName": "\\ud800", "provider": "FCM"}' % SEED_TOKEN
    assert_twilio_error(client.post(REGISTRATIONS, data=lone_surrogate, headers=auth,
                                    content_type="application/json"), 400, 20001)
    assert_twilio_error(client.post(SEND, data="[" * 100_000 + "]" * 100_000, headers=auth,
                                    content_type="application/json"), 400, 20001)


# --- get, delete, users -----------------------------------------------------------


def test_get_a_registration(client, auth):
    registration = register(client, auth, user="alice")
    got = client.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth)
    assert got.status_code == 200
    assert got.get_json() == registration


@pytest.mark.parametrize("registration_id", ["comms_device_registration_" + "0" * 32, "whatever", "%20"])
def test_unknown_registrations_are_404(client, auth, registration_id):
    for method in ("get", "delete"):
        response = getattr(client, method)(f"{REGISTRATIONS}/{registration_id}", headers=auth)
        error = assert_twilio_error(response, 404, 20404)
        assert "was not found" in error["message"]


def test_delete_a_registration_deletes_a_device_nothing_else_holds(client, instance, auth, redis_client):
    registration = register(client, auth, user="alice")
    device = device_of(redis_client, instance, registration)
    deleted = client.delete(f"{REGISTRATIONS}/{registration['id']}", headers=auth)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert_twilio_error(client.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth), 404, 20404)
    assert_twilio_error(client.delete(f"{REGISTRATIONS}/{registration['id']}", headers=auth), 404, 20404)
    iid = instance["id"]
    assert redis_client.hget(keys.device_bucket(iid, device.id), device.id) is None
    assert devices.user_device_ids(redis_client, iid, "alice") == []
    assert redis_client.hlen(keys.twilio_registrations(iid)) == 0
    assert redis_client.hlen(keys.twilio_tokens(iid)) == 0
    # The token can be registered again, for anyone.
    again = register(client, auth, user="bob")
    assert again["id"] != registration["id"]


def test_delete_detaches_the_user_from_a_device_held_otherwise(client, instance, auth, redis_client):
    iid = instance["id"]
    registration = register(client, auth, user="alice")
    device = device_of(redis_client, instance, registration)
    interests.add(redis_client, iid, device.id, None, ["news"])
    devices.add_user(redis_client, iid, device.id, None, "bob", exclusive=False)
    assert client.delete(f"{REGISTRATIONS}/{registration['id']}", headers=auth).status_code == 204
    kept = devices.get(redis_client, iid, device.id)
    assert (kept.users, kept.interests, kept.token) == (["bob"], ["news"], SEED_TOKEN)
    assert devices.user_device_ids(redis_client, iid, "alice") == []
    assert devices.user_device_ids(redis_client, iid, "bob") == [device.id]


def test_a_registration_whose_device_was_deleted_elsewhere_is_gone(client, instance, auth, redis_client):
    registration = register(client, auth, user="alice")
    response = client.delete(f"/customer_api/v1/instances/{instance['id']}/users/alice",
                             headers={"Authorization": f"Bearer {instance['secret_key']}"})
    assert response.status_code == 200
    assert_twilio_error(client.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth), 404, 20404)
    assert redis_client.hlen(keys.twilio_registrations(instance["id"])) == 0
    assert_twilio_error(client.get(f"/v1/Users/alice", headers=auth), 404, 20404)
    assert register(client, auth, user="alice")["id"] != registration["id"]


def test_get_a_user_with_their_registrations(client, auth):
    fcm = register(client, auth, user="alice")
    apns = register(client, auth, token=APNS_TOKEN, provider="APNS", app="ios.app", user="alice")
    register(client, auth, token="fcm-token-of-bob-000000001", user="bob")
    got = client.get("/v1/Users/alice", headers=auth)
    assert got.status_code == 200
    body = got.get_json()
    assert body["id"] == "alice"
    assert sorted(r["id"] for r in body["deviceRegistrations"]) == sorted([fcm["id"], apns["id"]])
    assert fcm in body["deviceRegistrations"] and apns in body["deviceRegistrations"]


def test_a_user_of_another_family_is_known(client, instance, auth):
    """A Beams user (device + Set User Id) exists for this API too, with no registration of its own."""
    iid = instance["id"]
    base = f"/device_api/v1/instances/{iid}/devices"
    device_id = client.post(f"{base}/fcm", json={"token": "fcm-token-beams-0000000001"}).get_json()["id"]
    claims = {"sub": "carol", "iss": f"pushlite:{iid}", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, instance["secret_key"], algorithm="HS256")
    assert client.put(f"{base}/fcm/{device_id}/user", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    got = client.get("/v1/Users/carol", headers=auth)
    assert got.status_code == 200
    assert got.get_json() == {"id": "carol", "deviceRegistrations": []}


def test_unknown_user_is_404(client, auth):
    error = assert_twilio_error(client.get("/v1/Users/comms_user_01h9krwprkeee8fzqspvwy6nq8", headers=auth),
                                404, 20404)
    assert error["message"] == ("The requested resource /v1/Users/comms_user_01h9krwprkeee8fzqspvwy6nq8 "
                                "was not found")


# --- sends and operations ------------------------------------------------------------


def test_send_to_users(client, backend, instance, auth, redis_client):
    register(client, auth, user="alice")
    body = {"to": [{"userId": "alice"}, {"userId": "nobody"}, {"userId": "alice"}],
            "content": {"title": "Welcome Back!", "body": "New offers are waiting for you."}}
    response = client.post(SEND, json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert OPERATION_ID.fullmatch(accepted["id"])
    assert accepted == {"id": accepted["id"], "status": "queued",
                        "uri": f"/PushNotifications/Operations/{accepted['id']}"}

    got = client.get(f"{SEND}/Operations/{accepted['id']}", headers=auth)
    assert got.status_code == 200
    operation = got.get_json()
    assert set(operation) == {"id", "status", "appName", "createdAt", "finishedAt", "targeted", "delivered",
                              "failed", "retried", "removed", "skipped", "acknowledged", "opened", "failures"}
    assert operation["id"] == accepted["id"] and operation["appName"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", operation["createdAt"])
    if backend is None:  # embedded: delivered at once (dry run)
        assert (operation["status"], operation["targeted"], operation["delivered"]) == ("done", 1, 1)
        assert operation["finishedAt"] is not None
    else:  # queued for the workers (tests/families/test_twilio_delivery.py follows it)
        assert (operation["status"], operation["targeted"], operation["finishedAt"]) == ("queued", 0, None)
    publish = redis_client.hgetall(keys.publish(instance["id"], publish_id_of(accepted["id"])))
    assert (publish["kind"], publish["targets"]) == ("users", '["alice", "nobody"]')
    assert "app" not in publish


def test_send_limited_to_an_app(client, instance, auth, redis_client):
    body = {"to": [{"userId": "alice"}], "content": {"title": "t"}, "appName": "test_app"}
    accepted = client.post(SEND, json=body, headers=auth).get_json()
    operation = client.get(f"{SEND}/Operations/{accepted['id']}", headers=auth).get_json()
    assert operation["appName"] == "test_app"
    assert redis_client.hget(keys.publish(instance["id"], publish_id_of(accepted["id"])), "app") == "test_app"


SEND_ROWS = [
    ("missing-to", {"content": {"title": "t"}}),
    ("to-not-a-list", {"to": {"userId": "a"}, "content": {"title": "t"}}),
    ("empty-to", {"to": [], "content": {"title": "t"}}),
    ("to-a-string", {"to": ["alice"], "content": {"title": "t"}}),
    ("to-without-user", {"to": [{}], "content": {"title": "t"}}),
    ("user-165", {"to": [{"userId": "u" * 165}], "content": {"title": "t"}}),
    ("1001-users", {"to": [{"userId": f"u{n}"} for n in range(1001)], "content": {"title": "t"}}),
    ("missing-content", {"to": [{"userId": "a"}]}),
    ("content-not-an-object", {"to": [{"userId": "a"}], "content": "hello"}),
    ("empty-content", {"to": [{"userId": "a"}], "content": {}}),
    ("title-not-a-string", {"to": [{"userId": "a"}], "content": {"title": 3}}),
    ("too-large", {"to": [{"userId": "a"}], "content": {"body": "x" * 5000}}),
    ("bad-app-name", {"to": [{"userId": "a"}], "content": {"title": "t"}, "appName": "no spaces"}),
]


@pytest.mark.parametrize("body", [r[1] for r in SEND_ROWS], ids=[r[0] for r in SEND_ROWS])
def test_send_errors(client, auth, body):
    assert_twilio_error(client.post(SEND, json=body, headers=auth), 400, 20001)


def test_send_to_1000_users(client, auth):
    body = {"to": [{"userId": f"u{n}"} for n in range(1000)], "content": {"body": "b"}}
    assert client.post(SEND, json=body, headers=auth).status_code == 202


@pytest.mark.parametrize("operation", ["comms_operation_" + "0" * 32, "pubid-1", "comms_operation_xyz"])
def test_unknown_operation_is_404(client, auth, operation):
    assert_twilio_error(client.get(f"{SEND}/Operations/{operation}", headers=auth), 404, 20404)


# --- authentication ---------------------------------------------------------------------

ROUTES = [
    ("post", REGISTRATIONS), ("get", f"{REGISTRATIONS}/x"), ("delete", f"{REGISTRATIONS}/x"),
    ("get", "/v1/Users/alice"), ("post", SEND), ("get", f"{SEND}/Operations/x"),
]


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize(
    "make",
    [
        lambda i, other: {},
        lambda i, other: {"Authorization": f"Bearer {i['secret_key']}"},
        lambda i, other: basic(i["id"], "wrong"),
        lambda i, other: basic(i["id"], i["client_token"]),
        lambda i, other: basic(i["id"], other["secret_key"]),
        lambda i, other: basic("8f0d2c1e-0000-4000-8000-000000000000", i["secret_key"]),
        lambda i, other: basic("not-an-instance", i["secret_key"]),
        lambda i, other: {"Authorization": "Basic !!!"},
    ],
    ids=["none", "bearer", "wrong-secret", "client-token", "other-instance-secret", "unknown-instance",
         "malformed-instance", "malformed-basic"],
)
def test_every_route_needs_basic_auth(client, instance, method, path, make):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    response = getattr(client, method)(path, json={}, headers=make(instance, other))
    error = assert_twilio_error(response, 401, 20003)
    assert error["message"] == "Authenticate"


def test_rotating_the_secret_key_invalidates_the_old_one(client, instance, auth):
    rotated = client.post(f"/admin/v1/instances/{instance['id']}/secret_key", headers=ADMIN).get_json()
    assert_twilio_error(client.get("/v1/Users/alice", headers=auth), 401, 20003)
    assert_twilio_error(client.get("/v1/Users/alice", headers=basic(instance["id"], rotated["secret_key"])),
                        404, 20404)


def test_a_deleted_instance_cannot_authenticate(client, instance, auth):
    assert client.delete(f"/admin/v1/instances/{instance['id']}", headers=ADMIN).status_code == 204
    assert_twilio_error(client.get("/v1/Users/alice", headers=auth), 401, 20003)


def test_unknown_paths_and_methods_answer_in_the_twilio_shape(client, auth):
    assert_twilio_error(client.put(SEND, json={}, headers=auth), 405, 20004)
    assert_twilio_error(client.get(f"{SEND}/Apps/test_app", headers=auth), 404, 20404)
    assert_twilio_error(client.get("/v1/Users/", headers=auth), 404, 20404)


def test_redis_down_gives_503_in_the_twilio_shape(redis_server):
    """With valid credentials, a Redis outage answers 503 {"code": 20503} within the deadline."""
    server = RedisServer()
    server.start()
    try:
        client = create_app(config.TestingConfig(server.url)).test_client()
        instance = client.post("/admin/v1/instances", json={"name": "outage"}, headers=ADMIN).get_json()
        server.stop()
        for method, path in ROUTES:
            started = time.monotonic()
            response = getattr(client, method)(path, json={"to": [{"userId": "a"}], "content": {"title": "t"}},
                                               headers=basic(instance["id"], instance["secret_key"]))
            assert time.monotonic() - started < 2.0
            assert_twilio_error(response, 503, 20503)
    finally:
        server.stop()
