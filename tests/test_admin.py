"""The operator's admin API (/admin/v1): instances, their secret keys, and what
deleting or rotating them does to the rest of the service."""
from __future__ import annotations

import json
import logging
import time
import uuid

import jwt
import pytest

from tests.conftest import ADMIN

FCM_TOKEN = "fcm-token-0123456789abcdef"


def register_fcm(client, instance_id: str, token: str = FCM_TOKEN) -> str:
    response = client.post(f"/device_api/v1/instances/{instance_id}/devices/fcm", json={"token": token})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["id"]


def user_jwt(instance_id: str, secret_key: str, user_id: str = "alice") -> str:
    claims = {"sub": user_id, "iss": f"pushlite:{instance_id}", "exp": int(time.time()) + 600}
    return jwt.encode(claims, secret_key, algorithm="HS256")


def set_user(client, instance_id: str, device_id: str, token: str):
    return client.put(
        f"/device_api/v1/instances/{instance_id}/devices/fcm/{device_id}/user",
        headers={"Authorization": f"Bearer {token}"},
    )


def instance_keys(redis_client, instance_id: str) -> list[str]:
    return sorted(redis_client.scan_iter(match="{%s}*" % instance_id))


def assert_smorest_error(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body.get("message", ""), str)
    return body


# --- create, list, get ------------------------------------------------------


def test_create_returns_the_instance_with_its_secret(client):
    response = client.post("/admin/v1/instances", json={"name": "my app"}, headers=ADMIN)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "name", "secret_key", "client_token", "created_at"}
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["name"] == "my app"
    assert body["secret_key"] and body["client_token"]
    assert body["secret_key"] != body["client_token"]
    assert abs(body["created_at"] - time.time()) < 60


def test_two_instances_get_different_ids_and_keys(client):
    a = client.post("/admin/v1/instances", json={"name": "a"}, headers=ADMIN).get_json()
    b = client.post("/admin/v1/instances", json={"name": "b"}, headers=ADMIN).get_json()
    assert a["id"] != b["id"]
    assert a["secret_key"] != b["secret_key"]
    assert a["client_token"] != b["client_token"]


def test_list_and_get_never_show_the_secret_key(client, instance):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()

    listed = client.get("/admin/v1/instances", headers=ADMIN)
    assert listed.status_code == 200
    items = listed.get_json()
    assert {i["id"] for i in items} == {instance["id"], other["id"]}
    for item in items:
        assert "secret_key" not in item
        assert set(item) == {"id", "name", "client_token", "created_at"}
    assert instance["secret_key"] not in listed.get_data(as_text=True)
    assert other["secret_key"] not in listed.get_data(as_text=True)

    one = client.get(f"/admin/v1/instances/{instance['id']}", headers=ADMIN)
    assert one.status_code == 200
    assert one.get_json() == {k: v for k, v in instance.items() if k != "secret_key"}
    assert instance["secret_key"] not in one.get_data(as_text=True)


