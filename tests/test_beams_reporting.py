"""The Beams Reporting API, with the event bodies the official SDKs send
(push-notifications-web src/service-worker.js, push-notifications-android
reporting/api/ReportingService.kt via Gson, push-notifications-swift
Protocols/ReportEventType.swift via JSONEncoder), and the publish record's
`acknowledged` and `opened` counts they make."""
from __future__ import annotations

import time
import uuid

import pytest

from pushlite.storage import keys
from tests.mocks.webpush_mock import Browser
from tests.test_beams_devices import register


def events_path(instance_id: str) -> str:
    return f"/reporting_api/v2/instances/{instance_id}/events"


def web_event(event: str, publish_id: str, device_id: str, user_id: str | None = None) -> dict:
    """The service worker's reportEvent body: JSON.stringify keeps a null userId."""
    return {"publishId": publish_id, "event": event, "deviceId": device_id, "userId": user_id,
            "timestampSecs": int(time.time()), "appInBackground": True, "hasDisplayableContent": True,
            "hasData": False}


def android_event(event: str, publish_id: str, device_id: str, instance_id: str) -> dict:
    """Gson of DeliveryEvent / OpenEvent: enum names, no nulls, the booleans on a delivery only."""
    body = {"event": event, "instanceId": instance_id, "deviceId": device_id, "publishId": publish_id,
            "timestampSecs": int(time.time())}
    if event == "Delivery":
        body.update(appInBackground=False, hasDisplayableContent=True, hasData=True)
    return body


def ios_event(event: str, publish_id: str, device_id: str, instance_id: str, user_id: str) -> dict:
    body = {"event": event, "instanceId": instance_id, "publishId": publish_id, "deviceId": device_id,
            "userId": user_id, "timestampSecs": int(time.time())}
    if event == "Delivery":
        body.update(appInBackground=True, hasDisplayableContent=True, hasData=False)
    return body


@pytest.fixture
def published(client, instance) -> str:
    response = client.post(f"/publish_api/v1/instances/{instance['id']}/publishes/interests",
                           json={"interests": ["news"], "fcm": {"notification": {"title": "Hi"}}},
                           headers={"Authorization": f"Bearer {instance['secret_key']}"})
    assert response.status_code == 200
    return response.get_json()["publishId"]


def counts(client, instance: dict, publish_id: str) -> tuple[int, int]:
    record = client.get(f"/publish_api/v1/instances/{instance['id']}/publishes/{publish_id}",
                        headers={"Authorization": f"Bearer {instance['secret_key']}"}).get_json()
    return record["acknowledged"], record["opened"]


def report(client, instance_id: str, body: dict) -> None:
    response = client.post(events_path(instance_id), json=body)
    assert response.status_code == 200, response.get_json()


def test_each_sdks_events_are_counted_once_per_device(client, instance, published):
    iid = instance["id"]
    android = register(client, iid, "fcm", "fcm-token-reporting-000001")["id"]
    iphone = register(client, iid, "apns", "ab" * 32)["id"]
    browser = client.post(f"/device_api/v1/instances/{iid}/devices/web",
                          json={"token": Browser("b", "https://fcm.googleapis.com/fcm/send/x", "").token}).get_json()["id"]
    assert counts(client, instance, published) == (0, 0)

    report(client, iid, android_event("Delivery", published, android, iid))
    report(client, iid, ios_event("Delivery", published, iphone, iid, "alice"))
    report(client, iid, web_event("delivery", published, browser))
    assert counts(client, instance, published) == (3, 0)

    # The same device again (a retried report) counts once.
    report(client, iid, android_event("Delivery", published, android, iid))
    report(client, iid, web_event("DELIVERY", published, browser, "bob"))
    assert counts(client, instance, published) == (3, 0)

    report(client, iid, android_event("Open", published, android, iid))
    report(client, iid, ios_event("Open", published, iphone, iid, "alice"))
    report(client, iid, android_event("Open", published, android, iid))
    assert counts(client, instance, published) == (3, 2)


def test_the_twilio_operation_shows_the_counts_too(client, instance):
    auth = (instance["id"], instance["secret_key"])
    device = register(client, instance["id"], "fcm", "fcm-token-reporting-twilio")["id"]
    sent = client.post("/v1/PushNotifications", json={"to": [{"userId": "carol"}], "content": {"title": "Hi"}},
                       auth=auth)
    assert sent.status_code == 202, sent.get_json()
    operation = sent.get_json()["id"]
    publish_id = "pubid-" + str(uuid.UUID(operation.removeprefix("comms_operation_")))
    report(client, instance["id"], web_event("open", publish_id, device))
    body = client.get(f"/v1/PushNotifications/Operations/{operation}", auth=auth).get_json()
    assert (body["acknowledged"], body["opened"]) == (0, 1)


