"""Web Push end to end on a real redis-server: browsers subscribe to the local
push service (`tests/mocks/webpush_mock.py`, HTTP/2 over TLS) with the
instance's VAPID key and register as the Beams Web SDK does; a publish is
delivered by the workers' code in this process (`drain`), and the push
service verifies each request's VAPID JWT and decrypts its payload with the
browser's own keys."""
from __future__ import annotations

import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushlite.storage import keys
from tests.conftest import ADMIN
from tests.delivery.conftest import FCM, add_device, drain, publish, status
from tests.families.conftest_matrix import user_jwt
from tests.mocks.providers import VAPID_SUBJECT
from tests.mocks.webpush_mock import Http1WebPushMock, PushService, b64url, decrypt, raw_public_key, unb64url
from workers.runtime import Runtime
from workers.senders import SenderSettings

WEB = {
    "notification": {"title": "Hello", "body": "World", "icon": "https://example.com/icon.png",
                     "deep_link": "https://example.com/inbox", "hide_notification_if_site_has_focus": True},
    "data": {"order": 7, "tags": ["a"]},
    "time_to_live": 3600,
}


def device_api(tenant: dict) -> str:
    return f"/device_api/v1/instances/{tenant['id']}"


def vapid_key(web, tenant: dict) -> str:
    response = web.get(device_api(tenant) + "/web-vapid-public-key")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["vapidPublicKey"]


def register_browser(web, tenant: dict, service: PushService, name: str, interests=("news",), user=None) -> str:
    """What the Beams Web SDK does on start(): get the VAPID key, subscribe, register, then set interests."""
    browser = service.subscribe(name, vapid_key(web, tenant))
    response = web.post(device_api(tenant) + "/devices/web", json={"token": browser.token,
                                                                  "metadata": {"sdkVersion": "2.1.0"}})
    assert response.status_code == 200, response.get_json()
    device_id = response.get_json()["id"]
    put = web.put(f"{device_api(tenant)}/devices/web/{device_id}/interests", json={"interests": list(interests)})
    assert put.status_code == 200, put.get_json()
    if user:
        set_user = web.put(f"{device_api(tenant)}/devices/web/{device_id}/user",
                           headers={"Authorization": f"Bearer {user_jwt(tenant, user)}"})
        assert set_user.status_code == 200, set_user.get_json()
    return device_id


def publish_web(client, tenant: dict, payload: dict, interests=("news",)) -> str:
    """A publish to interests with a web payload (``publish`` takes platforms as keywords, and ``web`` is taken)."""
    response = client.post(f"/publish_api/v1/instances/{tenant['id']}/publishes/interests",
                           json={"interests": list(interests), "web": payload}, headers=tenant["auth"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()["publishId"]


def test_a_browser_gets_the_notification_it_can_decrypt(web, runtime, tenant, webpush_mock):
    register_browser(web, tenant, webpush_mock, "chrome-1")
    before = time.time()
    pid = publish_web(web, tenant, WEB)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"], record["failed"]) == ("done", 1, 1, 0), record

    [received] = webpush_mock.messages("chrome-1")
    # What the Beams service worker reads: the notification, and data with pusher (it ignores a push without).
    assert received.message == {
        "notification": WEB["notification"],
        "data": {"order": 7, "tags": ["a"], "pusher": {
            "publishId": pid, "instanceId": tenant["id"], "hasDisplayableContent": True, "hasData": True}},
    }
    assert received.headers["ttl"] == "3600"
    assert received.headers["urgency"] == "high"
    assert received.headers["content-encoding"] == "aes128gcm"
    # The JWT verified with the instance's VAPID key (the one the browser subscribed with).
    assert received.headers["authorization"].endswith(f", k={vapid_key(web, tenant)}")
    assert received.claims["aud"] == webpush_mock.origin
    assert received.claims["sub"] == VAPID_SUBJECT
    assert before + 11 * 3600 < received.claims["exp"] <= time.time() + 12 * 3600
    assert webpush_mock.refused == []


def test_each_message_has_its_own_key_and_salt_and_the_defaults(web, runtime, tenant, webpush_mock):
    register_browser(web, tenant, webpush_mock, "firefox-1")
    for _ in range(2):
        drain(runtime, web, tenant, publish_web(web, tenant, {"data": {"n": 1}}))
    first, second = webpush_mock.messages("firefox-1")
    assert first.as_public != second.as_public and first.salt != second.salt
    # No time_to_live: Beams' default, four weeks; a data-only push still shows (the service worker shows one).
    assert first.headers["ttl"] == str(4 * 7 * 24 * 3600)
    assert first.message["notification"] == {}
    assert first.message["data"]["pusher"]["hasDisplayableContent"] is False
    # One VAPID JWT per push service, reused.
    assert first.headers["authorization"] == second.headers["authorization"]


def test_one_connection_carries_a_publish_to_many_browsers(web, runtime, tenant, webpush_mock, _webpush_server):
    for n in range(40):
        register_browser(web, tenant, webpush_mock, f"many-{n}")
    connections = _webpush_server.connections
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["targeted"], record["delivered"]) == (40, 40), record
    assert len(webpush_mock.received) == 40
    assert _webpush_server.connections - connections == 1


def test_a_publish_without_a_web_payload_skips_browsers(web, runtime, tenant, webpush_mock, fcm_mock, data):
    register_browser(web, tenant, webpush_mock, "chrome-skip")
    add_device(data, tenant["id"], "fcm", "fcm-token-web-skip-0000001", ["news"])
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], fcm=FCM))
    assert (record["targeted"], record["delivered"], record["skipped"]) == (2, 1, 1), record
    assert webpush_mock.received == []
    # And a web payload reaches browsers only.
    fcm_mock.reset()
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["targeted"], record["delivered"], record["skipped"]) == (2, 1, 1), record
    assert fcm_mock.messages == [] and len(webpush_mock.received) == 1


