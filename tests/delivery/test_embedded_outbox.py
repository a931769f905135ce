"""The embedded default (no REDIS_URL): an in-process worker (RQ's sync mode)
delivers in dry-run mode while the publish request runs, and the admin outbox
lists the latest 100 notifications that would have been sent."""
from __future__ import annotations

import uuid

import pytest

import config
from pushlite import redis_clients
from pushlite.app import create_app
from pushlite.storage import devices, interests, keys
from tests import insights
from tests.conftest import ADMIN

ALERT = {"aps": {"alert": {"title": "Hi", "body": "There"}}}
FCM = {"notification": {"title": "Hi", "body": "There"}, "data": {"n": 1}}


@pytest.fixture
def embedded():
    """The embedded default: no Redis URL, so fakeredis, sync RQ and dry-run delivery."""
    app = create_app(config.TestingConfig())
    assert app.config["EMBEDDED"] and app.config["PUSHLITE_DRY_RUN"]
    return app.test_client()


@pytest.fixture
def demo(embedded) -> dict:
    """An instance without any provider credential, like the embedded demo."""
    created = embedded.post("/admin/v1/instances", json={"name": "demo"}, headers=ADMIN).get_json()
    created["auth"] = {"Authorization": f"Bearer {created['secret_key']}"}
    return created


def register(embedded, instance_id: str, platform: str, token: str, interests: list[str]) -> str:
    base = f"/device_api/v1/instances/{instance_id}/devices"
    body = {"token": token, **({"bundleIdentifier": "com.example.app"} if platform == "apns" else {})}
    device_id = embedded.post(f"{base}/{platform}", json=body).get_json()["id"]
    if interests:
        put = embedded.put(f"{base}/{platform}/{device_id}/interests", json={"interests": interests})
        assert put.status_code == 200, put.get_json()
    return device_id


def publish(embedded, instance: dict, interests: list[str], **payloads) -> dict:
    response = embedded.post(f"/publish_api/v1/instances/{instance['id']}/publishes/interests",
                             json={"interests": interests, **payloads}, headers=instance["auth"])
    assert response.status_code == 200, response.get_json()
    publish_id = response.get_json()["publishId"]
    record = embedded.get(f"/publish_api/v1/instances/{instance['id']}/publishes/{publish_id}",
                          headers=instance["auth"])
    return record.get_json()


def outbox(embedded, instance_id: str) -> list[dict]:
    response = embedded.get(f"/admin/v1/instances/{instance_id}/outbox", headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["notifications"]


def test_a_publish_is_done_when_the_request_returns(embedded, demo):
    apns_id = register(embedded, demo["id"], "apns", "ab" * 32, ["news"])
    fcm_id = register(embedded, demo["id"], "fcm", "fcm-demo-token-0123456789abcdef", ["news", "sport"])
    record = publish(embedded, demo, ["news", "sport"], apns=ALERT, fcm=FCM)
    assert record["status"] == "done"
    assert (record["targeted"], record["delivered"], record["skipped"], record["failed"]) == (2, 2, 0, 0)

    entries = outbox(embedded, demo["id"])
    assert len(entries) == 2
    by_device = {e["device_id"]: e for e in entries}
    assert by_device[apns_id]["provider"] == "apns"
    assert by_device[apns_id]["token"] == "ab" * 32
    # The payload as sent: with the delivery metadata in data.pusher.
    assert insights.split(by_device[apns_id]["payload"]) == (ALERT, insights.metadata(demo["id"], record["publishId"]))
    assert by_device[fcm_id]["provider"] == "fcm"
    assert by_device[fcm_id]["token"] == "fcm-demo-token-0123456789abcdef"
    assert insights.split(by_device[fcm_id]["payload"]) == (
        FCM, insights.metadata(demo["id"], record["publishId"], has_data=True))


def test_the_outbox_keeps_the_latest_100_newest_first(embedded, demo):
    for n in range(40):
        register(embedded, demo["id"], "fcm", f"fcm-outbox-token-{n:08d}", ["crowd"])
    for n in range(3):
        record = publish(embedded, demo, ["crowd"], fcm={"data": {"round": n}})
        assert (record["status"], record["delivered"]) == ("done", 40)
    entries = outbox(embedded, demo["id"])
    assert len(entries) == 100
    rounds = [e["payload"]["data"]["round"] for e in entries]
    assert rounds == [2] * 40 + [1] * 40 + [0] * 20
    # Older ones are not kept behind the scenes either.
    assert redis_clients.client_of(embedded.application).llen(keys.outbox(demo["id"])) == 100


def test_voip_devices_need_a_voip_payload_in_the_outbox_too(embedded, demo):
    data = redis_clients.client_of(embedded.application)
    voip_id, _ = devices.register(data, demo["id"], "apns_voip", "cd" * 32)
    interests.add(data, demo["id"], voip_id, None, ["calls"])
    without = publish(embedded, demo, ["calls"], apns=ALERT)
    assert (without["targeted"], without["skipped"], without["delivered"]) == (1, 1, 0)
    assert outbox(embedded, demo["id"]) == []
    voip = {"aps": {}, "caller": "Ann"}
    with_voip = publish(embedded, demo, ["calls"], apns=ALERT, apns_voip=voip)
    assert with_voip["delivered"] == 1
    [entry] = outbox(embedded, demo["id"])
    assert entry["platform"] == "apns_voip" and entry["payload"] == voip


def test_outboxes_are_per_instance(embedded, demo):
    other = embedded.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    register(embedded, demo["id"], "fcm", "fcm-demo-token-0123456789abcdef", ["news"])
    publish(embedded, demo, ["news"], fcm=FCM)
    assert len(outbox(embedded, demo["id"])) == 1
    assert outbox(embedded, other["id"]) == []


def test_outbox_errors(embedded, demo):
    assert embedded.get(f"/admin/v1/instances/{demo['id']}/outbox").status_code == 401
    assert embedded.get(f"/admin/v1/instances/{uuid.uuid4()}/outbox", headers=ADMIN).status_code == 404
