"""The Beams Publish and Customer APIs as the server SDKs call them: every
validation row in the Beams error shape, the publish status record, and
deleting a user. Each test runs on fakeredis (embedded: delivered at once in
dry-run mode) and on a real redis-server (queued for the workers)."""
from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest

from pushlite.storage import keys
from tests.conftest import ADMIN

ALERT = {"aps": {"alert": {"title": "Hi", "body": "There"}}}


def compact_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def pusher(displayable: bool, has_data: bool) -> dict:
    """The delivery metadata every apns, fcm and web payload is sent with
    (``data.pusher``), with ids of the length pushlite's have."""
    return {"publishId": "pubid-" + "0" * 36, "instanceId": "0" * 36,
            "hasDisplayableContent": displayable, "hasData": has_data}


def apns_of_size(size: int) -> dict:
    """An APNs payload whose JSON as sent (with data.pusher) is exactly ``size`` bytes."""
    return {"aps": {"alert": "x" * (size - compact_size({"aps": {"alert": ""}, "data": {"pusher": pusher(True, False)}}))}}


def voip_of_size(size: int) -> dict:
    """A VoIP payload is sent as given: PushKit pushes reach no Beams SDK."""
    return {"aps": {"alert": "x" * (size - compact_size({"aps": {"alert": ""}}))}}


def fcm_of_size(size: int) -> dict:
    return {"data": {"k": "x" * (size - compact_size({"data": {"k": "", "pusher": pusher(False, True)}}))}}


def web_of_size(size: int) -> dict:
    """A web payload whose message to the browser is exactly ``size`` bytes before encryption."""
    empty = {"notification": {"title": ""}, "data": {"pusher": pusher(True, False)}}
    return {"notification": {"title": "x" * (size - compact_size(empty))}, "time_to_live": 60}


def publish_path(instance_id: str, kind: str) -> str:
    return f"/publish_api/v1/instances/{instance_id}/publishes/{kind}"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def assert_beams_error(response, status: int, title: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "description"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["description"], str) and body["description"]
    if title is not None:
        assert body["error"] == title
    return body


# --- validation rows ---------------------------------------------------------

