"""Credentials of an app (`/admin/v1/instances/<id>/apps/<app>/credentials/...`
and `flask credentials ... --app`) and the instance's default app
(`/admin/v1/instances/<id>/twilio/default_app`, `flask instances default-app`):
set, list, delete, kept apart from the instance's own; both backends."""
from __future__ import annotations

import json
import uuid

import pytest

from pushlite.storage import keys
from tests.conftest import ADMIN
from tests.delivery.test_credentials_admin import assert_admin_error, assert_no_key_material, base

SECOND_TOPIC = "com.example.second"


def app_base(instance_id: str, app: str = "second") -> str:
    return f"/admin/v1/instances/{instance_id}/apps/{app}/credentials"


def default_app(instance_id: str) -> str:
    return f"/admin/v1/instances/{instance_id}/twilio/default_app"


def test_an_apps_credentials_are_its_own(client, instance, redis_client, apns_credential, service_account):
    iid = instance["id"]
    second = {**apns_credential, "topic": SECOND_TOPIC}
    response = client.put(f"{app_base(iid)}/apns", json=second, headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"apns": {"key_id": apns_credential["key_id"], "team_id": apns_credential["team_id"],
                                            "topic": SECOND_TOPIC, "environment": "production"}}
    assert client.put(f"{app_base(iid)}/fcm", json={"service_account": service_account},
                      headers=ADMIN).status_code == 200
    assert client.put(f"{base(iid)}/apns", json=apns_credential, headers=ADMIN).status_code == 200

    listed = client.get(app_base(iid), headers=ADMIN)
    assert listed.status_code == 200 and set(listed.get_json()) == {"apns", "fcm"}
    assert listed.get_json()["apns"]["topic"] == SECOND_TOPIC
    assert client.get(base(iid), headers=ADMIN).get_json()["apns"]["topic"] == apns_credential["topic"]
    assert set(client.get(base(iid), headers=ADMIN).get_json()) == {"apns"}
    assert client.get(app_base(iid, "third"), headers=ADMIN).get_json() == {}
    for response in (listed,):
        assert_no_key_material(response.get_data(as_text=True), apns_credential["private_key"],
                               service_account["private_key"])
    assert "PRIVATE KEY" not in "".join(redis_client.hvals(keys.credentials(iid)))

    assert client.delete(f"{app_base(iid)}/apns", headers=ADMIN).status_code == 204
    assert set(client.get(app_base(iid), headers=ADMIN).get_json()) == {"fcm"}
    assert set(client.get(base(iid), headers=ADMIN).get_json()) == {"apns"}
    assert_admin_error(client.delete(f"{app_base(iid)}/apns", headers=ADMIN), 404)


def test_an_apps_credential_is_checked_like_the_instances(client, instance, apns_credential):
    response = client.put(f"{app_base(instance['id'])}/apns", json={**apns_credential, "key_id": "short"},
                          headers=ADMIN)
    assert_admin_error(response, 400)
    assert client.get(app_base(instance["id"]), headers=ADMIN).get_json() == {}


@pytest.mark.parametrize("method, suffix", [("get", ""), ("put", "/apns"), ("delete", "/apns")])
def test_app_credential_errors(client, instance, apns_credential, method, suffix):
    kwargs = {"json": apns_credential} if method == "put" else {}
    bad_name = getattr(client, method)(f"{app_base(instance['id'], 'no%20spaces')}{suffix}", headers=ADMIN, **kwargs)
    assert "app name" in assert_admin_error(bad_name, 400)["message"]
    unknown = getattr(client, method)(f"{app_base(str(uuid.uuid4()))}{suffix}", headers=ADMIN, **kwargs)
    assert_admin_error(unknown, 404)
    assert_admin_error(getattr(client, method)(f"{app_base(instance['id'])}{suffix}", **kwargs), 401)


def test_the_default_app_through_the_admin_api(client, instance):
    iid = instance["id"]
    assert client.get(default_app(iid), headers=ADMIN).get_json() == {"appName": None}
    response = client.put(default_app(iid), json={"appName": "shop"}, headers=ADMIN)
    assert (response.status_code, response.get_json()) == (200, {"appName": "shop"})
    assert client.get(default_app(iid), headers=ADMIN).get_json() == {"appName": "shop"}


@pytest.mark.parametrize("body", [{}, {"appName": ""}, {"appName": "a b"}, {"appName": None}, {"appName": 5},
                                  {"appName": "x" * 101}])
def test_a_default_app_that_is_not_an_app_name_is_400(client, instance, body):
    assert_admin_error(client.put(default_app(instance["id"]), json=body, headers=ADMIN), 400)
    assert client.get(default_app(instance["id"]), headers=ADMIN).get_json() == {"appName": None}


def test_default_app_errors(client, instance):
    assert_admin_error(client.get(default_app(str(uuid.uuid4())), headers=ADMIN), 404)
    assert_admin_error(client.put(default_app(str(uuid.uuid4())), json={"appName": "a"}, headers=ADMIN), 404)
    assert_admin_error(client.put(default_app(instance["id"]), json={"appName": "a"}), 401)


# --- the CLI twins ----------------------------------------------------------------------


def test_app_credentials_from_the_cli(client, runner, instance, apns_credential, service_account, tmp_path):
    iid = instance["id"]
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps(service_account))
    key = tmp_path / "AuthKey.p8"
    key.write_text(apns_credential["private_key"])
    result = runner.invoke(args=["credentials", "set-fcm", iid, str(account), "--app", "second"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=[
        "credentials", "set-apns", iid, "--key-id", apns_credential["key_id"], "--team-id",
        apns_credential["team_id"], "--key-file", str(key), "--topic", SECOND_TOPIC, "--app", "second"])
    assert result.exit_code == 0 and "PRIVATE KEY" not in result.output, result.output

    listed = json.loads(runner.invoke(args=["credentials", "list", iid, "--app", "second"]).output)
    assert listed == client.get(app_base(iid), headers=ADMIN).get_json()
    assert listed["apns"]["topic"] == SECOND_TOPIC
    assert json.loads(runner.invoke(args=["credentials", "list", iid]).output) == {}

    assert runner.invoke(args=["credentials", "delete", iid, "apns", "--app", "second"]).exit_code == 0
    assert set(client.get(app_base(iid), headers=ADMIN).get_json()) == {"fcm"}
    result = runner.invoke(args=["credentials", "delete", iid, "apns", "--app", "second"])
    assert result.exit_code == 1 and "no apns credential" in result.output
    result = runner.invoke(args=["credentials", "list", iid, "--app", "not an app"])
    assert result.exit_code == 1 and "app name" in result.output and "Traceback" not in result.output


def test_the_default_app_from_the_cli(client, runner, instance):
    iid = instance["id"]
    assert runner.invoke(args=["instances", "default-app", iid]).output.strip() == "(none)"
    result = runner.invoke(args=["instances", "default-app", iid, "shop"])
    assert (result.exit_code, result.output.strip()) == (0, "shop")
    assert client.get(default_app(iid), headers=ADMIN).get_json() == {"appName": "shop"}
    for args in (["instances", "default-app", iid, "no spaces"],
                 ["instances", "default-app", str(uuid.uuid4()), "shop"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
