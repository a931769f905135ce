"""pushlite on a Sentinel-managed Redis (a master, a replica, one sentinel,
all real processes) while the master changes: writes go to the new master
within seconds without a restart (so do the RQ workers), /readyz answers 503
while no master takes writes, and no write acknowledged after the switch is
lost. With PUSHLITE_REDIS_MIN_REPLICAS no acknowledged write is lost at all."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import pytest
import redis

import config
from pushlite.app import create_app
from pushlite.storage import keys
from tests.conftest import ADMIN
from tests.faults.conftest import ENCRYPTION_KEY, ROOT, Workers
from tests.redis_servers import SentinelServers, unsupported_reason

pytestmark = pytest.mark.skipif(unsupported_reason() is not None, reason=str(unsupported_reason()))

RESUME_WITHIN = 10.0


@pytest.fixture
def sentinel_setup():
    setup = SentinelServers()
    setup.start()
    yield setup
    setup.stop()


@dataclass
class Writer:
    """Registers a new device every few milliseconds from its own thread and
    notes when each request started and how it was answered."""

    client: object
    instance_id: str
    results: list[tuple[float, float, int, str]] = field(default_factory=list)  # (sent, answered, status, token)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            token = f"fcm-failover-{n:08d}-0123456789abcdef"
            sent = time.monotonic()
            response = self.client.post(
                f"/device_api/v1/instances/{self.instance_id}/devices/fcm", json={"token": token}
            )
            self.results.append((sent, time.monotonic(), response.status_code, token))
            n += 1
            time.sleep(0.005)

    def __enter__(self) -> "Writer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def acknowledged(self, since: float = 0.0) -> list[str]:
        return [token for sent, _, status, token in self.results if status == 200 and sent >= since]

    def first_success_after(self, moment: float) -> float | None:
        return next((answered for sent, answered, status, _ in self.results if sent >= moment and status == 200), None)


def stored_tokens(master: redis.Redis, instance_id: str) -> set[str]:
    tokens = set()
    for key in master.scan_iter(match=keys.device_prefix(instance_id) + "*"):
        for record in master.hvals(key):
            tokens.add(record.split("\x1f")[2])
    return tokens


def app_on(setup: SentinelServers, **overrides):
    app = create_app(config.TestingConfig(setup.url, **overrides))
    client = app.test_client()
    instance = client.post("/admin/v1/instances", json={"name": "failover"}, headers=ADMIN).get_json()
    return client, instance["id"]


def wait_for_new_master(setup: SentinelServers, old_port: int, timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if setup.master_address()[1] != old_port:
            return time.monotonic()
        time.sleep(0.005)
    raise AssertionError("Sentinel did not switch masters")


def test_a_failover_moves_writes_to_the_new_master_and_loses_none_after_the_switch(sentinel_setup):
    client, iid = app_on(sentinel_setup)
    old = sentinel_setup.current_master()
    with Writer(client, iid) as writer:
        time.sleep(0.5)
        started = time.monotonic()
        sentinel_setup.sentinel().execute_command("SENTINEL", "FAILOVER", sentinel_setup.service)
        switched = wait_for_new_master(sentinel_setup, old.port)
        deadline = started + RESUME_WITHIN
        while writer.first_success_after(switched) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    resumed = writer.first_success_after(switched)
    assert resumed is not None and resumed - started <= RESUME_WITHIN, "writes did not resume on the new master"
    assert {status for _, _, status, _ in writer.results} <= {200, 503}
    # Once the old master has become a replica of the new one, it holds only
    # what the new one has: every write acknowledged after the switch is there.
    sentinel_setup.wait_replicated()
    new = sentinel_setup.current_master().client(decode_responses=True)
    stored = stored_tokens(new, iid)
    lost = [token for token in writer.acknowledged(since=switched) if token not in stored]
    assert writer.acknowledged(since=switched) and not lost


def test_readyz_is_503_while_no_master_answers_and_writes_resume_by_themselves(sentinel_setup):
    client, iid = app_on(sentinel_setup)
    assert client.get("/readyz").status_code == 200
    old = sentinel_setup.current_master()
    sentinel_setup.wait_caught_up()  # the instance is on the replica too
    killed = time.monotonic()
    old.kill()
    assert client.get("/readyz").status_code == 503
    body = client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": "fcm-while-down-0123456789"})
    assert body.status_code == 503 and set(body.get_json()) == {"error", "description"}
    deadline = killed + RESUME_WITHIN + 5
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "/readyz stayed 503 after Sentinel promoted the replica"
        time.sleep(0.1)
    response = client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": "fcm-after-0123456789"})
    assert response.status_code == 200
    # The sentinel's down-after (1 s) and the failover itself are most of it.
    assert time.monotonic() - killed <= RESUME_WITHIN + 5


def test_with_min_replicas_no_acknowledged_write_is_lost(sentinel_setup):
    client, iid = app_on(sentinel_setup, PUSHLITE_REDIS_MIN_REPLICAS=1)
    old = sentinel_setup.current_master()
    with Writer(client, iid) as writer:
        time.sleep(0.5)
        sentinel_setup.sentinel().execute_command("SENTINEL", "FAILOVER", sentinel_setup.service)
        switched = wait_for_new_master(sentinel_setup, old.port)
        # The new master has no replica until Sentinel turns the old master
        # into one (its next check, ~10 s): writes wait for it, and get 503.
        sentinel_setup.wait_replicated()
        replicated = time.monotonic()
        while writer.first_success_after(replicated) is None and time.monotonic() < replicated + RESUME_WITHIN:
            time.sleep(0.1)
        time.sleep(0.5)
    assert {status for _, _, status, _ in writer.results} <= {200, 503}
    assert writer.first_success_after(switched) is not None
    new = sentinel_setup.current_master().client(decode_responses=True)
    stored = stored_tokens(new, iid)
    assert writer.acknowledged() and [t for t in writer.acknowledged() if t not in stored] == []


def test_min_replicas_answers_503_when_the_replica_does_not_confirm(sentinel_setup):
    client, iid = app_on(sentinel_setup, PUSHLITE_REDIS_MIN_REPLICAS=1)
    path = f"/device_api/v1/instances/{iid}/devices/fcm"
    assert client.post(path, json={"token": "fcm-confirmed-0123456789"}).status_code == 200
    sentinel_setup.current_replica().pause()
    try:
        response = client.post(path, json={"token": "fcm-unconfirmed-0123456789"})
    finally:
        sentinel_setup.current_replica().resume()
    assert response.status_code == 503
    assert "replicas" in response.get_json()["description"]


def test_workers_follow_a_failover_and_deliver_after_it(sentinel_setup, apns_mock, apns_credential, tmp_path):
    """`python -m workers` (RQ queues and data through Sentinel) delivers a
    publish made after the failover, without a restart."""
    app = create_app(config.TestingConfig(sentinel_setup.url, PUSHLITE_DRY_RUN=False,
                                          PUSHLITE_APNS_ENDPOINT=apns_mock.url))
    web = app.test_client()
    created = web.post("/admin/v1/instances", json={"name": "workers"}, headers=ADMIN).get_json()
    iid, auth = created["id"], {"Authorization": f"Bearer {created['secret_key']}"}
    assert web.put(f"/admin/v1/instances/{iid}/credentials/apns", json=apns_credential,
                   headers=ADMIN).status_code == 200
    tokens = ["%064x" % (n + 1) for n in range(5)]
    for token in tokens:
        device = web.post(f"/device_api/v1/instances/{iid}/devices/apns",
                          json={"token": token, "bundleIdentifier": "com.example"}).get_json()["id"]
        assert web.post(f"/device_api/v1/instances/{iid}/devices/apns/{device}/interests/news").status_code == 200

    def publish_and_wait(timeout: float) -> dict:
        published = web.post(f"/publish_api/v1/instances/{iid}/publishes/interests",
                             json={"interests": ["news"], "apns": {"aps": {"alert": "hi"}}}, headers=auth)
        assert published.status_code == 200, published.get_json()
        path = f"/publish_api/v1/instances/{iid}/publishes/{published.get_json()['publishId']}"
        deadline = time.monotonic() + timeout
        while True:
            answer = web.get(path, headers=auth)
            if answer.status_code == 200 and answer.get_json()["status"] == "done":
                return answer.get_json()
            assert time.monotonic() < deadline, (answer.status_code, answer.get_json(), workers.log())
            time.sleep(0.1)

    env = {**os.environ, "REDIS_URL": sentinel_setup.url, "PUSHLITE_ADMIN_TOKEN": ADMIN["Authorization"].split()[1],
           "PUSHLITE_ENCRYPTION_KEY": ENCRYPTION_KEY, "PUSHLITE_APNS_ENDPOINT": apns_mock.url,
           "PUSHLITE_DRY_RUN": "0", "PYTHONPATH": str(ROOT)}
    workers = Workers(env, tmp_path)
    workers.start(1)
    try:
        assert publish_and_wait(20)["delivered"] == len(tokens)
        old = sentinel_setup.current_master()
        sentinel_setup.wait_caught_up()
        sentinel_setup.sentinel().execute_command("SENTINEL", "FAILOVER", sentinel_setup.service)
        wait_for_new_master(sentinel_setup, old.port)
        deadline = time.monotonic() + RESUME_WITHIN
        while web.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert publish_and_wait(RESUME_WITHIN + 10)["delivered"] == len(tokens)
    finally:
        workers.stop()
    assert all(apns_mock.seen[token] >= 2 for token in tokens)
