"""The MPush API (``mpush-topics.txt``) on both backends: every endpoint and
error row, the X-MPush-Token/X-MPush-Version checks, the global token index
(rotation, deletion, hashes only), token moves that keep topics, and topics
shared with Beams interests."""
from __future__ import annotations

import threading
import time

import pytest

import config
from pushlite.app import create_app
from pushlite.storage import devices, instances, interests, keys, mpush
from pushlite.storage.errors import DeviceNotFound
from tests.conftest import ADMIN, RedisServer

APNS_TOKEN = "ab" * 32
APNS_TOKEN_2 = "cd" * 32
FCM_TOKEN = "fcm-token-mpush-000000001"
FCM_TOKEN_2 = "fcm-token-mpush-000000002"
ENDPOINTS = ["/api/tokens", "/api/register", "/api/unregister", "/api/unregister-all", "/api/send"]


def headers(token: str, version: str | None = "2") -> dict:
    found = {"X-MPush-Token": token}
    if version is not None:
        found["X-MPush-Version"] = version
    return found


@pytest.fixture
def app_headers(instance) -> dict:
    return headers(instance["client_token"])


@pytest.fixture
def server_headers(instance) -> dict:
    return headers(instance["secret_key"])


def assert_ok(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status_code"] == 0
    return body


def assert_mpush_error(response, status: int, status_code: int | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"status_code", "message"}, body
    assert isinstance(body["status_code"], int) and body["status_code"] != 0
    assert body["status_code"] // 10 == status
    assert isinstance(body["message"], str) and body["message"]
    if status_code is not None:
        assert body["status_code"] == status_code, body
    return body


def add_token(client, h: dict, device_id: str = "phone-1", token: str = APNS_TOKEN, platform: str = "ios"):
    return client.post("/api/tokens", json={"token": token, "platform": platform, "device_id": device_id}, headers=h)


def register(client, h: dict, topics: list, device_id: str = "phone-1"):
    return client.post("/api/register", json={"topics": topics, "device_id": device_id}, headers=h)


def device_of(redis_client, instance: dict, device_id: str = "phone-1"):
    return mpush.device_of(redis_client, instance["id"], device_id)


# --- tokens ----------------------------------------------------------------------


def test_register_tokens_for_both_platforms(client, instance, app_headers, redis_client):
    assert add_token(client, app_headers).get_json() == {"status_code": 0}
    assert_ok(add_token(client, app_headers, "phone-2", FCM_TOKEN, "android"))
    ios, android = device_of(redis_client, instance), device_of(redis_client, instance, "phone-2")
    assert (ios.platform, ios.token) == ("apns", APNS_TOKEN)
    assert (android.platform, android.token) == ("fcm", FCM_TOKEN)


def test_the_same_token_again_is_the_same_device(client, instance, app_headers, redis_client):
    assert_ok(add_token(client, app_headers))
    first = device_of(redis_client, instance).id
    assert_ok(add_token(client, app_headers))
    assert device_of(redis_client, instance).id == first


def test_a_new_token_keeps_the_device_and_its_topics(client, instance, app_headers, redis_client):
    assert_ok(add_token(client, app_headers))
    assert_ok(register(client, app_headers, ["all", "ios", "user.1"]))
    before = device_of(redis_client, instance)
    assert_ok(add_token(client, app_headers, token=APNS_TOKEN_2))
    after = device_of(redis_client, instance)
    assert after.id == before.id
    assert after.token == APNS_TOKEN_2
    assert after.interests == ["all", "ios", "user.1"]
    assert redis_client.smembers(keys.interest(instance["id"], "all")) == {after.id}


def test_a_new_platform_moves_the_device_with_its_topics_and_users(client, instance, app_headers, redis_client):
    iid = instance["id"]
    assert_ok(add_token(client, app_headers))
    assert_ok(register(client, app_headers, ["all", "news"]))
    old = device_of(redis_client, instance)
    devices.add_user(redis_client, iid, old.id, None, "alice", exclusive=False)

    assert_ok(add_token(client, app_headers, token=FCM_TOKEN, platform="android"))
    moved = device_of(redis_client, instance)
    assert moved.id == old.id
    assert (moved.platform, moved.token, moved.interests, moved.users) == ("fcm", FCM_TOKEN, ["all", "news"], ["alice"])
    assert redis_client.smembers(keys.interest(iid, "all")) == {moved.id}
    assert devices.user_device_ids(redis_client, iid, "alice") == [moved.id]
    # The new token finds the device; the old one no longer does.
    assert devices.register(redis_client, iid, "fcm", FCM_TOKEN)[0] == moved.id
    assert devices.register(redis_client, iid, "apns", APNS_TOKEN)[0] != moved.id


def test_a_new_platform_merges_the_device_that_had_the_token(client, instance, app_headers, redis_client):
    iid = instance["id"]
    assert_ok(add_token(client, app_headers))
    assert_ok(register(client, app_headers, ["all"]))
    mine = device_of(redis_client, instance)
    other, _ = devices.register(redis_client, iid, "fcm", FCM_TOKEN)
    interests.add(redis_client, iid, other, "fcm", ["beams-only"])

    assert_ok(add_token(client, app_headers, token=FCM_TOKEN, platform="android"))

    assert device_of(redis_client, instance).id == mine.id
    assert redis_client.hget(keys.device_bucket(iid, other), other) is None
    assert redis_client.smembers(keys.interest(iid, "beams-only")) == set()
    assert devices.register(redis_client, iid, "fcm", FCM_TOKEN)[0] == mine.id


def test_a_device_id_whose_device_was_deleted_registers_again(client, instance, app_headers, redis_client):
    assert_ok(add_token(client, app_headers))
    gone = device_of(redis_client, instance)
    devices.delete(redis_client, instance["id"], gone.id)
    assert_mpush_error(register(client, app_headers, ["all"]), 404, 4040)
    assert_ok(add_token(client, app_headers, token=APNS_TOKEN_2))
    assert device_of(redis_client, instance).token == APNS_TOKEN_2
    assert_ok(register(client, app_headers, ["all"]))


def test_a_token_registered_through_beams_is_the_same_device(client, instance, app_headers, redis_client):
    beams = client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": FCM_TOKEN})
    assert beams.status_code == 200
    assert_ok(add_token(client, app_headers, token=FCM_TOKEN, platform="android"))
    assert device_of(redis_client, instance).id == beams.get_json()["id"]


def test_concurrent_tokens_for_one_device_id_leave_one_device(client, instance, app_headers, redis_client):
    tokens = [f"fcm-token-race-{n:010d}" for n in range(8)]
    responses: list = []

    def call(token: str) -> None:
        responses.append(add_token(client, app_headers, token=token, platform="android").status_code)

    threads = [threading.Thread(target=call, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert responses == [200] * len(tokens)
    device = device_of(redis_client, instance)
    assert device.token in tokens
    # The losers' devices were merged into the winner: no other device is left.
    for bucket in redis_client.scan_iter(match=keys.device_prefix(instance["id"]) + "*"):
        assert set(redis_client.hkeys(bucket)) <= {device.id}


TOKEN_ROWS = [
    ("missing-token", {"platform": "ios", "device_id": "d"}, 400, 4000),
    ("missing-platform", {"token": APNS_TOKEN, "device_id": "d"}, 400, 4000),
    ("missing-device-id", {"token": APNS_TOKEN, "platform": "ios"}, 400, 4000),
    ("null-token", {"token": None, "platform": "ios", "device_id": "d"}, 400, 4000),
    ("token-not-a-string", {"token": 7, "platform": "ios", "device_id": "d"}, 400, 4000),
    ("empty-device-id", {"token": APNS_TOKEN, "platform": "ios", "device_id": ""}, 400, 4000),
    ("device-id-256", {"token": APNS_TOKEN, "platform": "ios", "device_id": "d" * 256}, 400, 4000),
    ("platform-web", {"token": APNS_TOKEN, "platform": "web", "device_id": "d"}, 400, 4001),
    ("platform-iOS", {"token": APNS_TOKEN, "platform": "iOS", "device_id": "d"}, 400, 4001),
    ("platform-apns", {"token": APNS_TOKEN, "platform": "apns", "device_id": "d"}, 400, 4001),
    ("ios-fcm-token", {"token": FCM_TOKEN, "platform": "ios", "device_id": "d"}, 400, 4002),
    ("ios-short-token", {"token": "ab" * 8, "platform": "ios", "device_id": "d"}, 400, 4002),
    ("android-bad-chars", {"token": "not a token!" * 3, "platform": "android", "device_id": "d"}, 400, 4002),
    ("android-short", {"token": "short", "platform": "android", "device_id": "d"}, 400, 4002),
]


@pytest.mark.parametrize("body, status, code", [r[1:] for r in TOKEN_ROWS], ids=[r[0] for r in TOKEN_ROWS])
def test_token_errors(client, instance, app_headers, redis_client, body, status, code):
    assert_mpush_error(client.post("/api/tokens", json=body, headers=app_headers), status, code)
    assert redis_client.hlen(keys.mpush_devices(instance["id"])) == 0


def test_a_device_id_of_255_characters_is_fine(client, instance, app_headers):
    assert_ok(add_token(client, app_headers, "d" * 255))


# --- topics ----------------------------------------------------------------------


def test_register_unregister_and_unregister_all(client, instance, app_headers, redis_client):
    iid = instance["id"]
    assert_ok(add_token(client, app_headers))
    assert_ok(register(client, app_headers, ["all", "ios", "user.1"]))
    device = device_of(redis_client, instance)
    assert device.interests == ["all", "ios", "user.1"]

    assert_ok(register(client, app_headers, ["all", "sport"]))
    assert device_of(redis_client, instance).interests == ["all", "ios", "sport", "user.1"]

    # Unknown topics (never created, or not even valid names) are ignored.
    body = {"topics": ["all", "ios", "never-heard-of", "not a topic!"], "device_id": "phone-1"}
    assert_ok(client.post("/api/unregister", json=body, headers=app_headers))
    assert device_of(redis_client, instance).interests == ["sport", "user.1"]
    assert not redis_client.exists(keys.interest(iid, "all"))

    assert_ok(client.post("/api/unregister-all", json={"device_id": "phone-1"}, headers=app_headers))
    assert device_of(redis_client, instance).interests == []
    assert not redis_client.exists(keys.interest(iid, "sport"))
    # Unregistering nothing is fine too.
    assert_ok(client.post("/api/unregister-all", json={"device_id": "phone-1"}, headers=app_headers))
    assert_ok(client.post("/api/unregister", json={"topics": [], "device_id": "phone-1"}, headers=app_headers))


def test_topics_are_beams_interests(client, instance, app_headers, redis_client):
    assert_ok(add_token(client, app_headers, token=FCM_TOKEN, platform="android"))
    assert_ok(register(client, app_headers, ["news"]))
    device = device_of(redis_client, instance)
    got = client.get(f"/device_api/v1/instances/{instance['id']}/devices/fcm/{device.id}/interests")
    assert got.get_json()["interests"] == ["news"]


@pytest.mark.parametrize("path", ["/api/register", "/api/unregister", "/api/unregister-all"])
def test_unknown_device_id_is_404(client, instance, app_headers, path):
    body = {"device_id": "never-registered", "topics": ["all"]}
    assert_mpush_error(client.post(path, json=body, headers=app_headers), 404, 4040)


TOPIC_ROWS = [
    ("missing-topics", "/api/register", {"device_id": "phone-1"}, 400, 4000),
    ("null-topics", "/api/register", {"topics": None, "device_id": "phone-1"}, 400, 4000),
    ("topics-not-a-list", "/api/register", {"topics": "all", "device_id": "phone-1"}, 400, 4000),
    ("no-topics", "/api/register", {"topics": [], "device_id": "phone-1"}, 400, 4000),
    ("missing-device-id", "/api/register", {"topics": ["all"]}, 400, 4000),
    ("bad-name", "/api/register", {"topics": ["all", "bad name"], "device_id": "phone-1"}, 400, 4003),
    ("name-165", "/api/register", {"topics": ["a" * 165], "device_id": "phone-1"}, 400, 4003),
    ("name-not-a-string", "/api/register", {"topics": [1], "device_id": "phone-1"}, 400, 4003),
    ("too-many", "/api/register", {"topics": [f"t{n}" for n in range(5001)], "device_id": "phone-1"}, 400, 4004),
    ("unregister-missing-topics", "/api/unregister", {"device_id": "phone-1"}, 400, 4000),
    ("unregister-all-missing-device-id", "/api/unregister-all", {}, 400, 4000),
]


@pytest.mark.parametrize("path, body, status, code", [r[1:] for r in TOPIC_ROWS], ids=[r[0] for r in TOPIC_ROWS])
def test_topic_errors(client, instance, app_headers, redis_client, path, body, status, code):
    assert_ok(add_token(client, app_headers))
    assert_mpush_error(client.post(path, json=body, headers=app_headers), status, code)
    assert device_of(redis_client, instance).interests == []


def test_5000_topics_then_one_more(client, instance, app_headers):
    assert_ok(add_token(client, app_headers))
    assert_ok(register(client, app_headers, [f"t{n}" for n in range(5000)]))
    assert_mpush_error(register(client, app_headers, ["one-more"]), 400, 4004)


# --- send --------------------------------------------------------------------------


def test_send_returns_a_publish_id(client, instance, server_headers, redis_client):
    body = {"topics": ["all", "ios", "all"], "title": "Hi", "body": "There", "data": {"k": "v"}}
    sent = assert_ok(client.post("/api/send", json=body, headers=server_headers))
    record = redis_client.hgetall(keys.publish(instance["id"], sent["publish_id"]))
    assert record["kind"] == "interests"
    assert record["targets"] == '["all", "ios"]'
    assert '"title":"Hi"' in record["payload"] and '"k":"v"' in record["payload"]


def test_send_reaches_a_device_subscribed_through_beams(client, backend, instance, server_headers, redis_client):
    """Embedded (fakeredis), delivery runs at once in dry-run mode; with a
    redis-server it is queued for the workers (tests/families/test_mpush_delivery.py
    follows it to the provider mocks)."""
    iid = instance["id"]
    base = f"/device_api/v1/instances/{iid}/devices"
    device_id = client.post(f"{base}/fcm", json={"token": FCM_TOKEN}).get_json()["id"]
    assert client.post(f"{base}/fcm/{device_id}/interests/news").status_code == 200
    sent = assert_ok(client.post("/api/send", json={"topics": ["news"], "title": "T", "body": "B"},
                                 headers=server_headers))
    status = client.get(f"/publish_api/v1/instances/{iid}/publishes/{sent['publish_id']}",
                        headers={"Authorization": f"Bearer {instance['secret_key']}"}).get_json()
    if backend is None:
        assert (status["status"], status["targeted"], status["delivered"]) == ("done", 1, 1), status
        [sent_to] = redis_client.lrange(keys.outbox(iid), 0, -1)
        assert FCM_TOKEN in sent_to and '"title":"T"' in sent_to
    else:
        assert (status["status"], status["targeted"]) == ("queued", 0), status


SEND_ROWS = [
    ("missing-topics", {"title": "t", "body": "b"}, 400, 4000),
    ("empty-topics", {"topics": [], "title": "t", "body": "b"}, 400, 4000),
    ("topics-not-a-list", {"topics": "all", "title": "t", "body": "b"}, 400, 4000),
    ("bad-topic", {"topics": ["no spaces"], "title": "t", "body": "b"}, 400, 4003),
    ("101-topics", {"topics": [f"t{n}" for n in range(101)], "title": "t", "body": "b"}, 400, 4004),
    ("missing-title", {"topics": ["all"], "body": "b"}, 400, 4000),
    ("missing-body", {"topics": ["all"], "title": "t"}, 400, 4000),
    ("title-not-a-string", {"topics": ["all"], "title": 1, "body": "b"}, 400, 4000),
    ("both-empty", {"topics": ["all"], "title": "", "body": ""}, 400, 4000),
    ("data-not-an-object", {"topics": ["all"], "title": "t", "body": "b", "data": [1]}, 400, 4000),
    ("too-large", {"topics": ["all"], "title": "t", "body": "x" * 5000}, 400, 4006),
]


@pytest.mark.parametrize("body, status, code", [r[1:] for r in SEND_ROWS], ids=[r[0] for r in SEND_ROWS])
def test_send_errors(client, instance, server_headers, body, status, code):
    assert_mpush_error(client.post("/api/send", json=body, headers=server_headers), status, code)


def test_send_with_100_topics_and_null_data(client, server_headers):
    body = {"topics": [f"t{n}" for n in range(100)], "title": "", "body": "only a body", "data": None}
    assert_ok(client.post("/api/send", json=body, headers=server_headers))


def test_send_needs_the_secret_key(client, app_headers):
    body = {"topics": ["all"], "title": "t", "body": "b"}
    assert_mpush_error(client.post("/api/send", json=body, headers=app_headers), 403, 4030)


# --- headers, auth, the token index ---------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "make, status, code",
    [
        (lambda i: {"X-MPush-Version": "2"}, 401, 4010),
        (lambda i: headers(""), 401, 4010),
        (lambda i: headers("not-a-token"), 401, 4010),
        (lambda i: headers(i["id"]), 401, 4010),
        (lambda i: headers(i["secret_key"], version=None), 400, 4005),
        (lambda i: headers(i["secret_key"], version="1"), 400, 4005),
        (lambda i: headers(i["secret_key"], version="3"), 400, 4005),
    ],
    ids=["no-token", "empty-token", "wrong-token", "instance-id", "no-version", "version-1", "version-3"],
)
def test_every_endpoint_checks_token_and_version(client, instance, path, make, status, code):
    body = {"topics": ["all"], "device_id": "d", "token": APNS_TOKEN, "platform": "ios", "title": "t", "body": "b"}
    assert_mpush_error(client.post(path, json=body, headers=make(instance)), status, code)


def test_the_token_is_checked_before_the_version(client):
    assert_mpush_error(client.post("/api/send", json={}, headers=headers("wrong", version="9")), 401, 4010)


def test_registration_accepts_the_secret_key_too(client, instance, server_headers, redis_client):
    assert_ok(add_token(client, server_headers))
    assert_ok(register(client, server_headers, ["all"]))
    assert device_of(redis_client, instance).interests == ["all"]


def test_the_token_names_the_instance(client, instance, app_headers, redis_client):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    assert_ok(add_token(client, headers(other["client_token"])))
    assert device_of(redis_client, other).token == APNS_TOKEN
    with pytest.raises(DeviceNotFound):
        device_of(redis_client, instance)
    # The other instance's device_id is unknown here.
    assert_mpush_error(register(client, app_headers, ["all"]), 404, 4040)


def test_body_and_content_type(client, app_headers):
    assert_mpush_error(client.post("/api/tokens", data="{}", headers=app_headers), 415, 4150)
    assert_mpush_error(client.post("/api/tokens", data="[1, 2]", headers=app_headers,
                                   content_type="application/json"), 400, 4000)
    assert_mpush_error(client.post("/api/tokens", data="{not json", headers=app_headers,
                                   content_type="application/json"), 400, 4000)
    # Python's json reads these; a lone surrogate cannot be stored, deep nesting overflows the stack.
    assert_mpush_error(client.post("/api/unregister-all", data='{"device_id": "\\ud800"}', headers=app_headers,
                                   content_type="application/json"), 400, 4000)
    assert_mpush_error(client.post("/api/tokens", data="[" * 100_000 + "]" * 100_000, headers=app_headers,
                                   content_type="application/json"), 400, 4000)
    big = {"token": "x" * (1024 * 1024), "platform": "ios", "device_id": "d"}
    assert_mpush_error(client.post("/api/tokens", json=big, headers=app_headers), 413)


def test_unknown_paths_and_methods_answer_in_the_mpush_shape(client, app_headers):
    assert_mpush_error(client.get("/api/tokens", headers=app_headers), 405, 4050)
    assert_mpush_error(client.post("/api/nothing-here", json={}, headers=app_headers), 404, 4041)


def token_index(redis_client) -> dict[str, str]:
    """Every MPush token index entry: digest -> instance id."""
    prefix = keys.instance_token("")
    return {key[len(prefix):]: redis_client.get(key) for key in redis_client.scan_iter(match=prefix + "*")}


def test_rotating_the_secret_key_invalidates_the_old_one(client, instance, redis_client):
    body = {"topics": ["all"], "title": "t", "body": "b"}
    rotated = client.post(f"/admin/v1/instances/{instance['id']}/secret_key", headers=ADMIN).get_json()
    assert_mpush_error(client.post("/api/send", json=body, headers=headers(instance["secret_key"])), 401, 4010)
    assert_ok(client.post("/api/send", json=body, headers=headers(rotated["secret_key"])))
    assert_ok(add_token(client, headers(instance["client_token"])))
    index = token_index(redis_client)
    assert instances.token_digest(instance["secret_key"]) not in index
    assert index[instances.token_digest(rotated["secret_key"])] == instance["id"]


def test_deleting_an_instance_removes_its_tokens(client, instance, app_headers, server_headers, redis_client):
    assert_ok(add_token(client, app_headers))
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    assert client.delete(f"/admin/v1/instances/{instance['id']}", headers=ADMIN).status_code == 204
    assert_mpush_error(add_token(client, app_headers), 401, 4010)
    assert_mpush_error(client.post("/api/send", json={"topics": ["a"], "title": "t", "body": "b"},
                                   headers=server_headers), 401, 4010)
    assert set(token_index(redis_client).values()) == {other["id"]}
    assert not list(redis_client.scan_iter(match=keys.instance_pattern(instance["id"])))


def test_the_index_holds_hashes_not_secrets(client, instance, redis_client):
    index = token_index(redis_client)
    assert index == {instances.token_digest(instance["secret_key"]): instance["id"],
                     instances.token_digest(instance["client_token"]): instance["id"]}
    dump = repr(index)
    assert instance["secret_key"] not in dump and instance["client_token"] not in dump


def test_redis_down_gives_503_in_the_mpush_shape(redis_server):
    """With valid headers, a Redis outage answers 503 {"status_code": 5030} within the deadline."""
    server = RedisServer()
    server.start()
    try:
        client = create_app(config.TestingConfig(server.url)).test_client()
        instance = client.post("/admin/v1/instances", json={"name": "outage"}, headers=ADMIN).get_json()
        server.stop()
        for path in ENDPOINTS:
            started = time.monotonic()
            body = {"topics": ["a"], "device_id": "d", "token": APNS_TOKEN, "platform": "ios", "title": "t", "body": "b"}
            response = client.post(path, json=body, headers=headers(instance["secret_key"]))
            assert time.monotonic() - started < 2.0
            assert_mpush_error(response, 503, 5030)
    finally:
        server.stop()