# (id, kind, body, expected status, expected Beams title or None)
ROWS = [
    ("interests-ok", "interests", {"interests": ["news"], "apns": ALERT}, 200, None),
    ("interests-100", "interests", {"interests": [f"i{n}" for n in range(100)], "fcm": {"data": {"a": "b"}}}, 200, None),
    ("interests-missing", "interests", {"apns": ALERT}, 400, None),
    ("interests-null", "interests", {"interests": None, "apns": ALERT}, 400, None),
    ("interests-not-a-list", "interests", {"interests": "news", "apns": ALERT}, 400, None),
    ("interests-empty", "interests", {"interests": [], "apns": ALERT}, 400, None),
    ("interests-101", "interests", {"interests": [f"i{n}" for n in range(101)], "apns": ALERT}, 400, None),
    ("interest-bad-chars", "interests", {"interests": ["good", "bad name!"], "apns": ALERT}, 400, "Invalid interest name"),
    ("interest-165-chars", "interests", {"interests": ["a" * 165], "apns": ALERT}, 400, "Invalid interest name"),
    ("interest-164-chars", "interests", {"interests": ["a" * 164], "apns": ALERT}, 200, None),
    ("interest-empty-name", "interests", {"interests": [""], "apns": ALERT}, 400, "Invalid interest name"),
    ("interest-not-a-string", "interests", {"interests": [42], "apns": ALERT}, 400, "Invalid interest name"),
    ("no-payload", "interests", {"interests": ["news"]}, 400, None),
    ("null-payloads", "interests", {"interests": ["news"], "apns": None, "fcm": None}, 400, None),
    ("payload-not-an-object", "interests", {"interests": ["news"], "apns": "hello"}, 400, None),
    ("apns-4096", "interests", {"interests": ["news"], "apns": apns_of_size(4096)}, 200, None),
    ("apns-4097", "interests", {"interests": ["news"], "apns": apns_of_size(4097)}, 400, None),
    ("voip-5120", "interests", {"interests": ["news"], "apns_voip": voip_of_size(5120)}, 200, None),
    ("voip-5121", "interests", {"interests": ["news"], "apns_voip": voip_of_size(5121)}, 400, None),
    ("fcm-4096", "interests", {"interests": ["news"], "fcm": fcm_of_size(4096)}, 200, None),
    ("fcm-4097", "interests", {"interests": ["news"], "fcm": fcm_of_size(4097)}, 400, None),
    ("one-platform-too-large", "interests", {"interests": ["news"], "fcm": {"data": {"a": "b"}},
                                             "apns": apns_of_size(4097)}, 400, None),
    # APNs request headers are not part of the body APNs limits.
    ("apns-headers-not-counted", "interests",
     {"interests": ["news"], "apns": {**apns_of_size(4096), "headers": {"apns-priority": "5"}}}, 200, None),
    # The limit is on the bytes sent (UTF-8): 1,950 "é" are 3,900 bytes, not 11,700.
    ("apns-non-ascii-fits", "interests", {"interests": ["news"], "apns": {"aps": {"alert": "é" * 1950}}}, 200, None),
    # The Beams web format; a browser's push service takes 4096 bytes of encrypted body: 3993 of message.
    ("web-ok", "interests", {"interests": ["news"], "web": {"notification": {
        "title": "Hi", "body": "There", "icon": "https://example.com/i.png", "deep_link": "https://example.com/",
        "hide_notification_if_site_has_focus": True}, "data": {"a": [1]}, "time_to_live": 2419200}}, 200, None),
    ("web-only-data", "interests", {"interests": ["news"], "web": {"data": {"a": 1}}}, 200, None),
    ("web-3993", "interests", {"interests": ["news"], "web": web_of_size(3993)}, 200, None),
    ("web-3994", "interests", {"interests": ["news"], "web": web_of_size(3994)}, 400, None),
    ("web-not-an-object", "interests", {"interests": ["news"], "web": ["hi"]}, 400, None),
    ("web-data-pusher", "interests", {"interests": ["news"], "web": {"data": {"pusher": 1}}}, 400, None),
    ("web-data-not-an-object", "interests", {"interests": ["news"], "web": {"data": "x"}}, 400, None),
    ("web-title-not-a-string", "interests", {"interests": ["news"], "web": {"notification": {"title": 7}}}, 400, None),
    ("web-hide-not-a-boolean", "interests",
     {"interests": ["news"], "web": {"notification": {"hide_notification_if_site_has_focus": "yes"}}}, 400, None),
    ("web-ttl-too-long", "interests", {"interests": ["news"], "web": {"time_to_live": 2419201}}, 400, None),
    ("web-ttl-negative", "interests", {"interests": ["news"], "web": {"time_to_live": -1}}, 400, None),
    ("web-ttl-not-an-integer", "interests", {"interests": ["news"], "web": {"time_to_live": "60"}}, 400, None),
    ("web-urgency", "interests", {"interests": ["news"], "web": {"urgency": "low"}}, 200, None),
    ("web-urgency-unknown", "interests", {"interests": ["news"], "web": {"urgency": "asap"}}, 400, None),
    ("users-ok", "users", {"users": ["alice"], "fcm": {"notification": {"title": "t"}}}, 200, None),
    ("users-1000", "users", {"users": [f"u{n}" for n in range(1000)], "apns": ALERT}, 200, None),
    ("users-missing", "users", {"apns": ALERT}, 400, None),
    ("users-empty", "users", {"users": [], "apns": ALERT}, 400, None),
    ("users-1001", "users", {"users": [f"u{n}" for n in range(1001)], "apns": ALERT}, 400, None),
    ("user-165-chars", "users", {"users": ["u" * 165], "apns": ALERT}, 400, None),
    ("user-164-chars", "users", {"users": ["u" * 164], "apns": ALERT}, 200, None),
    ("user-empty", "users", {"users": [""], "apns": ALERT}, 400, None),
    ("user-not-a-string", "users", {"users": [7], "apns": ALERT}, 400, None),
    ("users-no-payload", "users", {"users": ["alice"]}, 400, None),
    ("users-fcm-4097", "users", {"users": ["alice"], "fcm": fcm_of_size(4097)}, 400, None),
]


