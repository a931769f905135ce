"""`flask --app wsgi credentials ...`: the credentials admin API from a shell."""
from __future__ import annotations

import json

from pushlite.storage import keys
from tests.conftest import ADMIN


def test_set_list_and_delete_credentials(client, runner, instance, redis_client, apns_credential, service_account,
                                         tmp_path):
    iid = instance["id"]
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps(service_account))
    key = tmp_path / "AuthKey.p8"
    key.write_text(apns_credential["private_key"])

    result = runner.invoke(args=["credentials", "set-fcm", iid, str(account)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=[
        "credentials", "set-apns", iid, "--key-id", apns_credential["key_id"], "--team-id",
        apns_credential["team_id"], "--key-file", str(key), "--topic", apns_credential["topic"],
    ])
    assert result.exit_code == 0, result.output
    assert "PRIVATE KEY" not in result.output

    listed = json.loads(runner.invoke(args=["credentials", "list", iid]).output)
    assert listed["apns"]["key_id"] == apns_credential["key_id"]
    assert listed["fcm"]["project_id"] == service_account["project_id"]
    assert client.get(f"/admin/v1/instances/{iid}/credentials", headers=ADMIN).get_json() == listed
    assert "PRIVATE KEY" not in "".join(redis_client.hvals(keys.credentials(iid)))

    result = runner.invoke(args=["credentials", "delete", iid, "apns"])
    assert result.exit_code == 0
    assert set(client.get(f"/admin/v1/instances/{iid}/credentials", headers=ADMIN).get_json()) == {"fcm"}


def test_a_credential_that_cannot_work_is_refused(runner, instance, tmp_path):
    key = tmp_path / "AuthKey.p8"
    key.write_text("not a key")
    result = runner.invoke(args=[
        "credentials", "set-apns", instance["id"], "--key-id", "ABC123DEFG", "--team-id", "DEF123GHIJ",
        "--key-file", str(key), "--topic", "com.example.app",
    ])
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output
    assert runner.invoke(args=["credentials", "list", instance["id"]]).output.strip() == "{}"


def test_unknown_instances_and_credentials(runner, tmp_path):
    account = tmp_path / "sa.json"
    account.write_text("{}")
    for args in (["credentials", "list", "6f1c2a1e-1111-4111-8111-111111111111"],
                 ["credentials", "delete", "6f1c2a1e-1111-4111-8111-111111111111", "fcm"],
                 ["credentials", "set-fcm", "6f1c2a1e-1111-4111-8111-111111111111", str(account)]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
