"""Fixtures for delivery tests: the local APNs, FCM and Web Push mocks, an app on a real
redis-server that sends to them, an instance with credentials the mocks
verify, the test's own worker `Runtime`, and `drain`, which works the RQ
queues until a publish is done.

The mocks are started once per session and reset before each test. Tests that
need real Redis are skipped (with the reason shown) where redis-server is not
installed.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq.registry import ScheduledJobRegistry
from rq.worker import SimpleWorker

from config import TestingConfig
from pushlite import redis_clients
from pushlite.app import create_app
from pushlite.storage import devices, interests
from tests.conftest import ADMIN, Deployment
from tests.mocks.apns_mock import APNsMock
from tests.mocks.fcm_mock import FCMMock
from tests.mocks.providers import VAPID_SUBJECT
from tests.mocks.webpush_mock import PushService
from workers import runtime as worker_runtime
from workers.runtime import DeliverySettings, Runtime

# What a publish body needs to reach every kind of device.
ALERT = {"aps": {"alert": {"title": "Hello", "body": "World"}}}
FCM = {"notification": {"title": "Hello", "body": "World"}}


# --- app, instance and worker runtime on a real redis-server ------------------


@pytest.fixture
def delivery_config(delivery_deployment: Deployment, apns_mock: APNsMock, fcm_mock: FCMMock,
                    webpush_mock: PushService) -> TestingConfig:
    return delivery_deployment.config(
        PUSHLITE_DRY_RUN=False,
        PUSHLITE_APNS_ENDPOINT=apns_mock.url,
        PUSHLITE_FCM_ENDPOINT=fcm_mock.url,
        # The local push service: a host the allowlist names is trusted (127.0.0.1 is not public).
        PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST=webpush_mock.origin + "/*",
        PUSHLITE_VAPID_SUBJECT=VAPID_SUBJECT,
    )


@pytest.fixture
def delivery_app(delivery_config: TestingConfig):
    return create_app(delivery_config)


@pytest.fixture
def web(delivery_app):
    """A test client of the app that sends to the mocks."""
    return delivery_app.test_client()


@pytest.fixture
def data(delivery_app) -> redis.Redis:
    return redis_clients.client_of(delivery_app)


@pytest.fixture
def settings() -> DeliverySettings:
    """Delivery settings for the test; a test may change them before its first job runs."""
    return DeliverySettings(batch_size=1000, max_attempts=5, retry_base_seconds=0.05, retry_max_seconds=2.0)


@pytest.fixture
def runtime(delivery_app, delivery_config: TestingConfig, settings: DeliverySettings) -> Iterator[Runtime]:
    """The worker side, built from the same config as the app, installed as
    the process runtime that the jobs use (after the app: an embedded app
    installs its own)."""
    rt = Runtime.from_config(delivery_config)
    rt.delivery = settings
    worker_runtime.install(rt)
    yield rt
    worker_runtime.install(None)


@pytest.fixture
def tenant(web, apns_credential, service_account) -> dict[str, Any]:
    """An instance with both credentials; ``auth`` is its publish header."""
    created = web.post("/admin/v1/instances", json={"name": "delivery"}, headers=ADMIN)
    assert created.status_code == 201, created.get_json()
    instance = created.get_json()
    iid = instance["id"]
    for provider, body in (("apns", apns_credential), ("fcm", {"service_account": service_account})):
        stored = web.put(f"/admin/v1/instances/{iid}/credentials/{provider}", json=body, headers=ADMIN)
        assert stored.status_code == 200, stored.get_json()
    instance["auth"] = {"Authorization": f"Bearer {instance['secret_key']}"}
    return instance


# --- helpers -----------------------------------------------------------------


def add_device(
    client: redis.Redis,
    instance_id: str,
    platform: str,
    token: str,
    interests_: tuple[str, ...] | list[str] = (),
    user: str | None = None,
) -> str:
    """A device through storage (any token, magic or not), with its interests and user."""
    device_id, _ = devices.register(client, instance_id, platform, token)
    if interests_:
        interests.add(client, instance_id, device_id, None, interests_)
    if user:
        devices.add_user(client, instance_id, device_id, None, user, exclusive=True)
    return device_id


def publish(web, tenant: dict, kind: str, targets: list[str], **payloads: Any) -> str:
    body = {kind: targets, **payloads}
    response = web.post(
        f"/publish_api/v1/instances/{tenant['id']}/publishes/{kind}", json=body, headers=tenant["auth"]
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["publishId"]


def status(web, tenant: dict, publish_id: str) -> dict[str, Any]:
    response = web.get(f"/publish_api/v1/instances/{tenant['id']}/publishes/{publish_id}", headers=tenant["auth"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


class BurstWorker(SimpleWorker):
    """RQ's in-process worker without the pub/sub command channel: stopping
    its listener thread costs up to a second per burst, and tests send no
    commands."""

    def subscribe(self) -> None:
        pass


def drain(rt: Runtime, web, tenant: dict, publish_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """Work the fan-out and delivery queues in this process until the publish
    is done; scheduled retries are moved to their queue once due. Returns the
    final status (the last one seen when it times out or no work is left, for
    the assertion)."""
    queues = [rt.fanout_queue, rt.delivery_queue]
    deadline = time.monotonic() + timeout
    while True:
        BurstWorker(queues, connection=rt.fanout_queue.connection).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )
        record = status(web, tenant, publish_id)
        if record["status"] == "done" or time.monotonic() > deadline or not pending_work(rt):
            return record
        time.sleep(0.05)


def pending_work(rt: Runtime) -> bool:
    """Whether a later burst could still do something: jobs queued or scheduled.
    (A publish that is not done when nothing is left will never be.)"""
    for queue in (rt.fanout_queue, rt.delivery_queue):
        if queue.count or ScheduledJobRegistry(queue.name, connection=queue.connection).count:
            return True
    return False
