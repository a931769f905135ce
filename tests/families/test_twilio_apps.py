"""Twilio-style apps: the Apps resource (`GET /v1/PushNotifications/Apps/<name>`),
the default app (the first app registered, or the one the operator sets),
what a send without `appName` is limited to, and registrations stored before
pushlite kept apps; both backends."""
from __future__ import annotations

import json

import pytest

from pushlite.storage import keys
from pushlite.twilio.notifications import publish_id_of
from tests.conftest import ADMIN
from tests.families.test_twilio import APNS_TOKEN, assert_twilio_error, auth, register  # noqa: F401  (auth is a fixture)

APPS = "/v1/PushNotifications/Apps"
SEND = "/v1/PushNotifications"


def get_app(client, auth: dict, name: str) -> dict:
    response = client.get(f"{APPS}/{name}", headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def app_shape(name: str, default: bool, apns: bool = False, fcm: bool = False) -> dict:
    return {"id": name, "name": name, "default": default, "credentials": {"apns": apns, "fcm": fcm},
            "uri": f"/PushNotifications/Apps/{name}"}


def apps_of_send(client, auth: dict, redis_client, instance: dict, **extra) -> list[str]:
    body = {"to": [{"userId": "alice"}], "content": {"title": "t"}, **extra}
    accepted = client.post(SEND, json=body, headers=auth)
    assert accepted.status_code == 202, accepted.get_json()
    record = redis_client.hgetall(keys.publish(instance["id"], publish_id_of(accepted.get_json()["id"])))
    return json.loads(record["apps"])


# --- the Apps resource -------------------------------------------------------------------


def test_the_related_link_of_a_registration_answers_the_app(client, auth):
    registration = register(client, auth, user="alice")
    [_, app_link] = registration["related"]
    assert get_app(client, auth, "test_app") == app_shape("test_app", True)
    assert app_link["uri"] == get_app(client, auth, "test_app")["uri"]


def test_the_first_app_registered_is_the_default(client, auth):
    register(client, auth, user="alice", app="first")
    register(client, auth, token=APNS_TOKEN, provider="APNS", user="alice", app="second")
    assert get_app(client, auth, "first")["default"] is True
    assert get_app(client, auth, "second") == app_shape("second", False)


def test_an_unknown_app_is_404_in_the_twilio_shape(client, auth):
    register(client, auth, user="alice")
    error = assert_twilio_error(client.get(f"{APPS}/nothing", headers=auth), 404, 20404)
    assert "nothing" in error["message"]
    assert_twilio_error(client.get(f"{APPS}/", headers=auth), 404, 20404)


def test_an_app_shows_whether_it_has_credentials_of_its_own(client, instance, auth, apns_credential):
    register(client, auth, user="alice", app="second")
    url = f"/admin/v1/instances/{instance['id']}/apps/second/credentials/apns"
    assert client.put(url, json={**apns_credential, "topic": "com.example.second"}, headers=ADMIN).status_code == 200
    assert get_app(client, auth, "second")["credentials"] == {"apns": True, "fcm": False}
    # The instance's own credentials are not the app's.
    client.put(f"/admin/v1/instances/{instance['id']}/credentials/apns", json=apns_credential, headers=ADMIN)
    assert get_app(client, auth, "second")["credentials"]["apns"] is True
    client.delete(url, headers=ADMIN)
    assert get_app(client, auth, "second")["credentials"] == {"apns": False, "fcm": False}


def test_an_app_with_credentials_or_made_default_is_known_before_any_registration(client, instance, auth,
                                                                                   apns_credential):
    iid = instance["id"]
    client.put(f"/admin/v1/instances/{iid}/apps/ios/credentials/apns", json=apns_credential, headers=ADMIN)
    assert get_app(client, auth, "ios") == app_shape("ios", False, apns=True)
    client.put(f"/admin/v1/instances/{iid}/twilio/default_app", json={"appName": "later"}, headers=ADMIN)
    assert get_app(client, auth, "later") == app_shape("later", True)
    # The operator's choice stands: the first registration does not take it over.
    register(client, auth, user="alice", app="first")
    assert get_app(client, auth, "first")["default"] is False


def test_the_operator_changes_the_default(client, instance, auth):
    register(client, auth, user="alice", app="first")
    client.put(f"/admin/v1/instances/{instance['id']}/twilio/default_app", json={"appName": "second"}, headers=ADMIN)
    assert get_app(client, auth, "first")["default"] is False
    assert get_app(client, auth, "second")["default"] is True


def test_the_apps_resource_needs_basic_auth(client, instance, auth):
    register(client, auth, user="alice")
    assert_twilio_error(client.get(f"{APPS}/test_app"), 401, 20003)


# --- what a send is limited to ----------------------------------------------------------


def test_a_send_without_app_name_is_for_the_default_app_and_devices_of_no_app(client, instance, auth, redis_client):
    register(client, auth, user="alice", app="first")
    register(client, auth, token=APNS_TOKEN, provider="APNS", user="alice", app="second")
    assert apps_of_send(client, auth, redis_client, instance) == ["first", ""]
    client.put(f"/admin/v1/instances/{instance['id']}/twilio/default_app", json={"appName": "second"}, headers=ADMIN)
    assert apps_of_send(client, auth, redis_client, instance) == ["second", ""]
    assert apps_of_send(client, auth, redis_client, instance, appName="first") == ["first"]


def test_a_send_before_any_app_reaches_devices_of_no_app(client, instance, auth, redis_client):
    assert apps_of_send(client, auth, redis_client, instance) == [""]


# --- registrations stored before pushlite kept apps ------------------------------------------


def forget_apps(redis_client, instance: dict) -> None:
    """What a pushlite before apps were kept had stored: registrations only."""
    redis_client.hdel(keys.instance(instance["id"]), "default_app", "apps_indexed")
    redis_client.delete(keys.apps(instance["id"]))


@pytest.mark.parametrize("ask", ["app", "send"])
def test_older_registrations_are_indexed_and_the_oldest_app_is_the_default(client, instance, auth, redis_client,
                                                                          ask):
    first = register(client, auth, user="alice", app="oldest")
    register(client, auth, token=APNS_TOKEN, provider="APNS", user="alice", app="newer")
    forget_apps(redis_client, instance)
    # Make the order unambiguous (registrations in the same second).
    regs = keys.twilio_registrations(instance["id"])
    record = json.loads(redis_client.hget(regs, first["id"]))
    redis_client.hset(regs, first["id"], json.dumps({**record, "created_at": record["created_at"] - 60}))
    # A registration made after the upgrade but before the index does not become the default.
    register(client, auth, token="fcm-token-made-after-upgrade-01", user="bob", app="newest")

    if ask == "send":
        assert apps_of_send(client, auth, redis_client, instance) == ["oldest", ""]
    assert get_app(client, auth, "oldest") == app_shape("oldest", True)
    assert get_app(client, auth, "newer") == app_shape("newer", False)
    assert get_app(client, auth, "newest") == app_shape("newest", False)