@pytest.mark.parametrize("kind, body, status, title", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_publish_validation(client, instance, kind, body, status, title):
    response = client.post(publish_path(instance["id"], kind), json=body, headers=bearer(instance["secret_key"]))
    if status == 200:
        assert response.status_code == 200, response.get_json()
        publish_id = response.get_json()["publishId"]
        assert isinstance(publish_id, str) and publish_id
    else:
        assert_beams_error(response, status, title)


def test_a_refused_publish_stores_nothing(client, instance, redis_client):
    before = set(redis_client.scan_iter(match=keys.instance_pattern(instance["id"])))
    response = client.post(publish_path(instance["id"], "interests"), json={"interests": ["news"]},
                           headers=bearer(instance["secret_key"]))
    assert_beams_error(response, 400)
    assert set(redis_client.scan_iter(match=keys.instance_pattern(instance["id"]))) == before


@pytest.mark.parametrize("kind", ["interests", "users"])
@pytest.mark.parametrize(
    "headers, status, title",
    [
        ({}, 401, "Unauthorized"),
        ({"Authorization": "Bearer not-the-secret"}, 401, "Unauthorized"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Unauthorized"),
        ({"Authorization": "Bearer "}, 401, "Unauthorized"),
    ],
    ids=["no-header", "wrong-secret", "basic", "empty-bearer"],
)
def test_publish_needs_the_secret_key(client, instance, kind, headers, status, title):
    body = {kind: ["x"], "apns": ALERT}
    assert_beams_error(client.post(publish_path(instance["id"], kind), json=body, headers=headers), status, title)


def test_the_client_token_or_another_instances_secret_is_refused(client, instance):
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    body = {"interests": ["news"], "apns": ALERT}
    for secret in (instance["client_token"], other["secret_key"]):
        assert_beams_error(client.post(publish_path(instance["id"], "interests"), json=body,
                                       headers=bearer(secret)), 401)


def test_auth_is_checked_before_the_body(client, instance):
    response = client.post(publish_path(instance["id"], "interests"), json={"interests": []},
                           headers=bearer("wrong"))
    assert_beams_error(response, 401)


@pytest.mark.parametrize("kind", ["interests", "users"])
def test_unknown_instance_is_404(client, instance, kind):
    response = client.post(publish_path(str(uuid.uuid4()), kind), json={kind: ["x"], "apns": ALERT},
                           headers=bearer(instance["secret_key"]))
    assert_beams_error(response, 404)


def test_malformed_instance_id_is_400(client, instance):
    response = client.post(publish_path("not-an-instance", "interests"), json={"interests": ["x"], "apns": ALERT},
                           headers=bearer(instance["secret_key"]))
    assert_beams_error(response, 400)


@pytest.mark.parametrize("data", [
    "{not json",
    '{"interests": ["\\ud800"], "fcm": {"notification": {"title": "hi"}}}',
    "[" * 100_000 + "]" * 100_000,
], ids=["invalid", "lone-surrogate", "nested-too-deep"])
def test_body_that_is_not_json(client, instance, data):
    response = client.post(publish_path(instance["id"], "interests"), data=data,
                           content_type="application/json", headers=bearer(instance["secret_key"]))
    assert_beams_error(response, 400)


# --- publish status ----------------------------------------------------------

STATUS_FIELDS = {"publishId", "status", "targeted", "delivered", "failed", "retried", "removed", "skipped",
                 "created_at", "failures"}
COUNTERS = ("targeted", "delivered", "failed", "retried", "removed", "skipped")


def register_fcm(client, instance_id: str, token: str, interest: str | None = None) -> str:
    response = client.post(f"/device_api/v1/instances/{instance_id}/devices/fcm", json={"token": token})
    assert response.status_code == 200, response.get_json()
    device_id = response.get_json()["id"]
    if interest:
        added = client.post(f"/device_api/v1/instances/{instance_id}/devices/fcm/{device_id}/interests/{interest}")
        assert added.status_code == 200, added.get_json()
    return device_id


def test_publish_status_record(client, instance, backend):
    register_fcm(client, instance["id"], "fcm-status-token-0000000001", "news")
    auth = bearer(instance["secret_key"])
    published = client.post(publish_path(instance["id"], "interests"),
                            json={"interests": ["news"], "fcm": {"notification": {"title": "t"}}}, headers=auth)
    assert published.status_code == 200
    publish_id = published.get_json()["publishId"]

    response = client.get(f"/publish_api/v1/instances/{instance['id']}/publishes/{publish_id}", headers=auth)
    assert response.status_code == 200
    record = response.get_json()
    assert STATUS_FIELDS <= set(record), record
    assert record["publishId"] == publish_id
    assert all(isinstance(record[name], int) for name in COUNTERS)
    assert abs(record["created_at"] - time.time()) < 60
    assert record["failures"] == []
    if backend is None:
        # Embedded: the in-process worker delivered it (dry run) before the answer.
        assert record["status"] == "done"
        assert (record["targeted"], record["delivered"], record["skipped"]) == (1, 1, 0)
        assert isinstance(record["finished_at"], int)
    else:
        # With Redis: queued for the workers, nothing counted yet.
        assert record["status"] == "queued"
        assert all(record[name] == 0 for name in COUNTERS)
        assert record.get("finished_at") is None


def test_publish_status_errors(client, instance):
    auth = bearer(instance["secret_key"])
    base = f"/publish_api/v1/instances/{instance['id']}/publishes"
    assert_beams_error(client.get(f"{base}/pubid-{uuid.uuid4()}", headers=auth), 404)
    publish_id = client.post(f"{base}/interests", json={"interests": ["a"], "apns": ALERT},
                             headers=auth).get_json()["publishId"]
    assert_beams_error(client.get(f"{base}/{publish_id}", headers=bearer("wrong")), 401)
    assert_beams_error(client.get(f"{base}/{publish_id}"), 401)
    # Another instance cannot read it, even with its own valid secret.
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    assert_beams_error(client.get(f"/publish_api/v1/instances/{other['id']}/publishes/{publish_id}",
                                  headers=bearer(other["secret_key"])), 404)


@pytest.mark.parametrize("suffix", [":failures", ":work", ":batches", ":seen", ":acknowledged", "x"])
def test_a_publish_id_never_names_another_key(client, instance, suffix):
    """Ids that are not pushlite's own shape are unknown publishes (404), not
    another of the publish's keys read as its record (a 500)."""
    auth = bearer(instance["secret_key"])
    base = f"/publish_api/v1/instances/{instance['id']}/publishes"
    publish_id = client.post(f"{base}/interests", json={"interests": ["a"], "apns": ALERT},
                             headers=auth).get_json()["publishId"]
    assert_beams_error(client.get(f"{base}/{publish_id}{suffix}", headers=auth), 404)


def test_publish_ids_are_unique(client, instance):
    auth = bearer(instance["secret_key"])
    ids = {client.post(publish_path(instance["id"], "interests"), json={"interests": ["a"], "apns": ALERT},
                       headers=auth).get_json()["publishId"] for _ in range(5)}
    assert len(ids) == 5


# --- customer API: delete a user ---------------------------------------------


def user_token(instance: dict, user_id: str) -> str:
    claims = {"sub": user_id, "iss": f"https://{instance['id']}.pushnotifications.pusher.com",
              "exp": int(time.time()) + 600}
    return jwt.encode(claims, instance["secret_key"], algorithm="HS256")


def device_with_user(client, instance: dict, platform: str, token: str, user_id: str, interests: list[str]) -> str:
    base = f"/device_api/v1/instances/{instance['id']}/devices"
    body = {"token": token, **({"bundleIdentifier": "com.example.app"} if platform == "apns" else {})}
    response = client.post(f"{base}/{platform}", json=body)
    assert response.status_code == 200, response.get_json()
    device_id = response.get_json()["id"]
    put = client.put(f"{base}/{platform}/{device_id}/interests", json={"interests": interests})
    assert put.status_code == 200, put.get_json()
    set_user = client.put(f"{base}/{platform}/{device_id}/user",
                          headers={"Authorization": f"Bearer {user_token(instance, user_id)}"})
    assert set_user.status_code == 200, set_user.get_json()
    return device_id


def test_delete_user_removes_every_device_of_theirs(client, instance, redis_client):
    iid = instance["id"]
    alice = [
        ("apns", device_with_user(client, instance, "apns", "ab" * 32, "alice", ["news", "sport"])),
        ("fcm", device_with_user(client, instance, "fcm", "fcm-alice-token-00000001", "alice", ["news"])),
        ("fcm", device_with_user(client, instance, "fcm", "fcm-alice-token-00000002", "alice", ["weather"])),
    ]
    bob = device_with_user(client, instance, "fcm", "fcm-bob-token-0000000001", "bob", ["news"])

    response = client.delete(f"/customer_api/v1/instances/{iid}/users/alice", headers=bearer(instance["secret_key"]))
    assert response.status_code == 200, response.get_json()

    base = f"/device_api/v1/instances/{iid}/devices"
    for platform, device_id in alice:
        assert_beams_error(client.get(f"{base}/{platform}/{device_id}"), 404)
        assert redis_client.hget(keys.device_bucket(iid, device_id), device_id) is None
    for name in ("news", "sport", "weather"):
        members = redis_client.smembers(keys.interest(iid, name))
        assert not members & {device_id for _, device_id in alice}, name
    assert redis_client.smembers(keys.interest(iid, "news")) == {bob}
    assert redis_client.hget(keys.user_bucket(iid, "alice"), "alice") is None
    # Bob is untouched.
    assert client.get(f"{base}/fcm/{bob}").get_json()["userId"] == "bob"
    # Registering one of alice's tokens again makes a fresh device without a user.
    again = client.post(f"{base}/fcm", json={"token": "fcm-alice-token-00000001"}).get_json()
    assert again["initialInterestSet"] == []
    assert client.get(f"{base}/fcm/{again['id']}").get_json()["userId"] == ""


def test_a_publish_to_a_deleted_user_reaches_nobody(client, instance, backend):
    device_with_user(client, instance, "fcm", "fcm-carol-token-00000001", "carol", [])
    auth = bearer(instance["secret_key"])
    assert client.delete(f"/customer_api/v1/instances/{instance['id']}/users/carol", headers=auth).status_code == 200
    publish_id = client.post(publish_path(instance["id"], "users"), json={"users": ["carol"], "fcm": {"data": {}}},
                             headers=auth).get_json()["publishId"]
    if backend is None:
        record = client.get(f"/publish_api/v1/instances/{instance['id']}/publishes/{publish_id}", headers=auth)
        assert record.get_json()["status"] == "done"
        assert record.get_json()["targeted"] == 0


def test_delete_user_errors(client, instance):
    path = f"/customer_api/v1/instances/{instance['id']}/users/nobody"
    # An unknown user is not an error (deleting is idempotent).
    assert client.delete(path, headers=bearer(instance["secret_key"])).status_code == 200
    assert_beams_error(client.delete(path, headers=bearer("wrong")), 401)
    assert_beams_error(client.delete(path), 401)
    assert_beams_error(client.delete(f"/customer_api/v1/instances/{uuid.uuid4()}/users/nobody",
                                     headers=bearer(instance["secret_key"])), 404)


@pytest.mark.parametrize("kind", ["interests", "users"])
@pytest.mark.parametrize("body", ["{nope", "[1, 2]", '"text"'])
def test_an_unreadable_publish_body_says_so(client, instance, kind, body):
    response = client.post(
        f"/publish_api/v1/instances/{instance['id']}/publishes/{kind}",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {instance['secret_key']}"},
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad request", "description": "Failed to read body as a JSON object."}
