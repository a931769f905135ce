"""Twilio-style users and registration tags: a user's registrations page by
page (`GET /v1/Users/<id>/DeviceRegistrations`), deleting a user, `/v1/Users`
without an id, and the `tags` a registration carries; both backends."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from pushlite.storage import devices, interests, keys, pushers, records
from tests.families.conftest_matrix import auth as user_auth
from tests.families.test_twilio import (  # noqa: F401  (auth is a fixture)
    REGISTRATIONS, SEED_TOKEN, assert_twilio_error, auth, register,
)

TAGS = {"tier": "gold", "locale": "en-US"}


def page_of(client, auth: dict, url: str) -> dict:
    response = client.get(url, headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"device_registrations", "meta"} and set(body["meta"]) == {"page_size", "next_page_url"}
    return body


def fcm(n: int) -> str:
    return f"fcm-token-of-alice-{n:08d}"


# --- tags ---------------------------------------------------------------------------------


def test_tags_are_stored_and_returned(client, auth):
    response = client.post(REGISTRATIONS, headers=auth, json={
        "token": SEED_TOKEN, "appName": "test_app", "provider": "FCM", "userId": "alice", "tags": TAGS})
    assert response.status_code == 201, response.get_json()
    registration = response.get_json()
    assert registration["tags"] == TAGS
    assert client.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth).get_json()["tags"] == TAGS
    assert client.get("/v1/Users/alice", headers=auth).get_json()["deviceRegistrations"][0]["tags"] == TAGS


def test_registering_again_with_tags_replaces_them_and_without_keeps_them(client, auth):
    body = {"token": SEED_TOKEN, "appName": "test_app", "provider": "FCM", "userId": "alice", "tags": TAGS}
    first = client.post(REGISTRATIONS, json=body, headers=auth).get_json()
    again = client.post(REGISTRATIONS, json={**body, "tags": {"tier": "silver"}}, headers=auth)
    assert again.status_code == 200 and again.get_json()["tags"] == {"tier": "silver"}
    assert again.get_json()["id"] == first["id"]
    kept = client.post(REGISTRATIONS, json={k: v for k, v in body.items() if k != "tags"}, headers=auth)
    assert kept.get_json()["tags"] == {"tier": "silver"}
    cleared = client.post(REGISTRATIONS, json={**body, "tags": {}}, headers=auth)
    assert cleared.get_json()["tags"] == {}
    assert client.get(f"{REGISTRATIONS}/{first['id']}", headers=auth).get_json()["tags"] == {}


def test_registrations_stored_without_tags_show_none(client, instance, auth, redis_client):
    """Registrations stored before tags existed have no "tags" in their record."""
    registration = register(client, auth, user="alice")
    regs = keys.twilio_registrations(instance["id"])
    record = json.loads(redis_client.hget(regs, registration["id"]))
    del record["tags"]
    redis_client.hset(regs, registration["id"], json.dumps(record))
    assert client.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth).get_json()["tags"] == {}
    body = {"token": SEED_TOKEN, "appName": "test_app", "provider": "FCM", "userId": "alice", "tags": TAGS}
    assert client.post(REGISTRATIONS, json=body, headers=auth).get_json()["tags"] == TAGS


@pytest.mark.parametrize("tags", [
    {f"k{n}": "v" for n in range(11)},
    {"tier": 1},
    {"tier": None},
    {"tier": ["gold"]},
    {"": "empty key"},
    {"k" * 65: "v"},
    {"tier": "v" * 257},
    ["tier", "gold"],
    "tier=gold",
    None,
])
def test_invalid_tags_are_20001(client, instance, auth, redis_client, tags):
    body = {"token": SEED_TOKEN, "appName": "test_app", "provider": "FCM", "userId": "alice", "tags": tags}
    error = assert_twilio_error(client.post(REGISTRATIONS, json=body, headers=auth), 400, 20001)
    assert "tags" in error["message"]
    assert redis_client.hlen(keys.twilio_registrations(instance["id"])) == 0


def test_ten_tags_at_the_limits_are_fine(client, auth):
    tags = {f"{n}" + "k" * 63: "v" * 256 for n in range(10)}
    body = {"token": SEED_TOKEN, "appName": "test_app", "provider": "FCM", "userId": "alice", "tags": tags}
    assert client.post(REGISTRATIONS, json=body, headers=auth).get_json()["tags"] == tags


# --- a user's registrations, page by page -------------------------------------------------------


def test_a_users_registrations_page_by_page(client, auth):
    made = [register(client, auth, token=fcm(n), user="alice") for n in range(5)]
    register(client, auth, token="fcm-token-of-bob-000000001", user="bob")
    seen, url, pages = [], "/v1/Users/alice/DeviceRegistrations?PageSize=2", 0
    while url:
        body = page_of(client, auth, url)
        assert body["meta"]["page_size"] == 2 and len(body["device_registrations"]) <= 2
        seen += body["device_registrations"]
        url = body["meta"]["next_page_url"]
        if url:
            assert urlsplit(url).path == "/v1/Users/alice/DeviceRegistrations"
            assert parse_qs(urlsplit(url).query)["PageSize"] == ["2"]
        pages += 1
    assert pages == 3
    assert sorted(r["id"] for r in seen) == sorted(r["id"] for r in made)
    assert seen == client.get("/v1/Users/alice", headers=auth).get_json()["deviceRegistrations"]


def test_one_page_holds_every_registration_by_default(client, auth):
    made = [register(client, auth, token=fcm(n), user="alice") for n in range(3)]
    body = page_of(client, auth, "/v1/Users/alice/DeviceRegistrations")
    assert body["meta"] == {"page_size": 50, "next_page_url": None}
    assert sorted(r["id"] for r in body["device_registrations"]) == sorted(r["id"] for r in made)


def test_a_user_of_another_family_has_no_registrations(client, instance, auth):
    client.post("/users/@me/devices", json={"provider": "gcm", "token": fcm(1)}, headers=user_auth(instance, "carol"))
    body = page_of(client, auth, "/v1/Users/carol/DeviceRegistrations")
    assert body == {"device_registrations": [], "meta": {"page_size": 50, "next_page_url": None}}


@pytest.mark.parametrize("query", ["PageSize=0", "PageSize=1001", "PageSize=two", "PageToken=", "PageToken=%21%21",
                                   "PageToken=bm90LWEtdG9rZW4"])
def test_bad_paging_parameters_are_20001(client, auth, query):
    register(client, auth, user="alice")
    error = assert_twilio_error(client.get(f"/v1/Users/alice/DeviceRegistrations?{query}", headers=auth), 400, 20001)
    assert "Page" in error["message"]


def test_the_registrations_of_an_unknown_user_are_404(client, auth):
    assert_twilio_error(client.get("/v1/Users/nobody/DeviceRegistrations", headers=auth), 404, 20404)
    assert_twilio_error(client.get("/v1/Users/nobody/DeviceRegistrations"), 401, 20003)


# --- deleting a user --------------------------------------------------------------------------


def test_deleting_a_user(client, instance, auth, redis_client):
    iid = instance["id"]
    alone = register(client, auth, token=fcm(1), user="alice")
    shared = register(client, auth, token=fcm(2), user="alice")
    subscribed = register(client, auth, token=fcm(3), user="alice")
    alone_id, shared_id, subscribed_id = (records.derive_id(iid, "fcm", r["devices"][0]["token"])
                                          for r in (alone, shared, subscribed))
    devices.add_user(redis_client, iid, shared_id, None, "bob", exclusive=False)
    interests.add(redis_client, iid, subscribed_id, None, ["news"])
    client.post("/_matrix/client/v3/pushers/set", headers=user_auth(instance, "alice"), json={
        "kind": "http", "app_id": "com.example", "pushkey": "pk", "app_display_name": "A",
        "device_display_name": "D", "lang": "en", "data": {"url": "https://1.1.1.1/_matrix/push/v1/notify"}})
    pusher_id = pushers.own_id(iid, "alice", "com.example", "pk")
    register(client, auth, token="fcm-token-of-bob-000000009", user="bob")

    response = client.delete("/v1/Users/alice", headers=auth)
    assert (response.status_code, response.get_data()) == (204, b"")
    assert_twilio_error(client.get("/v1/Users/alice", headers=auth), 404, 20404)
    for registration in (alone, shared, subscribed):
        assert_twilio_error(client.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth), 404, 20404)
    assert devices.user_device_ids(redis_client, iid, "alice") == []
    found = devices.load_many(redis_client, iid, [alone_id, shared_id, subscribed_id, pusher_id])
    assert set(found) == {shared_id, subscribed_id}  # held by bob, held by an interest
    assert (found[shared_id].users, found[subscribed_id].users) == (["bob"], [])
    assert redis_client.hlen(keys.twilio_registrations(iid)) == 1  # bob's
    assert len(client.get("/v1/Users/bob", headers=auth).get_json()["deviceRegistrations"]) == 1
    # The token can be registered again, for anyone.
    assert register(client, auth, token=fcm(1), user="carol")["userId"] == "carol"


def test_deleting_an_unknown_user_is_404(client, auth):
    assert_twilio_error(client.delete("/v1/Users/nobody", headers=auth), 404, 20404)
    assert_twilio_error(client.delete("/v1/Users/nobody"), 401, 20003)


@pytest.mark.parametrize("method", ["get", "delete", "post"])
def test_users_without_an_id_is_404_in_the_twilio_shape(client, auth, method):
    for path in ("/v1/Users", "/v1/Users/"):
        response = getattr(client, method)(path, headers=auth)
        error = assert_twilio_error(response, 404, 20404)
        assert path in error["message"]
