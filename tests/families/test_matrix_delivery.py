"""Matrix pushers reached by a publish: the Matrix sender against local mock
push gateways (batching by URL, event_id_only, rejected pushkeys, temporary
failures, the URL guard again at delivery), the payload a publish derives for
them, and end to end on a real redis-server through the delivery harness."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pushlite import payloads
from pushlite.storage import devices, pushers
from tests.delivery.conftest import drain, publish
from tests.families.conftest import LOCAL_GATEWAYS as LOCAL
from tests.families.conftest_matrix import auth, fcm_token
from tests.mocks.matrix_gateway import NOTIFY_PATH
from workers.senders import SenderSettings, Target, sender_class
from workers.senders.matrix import MAX_DEVICES_PER_REQUEST, MatrixSender

NOTIFICATION = {
    "event_id": "$3957tyerfgewrf384",
    "room_id": "!slw48wfj34rtnrf:example.org",
    "type": "m.room.message",
    "sender": "@exampleuser:matrix.org",
    "sender_display_name": "Major Tom",
    "room_name": "Mission Control",
    "content": {"msgtype": "m.text", "body": "I'm floating in a most peculiar way."},
    "counts": {"unread": 2, "missed_calls": 1},
    "prio": "high",
}


def target(n: int, pushkey: str, url: str, *, fmt: str | None = None, app_id: str = "com.example.ios",
           kind: str = "http", **data: Any) -> Target:
    pusher_data = {"url": url, **data}
    if fmt:
        pusher_data["format"] = fmt
    metadata = {"kind": kind, "app_display_name": "App", "device_display_name": "Phone", "lang": "en",
                "data": pusher_data, "pushkey_ts": 1700000000 + n}
    return Target(f"{n:012x}", pushkey, "matrix", None, app_id, metadata)


def send(targets: list[Target], payload: dict = NOTIFICATION, allowlist: str = LOCAL):
    async def run():
        async with MatrixSender({}, SenderSettings(matrix_gateway_allowlist=allowlist, timeout=5)) as sender:
            return await sender.send(targets, payload)
    return asyncio.run(run())


# --- the sender against the mock gateways ----------------------------------------


def test_the_sender_is_found_by_name_and_needs_no_credential():
    assert sender_class("matrix") is MatrixSender
    assert MatrixSender.validate_credential({"anything": 1}) == {}


def test_one_request_per_gateway_url_with_every_device(gateway, other_gateway):
    targets = [target(1, "pk-1", gateway.url, brand="blue"), target(2, "pk-2", gateway.url),
               target(3, "pk-3", other_gateway.url)]
    outcome = send(targets)
    assert sorted(outcome.delivered) == sorted(t.device_id for t in targets)
    [request] = gateway.requests
    assert request.path == NOTIFY_PATH
    assert request.headers["content-type"] == "application/json"
    assert request.notification == {**NOTIFICATION, "devices": [
        {"app_id": "com.example.ios", "pushkey": "pk-1", "pushkey_ts": 1700000001, "data": {"brand": "blue"}},
        {"app_id": "com.example.ios", "pushkey": "pk-2", "pushkey_ts": 1700000002, "data": {}},
    ]}
    assert other_gateway.requests[0].pushkeys == ["pk-3"]


def test_event_id_only_pushers_get_only_the_event_id_fields(gateway):
    targets = [target(1, "full", gateway.url), target(2, "slim", gateway.url, fmt="event_id_only", brand="x")]
    send(targets)
    by_key = {r.pushkeys[0]: r.notification for r in gateway.requests}
    assert set(by_key) == {"full", "slim"}
    assert by_key["slim"] == {
        "event_id": NOTIFICATION["event_id"], "room_id": NOTIFICATION["room_id"],
        "counts": NOTIFICATION["counts"], "prio": "high",
        "devices": [{"app_id": "com.example.ios", "pushkey": "slim", "pushkey_ts": 1700000002,
                     "data": {"format": "event_id_only", "brand": "x"}}],
    }
    assert by_key["full"]["content"] == NOTIFICATION["content"]


def test_device_data_is_the_pushers_data_without_the_url_only(gateway):
    """As the push gateway API says: `format` and every other key the client stored are kept."""
    send([target(1, "pk", gateway.url, fmt="event_id_only", brand="blue", nested={"a": [1, 2]})])
    [device] = gateway.requests[0].notification["devices"]
    assert device["data"] == {"format": "event_id_only", "brand": "blue", "nested": {"a": [1, 2]}}


def test_many_pushers_on_one_gateway_are_sent_in_chunks(gateway):
    targets = [target(n, f"pk-{n}", gateway.url) for n in range(MAX_DEVICES_PER_REQUEST + 5)]
    outcome = send(targets)
    assert len(outcome.delivered) == len(targets)
    assert sorted(len(r.pushkeys) for r in gateway.requests) == [5, MAX_DEVICES_PER_REQUEST]


def test_rejected_pushkeys_are_dead_and_the_rest_delivered(gateway):
    targets = [target(1, "reject-me", gateway.url), target(2, "fine", gateway.url)]
    outcome = send(targets)
    assert (outcome.dead, outcome.delivered) == (["000000000001"], ["000000000002"])
    assert len(gateway.requests) == 1


def test_prio_defaults_to_high():
    from workers.senders.matrix import notification

    assert notification({"event_id": "$e"}, False, [])["prio"] == "high"
    assert notification({"event_id": "$e", "prio": "low"}, True, [])["prio"] == "low"


@pytest.mark.parametrize("pushkey, kind, after", [
    ("busy-1", "retry", 1.0),
    ("down-1", "retry", None),
    ("bad-1", "failed", None),
])
def test_gateway_failures(gateway, pushkey, kind, after):
    outcome = send([target(1, pushkey, gateway.url), target(2, "ok", gateway.url)])
    if kind == "retry":
        assert outcome.retry == [("000000000001", after), ("000000000002", after)]
    else:
        assert outcome.failed == [("000000000001", "matrix:400"), ("000000000002", "matrix:400")]
    assert outcome.total == 2


def test_a_gateway_that_does_not_answer_is_retried():
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}{NOTIFY_PATH}"
    outcome = send([target(1, "pk", url)])
    assert outcome.retry == [("000000000001", None)]


def test_the_url_guard_runs_again_at_delivery(gateway):
    # Allowed when registered (say), but the default allowlist refuses it now:
    # a loopback address, by literal or by name.
    for url in (gateway.url, gateway.url.replace("127.0.0.1", "localhost"),
                "https://169.254.169.254/_matrix/push/v1/notify"):
        outcome = send([target(1, "pk", url)], allowlist="https://*")
        assert outcome.failed == [("000000000001", "matrix:unsafe-url")], url
    assert gateway.requests == []


def test_the_request_goes_to_the_checked_address_with_the_hosts_name(gateway):
    url = gateway.url.replace("127.0.0.1", "localhost")
    outcome = send([target(1, "pk", url)])
    assert outcome.delivered == ["000000000001"]
    assert gateway.requests[0].headers["host"] == f"localhost:{gateway.port}"


def test_a_pusher_without_a_gateway_url_fails_without_a_request(gateway):
    outcome = send([target(1, "pk", gateway.url, kind="email"), Target("000000000002", "pk2", "matrix", None, "a")])
    assert sorted(outcome.failed) == [("000000000001", "matrix:no-gateway-url"),
                                      ("000000000002", "matrix:no-gateway-url")]
    assert gateway.requests == []


# --- the notification a publish carries for Matrix ---------------------------------


def test_a_publish_without_a_matrix_payload_derives_one():
    content = payloads.check({"fcm": {"notification": {"title": "Hello", "body": "World"}}})
    assert content["matrix"] == {"type": "m.room.message", "prio": "high", "room_name": "Hello",
                                 "content": {"msgtype": "m.text", "body": "World"}}
    content = payloads.check({"apns": {"aps": {"alert": "Just a body"}}})
    assert content["matrix"]["content"] == {"msgtype": "m.text", "body": "Just a body"}
    content = payloads.check({"apns": {"aps": {"alert": {"title": "Only a title"}}}})
    assert content["matrix"]["content"]["body"] == "Only a title" and "room_name" not in content["matrix"]


def test_a_data_only_publish_has_nothing_for_matrix():
    assert "matrix" not in payloads.check({"fcm": {"data": {"k": "v"}}, "apns": {"aps": {"content-available": 1}}})


def test_a_given_matrix_payload_is_kept_and_checked():
    assert payloads.check({"matrix": NOTIFICATION})["matrix"] == NOTIFICATION
    with pytest.raises(payloads.PayloadTooLarge, match="matrix"):
        payloads.check({"matrix": {"content": {"body": "x" * 5000}}})
    with pytest.raises(payloads.PayloadError, match="object"):
        payloads.check({"matrix": "text"})


def test_mpush_and_twilio_style_messages_reach_matrix_too():
    assert payloads.check(payloads.from_message("Hi", "there"))["matrix"]["content"]["body"] == "there"


# --- end to end: registered through the API, published through Beams ----------------


def set_pusher(web, tenant, pushkey: str, url: str, user: str = "alice", **data: Any) -> None:
    body = {"kind": "http", "app_id": "com.example.ios", "pushkey": pushkey, "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "data": {"url": url, **data}}
    response = web.post("/_matrix/client/v3/pushers/set", json=body, headers=auth(tenant, user))
    assert response.status_code == 200, response.get_json()


def test_a_publish_to_a_user_reaches_their_pushers(web, runtime, tenant, gateway, other_gateway, fcm_mock):
    before = int(time.time())
    set_pusher(web, tenant, "pk-a", gateway.url, brand="blue")
    set_pusher(web, tenant, "pk-b", gateway.url, format="event_id_only")
    set_pusher(web, tenant, "pk-c", other_gateway.url)
    set_pusher(web, tenant, "pk-bob", gateway.url, user="bob")
    web.post("/users/@me/devices", json={"provider": "gcm", "token": fcm_token(1)}, headers=auth(tenant))
    pid = publish(web, tenant, "users", ["alice"], fcm={"notification": {"title": "Hello", "body": "World"}})
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"], record["failed"]) == ("done", 4, 4, 0), record

    by_key = {key: r for r in gateway.requests + other_gateway.requests for key in r.pushkeys}
    assert set(by_key) == {"pk-a", "pk-b", "pk-c"}
    full = by_key["pk-a"].notification
    assert full["room_name"] == "Hello" and full["content"] == {"msgtype": "m.text", "body": "World"}
    [device] = full["devices"]
    assert device["app_id"] == "com.example.ios" and device["data"] == {"brand": "blue"}
    assert before <= device["pushkey_ts"] <= int(time.time())
    assert "content" not in by_key["pk-b"].notification
    assert [m["token"] for m in fcm_mock.messages] == [fcm_token(1)]


def test_a_matrix_payload_in_a_beams_publish(web, runtime, tenant, gateway):
    set_pusher(web, tenant, "pk-a", gateway.url)
    pid = publish(web, tenant, "users", ["alice"], fcm={"notification": {"title": "T", "body": "B"}},
                  matrix=NOTIFICATION)
    drain(runtime, web, tenant, pid)
    assert gateway.requests[0].notification == {**NOTIFICATION, "devices": gateway.requests[0].notification["devices"]}


def test_a_rejected_pusher_is_removed_and_other_users_pushers_are_not(web, runtime, tenant, data, gateway,
                                                                       other_gateway):
    """As a homeserver does with a gateway's `rejected` list: the pusher the
    request was for goes; another user's pusher of that pushkey (maybe on
    another gateway) is theirs to keep."""
    set_pusher(web, tenant, "reject-this", gateway.url)
    set_pusher(web, tenant, "keep-this", gateway.url)
    web.post("/_matrix/client/v3/pushers/set", headers=auth(tenant, "bob"), json={
        "kind": "http", "app_id": "com.example.ios", "pushkey": "reject-this", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en", "data": {"url": other_gateway.url}, "append": True})
    pid = publish(web, tenant, "users", ["alice"], fcm={"notification": {"title": "Hello", "body": "World"}})
    record = drain(runtime, web, tenant, pid)
    assert (record["delivered"], record["removed"]) == (1, 1), record

    rejected_id = pushers.own_id(tenant["id"], "alice", "com.example.ios", "reject-this")
    assert devices.load_many(data, tenant["id"], [rejected_id]) == {}
    assert rejected_id not in devices.user_device_ids(data, tenant["id"], "alice")
    listed = web.get("/_matrix/client/v3/pushers", headers=auth(tenant, "alice")).get_json()["pushers"]
    assert [p["pushkey"] for p in listed] == ["keep-this"]
    listed = web.get("/_matrix/client/v3/pushers", headers=auth(tenant, "bob")).get_json()["pushers"]
    assert [p["pushkey"] for p in listed] == ["reject-this"]


def test_a_publish_uses_the_users_own_pusher_data_only(web, runtime, tenant, gateway, other_gateway):
    """Bob setting Alice's app_id + pushkey with append: true (say, to get her
    notifications) gets a pusher of his own; Alice's stays hers."""
    set_pusher(web, tenant, "shared-key", gateway.url, owner="alice")
    response = web.post("/_matrix/client/v3/pushers/set", headers=auth(tenant, "bob"), json={
        "kind": "http", "app_id": "com.example.ios", "pushkey": "shared-key", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en", "data": {"url": other_gateway.url, "owner": "bob"},
        "append": True})
    assert response.status_code == 200
    pid = publish(web, tenant, "users", ["alice"], fcm={"notification": {"title": "Hello", "body": "World"}})
    record = drain(runtime, web, tenant, pid)
    assert (record["targeted"], record["delivered"]) == (1, 1), record
    assert other_gateway.requests == []
    [request] = gateway.requests
    assert request.notification["devices"][0]["data"] == {"owner": "alice"}


def test_a_busy_gateway_is_retried_until_it_answers(web, runtime, tenant, gateway, settings):
    settings.max_attempts = 2
    set_pusher(web, tenant, "busy-1", gateway.url)
    pid = publish(web, tenant, "users", ["alice"], fcm={"notification": {"title": "Hello", "body": "World"}})
    record = drain(runtime, web, tenant, pid)
    assert record["status"] == "done" and record["retried"] >= 1 and record["failed"] == 1, record
    assert len(gateway.requests) == 2


def test_a_data_only_publish_skips_pushers(web, runtime, tenant, gateway):
    set_pusher(web, tenant, "pk-a", gateway.url)
    pid = publish(web, tenant, "users", ["alice"], fcm={"data": {"k": "v"}})
    record = drain(runtime, web, tenant, pid)
    assert (record["skipped"], record["delivered"]) == (1, 0), record
    assert gateway.requests == []