def test_events_for_unknown_publishes_or_devices_are_ignored(client, instance, published, redis_client):
    iid = instance["id"]
    device = register(client, iid, "fcm", "fcm-token-reporting-000003")["id"]
    before = set(redis_client.scan_iter(match=keys.instance_pattern(iid)))
    for body in (
        web_event("delivery", "pubid-" + str(uuid.uuid4()), device),  # no such publish (or expired)
        web_event("delivery", published, "0123456789ab"),  # no such device
        web_event("open", published, "not-a-device-id"),
        web_event("open", "whatever", device),
        # An id shaped to name another key of the publish must not reach it.
        web_event("delivery", published + ":failures", device),
        web_event("delivery", published, device + ":x"),
    ):
        report(client, iid, body)
    assert counts(client, instance, published) == (0, 0)
    assert set(redis_client.scan_iter(match=keys.instance_pattern(iid))) == before


def test_the_reported_devices_expire_with_the_publish(client, instance, published, redis_client):
    device = register(client, instance["id"], "fcm", "fcm-token-reporting-000004")["id"]
    report(client, instance["id"], web_event("delivery", published, device))
    reported = keys.publish_reported(instance["id"], published, "delivery")
    assert redis_client.smembers(reported) == {device}
    publish_ttl = redis_client.ttl(keys.publish(instance["id"], published))
    assert 0 < publish_ttl - 2 <= redis_client.ttl(reported) <= publish_ttl


BAD_EVENTS = [
    pytest.param({}, "event is missing from body.", id="empty"),
    pytest.param({"publishId": "p", "deviceId": "d", "timestampSecs": 1}, "event is missing from body.", id="no-event"),
    pytest.param({"event": "delivery", "deviceId": "d", "timestampSecs": 1}, "publishId is missing from body.",
                 id="no-publish-id"),
    pytest.param({"event": "delivery", "publishId": "p", "timestampSecs": 1}, "deviceId is missing from body.",
                 id="no-device-id"),
    pytest.param({"event": "delivery", "publishId": "p", "deviceId": "d"}, "timestampSecs is missing from body.",
                 id="no-timestamp"),
    pytest.param({"event": "clicked", "publishId": "p", "deviceId": "d", "timestampSecs": 1},
                 "event must be delivery or open.", id="unknown-event"),
    pytest.param({"event": 1, "publishId": "p", "deviceId": "d", "timestampSecs": 1}, "event must be a string.",
                 id="event-not-a-string"),
    pytest.param({"event": "open", "publishId": ["p"], "deviceId": "d", "timestampSecs": 1},
                 "publishId must be a string.", id="publish-id-not-a-string"),
    pytest.param({"event": "open", "publishId": "p", "deviceId": None, "timestampSecs": 1},
                 "deviceId is missing from body.", id="device-id-null"),
    pytest.param({"event": "open", "publishId": "p", "deviceId": "d", "timestampSecs": "1700000000"},
                 "timestampSecs must be an integer.", id="timestamp-a-string"),
    pytest.param({"event": "open", "publishId": "p", "deviceId": "d", "timestampSecs": 1.5},
                 "timestampSecs must be an integer.", id="timestamp-a-float"),
    pytest.param({"event": "open", "publishId": "p", "deviceId": "d", "timestampSecs": -1},
                 "timestampSecs must not be negative.", id="timestamp-negative"),
    pytest.param({"event": "open", "publishId": "p", "deviceId": "d", "timestampSecs": 1, "userId": 7},
                 "userId must be a string.", id="user-id-not-a-string"),
    pytest.param({"event": "delivery", "publishId": "p", "deviceId": "d", "timestampSecs": 1, "hasData": "yes"},
                 "hasData must be a boolean.", id="has-data-not-a-boolean"),
]


@pytest.mark.parametrize("body, description", BAD_EVENTS)
def test_a_malformed_event_is_a_400_in_the_beams_shape(client, instance, body, description):
    response = client.post(events_path(instance["id"]), json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad request", "description": description}


def test_the_body_must_be_a_json_object_of_type_application_json(client, instance):
    path = events_path(instance["id"])
    assert client.post(path, data="{}", content_type="text/plain").get_json() == {
        "error": "Invalid content type", "description": "Only application/json is supported."}
    for data in ("[1]", "nope"):
        assert client.post(path, data=data, content_type="application/json").get_json() == {
            "error": "Bad request", "description": "Failed to read body as a JSON object."}


def test_the_instance_must_exist_and_be_well_formed(client):
    body = web_event("delivery", "pubid-" + str(uuid.uuid4()), "0123456789ab")
    unknown = client.post(events_path("00000000-0000-4000-8000-000000000000"), json=body)
    assert (unknown.status_code, unknown.get_json()["error"]) == (404, "Instance not found")
    malformed = client.post(events_path("nope"), json=body)
    assert (malformed.status_code, malformed.get_json()["error"]) == (400, "Bad request")
    assert client.get(events_path("00000000-0000-4000-8000-000000000000")).status_code == 405