@pytest.mark.parametrize("name", ["gone404", "gone410"])
def test_a_gone_subscription_removes_the_device_everywhere(web, runtime, tenant, webpush_mock, data, name):
    device_id = register_browser(web, tenant, webpush_mock, name, interests=("news", "sport"), user="alice")
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["targeted"], record["removed"], record["delivered"]) == (1, 1, 0), record
    assert web.get(f"{device_api(tenant)}/devices/web/{device_id}").status_code == 404
    for interest in ("news", "sport"):
        assert not data.sismember(keys.interest(tenant["id"], interest), device_id)
    assert data.hget(keys.user_bucket(tenant["id"], "alice"), "alice") is None


def test_429_is_retried_no_sooner_than_retry_after(web, runtime, tenant, webpush_mock):
    register_browser(web, tenant, webpush_mock, "busy-1")
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["status"], record["delivered"], record["retried"]) == ("done", 1, 1), record
    first, second = webpush_mock.arrived["busy-1"]
    assert second - first >= 1.0


@pytest.mark.parametrize("name", ["flaky-1", "drop-1"])
def test_a_5xx_or_a_cut_connection_is_retried(web, runtime, tenant, webpush_mock, name):
    register_browser(web, tenant, webpush_mock, name)
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["status"], record["delivered"], record["retried"]) == ("done", 1, 1), record
    assert len(webpush_mock.messages(name)) == 1


def test_a_push_service_down_for_good_fails_the_device_after_the_last_attempt(web, runtime, tenant, webpush_mock,
                                                                              settings):
    settings.max_attempts = 2
    register_browser(web, tenant, webpush_mock, "down-1")
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["status"], record["failed"], record["removed"]) == ("done", 1, 0), record
    assert "temporary provider failures" in record["failures"][0]["reason"]
    assert webpush_mock.seen["down-1"] == 2


def test_413_fails_the_device_with_the_reason(web, runtime, tenant, webpush_mock):
    device_id = register_browser(web, tenant, webpush_mock, "big-1")
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["status"], record["failed"], record["retried"]) == ("done", 1, 0), record
    assert record["failures"] == [{"device_id": device_id, "reason": "web:413:PayloadTooLarge"}]
    assert web.get(f"{device_api(tenant)}/devices/web/{device_id}").status_code == 200