def test_list_is_empty_at_first(client):
    response = client.get("/admin/v1/instances", headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json() == []


# --- delete -------------------------------------------------------------------


def test_delete_removes_every_key_of_the_instance_only(client, redis_client, instance):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    for iid in (instance["id"], other["id"]):
        device_id = register_fcm(client, iid)
        assert client.post(
            f"/device_api/v1/instances/{iid}/devices/fcm/{device_id}/interests/news"
        ).status_code == 200
        assert set_user(client, iid, device_id, user_jwt(iid, instance["secret_key"] if iid == instance["id"]
                                                          else other["secret_key"])).status_code == 200
        register_fcm(client, iid, token="fcm-token-second-device-0123")
    assert instance_keys(redis_client, instance["id"])
    other_before = {k: redis_client.type(k) for k in instance_keys(redis_client, other["id"])}
    other_dump = {k: redis_client.dump(k) for k in other_before}
    assert len(other_before) >= 3  # instance hash, device bucket(s), interest set, user bucket

    response = client.delete(f"/admin/v1/instances/{instance['id']}", headers=ADMIN)
    assert response.status_code == 204
    assert response.get_data() == b""

    assert instance_keys(redis_client, instance["id"]) == []
    assert {k: redis_client.dump(k) for k in instance_keys(redis_client, other["id"])} == other_dump

    assert client.get(f"/admin/v1/instances/{instance['id']}", headers=ADMIN).status_code == 404
    ids = [i["id"] for i in client.get("/admin/v1/instances", headers=ADMIN).get_json()]
    assert ids == [other["id"]]


def test_devices_of_a_deleted_instance_are_gone(client, instance):
    iid = instance["id"]
    device_id = register_fcm(client, iid)
    assert client.delete(f"/admin/v1/instances/{iid}", headers=ADMIN).status_code == 204

    got = client.get(f"/device_api/v1/instances/{iid}/devices/fcm/{device_id}")
    assert got.status_code == 404
    assert got.get_json()["error"] == "Instance not found"

    again = client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": FCM_TOKEN})
    assert again.status_code == 404
    assert again.get_json()["error"] == "Instance not found"


def test_delete_twice_is_404(client, instance):
    assert client.delete(f"/admin/v1/instances/{instance['id']}", headers=ADMIN).status_code == 204
    body = assert_smorest_error(client.delete(f"/admin/v1/instances/{instance['id']}", headers=ADMIN), 404)
    assert body["message"]


# --- secret key rotation ------------------------------------------------------


def test_rotate_secret_key(client, instance):
    iid = instance["id"]
    device_id = register_fcm(client, iid)
    old_token = user_jwt(iid, instance["secret_key"])

    response = client.post(f"/admin/v1/instances/{iid}/secret_key", headers=ADMIN)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == iid
    new_key = body["secret_key"]
    assert new_key and new_key != instance["secret_key"]

    refused = set_user(client, iid, device_id, old_token)
    assert refused.status_code == 401
    assert set(refused.get_json()) == {"error", "description"}

    accepted = set_user(client, iid, device_id, user_jwt(iid, new_key))
    assert accepted.status_code == 200

    # The new key is shown once: get and list still hide it.
    assert new_key not in client.get(f"/admin/v1/instances/{iid}", headers=ADMIN).get_data(as_text=True)
    assert new_key not in client.get("/admin/v1/instances", headers=ADMIN).get_data(as_text=True)


def test_rotate_keeps_devices_and_other_fields(client, instance):
    iid = instance["id"]
    device_id = register_fcm(client, iid)
    client.post(f"/admin/v1/instances/{iid}/secret_key", headers=ADMIN)
    got = client.get(f"/admin/v1/instances/{iid}", headers=ADMIN).get_json()
    assert got == {k: v for k, v in instance.items() if k != "secret_key"}
    assert client.get(f"/device_api/v1/instances/{iid}/devices/fcm/{device_id}").status_code == 200


def test_rotate_unknown_instance_is_404(client):
    body = assert_smorest_error(client.post(f"/admin/v1/instances/{uuid.uuid4()}/secret_key", headers=ADMIN), 404)
    assert body["message"]


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic dGVzdC1hZG1pbi10b2tlbjo="},
        {"Authorization": "Bearer"},
        {"Authorization": "test-admin-token"},
    ],
    ids=["missing", "wrong", "basic", "empty-bearer", "no-scheme"],
)
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/admin/v1/instances"),
        ("post", "/admin/v1/instances"),
        ("get", "/admin/v1/instances/{iid}"),
        ("delete", "/admin/v1/instances/{iid}"),
        ("post", "/admin/v1/instances/{iid}/secret_key"),
    ],
)
def test_admin_token_required(client, instance, headers, method, path):
    response = getattr(client, method)(path.format(iid=instance["id"]), json={"name": "x"}, headers=headers)
    body = assert_smorest_error(response, 401)
    assert body["message"]
    assert instance["secret_key"] not in response.get_data(as_text=True)
    # Nothing happened.
    got = client.get(f"/admin/v1/instances/{instance['id']}", headers=ADMIN)
    assert got.status_code == 200
    assert len(client.get("/admin/v1/instances", headers=ADMIN).get_json()) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {}},
        {"json": {"name": ""}},
        {"json": {"name": None}},
        {"json": {"name": 12}},
        {"json": {"label": "x"}},
        {"data": "name=x", "content_type": "application/x-www-form-urlencoded"},
        {"data": "not json", "content_type": "text/plain"},
    ],
    ids=["empty", "empty-name", "null-name", "int-name", "no-name", "form", "text"],
)
def test_bad_create_body_is_422(client, kwargs):
    response = client.post("/admin/v1/instances", headers=ADMIN, **kwargs)
    body = assert_smorest_error(response, 422)
    assert body.get("errors")
    assert client.get("/admin/v1/instances", headers=ADMIN).get_json() == []


