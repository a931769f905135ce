"""Beams Device API: devices (register, get, delete, metadata, FCM token, user
id) as the SDKs see them, what each call leaves in Redis, and tenant isolation."""
from __future__ import annotations

import time

import jwt
import pytest

from pushlite.storage import keys, records
from tests.conftest import ADMIN

APNS_METADATA = {"sdkVersion": "4.0.0", "iosVersion": "17.4", "macosVersion": "14.4"}
FCM_METADATA = {"sdkVersion": "1.9.0", "androidVersion": "14"}


def base(instance_id: str) -> str:
    return f"/device_api/v1/instances/{instance_id}/devices"


def apns_token(n: int = 0) -> str:
    return f"{n:064x}"


def fcm_token(n: int = 0) -> str:
    return f"fcm-token:{n:020d}"


def register(client, instance_id: str, platform: str, token: str, **body) -> dict:
    if platform == "apns":
        body.setdefault("bundleIdentifier", "com.example.app")
    response = client.post(f"{base(instance_id)}/{platform}", json={"token": token, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def user_jwt(instance: dict, user_id: str = "alice") -> str:
    claims = {"sub": user_id, "iss": f"pushlite:{instance['id']}", "exp": int(time.time()) + 600}
    return jwt.encode(claims, instance["secret_key"], algorithm="HS256")


def set_user(client, instance: dict, platform: str, device_id: str, user_id: str = "alice"):
    return client.put(
        f"{base(instance['id'])}/{platform}/{device_id}/user",
        headers={"Authorization": f"Bearer {user_jwt(instance, user_id)}"},
    )


def stored(redis_client, instance_id: str, device_id: str) -> records.Device | None:
    record = redis_client.hget(keys.device_bucket(instance_id, device_id), device_id)
    return None if record is None else records.unpack(device_id, record)


def user_devices(redis_client, instance_id: str, user_id: str) -> list[str]:
    value = redis_client.hget(keys.user_bucket(instance_id, user_id), user_id)
    return value.split(",") if value else []


def interest_members(redis_client, instance_id: str, name: str) -> set[str]:
    return set(redis_client.smembers(keys.interest(instance_id, name)))


@pytest.fixture
def other_instance(client) -> dict:
    response = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN)
    assert response.status_code == 201
    return response.get_json()


# --- register -----------------------------------------------------------------


PLATFORMS = [
    pytest.param("apns", apns_token(1), APNS_METADATA, id="apns"),
    pytest.param("fcm", fcm_token(1), FCM_METADATA, id="fcm"),
]


@pytest.mark.parametrize("platform, token, metadata", PLATFORMS)
def test_register_returns_an_id_and_an_empty_initial_interest_set(
    client, redis_client, instance, platform, token, metadata
):
    body = register(client, instance["id"], platform, token, metadata=metadata)
    assert set(body) == {"id", "initialInterestSet"}
    assert isinstance(body["id"], str) and body["id"]
    assert body["initialInterestSet"] == []
    device = stored(redis_client, instance["id"], body["id"])
    assert device is not None
    assert (device.platform, device.token, device.metadata) == (platform, token, metadata)


def test_register_apns_stores_the_bundle_identifier(client, redis_client, instance):
    body = register(client, instance["id"], "apns", apns_token(), bundleIdentifier="com.example.chat")
    assert stored(redis_client, instance["id"], body["id"]).bundle_id == "com.example.chat"


@pytest.mark.parametrize("platform, token, metadata", PLATFORMS)
def test_registering_the_same_token_again_returns_the_same_device_and_its_interests(
    client, redis_client, instance, platform, token, metadata
):
    first = register(client, instance["id"], platform, token, metadata=metadata)
    response = client.put(
        f"{base(instance['id'])}/{platform}/{first['id']}/interests", json={"interests": ["b", "a"]}
    )
    assert response.status_code == 200
    again = register(client, instance["id"], platform, token, metadata=metadata)
    assert again["id"] == first["id"]
    assert sorted(again["initialInterestSet"]) == ["a", "b"]
    bucket = redis_client.hgetall(keys.device_bucket(instance["id"], first["id"]))
    assert list(bucket) == [first["id"]]


def test_different_tokens_get_different_devices(client, instance):
    ids = {register(client, instance["id"], "fcm", fcm_token(n))["id"] for n in range(20)}
    ids |= {register(client, instance["id"], "apns", apns_token(n))["id"] for n in range(20)}
    assert len(ids) == 40


@pytest.mark.parametrize("token", [apns_token(7), "AB" * 32, "0f" * 100], ids=["64-lower", "64-upper", "200"])
def test_register_apns_accepts_hex_tokens_of_64_to_200_digits(client, instance, token):
    register(client, instance["id"], "apns", token)


@pytest.mark.parametrize(
    "token", ["a" * 20, "A-z_0:9." * 3, "x" * 4096], ids=["20", "all-chars", "4096"]
)
def test_register_fcm_accepts_tokens_of_20_to_4096_chars(client, instance, token):
    register(client, instance["id"], "fcm", token)


# --- get ------------------------------------------------------------------------


@pytest.mark.parametrize("platform, token, metadata", PLATFORMS)
def test_get_device_returns_id_user_id_and_metadata(client, instance, platform, token, metadata):
    device_id = register(client, instance["id"], platform, token, metadata=metadata)["id"]
    response = client.get(f"{base(instance['id'])}/{platform}/{device_id}")
    assert response.status_code == 200
    assert response.get_json() == {"id": device_id, "userId": "", "metadata": metadata}


def test_get_device_through_the_other_platform_is_not_found(client, instance):
    apns_id = register(client, instance["id"], "apns", apns_token())["id"]
    fcm_id = register(client, instance["id"], "fcm", fcm_token())["id"]
    for platform, device_id in (("fcm", apns_id), ("apns", fcm_id)):
        response = client.get(f"{base(instance['id'])}/{platform}/{device_id}")
        assert response.status_code == 404
        assert response.get_json() == {"error": "Device not found", "description": "Could not find the device."}


# --- delete ---------------------------------------------------------------------


@pytest.mark.parametrize("platform, token, metadata", PLATFORMS)
def test_delete_removes_the_device_its_interests_and_its_user(
    client, redis_client, instance, platform, token, metadata
):
    iid = instance["id"]
    device_id = register(client, iid, platform, token, metadata=metadata)["id"]
    keeper = register(client, iid, "fcm", fcm_token(99))["id"]
    for each in (device_id, keeper):
        assert client.put(f"{base(iid)}/{'fcm' if each == keeper else platform}/{each}/interests",
                          json={"interests": ["news", "sport"]}).status_code == 200
        assert set_user(client, instance, "fcm" if each == keeper else platform, each).status_code == 200
    assert interest_members(redis_client, iid, "news") == {device_id, keeper}

    response = client.delete(f"{base(iid)}/{platform}/{device_id}")
    assert response.status_code == 200

    # In Redis: no record, not in any interest set, not in the user.
    assert stored(redis_client, iid, device_id) is None
    assert interest_members(redis_client, iid, "news") == {keeper}
    assert interest_members(redis_client, iid, "sport") == {keeper}
    assert user_devices(redis_client, iid, "alice") == [keeper]

    # Through the API: gone, and registering its token again starts afresh.
    response = client.get(f"{base(iid)}/{platform}/{device_id}")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Device not found"
    assert client.get(f"{base(iid)}/{platform}/{device_id}/interests").status_code == 404
    again = register(client, iid, platform, token)
    assert again["initialInterestSet"] == []
    assert client.get(f"{base(iid)}/{platform}/{again['id']}").get_json()["userId"] == ""


def test_delete_leaves_no_key_behind(client, redis_client, instance):
    iid = instance["id"]
    before = set(redis_client.scan_iter(match=keys.instance_pattern(iid)))
    device_id = register(client, iid, "fcm", fcm_token())["id"]
    client.put(f"{base(iid)}/fcm/{device_id}/interests", json={"interests": ["a", "b", "c"]})
    assert set_user(client, instance, "fcm", device_id).status_code == 200
    assert client.delete(f"{base(iid)}/fcm/{device_id}").status_code == 200
    assert set(redis_client.scan_iter(match=keys.instance_pattern(iid))) == before


def test_delete_twice_or_an_unknown_device_is_not_an_error(client, instance):
    iid = instance["id"]
    device_id = register(client, iid, "fcm", fcm_token())["id"]
    assert client.delete(f"{base(iid)}/fcm/{device_id}").status_code == 200
    assert client.delete(f"{base(iid)}/fcm/{device_id}").status_code == 200
    assert client.delete(f"{base(iid)}/apns/0123456789ab").status_code == 200


def test_delete_through_the_other_platform_keeps_the_device(client, instance):
    iid = instance["id"]
    device_id = register(client, iid, "fcm", fcm_token())["id"]
    client.delete(f"{base(iid)}/apns/{device_id}")
    assert client.get(f"{base(iid)}/fcm/{device_id}").status_code == 200


# --- metadata -------------------------------------------------------------------


@pytest.mark.parametrize(
    "platform, token, new",
    [
        pytest.param("apns", apns_token(), {"sdkVersion": "5.0.0", "iosVersion": "18.0", "macosVersion": "15.0"},
                     id="apns"),
        pytest.param("fcm", fcm_token(), {"sdkVersion": "2.0.0", "androidVersion": "15"}, id="fcm"),
    ],
)
def test_update_metadata(client, redis_client, instance, platform, token, new):
    iid = instance["id"]
    old = APNS_METADATA if platform == "apns" else FCM_METADATA
    device_id = register(client, iid, platform, token, metadata=old)["id"]
    response = client.put(f"{base(iid)}/{platform}/{device_id}/metadata", json=new)
    assert response.status_code == 200
    assert client.get(f"{base(iid)}/{platform}/{device_id}").get_json()["metadata"] == new
    assert stored(redis_client, iid, device_id).metadata == new


def test_update_metadata_keeps_interests_and_user(client, instance):
    iid = instance["id"]
    device_id = register(client, iid, "fcm", fcm_token())["id"]
    client.post(f"{base(iid)}/fcm/{device_id}/interests/news")
    assert set_user(client, instance, "fcm", device_id).status_code == 200
    assert client.put(f"{base(iid)}/fcm/{device_id}/metadata", json=FCM_METADATA).status_code == 200
    assert client.get(f"{base(iid)}/fcm/{device_id}").get_json()["userId"] == "alice"
    assert client.get(f"{base(iid)}/fcm/{device_id}/interests").get_json()["interests"] == ["news"]


# --- FCM token ------------------------------------------------------------------


def test_update_fcm_token_moves_the_device_to_the_new_token(client, redis_client, instance):
    iid = instance["id"]
    old, new = fcm_token(1), fcm_token(2)
    device_id = register(client, iid, "fcm", old)["id"]
    client.post(f"{base(iid)}/fcm/{device_id}/interests/news")

    response = client.put(f"{base(iid)}/fcm/{device_id}/token", json={"token": new})
    assert response.status_code == 200
    assert stored(redis_client, iid, device_id).token == new

    # The new token finds the same device, with its interests.
    again = register(client, iid, "fcm", new)
    assert again == {"id": device_id, "initialInterestSet": ["news"]}
    # The old token is free: it registers as a new device.
    fresh = register(client, iid, "fcm", old)
    assert fresh["id"] != device_id
    assert fresh["initialInterestSet"] == []
    assert client.get(f"{base(iid)}/fcm/{device_id}").status_code == 200
    assert interest_members(redis_client, iid, "news") == {device_id}


def test_update_fcm_token_to_the_same_token_changes_nothing(client, instance):
    iid = instance["id"]
    device_id = register(client, iid, "fcm", fcm_token())["id"]
    assert client.put(f"{base(iid)}/fcm/{device_id}/token", json={"token": fcm_token()}).status_code == 200
    assert register(client, iid, "fcm", fcm_token())["id"] == device_id


def test_update_fcm_token_twice_then_register_each_token(client, instance):
    iid = instance["id"]
    device_id = register(client, iid, "fcm", fcm_token(1))["id"]
    for n in (2, 3):
        assert client.put(f"{base(iid)}/fcm/{device_id}/token", json={"token": fcm_token(n)}).status_code == 200
    assert register(client, iid, "fcm", fcm_token(3))["id"] == device_id
    others = {register(client, iid, "fcm", fcm_token(n))["id"] for n in (1, 2)}
    assert device_id not in others and len(others) == 2


# --- user id --------------------------------------------------------------------


@pytest.mark.parametrize("platform, token, metadata", PLATFORMS)
def test_set_user_id(client, redis_client, instance, platform, token, metadata):
    iid = instance["id"]
    device_id = register(client, iid, platform, token, metadata=metadata)["id"]
    response = set_user(client, instance, platform, device_id, "alice@example.com")
    assert response.status_code == 200
    body = client.get(f"{base(iid)}/{platform}/{device_id}").get_json()
    assert body == {"id": device_id, "userId": "alice@example.com", "metadata": metadata}
    assert user_devices(redis_client, iid, "alice@example.com") == [device_id]


def test_a_user_can_have_devices_on_both_platforms(client, redis_client, instance):
    iid = instance["id"]
    apns_id = register(client, iid, "apns", apns_token())["id"]
    fcm_id = register(client, iid, "fcm", fcm_token())["id"]
    assert set_user(client, instance, "apns", apns_id).status_code == 200
    assert set_user(client, instance, "fcm", fcm_id).status_code == 200
    assert sorted(user_devices(redis_client, iid, "alice")) == sorted([apns_id, fcm_id])


# --- tenant isolation -----------------------------------------------------------


def test_same_token_in_two_instances_gives_two_devices(client, instance, other_instance):
    for platform, token in (("apns", apns_token()), ("fcm", fcm_token())):
        a = register(client, instance["id"], platform, token)["id"]
        b = register(client, other_instance["id"], platform, token)["id"]
        assert a != b


NOT_FOUND = {"error": "Device not found", "description": "Could not find the device."}


@pytest.mark.parametrize("platform, token", [("apns", apns_token()), ("fcm", fcm_token())])
def test_a_device_is_invisible_through_another_instance(
    client, redis_client, instance, other_instance, platform, token
):
    a, b = instance["id"], other_instance["id"]
    metadata = FCM_METADATA if platform == "fcm" else APNS_METADATA
    device_id = register(client, a, platform, token, metadata=metadata)["id"]
    client.put(f"{base(a)}/{platform}/{device_id}/interests", json={"interests": ["news"]})
    assert set_user(client, instance, platform, device_id).status_code == 200

    other = f"{base(b)}/{platform}/{device_id}"
    calls = [
        client.get(other),
        client.get(f"{other}/interests"),
        client.put(f"{other}/interests", json={"interests": ["hijack"]}),
        client.post(f"{other}/interests/hijack"),
        client.put(f"{other}/metadata", json={"sdkVersion": "evil"}),
        set_user(client, other_instance, platform, device_id, "mallory"),
    ]
    if platform == "fcm":
        calls.append(client.put(f"{other}/token", json={"token": fcm_token(666)}))
    for response in calls:
        assert response.status_code == 404, response.request.path
        assert response.get_json() == NOT_FOUND
    client.delete(f"{other}/interests/news")
    client.delete(other)

    # Still whole in instance A.
    body = client.get(f"{base(a)}/{platform}/{device_id}").get_json()
    assert body["userId"] == "alice"
    assert body["metadata"] == metadata
    assert client.get(f"{base(a)}/{platform}/{device_id}/interests").get_json()["interests"] == ["news"]
    assert stored(redis_client, a, device_id).token == token
    assert stored(redis_client, b, device_id) is None
    assert interest_members(redis_client, b, "hijack") == set()
    assert user_devices(redis_client, b, "mallory") == []
