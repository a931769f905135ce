"""MPush sends end to end on a real redis-server: registered through the MPush
API (or Beams), worked by the RQ queues in this process, and observed at the
local APNs and FCM mocks (the harness of tests/delivery)."""
from __future__ import annotations

from tests import insights
from tests.conftest import ADMIN
from tests.delivery.conftest import drain

APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-token-ok-mpush-000001"


def mpush(web, tenant: dict, path: str, body: dict, *, secret: bool = False) -> dict:
    token = tenant["secret_key"] if secret else tenant["client_token"]
    response = web.post(path, json=body, headers={"X-MPush-Token": token, "X-MPush-Version": "2"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status_code"] == 0
    return response.get_json()


def send(web, tenant: dict, topics: list[str], **extra) -> str:
    body = {"topics": topics, "title": "Hello", "body": "World", **extra}
    return mpush(web, tenant, "/api/send", body, secret=True)["publish_id"]


def test_a_send_reaches_both_providers(web, runtime, tenant, apns_mock, fcm_mock):
    mpush(web, tenant, "/api/tokens", {"token": APNS_TOKEN, "platform": "ios", "device_id": "iphone"})
    mpush(web, tenant, "/api/tokens", {"token": FCM_TOKEN, "platform": "android", "device_id": "pixel"})
    for device_id in ("iphone", "pixel"):
        mpush(web, tenant, "/api/register", {"topics": ["all", "news"], "device_id": device_id})

    record = drain(runtime, web, tenant, send(web, tenant, ["all", "news"], data={"order": 7, "kind": "new"}))
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 2, 2), record

    [apns] = apns_mock.requests
    assert apns.token == APNS_TOKEN
    assert insights.split(apns.body)[0] == {"aps": {"alert": {"title": "Hello", "body": "World"}, "sound": "default"},
                                            "data": {"order": 7, "kind": "new"}}
    [fcm] = fcm_mock.messages
    assert fcm["token"] == FCM_TOKEN
    assert fcm["notification"] == {"title": "Hello", "body": "World"}
    assert insights.split_fcm(fcm["data"])[0] == {"order": "7", "kind": "new"}


def test_a_topic_reaches_a_device_subscribed_through_the_beams_interests_api(web, runtime, tenant, fcm_mock):
    base = f"/device_api/v1/instances/{tenant['id']}/devices"
    device_id = web.post(f"{base}/fcm", json={"token": FCM_TOKEN}).get_json()["id"]
    assert web.put(f"{base}/fcm/{device_id}/interests", json={"interests": ["news"]}).status_code == 200

    record = drain(runtime, web, tenant, send(web, tenant, ["news"]))
    assert (record["status"], record["delivered"]) == ("done", 1), record
    assert [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN]


def test_a_moved_token_gets_the_send_and_the_old_one_does_not(web, runtime, tenant, apns_mock, fcm_mock):
    mpush(web, tenant, "/api/tokens", {"token": APNS_TOKEN, "platform": "ios", "device_id": "phone"})
    mpush(web, tenant, "/api/register", {"topics": ["news"], "device_id": "phone"})
    new_token = "b2" * 32
    mpush(web, tenant, "/api/tokens", {"token": new_token, "platform": "ios", "device_id": "phone"})

    record = drain(runtime, web, tenant, send(web, tenant, ["news"]))
    assert (record["targeted"], record["delivered"]) == (1, 1), record
    assert [r.token for r in apns_mock.requests] == [new_token]

    # Moved to another platform, the device keeps its topic.
    mpush(web, tenant, "/api/tokens", {"token": FCM_TOKEN, "platform": "android", "device_id": "phone"})
    apns_mock.reset()
    record = drain(runtime, web, tenant, send(web, tenant, ["news"]))
    assert (record["targeted"], record["delivered"]) == (1, 1), record
    assert apns_mock.requests == [] and [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN]


def test_a_provider_without_credential_is_skipped(web, runtime, tenant, apns_mock, fcm_mock):
    mpush(web, tenant, "/api/tokens", {"token": APNS_TOKEN, "platform": "ios", "device_id": "iphone"})
    mpush(web, tenant, "/api/tokens", {"token": FCM_TOKEN, "platform": "android", "device_id": "pixel"})
    for device_id in ("iphone", "pixel"):
        mpush(web, tenant, "/api/register", {"topics": ["all"], "device_id": device_id})
    assert web.delete(f"/admin/v1/instances/{tenant['id']}/credentials/apns", headers=ADMIN).status_code == 204

    record = drain(runtime, web, tenant, send(web, tenant, ["all"]))
    assert (record["status"], record["targeted"], record["delivered"], record["skipped"]) == ("done", 2, 1, 1)
    assert apns_mock.requests == [] and len(fcm_mock.messages) == 1
