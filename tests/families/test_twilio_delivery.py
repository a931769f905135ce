"""Twilio-style sends end to end on a real redis-server: users registered
through this API (or Beams + Set User Id, or the Discord-style API), worked by the RQ queues in this
process, observed at the local APNs and FCM mocks (tests/delivery's harness)
and in the operation record; the default app, and apps with credentials of
their own."""
from __future__ import annotations

import base64

from pushlite.twilio.notifications import publish_id_of
from tests import insights
from tests.conftest import ADMIN
from tests.delivery.conftest import ALERT, FCM, drain, publish
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
    assert insights.split(apns.body)[0] == {"aps": {"alert": {"title": "Welcome Back!", "body": "Offers"}, "sound": "default"}}
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


# --- the default app, and apps with credentials of their own ------------------------------


def test_a_send_without_app_name_reaches_the_default_app_and_devices_of_no_app(web, runtime, tenant, apns_mock,
                                                                              fcm_mock):
    register(web, tenant, FCM_TOKEN, "FCM", "alice", app="first")  # the first app: the default
    register(web, tenant, APNS_TOKEN, "APNS", "alice", app="second")
    beams = f"/device_api/v1/instances/{tenant['id']}/devices"
    device_id = web.post(f"{beams}/fcm", json={"token": "fcm-token-ok-of-no-app-01"}).get_json()["id"]
    token = user_jwt(tenant, "alice", issuer=f"https://{tenant['id']}.pushnotifications.pusher.com")
    assert web.put(f"{beams}/fcm/{device_id}/user", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"]))
    assert (operation["targeted"], operation["delivered"]) == (2, 2), operation
    assert sorted(m["token"] for m in fcm_mock.messages) == sorted([FCM_TOKEN, "fcm-token-ok-of-no-app-01"])
    assert apns_mock.requests == []

    # The operator makes "second" the default: the next send goes there (and to the device of no app).
    response = web.put(f"/admin/v1/instances/{tenant['id']}/twilio/default_app", json={"appName": "second"},
                       headers=ADMIN)
    assert response.status_code == 200
    fcm_mock.reset()
    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"]))
    assert (operation["targeted"], operation["delivered"]) == (2, 2), operation
    assert [r.token for r in apns_mock.requests] == [APNS_TOKEN]
    assert [m["token"] for m in fcm_mock.messages] == ["fcm-token-ok-of-no-app-01"]


def test_a_beams_publish_still_reaches_every_app(web, runtime, tenant, apns_mock, fcm_mock):
    register(web, tenant, FCM_TOKEN, "FCM", "alice", app="first")
    register(web, tenant, APNS_TOKEN, "APNS", "alice", app="second")
    pid = publish(web, tenant, "users", ["alice"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["targeted"], record["delivered"]) == (2, 2), record


SECOND_TOPIC = "com.example.second"
SECOND_APP_TOKEN = "b2" * 32


def test_an_app_with_its_own_apns_credential_gets_its_own_topic(web, runtime, tenant, apns_mock, apns_credential,
                                                                 data):
    """Two iOS apps on one instance: the second app's tokens belong to its own
    bundle id. With the instance's credential they get DeviceTokenNotForTopic:
    a failure, never a dead token; with the app's own, they are delivered."""
    apns_mock.bind(SECOND_APP_TOKEN, SECOND_TOPIC)
    register(web, tenant, APNS_TOKEN, "APNS", "alice", app="first")
    second = register(web, tenant, SECOND_APP_TOKEN, "APNS", "alice", app="second")

    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"], appName="second"))
    assert (operation["delivered"], operation["failed"], operation["removed"]) == (0, 1, 0), operation
    assert operation["failures"][0]["reason"] == "apns:400:DeviceTokenNotForTopic"
    assert web.get(f"{REGISTRATIONS}/{second['id']}", headers=auth(tenant)).status_code == 200

    url = f"/admin/v1/instances/{tenant['id']}/apps/second/credentials/apns"
    assert web.put(url, json={**apns_credential, "topic": SECOND_TOPIC}, headers=ADMIN).status_code == 200
    apns_mock.reset()
    apns_mock.bind(SECOND_APP_TOKEN, SECOND_TOPIC)
    pid = publish(web, tenant, "users", ["alice"], apns=ALERT)
    record = drain(runtime, web, tenant, pid)
    assert (record["delivered"], record["failed"]) == (2, 0), record
    topics = {r.token: r.headers["apns-topic"] for r in apns_mock.requests}
    assert topics == {SECOND_APP_TOKEN: SECOND_TOPIC, APNS_TOKEN: apns_credential["topic"]}

    # Without it again, the app's devices fall back to the instance's credential.
    assert web.delete(url, headers=ADMIN).status_code == 204
    operation = delivered(runtime, web, tenant, send(web, tenant, ["alice"], appName="second"))
    assert (operation["failed"], operation["removed"]) == (1, 0), operation