def test_after_a_vapid_rotation_old_subscriptions_fail_and_new_ones_work(web, runtime, tenant, webpush_mock):
    old = register_browser(web, tenant, webpush_mock, "before-rotation")
    rotated = web.post(f"/admin/v1/instances/{tenant['id']}/vapid_key", headers=ADMIN)
    assert rotated.status_code == 200
    assert vapid_key(web, tenant) == rotated.get_json()["vapid_public_key"]
    register_browser(web, tenant, webpush_mock, "after-rotation")
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert (record["delivered"], record["failed"], record["removed"]) == (1, 1, 0), record
    assert record["failures"] == [{"device_id": old, "reason": "web:403"}]
    assert [r.browser for r in webpush_mock.received] == ["after-rotation"]
    assert webpush_mock.refused == [("before-rotation", 403, "not the key the subscription was made with")]


def test_the_endpoint_is_checked_again_before_delivery(web, runtime, tenant, webpush_mock, delivery_config):
    device_id = register_browser(web, tenant, webpush_mock, "moved-out")
    # The operator narrows the allowlist after the browser registered.
    runtime.sender_settings = SenderSettings(webpush_endpoint_allowlist="https://fcm.googleapis.com/*",
                                             vapid_subject=VAPID_SUBJECT)
    record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
    assert record["failures"] == [{"device_id": device_id, "reason": "web:unsafe-endpoint"}]
    assert webpush_mock.seen["moved-out"] == 0


def test_a_push_service_without_http2_is_reached_over_http1(web, runtime, tenant, webpush_certificate, delivery_config):
    with Http1WebPushMock(webpush_certificate) as http1:
        runtime.sender_settings = SenderSettings(
            webpush_endpoint_allowlist=http1.url + "/*", vapid_subject=VAPID_SUBJECT)
        web.application.config["PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST"] = http1.url + "/*"
        for n in range(3):
            register_browser(web, tenant, http1.service, f"edge-{n}")
        record = drain(runtime, web, tenant, publish_web(web, tenant, WEB))
        assert (record["delivered"], record["failed"]) == (3, 0), record
        assert {r.browser for r in http1.service.received} == {"edge-0", "edge-1", "edge-2"}
        assert http1.service.received[0].message["notification"]["title"] == "Hello"


def test_mpush_and_twilio_sends_reach_browsers(web, runtime, tenant, webpush_mock):
    register_browser(web, tenant, webpush_mock, "chrome-mpush", interests=("all",), user="bob")
    sent = web.post("/api/send", json={"topics": ["all"], "title": "Hi", "body": "from MPush", "data": {"k": "v"}},
                    headers={"X-MPush-Token": tenant["secret_key"], "X-MPush-Version": "2"})
    assert sent.status_code == 200, sent.get_json()
    record = drain(runtime, web, tenant, sent.get_json()["publish_id"])
    assert record["delivered"] == 1, record
    operation = web.post("/v1/PushNotifications", json={"to": [{"userId": "bob"}], "content": {"title": "Yo"}},
                         auth=(tenant["id"], tenant["secret_key"]))
    assert operation.status_code == 202, operation.get_json()
    publish_id = "pubid-" + str(uuid.UUID(operation.get_json()["id"].removeprefix("comms_operation_")))
    assert drain(runtime, web, tenant, publish_id)["delivered"] == 1
    first, second = webpush_mock.messages("chrome-mpush")
    assert first.message["notification"] == {"title": "Hi", "body": "from MPush"}
    assert {k: v for k, v in first.message["data"].items() if k != "pusher"} == {"k": "v"}
    assert second.message["notification"] == {"title": "Yo"}


def test_the_status_record_counts_web_like_any_platform(web, runtime, tenant, webpush_mock):
    register_browser(web, tenant, webpush_mock, "ok-1")
    register_browser(web, tenant, webpush_mock, "gone410-1")
    pid = publish_web(web, tenant, WEB)
    record = drain(runtime, web, tenant, pid)
    assert record == status(web, tenant, pid)
    assert record["targeted"] == record["delivered"] + record["removed"] + record["failed"] + record["skipped"] == 2


def test_the_decryption_here_is_rfc_8291s(webpush_mock):
    """The mock's decryption, checked against RFC 8291 Appendix A, so that a
    message it decrypts is one a browser decrypts."""
    ua_private = ec.derive_private_key(int.from_bytes(unb64url("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"),
                                       ec.SECP256R1())
    assert b64url(raw_public_key(ua_private)) == (
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
    body = unb64url("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6Tlz"
                    "AC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
    assert decrypt(body, ua_private, unb64url("BTBZMqHH6r4Tts7J_aSIgg")) == b"When I grow up, I want to be a watermelon"
