"""The seed's 401 "Incorrect instance credentials." on registration: the Beams
SDKs send no credentials, but a client that sends `Authorization: Bearer
<client token>` must send its instance's."""
from __future__ import annotations

import pytest

BODIES = {"apns": {"token": "ab" * 32, "bundleIdentifier": "com.example.app"}, "fcm": {"token": "f" * 40}}
WRONG = (401, {"error": "Unauthorized", "description": "Incorrect instance credentials."})


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_registration_without_credentials_is_accepted(client, instance, platform):
    response = client.post(f"/device_api/v1/instances/{instance['id']}/devices/{platform}", json=BODIES[platform])
    assert response.status_code == 200


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_the_right_client_token_is_accepted(client, instance, platform):
    response = client.post(
        f"/device_api/v1/instances/{instance['id']}/devices/{platform}",
        json=BODIES[platform],
        headers={"Authorization": f"Bearer {instance['client_token']}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("platform", ["apns", "fcm"])
@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic abc", "Bearer", "Bearer {secret_key}"])
def test_wrong_credentials_are_refused_and_nothing_is_stored(client, instance, redis_client, platform, header):
    response = client.post(
        f"/device_api/v1/instances/{instance['id']}/devices/{platform}",
        json=BODIES[platform],
        headers={"Authorization": header.format(secret_key=instance["secret_key"])},
    )
    assert (response.status_code, response.get_json()) == WRONG
    assert not list(redis_client.scan_iter(match="{%s}:d:*" % instance["id"]))
