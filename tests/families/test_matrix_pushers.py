"""Matrix pushers: ``GET /_matrix/client/v3/pushers`` and ``POST .../set``
(create, update, delete, append), their parameter errors and the access token,
all in the Matrix error shape; both backends."""
from __future__ import annotations

import pytest

from pushlite.storage import devices, pushers, records
from pushlite.storage.devices import MAX_DEVICES_PER_USER
from tests.conftest import ADMIN
from tests.families.conftest_matrix import auth, fcm_token, user_jwt

PUSHERS = "/_matrix/client/v3/pushers"
SET = f"{PUSHERS}/set"
GATEWAY = "https://1.1.1.1/_matrix/push/v1/notify"  # a public address: no DNS needed


def pusher(**overrides) -> dict:
    body = {
        "pushkey": "Xp/MzCt8/9DcSNE9cuiaoT5Ac55job3TdLSSmtmYl4A=",
        "kind": "http",
        "app_id": "face.mcapp.appy.prod",
        "app_display_name": "Appy McAppface",
        "device_display_name": "Alice's Phone",
        "profile_tag": "xyz",
        "lang": "en-US",
        "data": {"url": GATEWAY, "format": "event_id_only", "brand": "blue"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def set_pusher(client, instance, body: dict, user: str = "alice"):
    return client.post(SET, json=body, headers=auth(instance, user))


def get_pushers(client, instance, user: str = "alice") -> list[dict]:
    response = client.get(PUSHERS, headers=auth(instance, user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["pushers"]


def assert_matrix_error(response, status: int, errcode: str, text: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"errcode", "error"}, body
    assert body["errcode"] == errcode, body
    assert text in body["error"], body
    return body


# --- set and get ------------------------------------------------------------------


def test_set_then_get_shows_every_field(client, instance):
    body = pusher()
    response = set_pusher(client, instance, body)
    assert (response.status_code, response.get_json()) == (200, {})
    assert get_pushers(client, instance) == [{k: v for k, v in body.items()}]


def test_the_seed_example_with_encryption_and_append(client, instance):
    body = {
        "lang": "en", "kind": "http", "app_display_name": "Mat Rix", "device_display_name": "iPhone 9",
        "app_id": "com.example.app.ios", "pushkey": "<APNS/GCM TOKEN>",
        "data": {"url": GATEWAY},
        "encryption": {"method": "aes-hmac-sha256", "initial_key_period": "2023-10",
                       "iss": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                       "key_identifier": "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
        "append": False,
    }
    assert set_pusher(client, instance, body).status_code == 200
    [got] = get_pushers(client, instance)
    assert got == {k: v for k, v in body.items() if k != "append"}


def test_a_pusher_is_a_matrix_device_of_the_user(client, redis_client, instance):
    set_pusher(client, instance, pusher(pushkey="pk-1", app_id="com.example"))
    device_id = pushers.own_id(instance["id"], "alice", "com.example", "pk-1")
    assert device_id == records.derive_id(instance["id"], "matrix", "alice\ncom.example\npk-1")
    device = devices.get(redis_client, instance["id"], device_id)
    assert (device.platform, device.token, device.bundle_id, device.users) == ("matrix", "pk-1", "com.example", ["alice"])
    assert device.metadata["kind"] == "http" and isinstance(device.metadata["pushkey_ts"], int)
    assert devices.user_device_ids(redis_client, instance["id"], "alice") == [device_id]


def test_set_again_updates_the_same_pusher(client, instance):
    set_pusher(client, instance, pusher())
    set_pusher(client, instance, pusher(device_display_name="Alice's new phone", profile_tag=None))
    [got] = get_pushers(client, instance)
    assert got["device_display_name"] == "Alice's new phone" and "profile_tag" not in got


def test_same_pushkey_other_app_id_is_another_pusher(client, instance):
    set_pusher(client, instance, pusher(app_id="com.example.a"))
    set_pusher(client, instance, pusher(app_id="com.example.b"))
    assert [p["app_id"] for p in get_pushers(client, instance)] == ["com.example.a", "com.example.b"]


def test_no_pushers_is_an_empty_list(client, instance):
    assert get_pushers(client, instance) == []


def test_a_users_phones_are_not_pushers(client, instance):
    client.post("/users/@me/devices", json={"provider": "gcm", "token": fcm_token()}, headers=auth(instance))
    set_pusher(client, instance, pusher())
    assert len(get_pushers(client, instance)) == 1


# --- append ------------------------------------------------------------------------


def test_without_append_other_users_lose_the_pusher(client, redis_client, instance):
    set_pusher(client, instance, pusher(), "bob")
    set_pusher(client, instance, pusher(), "alice")
    assert get_pushers(client, instance, "bob") == []
    assert len(get_pushers(client, instance, "alice")) == 1
    assert devices.user_device_ids(redis_client, instance["id"], "bob") == []


def test_with_append_other_users_keep_it(client, instance):
    set_pusher(client, instance, pusher(), "bob")
    set_pusher(client, instance, pusher(append=True), "alice")
    assert len(get_pushers(client, instance, "bob")) == 1
    assert len(get_pushers(client, instance, "alice")) == 1


def test_append_false_keeps_other_users_of_other_pushkeys(client, instance):
    set_pusher(client, instance, pusher(pushkey="bobs"), "bob")
    set_pusher(client, instance, pusher(pushkey="alices"), "alice")
    assert [p["pushkey"] for p in get_pushers(client, instance, "bob")] == ["bobs"]


# --- delete -------------------------------------------------------------------------


def test_kind_null_deletes_the_pusher(client, redis_client, instance):
    set_pusher(client, instance, pusher())
    response = set_pusher(client, instance, {"kind": None, "app_id": pusher()["app_id"], "pushkey": pusher()["pushkey"]})
    assert (response.status_code, response.get_json()) == (200, {})
    assert get_pushers(client, instance) == []
    assert devices.user_device_ids(redis_client, instance["id"], "alice") == []


def test_delete_keeps_the_pusher_for_users_that_appended(client, instance):
    set_pusher(client, instance, pusher(), "bob")
    set_pusher(client, instance, pusher(append=True), "alice")
    set_pusher(client, instance, {"kind": None, "app_id": pusher()["app_id"], "pushkey": pusher()["pushkey"]}, "alice")
    assert get_pushers(client, instance, "alice") == []
    assert len(get_pushers(client, instance, "bob")) == 1


def test_delete_of_a_pusher_that_does_not_exist_is_fine(client, instance):
    response = set_pusher(client, instance, {"kind": None, "app_id": "com.example", "pushkey": "nothing"})
    assert (response.status_code, response.get_json()) == (200, {})


def test_delete_never_touches_another_users_pusher(client, instance):
    set_pusher(client, instance, pusher(), "bob")
    set_pusher(client, instance, {"kind": None, "app_id": pusher()["app_id"], "pushkey": pusher()["pushkey"]}, "eve")
    assert len(get_pushers(client, instance, "bob")) == 1


def test_delete_needs_no_display_names(client, instance):
    set_pusher(client, instance, pusher())
    body = {"kind": None, "app_id": pusher()["app_id"], "pushkey": pusher()["pushkey"], "data": None}
    assert set_pusher(client, instance, body).status_code == 200


# --- parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["pushkey", "app_id", "kind"])
def test_always_required(client, instance, missing):
    body = pusher()
    del body[missing]
    assert_matrix_error(set_pusher(client, instance, body), 400, "M_MISSING_PARAM", missing)


@pytest.mark.parametrize("missing", ["app_display_name", "device_display_name", "lang", "data"])
def test_required_when_kind_is_not_null(client, instance, missing):
    for body in (pusher(**{missing: ...}), pusher(**{missing: None})):
        assert_matrix_error(set_pusher(client, instance, body), 400, "M_MISSING_PARAM", missing)


def test_every_missing_parameter_is_named(client, instance):
    error = assert_matrix_error(set_pusher(client, instance, {"kind": "http"}), 400, "M_MISSING_PARAM")
    assert "app_id" in error["error"] and "pushkey" in error["error"]


def test_data_url_is_required_for_http(client, instance):
    assert_matrix_error(set_pusher(client, instance, pusher(data={"format": "event_id_only"})), 400,
                        "M_MISSING_PARAM", "data.url")


@pytest.mark.parametrize("overrides, text", [
    ({"kind": "email"}, "only http"),
    ({"kind": "HTTP"}, "only http"),
    ({"pushkey": "k" * 513}, "512 bytes"),
    ({"pushkey": "é" * 257}, "512 bytes"),  # 514 bytes in UTF-8
    ({"app_id": "a" * 65}, "64 characters"),
    ({"pushkey": ""}, "empty"),
    ({"app_id": ""}, "empty"),
    ({"pushkey": "a\x1fb"}, "control characters"),
    ({"app_id": "a\nb"}, "control characters"),
    ({"pushkey": None}, "pushkey"),
    ({"pushkey": 5}, "pushkey"),
    ({"lang": ["en"]}, "lang"),
    ({"data": "https://x"}, "data"),
    ({"encryption": "aes"}, "encryption"),
    ({"append": "sometimes"}, "append"),
    ({"data": {"url": 5}}, "data.url"),
    ({"data": {"url": GATEWAY, "format": 1}}, "data.format"),
    ({"data": {"url": "https://1.1.1.1/other/path"}}, "/_matrix/push/v1/notify"),
    ({"data": {"url": "http://1.1.1.1/_matrix/push/v1/notify"}}, "allowlist"),
    ({"data": {"url": "https://127.0.0.1/_matrix/push/v1/notify"}}, "non-public"),
])
def test_invalid_parameters(client, instance, overrides, text):
    error = assert_matrix_error(set_pusher(client, instance, pusher(**overrides)), 400, "M_INVALID_PARAM")
    assert text in error["error"], error


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "1", None, [], {}])
def test_append_must_be_a_json_boolean(client, instance, value):
    error = assert_matrix_error(set_pusher(client, instance, pusher(append=value)), 400, "M_INVALID_PARAM")
    assert "append" in error["error"]
    assert get_pushers(client, instance) == []


@pytest.mark.parametrize("value", [1, True, ["http"], {"http": 1}])
def test_kind_must_be_a_string_or_null(client, instance, value):
    error = assert_matrix_error(set_pusher(client, instance, pusher(kind=value)), 400, "M_INVALID_PARAM")
    assert "kind" in error["error"]
    assert get_pushers(client, instance) == []


@pytest.mark.parametrize("value", [True, False])
def test_append_true_and_false_are_read(client, instance, value):
    assert set_pusher(client, instance, pusher(append=value)).status_code == 200


def test_limits_are_inclusive(client, instance):
    body = pusher(pushkey="k" * 512, app_id="a" * 64)
    assert set_pusher(client, instance, body).status_code == 200


@pytest.mark.parametrize("data, content_type, errcode", [
    ("{not json", "application/json", "M_NOT_JSON"),
    ("", "application/json", "M_NOT_JSON"),
    ("[1, 2]", "application/json", "M_BAD_JSON"),
    ('"text"', "application/json", "M_BAD_JSON"),
    # Python's json reads these; a lone surrogate cannot be stored, deep nesting overflows the stack.
    ('{"pushkey": "\\ud800", "kind": null, "app_id": "a"}', "application/json", "M_NOT_JSON"),
    ("[" * 100_000 + "]" * 100_000, "application/json", "M_NOT_JSON"),
])
def test_a_body_that_is_not_a_json_object(client, instance, data, content_type, errcode):
    response = client.post(SET, data=data, content_type=content_type, headers=auth(instance))
    assert_matrix_error(response, 400, errcode)


def test_a_json_body_without_a_json_content_type_is_read(client, instance):
    import json

    response = client.post(SET, data=json.dumps(pusher()), content_type="text/plain", headers=auth(instance))
    assert response.status_code == 200


def test_pushers_count_toward_the_device_cap(client, redis_client, instance):
    for n in range(MAX_DEVICES_PER_USER):
        devices.register_for_user(redis_client, instance["id"], "alice", [("fcm", None, fcm_token(n))])
    assert_matrix_error(set_pusher(client, instance, pusher()), 400, "M_LIMIT_EXCEEDED", "100")
    assert get_pushers(client, instance) == []


def test_updating_a_pusher_at_the_cap_is_fine(client, redis_client, instance):
    set_pusher(client, instance, pusher())
    for n in range(MAX_DEVICES_PER_USER - 1):
        devices.register_for_user(redis_client, instance["id"], "alice", [("fcm", None, fcm_token(n))])
    assert set_pusher(client, instance, pusher(lang="de")).status_code == 200


# --- access token and other errors ---------------------------------------------------


@pytest.mark.parametrize("method, path", [("get", PUSHERS), ("post", SET)])
def test_missing_access_token(client, instance, method, path):
    for headers in ({}, {"Authorization": "Basic abc"}):
        response = getattr(client, method)(path, json=pusher(), headers=headers)
        assert_matrix_error(response, 401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("method, path", [("get", PUSHERS), ("post", SET)])
def test_unknown_access_token(client, instance, method, path):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    for headers in (
        {"Authorization": "Bearer not-a-jwt"},
        auth(instance, expires_in=-5),
        auth(instance, secret=other["secret_key"]),
        auth(instance, issuer="https://example.com"),
        {"Authorization": "Bearer " + user_jwt(instance, sub=None)},
    ):
        response = getattr(client, method)(path, json=pusher(), headers=headers)
        assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")


def test_users_are_separate_per_instance(client, instance):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    set_pusher(client, instance, pusher())
    assert get_pushers(client, other) == []


@pytest.mark.parametrize("method, path, status", [
    ("get", "/_matrix/client/v3/nothing", 404),
    ("get", "/_matrix/client/v3/pushers/set", 405),
    ("delete", PUSHERS, 405),
    ("get", "/_matrix/push/v1/notify", 404),
])
def test_unknown_routes_under_matrix_are_unrecognized(client, instance, method, path, status):
    response = getattr(client, method)(path, headers=auth(instance))
    assert_matrix_error(response, status, "M_UNRECOGNIZED")


def test_a_body_over_the_limit_is_m_too_large(client, instance):
    response = client.post(SET, data="x" * (1024 * 1024 + 1), content_type="application/json", headers=auth(instance))
    assert_matrix_error(response, 413, "M_TOO_LARGE")


def test_the_family_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    assert "get" in spec["paths"][PUSHERS]
    set_op = spec["paths"][SET]["post"]
    body = set_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"pushkey", "kind", "app_id", "data", "append"} <= set(spec["components"]["schemas"][body]["properties"])
    assert set_op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/MatrixError")
    assert set(spec["components"]["schemas"]["MatrixError"]["properties"]) == {"errcode", "error"}
