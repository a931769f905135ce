"""Fixtures: every API test runs against an in-process fakeredis, a throwaway
real `redis-server` on a free port, and a real Redis Cluster (three masters
with a replica each); the modules that set ``BACKENDS`` choose their own set,
e.g. the storage model and delivery tests add a Sentinel setup (a master, a
replica and a sentinel). The real ones are started once per session and
skipped, with the reason shown, where redis-server (7+) or redis-cli is
missing."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
import redis

from config import TestingConfig
from pushlite import redis_clients
from pushlite.app import create_app
from tests.redis_servers import (  # noqa: F401  (RedisServer and free_port: imported from here by tests)
    RedisClusterServers,
    RedisServer,
    SentinelServers,
    cluster_unsupported_reason,
    free_port,
    unsupported_reason,
)

# The provider mocks' fixtures (keys, APNs/FCM mocks, credentials), for every test package.
pytest_plugins = ("tests.mocks.providers",)

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def run_together(worker: Callable[..., None], arguments: Sequence[tuple]) -> None:
    """``worker(*args)`` on one thread per args, all released at once; returns
    when every thread has ended (or after 30 s each)."""
    start = threading.Barrier(len(arguments))

    def run(*args) -> None:
        start.wait()
        worker(*args)

    threads = [threading.Thread(target=run, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


# Not API families: static files, the docs, the probes, the Prometheus metrics, and the operator's
# HTML pages (RQ Dashboard, the console).
SKIP_ENDPOINTS = ("static", "api-docs.", "health.", "swagger_assets", "rq_dashboard.", "metrics.", "console.",
                  "console_public.")

# The error body fields of each family (DESIGN.md), by path prefix; longest prefix wins.
FAMILY_ERROR_FIELDS = {
    "/device_api/": {"error", "description"},
    "/publish_api/": {"error", "description"},
    "/customer_api/": {"error", "description"},
    "/admin/": {"code", "status", "message"},
    "/_matrix/": {"errcode", "error"},
    "/api/": {"status_code", "message"},
    "/users/@me/": {"code", "message"},
    "/v1/PushNotifications": {"code", "message", "status"},
    "/v1/Users/": {"code", "message", "status"},
    "/v1/devices/": {"code", "message"},
    "/v1/channels": {"code", "message"},
}

# The backends a test module's API tests (``deployment``) and delivery tests
# (``delivery_deployment``: real Redis only, for the RQ workers) run on,
# unless the module sets ``BACKENDS`` / ``DELIVERY_BACKENDS`` itself.
BACKENDS = ("fakeredis", "redis-server", "cluster")
DELIVERY_BACKENDS = ("redis-server", "cluster", "sentinel")


@dataclass(frozen=True)
class Deployment:
    """Where a test's data lives: ``url`` is its REDIS_URL (None: embedded
    fakeredis) and ``queue_url`` its PUSHLITE_QUEUE_URL (RQ cannot queue on a
    Cluster, so cluster tests queue on the session's redis-server)."""

    name: str
    url: str | None
    queue_url: str | None = None

    def config(self, **overrides: object) -> TestingConfig:
        if self.queue_url:
            overrides.setdefault("PUSHLITE_QUEUE_URL", self.queue_url)
        return TestingConfig(self.url, **overrides)


@pytest.fixture(scope="session")
def redis_server():
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster():
    reason = cluster_unsupported_reason()
    if reason:
        pytest.skip(reason)
    cluster = RedisClusterServers()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel():
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    setup = SentinelServers()
    setup.start()
    yield setup
    setup.stop()


def pytest_generate_tests(metafunc) -> None:
    for fixture, setting, default in (("deployment", "BACKENDS", BACKENDS),
                                      ("delivery_deployment", "DELIVERY_BACKENDS", DELIVERY_BACKENDS)):
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, getattr(metafunc.module, setting, default), indirect=True)


@pytest.fixture
def deployment(request) -> Deployment:
    """This test's deployment, emptied first (data and queues)."""
    return _deployment(request, request.param)


@pytest.fixture
def delivery_deployment(request) -> Deployment:
    """A delivery test's real deployment, emptied first (data and queues)."""
    return _deployment(request, request.param)


def _deployment(request, name: str) -> Deployment:
    if name == "fakeredis":
        return Deployment(name, None)
    if name == "redis-server":
        server = request.getfixturevalue("redis_server")
        redis.Redis.from_url(server.url).flushall()
        return Deployment(name, server.url)
    if name == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        queue = request.getfixturevalue("redis_server")
        cluster.flush()
        redis.Redis.from_url(queue.url).flushall()
        return Deployment(name, cluster.url, queue.url)
    if name == "sentinel":
        setup = request.getfixturevalue("redis_sentinel")
        setup.flush()
        return Deployment(name, setup.url)
    raise ValueError(f"unknown backend {name}")


@pytest.fixture
def backend(deployment) -> str | None:
    """The Redis URL of this test run: None for fakeredis."""
    return deployment.url


@pytest.fixture
def app(deployment):
    return create_app(deployment.config())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def redis_client(app):
    return redis_clients.client_of(app)


@pytest.fixture
def instance(client) -> dict:
    response = client.post("/admin/v1/instances", json={"name": "test"}, headers=ADMIN)
    assert response.status_code == 201
    return response.get_json()
