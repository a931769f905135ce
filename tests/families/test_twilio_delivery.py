"""Twilio-style sends end to end on a real redis-server: users registered
through this API (or Beams + Set User Id, or the Discord-style API), worked by the RQ queues in this
process, observed at the local APNs and FCM mocks (tests/delivery's harness)
and in the operation record."""
from __future__ import annotations

import base64

from pushlite.twilio.notifications import publish_id_of
from tests.conftest import ADMIN
from tests.delivery.conftest import drain
from tests.families.conftest_matrix import user_jwt

APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-token-ok-twilio-00001"
REGISTRATIONS = "/v1/PushNotifications/DeviceRegistrations"


def auth(tenant: dict) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{tenant['id']}:{tenant['secret_key']}".encode()).decode()}


def register(web, tenant: dict, token: str, provider: str, user: str, app: str = "test_app") -> dict:
    body = {"token": token, "provider": provider, "userId": user, "appName": app}
    response = web.post(REGISTRATIONS, json=body, headers=auth(tenant))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def send(web, tenant: dict, users: list[str], **extra) -> str:
    body = {"to": [{"userId": u} for u in users], "content": {"title": "Welcome Back!", "body": "Offers"}, **extra}
    response = web.post("/v1/PushNotifications", json=body, headers=auth(tenant))
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def delivered(runtime, web, tenant: dict, operation: str) -> dict:
    """Work the queues until the send is done; its operation as this API shows it."""
    record = drain(runtime, web, tenant, publish_id_of(operation))
    assert record["status"] == "done", record
    response = web.get(f"/v1/PushNotifications/Operations/{operation}", headers=auth(tenant))
    assert response.status_code == 200
    return response.get_json()


def test_a_send_reaches_every_device_of_the_user(web, runtime, tenant, apns_mock, fcm_mock):
    register(web, tenant, APNS_TOKEN, "APNS", "alice")
    register(web, tenant, FCM_TOKEN, "FCM", "alice")
    register(web, tenant, "fcm-token-ok-twilio-bob01", "FCM", "bob")

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"]))
    assert (operation["status"], operation["targeted"], operation["delivered"], operation["skipped"]) == (
        "done", 2, 2, 0)
    assert operation["finishedAt"] is not None
    [apns] = apns_mock.requests
    assert apns.token == APNS_TOKEN
    assert apns.body == {"aps": {"alert": {"title": "Welcome Back!", "body": "Offers"}, "sound": "default"}}
    [fcm] = fcm_mock.messages
    assert (fcm["token"], fcm["notification"]) == (FCM_TOKEN, {"title": "Welcome Back!", "body": "Offers"})


def test_a_send_reaches_a_user_set_through_beams(web, runtime, tenant, fcm_mock):
    """A device registered through the Beams Device API, its user set with a Beams user JWT."""
    base = f"/device_api/v1/instances/{tenant['id']}/devices"
    device_id = web.post(f"{base}/fcm", json={"token": FCM_TOKEN}).get_json()["id"]
    token = user_jwt(tenant, "carol", issuer=f"https://{tenant['id']}.pushnotifications.pusher.com")
    set_user = web.put(f"{base}/fcm/{device_id}/user", headers={"Authorization": f"Bearer {token}"})
    assert set_user.status_code == 200, set_user.get_json()

    operation = delivered(runtime, web, tenant, send(web, tenant, ["carol"]))
    assert (operation["targeted"], operation["delivered"]) == (1, 1)
    assert [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN]


def test_a_send_reaches_a_users_discord_style_device(web, runtime, tenant, apns_mock, fcm_mock):
    """Devices registered through /users/@me/devices (one phone signed in to two accounts)."""
    for user in ("dana", "erin"):
        response = web.post("/users/@me/devices", json={"provider": "gcm", "token": FCM_TOKEN},
                            headers={"Authorization": f"Bearer {user_jwt(tenant, user)}"})
        assert response.status_code == 204, response.get_data(as_text=True)
    response = web.post("/users/@me/devices", json={"provider": "apns", "token": APNS_TOKEN},
                        headers={"Authorization": f"Bearer {user_jwt(tenant, 'dana')}"})
    assert response.status_code == 204, response.get_data(as_text=True)

    operation = delivered(runtime, web, tenant, send(web, tenant, ["dana", "erin"]))
    assert (operation["targeted"], operation["delivered"]) == (2, 2), operation
    assert [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN]
    assert [r.token for r in apns_mock.requests] == [APNS_TOKEN]


def test_an_app_name_limits_the_send_to_that_apps_devices(web, runtime, tenant, apns_mock, fcm_mock):
    register(web, tenant, FCM_TOKEN, "FCM", "alice", app="shop")
    register(web, tenant, APNS_TOKEN, "APNS", "alice", app="chat")

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"], appName="shop"))
    assert (operation["appName"], operation["targeted"], operation["delivered"]) == ("shop", 1, 1)
    assert [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN] and apns_mock.requests == []

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"], appName="chat"))
    assert (operation["targeted"], operation["delivered"]) == (1, 1)
    assert [r.token for r in apns_mock.requests] == [APNS_TOKEN]

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"], appName="nothing"))
    assert (operation["targeted"], operation["delivered"]) == (0, 0)


def test_a_provider_without_credential_is_skipped(web, runtime, tenant, apns_mock, fcm_mock):
    register(web, tenant, APNS_TOKEN, "APNS", "alice")
    register(web, tenant, FCM_TOKEN, "FCM", "alice")
    assert web.delete(f"/admin/v1/instances/{tenant['id']}/credentials/fcm", headers=ADMIN).status_code == 204

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"]))
    assert (operation["targeted"], operation["delivered"], operation["skipped"], operation["failed"]) == (2, 1, 1, 0)
    assert fcm_mock.messages == [] and len(apns_mock.requests) == 1


def test_a_dead_token_takes_its_registration_with_it(web, runtime, tenant, fcm_mock):
    registration = register(web, tenant, "dead-fcm-token-twilio-0001", "FCM", "alice")

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"]))
    assert (operation["targeted"], operation["removed"]) == (1, 1), operation
    response = web.get(f"{REGISTRATIONS}/{registration['id']}", headers=auth(tenant))
    assert response.status_code == 404 and response.get_json()["code"] == 20404
    assert web.get("/v1/Users/alice", headers=auth(tenant)).status_code == 404
