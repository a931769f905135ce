"""A Redis that is unreachable is a 503; any other Redis error is a bug and is
answered as one (500, in the family's shape), not as an outage to retry."""
from __future__ import annotations

import base64

import jwt
import pytest
import redis
from redis.sentinel import MasterNotFoundError

import config
from pushlite.app import create_app
from tests.conftest import ADMIN, FAMILY_ERROR_FIELDS


def test_a_redis_error_that_is_not_an_outage_is_a_500(client, instance, redis_client):
    redis_client.set("{%s}:d:abc" % instance["id"], "not a hash")  # a corrupted bucket
    response = client.get(f"/device_api/v1/instances/{instance['id']}/devices/fcm/abc123456789")
    assert response.status_code == 500
    assert response.get_json() == {"error": "Something went wrong", "description": "Internal server error."}


def test_instances_never_show_their_secrets_in_a_repr(instance, redis_client):
    from pushlite.storage import instances

    text = repr(instances.get(redis_client, instance["id"]))
    assert instance["secret_key"] not in text and instance["client_token"] not in text


# --- "try again" errors of a Cluster, Sentinel or a replica: 503 in every family's shape ----

TRY_AGAIN = [
    redis.exceptions.ClusterDownError("The cluster is down"),
    redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
    redis.exceptions.ClusterError("TTL exhausted."),
    redis.exceptions.AskError("3999 127.0.0.1:6381"),
    redis.exceptions.MovedError("3999 127.0.0.1:6381"),
    redis.exceptions.SlotNotCoveredError("Slot 3999 not covered by the cluster."),
    MasterNotFoundError("No master found for 'pushlite'"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    redis.exceptions.ResponseError("NOREPLICAS Not enough good replicas to write."),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.ConnectionError("Error 111 connecting to 127.0.0.1:6380. Connection refused."),
]


class Unavailable(redis.Redis):
    """A client every command of which fails with ``error``, alone or in a pipeline."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def execute_command(self, *args, **options):
        raise self.error

    def pipeline(self, transaction=True, shard_hint=None):
        error = self.error

        class Pipe:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, raise_on_error=True):
                raise error

            def __getattr__(self, name):
                return lambda *args, **kwargs: self

        return Pipe()


def family_calls(iid: str) -> list[tuple[str, str, dict]]:
    """One request per family that reaches Redis first."""
    user = {"Authorization": "Bearer " + jwt.encode({"sub": "alice", "iss": f"pushlite:{iid}", "exp": 2**31},
                                                     "not-the-instance-secret-0123456789abcdef", algorithm="HS256")}
    basic = {"Authorization": "Basic " + base64.b64encode(f"{iid}:secret".encode()).decode()}
    mpush = {"X-MPush-Token": "client-token", "X-MPush-Version": "2"}
    return [
        ("post", f"/device_api/v1/instances/{iid}/devices/fcm", {"json": {"token": "f" * 40}}),
        ("post", f"/publish_api/v1/instances/{iid}/publishes/interests",
         {"json": {"interests": ["a"], "fcm": {}}, "headers": {"Authorization": "Bearer secret"}}),
        ("delete", f"/customer_api/v1/instances/{iid}/users/alice", {"headers": {"Authorization": "Bearer secret"}}),
        ("get", "/admin/v1/instances", {"headers": ADMIN}),
        ("post", "/api/tokens", {"json": {"token": "f" * 40, "platform": "android", "device_id": "d"},
                                 "headers": mpush}),
        ("get", "/v1/PushNotifications/DeviceRegistrations/x", {"headers": basic}),
        ("post", "/users/@me/devices", {"json": {"provider": "gcm", "token": "f" * 40}, "headers": user}),
        ("get", "/_matrix/client/v3/pushers", {"headers": user}),
        ("get", "/v1/channels", {"headers": user}),
    ]


@pytest.mark.parametrize("error", TRY_AGAIN, ids=lambda e: type(e).__name__ + ":" + str(e)[:12])
def test_try_again_errors_are_503_in_every_familys_shape(error):
    app = create_app(config.TestingConfig())
    app.extensions["pushlite.redis"] = lambda: Unavailable(error)
    client = app.test_client()
    for method, path, kwargs in family_calls("00000000-0000-4000-8000-000000000000"):
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 503, (path, type(error).__name__, response.get_data(as_text=True))
        fields = FAMILY_ERROR_FIELDS[max((p for p in FAMILY_ERROR_FIELDS if path.startswith(p)), key=len)]
        assert fields <= set(response.get_json()), (path, response.get_json())
    assert client.get("/readyz").status_code == 503
