"""`flask instances create|list|delete|rotate-secret`: the admin API from a
shell, against the same store the HTTP API reads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import redis
from cryptography.fernet import Fernet

from tests.conftest import ADMIN


def create(runner, name: str = "cli app") -> dict:
    result = runner.invoke(args=["instances", "create", name])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_create_prints_the_instance_as_json(runner, client):
    body = create(runner, "from the shell")
    assert set(body) == {"id", "name", "secret_key", "client_token", "created_at"}
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["name"] == "from the shell"
    assert body["secret_key"] and body["client_token"]

    got = client.get(f"/admin/v1/instances/{body['id']}", headers=ADMIN)
    assert got.status_code == 200
    assert got.get_json() == {k: v for k, v in body.items() if k != "secret_key"}


def test_create_without_a_name_fails(runner):
    result = runner.invoke(args=["instances", "create"])
    assert result.exit_code != 0
    assert "NAME" in result.output


def test_list_shows_instances_without_secret_keys(runner, client):
    a = create(runner, "alpha")
    b = client.post("/admin/v1/instances", json={"name": "beta"}, headers=ADMIN).get_json()

    result = runner.invoke(args=["instances", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert rows[a["id"]][1] == "alpha"
    assert rows[b["id"]][1] == "beta"
    assert a["secret_key"] not in result.output
    assert b["secret_key"] not in result.output


def test_list_when_empty_prints_nothing(runner):
    result = runner.invoke(args=["instances", "list"])
    assert result.exit_code == 0
    assert result.output.strip() == ""


def test_delete(runner, client, redis_client):
    doomed = create(runner, "doomed")
    kept = create(runner, "kept")
    register = client.post(
        f"/device_api/v1/instances/{doomed['id']}/devices/fcm", json={"token": "fcm-token-0123456789abcdef"}
    )
    assert register.status_code == 200

    result = runner.invoke(args=["instances", "delete", doomed["id"]])
    assert result.exit_code == 0, result.output
    assert doomed["id"] in result.output

    assert client.get(f"/admin/v1/instances/{doomed['id']}", headers=ADMIN).status_code == 404
    assert [i["id"] for i in client.get("/admin/v1/instances", headers=ADMIN).get_json()] == [kept["id"]]
    assert list(redis_client.scan_iter(match="{%s}*" % doomed["id"])) == []
    listed = runner.invoke(args=["instances", "list"])
    assert doomed["id"] not in listed.output and kept["id"] in listed.output


def test_delete_unknown_id_fails(runner):
    missing = str(uuid.uuid4())
    result = runner.invoke(args=["instances", "delete", missing])
    assert result.exit_code == 1
    assert "Error" in result.output and missing in result.output
    assert "Traceback" not in result.output


def test_rotate_secret(runner, client):
    instance = create(runner)
    iid = instance["id"]
    device = client.post(
        f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": "fcm-token-0123456789abcdef"}
    ).get_json()["id"]

    result = runner.invoke(args=["instances", "rotate-secret", iid])
    assert result.exit_code == 0, result.output
    new_key = result.output.strip()
    assert new_key and "\n" not in new_key and new_key != instance["secret_key"]

    def set_user(key: str):
        token = jwt.encode({"sub": "bob", "iss": f"pushlite:{iid}", "exp": int(time.time()) + 600}, key, "HS256")
        return client.put(
            f"/device_api/v1/instances/{iid}/devices/fcm/{device}/user",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert set_user(instance["secret_key"]).status_code == 401
    assert set_user(new_key).status_code == 200


def test_rotate_secret_unknown_id_fails(runner):
    missing = str(uuid.uuid4())
    result = runner.invoke(args=["instances", "rotate-secret", missing])
    assert result.exit_code == 1
    assert "Error" in result.output and missing in result.output
    assert "Traceback" not in result.output


def test_instances_help_lists_the_commands(runner):
    result = runner.invoke(args=["instances", "--help"])
    assert result.exit_code == 0
    for command in ("create", "list", "delete", "rotate-secret"):
        assert command in result.output


def test_the_real_flask_command_against_redis(redis_server):
    """What the README tells operators to type: `flask --app wsgi instances ...`."""
    redis.Redis.from_url(redis_server.url).flushall()
    env = {**os.environ, "REDIS_URL": redis_server.url, "PUSHLITE_ADMIN_TOKEN": "cli-admin-token",
           "PUSHLITE_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    root = Path(__file__).resolve().parents[1]

    def flask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "instances", *args],
            cwd=root, env=env, capture_output=True, text=True, timeout=30,
        )

    created = flask("create", "real-cli")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    listed = flask("list")
    assert listed.returncode == 0, listed.stderr
    assert f"{body['id']}\treal-cli\t" in listed.stdout
    assert body["secret_key"] not in listed.stdout
    deleted = flask("delete", body["id"])
    assert deleted.returncode == 0, deleted.stderr
    again = flask("delete", body["id"])
    assert again.returncode == 1
    assert "Traceback" not in again.stderr