def test_malformed_json_body_is_an_error_in_admin_shape(client):
    response = client.post("/admin/v1/instances", headers=ADMIN, data="{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert_smorest_error(response, response.status_code)
    assert client.get("/admin/v1/instances", headers=ADMIN).get_json() == []


@pytest.mark.parametrize("data", ['{"name": "\\ud800"}', "[" * 100_000 + "]" * 100_000],
                         ids=["lone-surrogate", "nested-too-deep"])
def test_json_that_cannot_be_stored_is_400(client, data):
    response = client.post("/admin/v1/instances", headers=ADMIN, data=data, content_type="application/json")
    assert assert_smorest_error(response, 400)["errors"] == {"json": ["Invalid JSON body."]}
    assert client.get("/admin/v1/instances", headers=ADMIN).get_json() == []


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_instance_is_404_json(client, method):
    response = getattr(client, method)(f"/admin/v1/instances/{uuid.uuid4()}", headers=ADMIN)
    body = assert_smorest_error(response, 404)
    assert body["message"]


def test_unknown_admin_path_and_method_are_json(client):
    assert_smorest_error(client.get("/admin/v1/nothing", headers=ADMIN), 404)
    assert_smorest_error(client.put("/admin/v1/instances", headers=ADMIN, json={}), 405)


# --- the secret key does not leak --------------------------------------------


def test_secret_key_never_in_other_responses_or_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    created = client.post("/admin/v1/instances", json={"name": "leak"}, headers=ADMIN)
    iid, first_key = created.get_json()["id"], created.get_json()["secret_key"]
    rotated = client.post(f"/admin/v1/instances/{iid}/secret_key", headers=ADMIN)
    second_key = rotated.get_json()["secret_key"]
    device_id = register_fcm(client, iid)

    others = [
        client.get("/admin/v1/instances", headers=ADMIN),
        client.get(f"/admin/v1/instances/{iid}", headers=ADMIN),
        client.get(f"/admin/v1/instances/{iid}", headers={"Authorization": "Bearer nope"}),
        client.post(f"/admin/v1/instances/{iid}/secret_key"),
        client.post("/admin/v1/instances", json={"name": ""}, headers=ADMIN),
        client.get(f"/admin/v1/instances/{uuid.uuid4()}", headers=ADMIN),
        set_user(client, iid, device_id, user_jwt(iid, first_key)),  # old key: refused
        set_user(client, iid, device_id, user_jwt(iid, "wrong-key-" + "0" * 40)),
        set_user(client, iid, device_id, "not-a-jwt"),
        client.get(f"/device_api/v1/instances/{iid}/devices/fcm/{device_id}"),
    ]
    assert [r.status_code for r in others] == [200, 200, 401, 401, 422, 404, 401, 401, 401, 200]
    for response in others:
        text = response.get_data(as_text=True)
        assert first_key not in text and second_key not in text, text

    for record in caplog.records:
        rendered = record.getMessage() + repr(record.args) + str(record.exc_text or "")
        if record.exc_info:
            rendered += logging.Formatter().formatException(record.exc_info)
        assert first_key not in rendered and second_key not in rendered, rendered


def test_create_response_is_json_with_utf8_name(client):
    response = client.post("/admin/v1/instances", json={"name": "café ☕"}, headers=ADMIN)
    assert response.status_code == 201
    iid = response.get_json()["id"]
    got = client.get(f"/admin/v1/instances/{iid}", headers=ADMIN)
    assert json.loads(got.get_data(as_text=True))["name"] == "café ☕"
