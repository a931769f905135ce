"""Fixtures: every API test runs twice, against an in-process fakeredis and
against a throwaway real `redis-server` on a free port (skipped, with the
reason shown, where redis-server is not installed)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis

from config import TestingConfig
from pushlite import store
from pushlite.app import create_app

# The provider mocks' fixtures (keys, APNs/FCM mocks, credentials), for every test package.
pytest_plugins = ("tests.mocks.providers",)

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server process the tests can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pushlite-redis-")
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(5)
            self.process = None


@pytest.fixture(scope="session")
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["fakeredis", "redis-server"])
def backend(request) -> str | None:
    """The Redis URL of this test run: None for fakeredis."""
    if request.param == "fakeredis":
        return None
    server = request.getfixturevalue("redis_server")
    redis.Redis.from_url(server.url).flushall()
    return server.url


@pytest.fixture
def app(backend):
    return create_app(TestingConfig(backend))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def redis_client(app):
    return store.client_of(app)


@pytest.fixture
def instance(client) -> dict:
    response = client.post("/admin/v1/instances", json={"name": "test"}, headers=ADMIN)
    assert response.status_code == 201
    return response.get_json()
