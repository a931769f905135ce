"""A Redis that is unreachable is a 503; any other Redis error is a bug and is
answered as one (500, in the family's shape), not as an outage to retry."""
from __future__ import annotations


def test_a_redis_error_that_is_not_an_outage_is_a_500(client, instance, redis_client):
    redis_client.set("{%s}:d:abc" % instance["id"], "not a hash")  # a corrupted bucket
    response = client.get(f"/device_api/v1/instances/{instance['id']}/devices/fcm/abc123456789")
    assert response.status_code == 500
    assert response.get_json() == {"error": "Something went wrong", "description": "Internal server error."}


def test_instances_never_show_their_secrets_in_a_repr(instance, redis_client):
    from pushlite.storage import instances

    text = repr(instances.get(redis_client, instance["id"]))
    assert instance["secret_key"] not in text and instance["client_token"] not in text
