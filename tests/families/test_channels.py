"""Channels: ``GET|POST /v1/devices/<pushtoken>/channels`` and ``GET
/v1/channels`` for the caller's devices (phones by push token, Matrix pushers by
pushkey); an enabled channel is an interest of the device, a disabled one is
remembered; both backends."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from pushlite.storage import devices, interests, pushers, records
from pushlite.storage.devices import MAX_INTERESTS_PER_DEVICE
from tests.families.conftest_matrix import apns_token, auth, fcm_token

SEED_BODY = {"channels": [{"name": "channel1", "value": "enabled"}, {"name": "channel2", "value": "disabled"}]}
SEED_ANSWER = {"channels": [{"id": "channel1", "status": "enabled"}, {"id": "channel2", "status": "disabled"}]}


def url(token: str) -> str:
    return f"/v1/devices/{token}/channels"


def phone(client, instance, token: str = fcm_token(1), user: str = "alice", provider: str = "gcm") -> str:
    response = client.post("/users/@me/devices", json={"provider": provider, "token": token},
                           headers=auth(instance, user))
    assert response.status_code == 204
    platform = {"gcm": "fcm", "apns": "apns", "apns_voip": "apns_voip"}[provider]
    return records.derive_id(instance["id"], platform, token)


def set_channels(client, instance, token: str, body: dict, user: str = "alice"):
    return client.post(url(token), json=body, headers=auth(instance, user))


def get_channels(client, instance, token: str, user: str = "alice"):
    return client.get(url(token), headers=auth(instance, user))


def assert_error(response, status: int, text: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body == {"code": status, "message": body["message"]}, body
    assert text in body["message"], body
    return body


def test_the_seed_example(client, instance):
    phone(client, instance)
    response = set_channels(client, instance, fcm_token(1), SEED_BODY)
    assert (response.status_code, response.get_json()) == (200, {})
    got = get_channels(client, instance, fcm_token(1))
    assert (got.status_code, got.get_json()) == (200, SEED_ANSWER)


def test_enabled_channels_are_interests_and_disabled_ones_are_not(client, redis_client, instance):
    device_id = phone(client, instance)
    set_channels(client, instance, fcm_token(1), SEED_BODY)
    device = devices.get(redis_client, instance["id"], device_id)
    assert (device.interests, device.disabled_channels) == (["channel1"], ["channel2"])
    assert interests.members(redis_client, instance["id"], "channel1") == {device_id}
    assert interests.members(redis_client, instance["id"], "channel2") == set()


def test_channels_not_in_the_body_are_unchanged(client, instance):
    phone(client, instance)
    set_channels(client, instance, fcm_token(1), SEED_BODY)
    set_channels(client, instance, fcm_token(1), {"channels": [{"name": "channel3", "value": "enabled"}]})
    assert get_channels(client, instance, fcm_token(1)).get_json()["channels"] == [
        {"id": "channel1", "status": "enabled"},
        {"id": "channel2", "status": "disabled"},
        {"id": "channel3", "status": "enabled"},
    ]


def test_toggling_a_channel(client, redis_client, instance):
    device_id = phone(client, instance)
    for value in ("enabled", "disabled", "enabled"):
        set_channels(client, instance, fcm_token(1), {"channels": [{"name": "news", "value": value}]})
        assert get_channels(client, instance, fcm_token(1)).get_json() == {
            "channels": [{"id": "news", "status": value}]}
        members = interests.members(redis_client, instance["id"], "news")
        assert members == ({device_id} if value == "enabled" else set())


def test_an_empty_list_changes_nothing(client, instance):
    phone(client, instance)
    set_channels(client, instance, fcm_token(1), SEED_BODY)
    assert set_channels(client, instance, fcm_token(1), {"channels": []}).status_code == 200
    assert get_channels(client, instance, fcm_token(1)).get_json() == SEED_ANSWER


def test_a_device_without_channels_lists_none(client, instance):
    phone(client, instance)
    assert get_channels(client, instance, fcm_token(1)).get_json() == {"channels": []}


def test_beams_interests_show_as_enabled_channels(client, instance):
    beams = client.post(f"/device_api/v1/instances/{instance['id']}/devices/apns",
                        json={"token": apns_token(1), "bundleIdentifier": "com.example"})
    device_id = beams.get_json()["id"]
    client.post(f"/device_api/v1/instances/{instance['id']}/devices/apns/{device_id}/interests/sport")
    phone(client, instance, apns_token(1), provider="apns")
    assert get_channels(client, instance, apns_token(1)).get_json() == {
        "channels": [{"id": "sport", "status": "enabled"}]}


@pytest.mark.parametrize("provider, token", [("apns", apns_token(2)), ("apns_voip", apns_token(3))])
def test_apns_and_voip_devices_are_found_by_token(client, instance, provider, token):
    phone(client, instance, token, provider=provider)
    assert set_channels(client, instance, token, SEED_BODY).status_code == 200
    assert get_channels(client, instance, token).get_json() == SEED_ANSWER


def test_a_device_whose_token_changed_is_found_by_its_new_token(client, redis_client, instance):
    first = client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": fcm_token(1)})
    device_id = first.get_json()["id"]
    client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": fcm_token(2)})
    client.put(f"/device_api/v1/instances/{instance['id']}/devices/fcm/{device_id}/token",
               json={"token": fcm_token(2)})
    devices.add_user(redis_client, instance["id"], device_id, None, "alice", exclusive=False)
    # The new token's derived id is not this device's id: found through the token index.
    assert records.derive_id(instance["id"], "fcm", fcm_token(2)) != device_id
    assert set_channels(client, instance, fcm_token(2), SEED_BODY).status_code == 200
    assert get_channels(client, instance, fcm_token(2)).get_json() == SEED_ANSWER


def test_a_device_shared_by_two_users_has_one_set_of_channels(client, instance):
    phone(client, instance, user="alice")
    phone(client, instance, user="bob")
    set_channels(client, instance, fcm_token(1), SEED_BODY, "alice")
    assert get_channels(client, instance, fcm_token(1), "bob").get_json() == SEED_ANSWER


# --- not the caller's device ----------------------------------------------------


def test_404_without_such_a_device(client, instance):
    phone(client, instance)
    assert_error(get_channels(client, instance, fcm_token(9)), 404, "no device")
    assert_error(set_channels(client, instance, fcm_token(9), SEED_BODY), 404, "no device")


def test_404_for_another_users_device_and_nothing_changes(client, redis_client, instance):
    device_id = phone(client, instance, user="bob")
    assert_error(get_channels(client, instance, fcm_token(1), "alice"), 404)
    assert_error(set_channels(client, instance, fcm_token(1), SEED_BODY, "alice"), 404)
    assert devices.get(redis_client, instance["id"], device_id).interests == []


def test_404_for_a_device_without_users(client, instance):
    client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": fcm_token(1)})
    assert_error(get_channels(client, instance, fcm_token(1)), 404)


# --- Matrix pushers are devices too -----------------------------------------------

SEED_PUSHKEY = "Xp/MzCt8/9DcSNE9cuiaoT5Ac55job3TdLSSmtmYl4A="


def matrix_pusher(client, instance, pushkey: str = SEED_PUSHKEY, user: str = "alice", **extra) -> str:
    body = {"kind": "http", "app_id": "com.example", "pushkey": pushkey, "app_display_name": "A",
            "device_display_name": "D", "lang": "en", "data": {"url": "https://1.1.1.1/_matrix/push/v1/notify"},
            **extra}
    assert client.post("/_matrix/client/v3/pushers/set", json=body, headers=auth(instance, user)).status_code == 200
    return pushers.own_id(instance["id"], user, "com.example", pushkey)


def quoted(pushkey: str) -> str:
    return quote(pushkey, safe="")


@pytest.mark.parametrize("pushkey", [SEED_PUSHKEY, "/starts+with/a/slash==", "plain-pushkey", fcm_token(5)])
def test_a_matrix_pushers_pushkey_names_it(client, redis_client, instance, pushkey):
    pusher_id = matrix_pusher(client, instance, pushkey)
    assert get_channels(client, instance, quoted(pushkey)).get_json() == {"channels": []}
    response = set_channels(client, instance, quoted(pushkey), SEED_BODY)
    assert (response.status_code, response.get_json()) == (200, {})
    got = get_channels(client, instance, quoted(pushkey))
    assert (got.status_code, got.get_json()) == (200, SEED_ANSWER)
    device = devices.get(redis_client, instance["id"], pusher_id)
    assert (device.interests, device.disabled_channels) == (["channel1"], ["channel2"])
    assert interests.members(redis_client, instance["id"], "channel1") == {pusher_id}
    assert client.get("/v1/channels", headers=auth(instance)).get_json() == SEED_ANSWER


def test_only_the_callers_pusher_of_a_shared_pushkey_changes(client, redis_client, instance):
    bobs = matrix_pusher(client, instance, user="bob")
    alices = matrix_pusher(client, instance, append=True)
    set_channels(client, instance, quoted(SEED_PUSHKEY), SEED_BODY)
    assert devices.get(redis_client, instance["id"], bobs).interests == []
    assert devices.get(redis_client, instance["id"], alices).interests == ["channel1"]
    assert get_channels(client, instance, quoted(SEED_PUSHKEY), "bob").get_json() == {"channels": []}
    assert_error(get_channels(client, instance, quoted(SEED_PUSHKEY), "carol"), 404)


def test_a_phone_token_that_is_also_a_pushkey_sets_both(client, redis_client, instance):
    """A Matrix app that registers its FCM token both as a phone and as a pusher: one device to the user."""
    phone_id = phone(client, instance, fcm_token(1))
    pusher_id = matrix_pusher(client, instance, fcm_token(1))
    set_channels(client, instance, fcm_token(1), {"channels": [{"name": "news", "value": "enabled"}]})
    assert interests.members(redis_client, instance["id"], "news") == {phone_id, pusher_id}


def test_a_deleted_pusher_has_no_channels(client, instance):
    matrix_pusher(client, instance)
    client.post("/_matrix/client/v3/pushers/set", headers=auth(instance),
                json={"kind": None, "app_id": "com.example", "pushkey": SEED_PUSHKEY})
    assert_error(get_channels(client, instance, quoted(SEED_PUSHKEY)), 404)
    assert_error(set_channels(client, instance, quoted(SEED_PUSHKEY), SEED_BODY), 404)


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize("body, text", [
    ({}, "channels"),
    ({"channels": None}, ""),
    ({"channels": "news"}, ""),
    ({"channels": [{"name": "news"}]}, ""),
    ({"channels": [{"value": "enabled"}]}, ""),
    ({"channels": [{"name": "news", "value": "on"}]}, "enabled"),
    ({"channels": [{"name": "news", "value": True}]}, ""),
    ({"channels": [{"name": "bad name", "value": "enabled"}]}, "Invalid channel name"),
    ({"channels": [{"name": "", "value": "enabled"}]}, "Invalid channel name"),
    ({"channels": [{"name": "x" * 165, "value": "enabled"}]}, "Invalid channel name"),
    ({"channels": [{"name": "n", "value": "enabled"}] * 1001}, ""),
])
def test_invalid_bodies(client, instance, body, text):
    phone(client, instance)
    assert_error(set_channels(client, instance, fcm_token(1), body), 400, text)


@pytest.mark.parametrize("data, content_type", [("nope", "application/json"), ("[]", "application/json"),
                                                ('{"channels": []}', "text/plain"),
                                                ('{"channels": [{"name": "\\ud800", "value": "enabled"}]}',
                                                 "application/json"),
                                                ("[" * 100_000 + "]" * 100_000, "application/json")])
def test_a_body_that_is_not_a_json_object(client, instance, data, content_type):
    phone(client, instance)
    response = client.post(url(fcm_token(1)), data=data, content_type=content_type, headers=auth(instance))
    assert_error(response, 400, "JSON object")


def test_the_interest_cap_holds(client, redis_client, instance):
    device_id = phone(client, instance)
    interests.add(redis_client, instance["id"], device_id, None, [f"i{n}" for n in range(MAX_INTERESTS_PER_DEVICE)])
    response = set_channels(client, instance, fcm_token(1), {"channels": [{"name": "one-more", "value": "enabled"}]})
    assert_error(response, 400, "5000")
    # Disabling one and enabling another in the same request fits.
    body = {"channels": [{"name": "i0", "value": "disabled"}, {"name": "one-more", "value": "enabled"}]}
    assert set_channels(client, instance, fcm_token(1), body).status_code == 200


# --- all the caller's channels --------------------------------------------------------


def test_all_channels_of_the_caller(client, instance):
    phone(client, instance, fcm_token(1))
    phone(client, instance, apns_token(1), provider="apns")
    set_channels(client, instance, fcm_token(1), {"channels": [
        {"name": "news", "value": "enabled"}, {"name": "sport", "value": "disabled"},
        {"name": "weather", "value": "disabled"}]})
    set_channels(client, instance, apns_token(1), {"channels": [
        {"name": "sport", "value": "enabled"}, {"name": "music", "value": "disabled"}]})
    response = client.get("/v1/channels", headers=auth(instance))
    assert response.status_code == 200
    assert response.get_json() == {"channels": [
        {"id": "music", "status": "disabled"},
        {"id": "news", "status": "enabled"},
        {"id": "sport", "status": "enabled"},  # enabled on one device wins
        {"id": "weather", "status": "disabled"},
    ]}


def test_all_channels_of_a_caller_without_devices(client, instance):
    assert client.get("/v1/channels", headers=auth(instance)).get_json() == {"channels": []}


def test_other_users_channels_are_not_listed(client, instance):
    phone(client, instance, user="bob")
    set_channels(client, instance, fcm_token(1), SEED_BODY, "bob")
    assert client.get("/v1/channels", headers=auth(instance, "alice")).get_json() == {"channels": []}


# --- authentication and other errors -----------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("get", url(fcm_token(1))), ("post", url(fcm_token(1))), ("get", "/v1/channels"),
])
def test_every_endpoint_needs_a_valid_user_jwt(client, instance, method, path):
    for headers in ({}, {"Authorization": "Bearer x"}, auth(instance, expires_in=-1), auth(instance, secret="f" * 64)):
        assert_error(getattr(client, method)(path, json=SEED_BODY, headers=headers), 401)


def test_unknown_methods_and_paths(client, instance):
    assert_error(client.delete(url(fcm_token(1)), headers=auth(instance)), 405)
    assert_error(client.get("/v1/devices/x/nothing", headers=auth(instance)), 404)


def test_the_family_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    device = spec["paths"]["/v1/devices/{pushtoken}/channels"]
    assert {"get", "post"} <= set(device) and "requestBody" in device["post"]
    assert "get" in spec["paths"]["/v1/channels"]
    for operation in (device["get"], device["post"], spec["paths"]["/v1/channels"]["get"]):
        ref = operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ChannelsError")
    assert set(spec["components"]["schemas"]["ChannelsError"]["properties"]) == {"code", "message"}
