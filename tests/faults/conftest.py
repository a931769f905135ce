"""Fault tests: real `python -m workers` processes (the Procfile's worker
line) against a real redis-server with AOF, delivering to the local APNs
mock, killed or stopped at chosen moments.

`Workers` starts and kills worker processes; `FaultRedis` is a redis-server
that can be SIGKILLed and restarted on the same port with its AOF; `Scene`
bundles an instance with an APNs credential, devices and the publish API.
Everything is stopped when the test ends, and every wait is bounded.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from config import TestingConfig
from pushlite.app import create_app
from pushlite.storage import devices, interests, keys
from tests.conftest import ADMIN, free_port
from tests.mocks.apns_mock import APNsMock

ROOT = Path(__file__).resolve().parents[2]
ALERT = {"aps": {"alert": {"title": "Hello", "body": "World"}}}
ENCRYPTION_KEY = "nAvXMyYq1PtqcKUzldnnEQ5FINvJcmgB3-DbTq8cmtw="

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class FaultRedis:
    """A redis-server with AOF (appendfsync everysec) that survives SIGKILL + restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pushlite-faults-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), 10, "redis-server to start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Workers:
    """`python -m workers` processes, configured only by environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: list[subprocess.Popen] = []

    def start(self, count: int = 1) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            log = open(self.logs / f"worker{len(self.procs)}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.procs.append(proc)
            started.append(proc)
        return started

    def by_owner(self, owner: str) -> subprocess.Popen:
        """The process whose lease owner name (host:pid:nonce) is given."""
        pid = int(owner.split(":")[1])
        return next(p for p in self.procs if p.pid == pid)

    def log(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(5)


class Scene:
    """An instance with an APNs credential on the fault Redis, its devices, and the publish API."""

    def __init__(self, url: str, apns_mock: APNsMock, apns_credential: dict[str, Any]) -> None:
        self.app = create_app(TestingConfig(url, PUSHLITE_DRY_RUN=False, PUSHLITE_APNS_ENDPOINT=apns_mock.url))
        self.web = self.app.test_client()
        self.data = redis.Redis.from_url(url, decode_responses=True)
        created = self.web.post("/admin/v1/instances", json={"name": "faults"}, headers=ADMIN)
        assert created.status_code == 201, created.get_json()
        self.iid = created.get_json()["id"]
        self.auth = {"Authorization": f"Bearer {created.get_json()['secret_key']}"}
        stored = self.web.put(f"/admin/v1/instances/{self.iid}/credentials/apns", json=apns_credential, headers=ADMIN)
        assert stored.status_code == 200, stored.get_json()
        self.tokens: list[str] = []

    def add_devices(self, count: int, interest: str = "news", prefix: str = "", threads: int = 1) -> list[str]:
        """APNs devices subscribed to ``interest``; tokens are 64 characters, ``prefix`` first (a magic prefix)."""
        tokens = [
            (prefix + "-%x-" % (len(self.tokens) + i)).ljust(64, "0") if prefix else "%064x" % (len(self.tokens) + i + 1)
            for i in range(count)
        ]

        def add(token: str) -> None:
            device_id, _ = devices.register(self.data, self.iid, "apns", token)
            interests.add(self.data, self.iid, device_id, None, [interest])

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(add, tokens))
        self.tokens.extend(tokens)
        return tokens

    def publish(self, *targets: str) -> str:
        answer = self.web.post(f"/publish_api/v1/instances/{self.iid}/publishes/interests",
                               json={"interests": list(targets) or ["news"], "apns": ALERT}, headers=self.auth)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["publishId"]

    def status(self, publish_id: str) -> dict[str, Any]:
        answer = self.web.get(f"/publish_api/v1/instances/{self.iid}/publishes/{publish_id}", headers=self.auth)
        if answer.status_code == 503:  # Redis restarting
            return {"status": "unavailable", "stalled_since": None}
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def owner_of(self, publish_id: str, item: str) -> str:
        """The lease owner of a work item ("" when free or finished)."""
        state = self.data.hget(keys.publish_batches(self.iid, publish_id), f"{item}:st") or ""
        return state.split("|")[0]

    def wait_done(self, publish_id: str, timeout: float) -> dict[str, Any]:
        return wait_for(lambda: (s := self.status(publish_id))["status"] == "done" and s, timeout,
                        f"publish {publish_id} to be done", interval=0.1)


def assert_adds_up(record: dict[str, Any]) -> None:
    parts = record["delivered"] + record["removed"] + record["failed"] + record["skipped"]
    assert record["targeted"] == parts, record


@pytest.fixture
def fault_redis() -> Iterator[FaultRedis]:
    server = FaultRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(fault_redis: FaultRedis, apns_mock: APNsMock, tmp_path: Path) -> Iterator[Workers]:
    env = {
        **os.environ,
        "REDIS_URL": fault_redis.url,
        "PUSHLITE_ADMIN_TOKEN": ADMIN["Authorization"].split()[1],
        "PUSHLITE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PUSHLITE_APNS_ENDPOINT": apns_mock.url,
        "PUSHLITE_DRY_RUN": "0",
        "PYTHONPATH": str(ROOT),
    }
    pool = Workers(env, tmp_path)
    yield pool
    pool.stop()


@pytest.fixture
def scene(fault_redis: FaultRedis, apns_mock: APNsMock, apns_credential: dict[str, Any]) -> Scene:
    return Scene(fault_redis.url, apns_mock, apns_credential)
