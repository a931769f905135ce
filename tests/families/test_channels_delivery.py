"""Cross-family reach on a real redis-server: devices registered through the
Discord-style API receive Beams publishes to their users (every synced account
too) and to the interests enabled as channels, observed at the local APNs and
FCM mocks and a local Matrix push gateway through the delivery harness."""
from __future__ import annotations

from urllib.parse import quote

from tests import insights
from tests.delivery.conftest import ALERT, FCM, drain, publish
from tests.families.conftest_matrix import apns_token, auth, fcm_token

DEVICES = "/users/@me/devices"


def register(web, tenant, body: dict, user: str = "alice") -> None:
    response = web.post(DEVICES, json=body, headers=auth(tenant, user))
    assert response.status_code == 204, response.get_json()


def set_channels(web, tenant, token: str, channels: dict[str, str], user: str = "alice") -> None:
    body = {"channels": [{"name": name, "value": value} for name, value in channels.items()]}
    response = web.post(f"/v1/devices/{token}/channels", json=body, headers=auth(tenant, user))
    assert response.status_code == 200, response.get_json()


def fcm_tokens(mock) -> list[str]:
    return sorted(m["token"] for m in mock.messages)


def apns_tokens(mock) -> list[str]:
    return sorted(r.token for r in mock.requests)


def test_a_publish_to_the_user_reaches_devices_registered_here(web, runtime, tenant, apns_mock, fcm_mock):
    register(web, tenant, {"provider": "gcm", "token": fcm_token(1)})
    register(web, tenant, {"provider": "apns", "token": apns_token(1)})
    register(web, tenant, {"provider": "gcm", "token": fcm_token(2)}, user="bob")
    pid = publish(web, tenant, "users", ["alice"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 2, 2), record
    assert fcm_tokens(fcm_mock) == [fcm_token(1)]
    assert apns_tokens(apns_mock) == [apns_token(1)]
    assert insights.split(apns_mock.requests[0].body)[0] == ALERT


def test_a_publish_to_an_interest_reaches_devices_with_that_channel_enabled(web, runtime, tenant, fcm_mock,
                                                                             apns_mock):
    register(web, tenant, {"provider": "gcm", "token": fcm_token(1)})
    register(web, tenant, {"provider": "gcm", "token": fcm_token(2)})
    register(web, tenant, {"provider": "apns", "token": apns_token(3)}, user="bob")
    set_channels(web, tenant, fcm_token(1), {"news": "enabled", "sport": "disabled"})
    set_channels(web, tenant, fcm_token(2), {"news": "disabled", "sport": "enabled"})
    set_channels(web, tenant, apns_token(3), {"news": "enabled"}, user="bob")
    pid = publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["targeted"], record["delivered"]) == (2, 2), record
    assert fcm_tokens(fcm_mock) == [fcm_token(1)]
    assert apns_tokens(apns_mock) == [apns_token(3)]


def test_a_disabled_channel_stops_the_pushes(web, runtime, tenant, fcm_mock):
    register(web, tenant, {"provider": "gcm", "token": fcm_token(1)})
    set_channels(web, tenant, fcm_token(1), {"news": "enabled"})
    set_channels(web, tenant, fcm_token(1), {"news": "disabled"})
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert record["targeted"] == 0 and fcm_mock.messages == []


def test_a_synced_device_receives_every_accounts_publishes_once(web, runtime, tenant, fcm_mock):
    bob_token = web.get(f"{DEVICES}/sync-token", headers=auth(tenant, "bob")).get_json()["token"]
    body = {"provider": "gcm", "token": fcm_token(1), "push_sync_tokens": [bob_token]}
    assert web.put(f"{DEVICES}/sync", json=body, headers=auth(tenant, "alice")).get_json() == {
        "invalid_push_sync_tokens": []}
    pid = publish(web, tenant, "users", ["bob"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["delivered"] == 1
    pid = publish(web, tenant, "users", ["alice", "bob"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["delivered"] == 1  # one device, one push
    assert fcm_tokens(fcm_mock) == [fcm_token(1), fcm_token(1)]


def test_a_voip_device_gets_the_voip_payload_in_its_environment(web, runtime, tenant, apns_mock):
    register(web, tenant, {"provider": "apns", "token": apns_token(1), "voip_provider": "apns_voip",
                           "voip_token": apns_token(2)})
    voip = {"aps": {}, "call_id": "42"}
    pid = publish(web, tenant, "users", ["alice"], apns=ALERT, apns_voip=voip)
    record = drain(runtime, web, tenant, pid)
    assert record["delivered"] == 2, record
    by_token = {r.token: r for r in apns_mock.requests}
    assert by_token[apns_token(2)].headers["apns-push-type"] == "voip"
    assert by_token[apns_token(2)].headers["apns-topic"].endswith(".voip")
    assert by_token[apns_token(2)].body == voip
    assert insights.split(by_token[apns_token(1)].body)[0] == ALERT


def test_an_unregistered_device_gets_nothing(web, runtime, tenant, fcm_mock):
    register(web, tenant, {"provider": "gcm", "token": fcm_token(1)})
    web.delete(DEVICES, json={"provider": "gcm", "token": fcm_token(1)}, headers=auth(tenant))
    pid = publish(web, tenant, "users", ["alice"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["targeted"] == 0
    assert fcm_mock.messages == []


def test_a_dead_token_removes_the_device_from_every_account(web, runtime, tenant, data):
    from pushlite.storage import devices

    dead = "dead-" + fcm_token(7)
    for user in ("alice", "bob"):
        register(web, tenant, {"provider": "gcm", "token": dead}, user)
    pid = publish(web, tenant, "users", ["alice"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["removed"] == 1
    assert devices.user_device_ids(data, tenant["id"], "bob") == []
    assert web.get(f"/v1/devices/{dead}/channels", headers=auth(tenant, "bob")).status_code == 404


def test_a_publish_to_an_interest_reaches_a_matrix_pusher_with_that_channel(web, runtime, tenant, gateway,
                                                                             fcm_mock):
    """A Matrix-only client: its pusher (pushkey with '/', sent as %2F) enables a
    channel; a Beams publish to that interest goes to its push gateway."""
    pushkey = "Xp/MzCt8/9DcSNE9cuiaoT5Ac55job3TdLSSmtmYl4A="
    body = {"kind": "http", "app_id": "com.example.ios", "pushkey": pushkey, "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "data": {"url": gateway.url}}
    assert web.post("/_matrix/client/v3/pushers/set", json=body, headers=auth(tenant)).status_code == 200
    set_channels(web, tenant, quote(pushkey, safe=""), {"news": "enabled", "sport": "disabled"})
    register(web, tenant, {"provider": "gcm", "token": fcm_token(1)}, user="bob")
    set_channels(web, tenant, fcm_token(1), {"sport": "enabled"}, user="bob")

    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["targeted"], record["delivered"]) == (1, 1), record
    [request] = gateway.requests
    assert request.pushkeys == [pushkey]
    assert request.notification["content"] == {"msgtype": "m.text", "body": "World"}
    assert fcm_mock.messages == []

    pid = publish(web, tenant, "interests", ["sport"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["delivered"] == 1
    assert len(gateway.requests) == 1 and [m["token"] for m in fcm_mock.messages] == [fcm_token(1)]
