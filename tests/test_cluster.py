"""pushlite on a real Redis Cluster while it changes under it: a master
dies, a master is added, a tenant's slot moves (by hand, one step at a
time, and by ``redis-cli --cluster reshard`` under load). What a tenant on
another shard sees is unchanged; a request for the moving or dead shard is
served or answered 503, never 500, and a change is made whole or not at all.

These tests have a cluster of their own (they break it on purpose)."""
from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter

import pytest

from pushlite.app import create_app
from pushlite.storage import devices, interests, keys, records, scripts
from pushlite.storage.errors import is_unavailable
from tests.conftest import ADMIN, Deployment
from tests.redis_servers import RedisClusterServers, cluster_unsupported_reason
from tests.test_storage_atomicity import check_invariants

pytestmark = pytest.mark.skipif(cluster_unsupported_reason() is not None, reason=str(cluster_unsupported_reason()))

BACKENDS = ("cluster",)
FCM = "fcm-cluster-token-{:06d}-0123456789abcdef"


@pytest.fixture(scope="module")
def cluster():
    servers = RedisClusterServers()
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
def deployment(cluster, redis_server) -> Deployment:
    cluster.wait_healthy()
    cluster.flush()
    return Deployment("cluster", cluster.url, redis_server.url)


@pytest.fixture
def app(deployment):
    return create_app(deployment.config())


def tenants_on(client, cluster: RedisClusterServers, node, count: int = 1) -> list[str]:
    """Instances whose slot the master ``node`` serves (made until enough are)."""
    found: list[str] = []
    for _ in range(500):
        iid = client.post("/admin/v1/instances", json={"name": "t"}, headers=ADMIN).get_json()["id"]
        if cluster.master_of(keys.instance(iid)).port == node.port:
            found.append(iid)
            if len(found) == count:
                return found
    raise AssertionError("no instance landed on that master")


def register(client, iid: str, n: int):
    return client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": FCM.format(n)})


# --- a dead master -------------------------------------------------------------


def test_a_dead_master_stops_only_its_own_slots(app, cluster):
    client = app.test_client()
    doomed, healthy = cluster.masters()[0], cluster.masters()[1:]
    victim = tenants_on(client, cluster, doomed)[0]
    others = [tenants_on(client, cluster, node)[0] for node in healthy]
    for n, iid in enumerate([victim, *others]):
        assert register(client, iid, n).status_code == 200

    doomed.kill()
    try:
        for n, iid in enumerate(others):  # other shards: as if nothing happened
            started = time.monotonic()
            assert register(client, iid, 100 + n).status_code == 200
            assert time.monotonic() - started < 1.0
        started = time.monotonic()
        response = register(client, victim, 200)
        assert response.status_code == 503 and set(response.get_json()) == {"error", "description"}
        assert time.monotonic() - started < 2.0
        # Its replica takes over (cluster-node-timeout 1 s); the tenant is served again, data intact.
        deadline = time.monotonic() + 15
        while register(client, victim, 201).status_code != 200:
            assert time.monotonic() < deadline, "the replica did not take over"
            time.sleep(0.2)
        response = client.get(f"/device_api/v1/instances/{victim}/devices/fcm/"
                              f"{records.derive_id(victim, 'fcm', FCM.format(0))}")
        assert response.status_code == 200
    finally:
        doomed.start()  # back as a replica of the new master
        cluster.wait_healthy()


# --- a master added later ------------------------------------------------------


def test_a_master_added_later_gets_the_code_when_first_called(app, cluster, redis_client):
    client = app.test_client()
    iid = tenants_on(client, cluster, cluster.masters()[0])[0]
    device = register(client, iid, 0).get_json()["id"]
    base = f"/device_api/v1/instances/{iid}/devices/fcm/{device}"
    # A new token for it: the token index now exists, so every key of the
    # metadata change below exists (a call whose keys do not all exist on one
    # side of a moving slot is refused with TRYAGAIN until the move ends).
    assert client.put(f"{base}/token", json={"token": FCM.format(1)}).status_code == 200
    added = cluster.add_master()
    slot = cluster.slot_of(keys.instance(iid))
    source = cluster.begin_migration(slot, added)
    cluster.migrate_keys(slot, source, added)
    # Every key is on the new master, which the client has never met and
    # which has no functions yet; the slot is not handed over: ASK sends the
    # call there.
    assert client.put(f"{base}/metadata", json={"sdkVersion": "2"}).status_code == 200
    cluster.end_migration(slot, added)
    assert cluster.master_of(keys.instance(iid)).port == added.port
    libraries = added.client(decode_responses=True).function_list(library="pushlite_device_*")
    # RESP2: each library is a flat [name, value, name, value, ...] list.
    names = [dict(zip(library[::2], library[1::2]))["library_name"] for library in libraries]
    assert names == [scripts.code("device.lua").function]
    assert client.get(base).get_json()["metadata"] == {"sdkVersion": "2"}
    assert register(client, iid, 2).status_code == 200


# --- a slot moving, one step at a time -----------------------------------------


def snapshot(redis_client, iid: str) -> dict[str, bytes]:
    return {key: redis_client.dump(key) for key in sorted(redis_client.scan_iter(match=keys.tag(iid) + "*"))}


def device_operations(rng: random.Random, redis_client, iid: str, ids: list[str]):
    """A random change of every kind device.lua makes, on existing devices."""
    device_id = rng.choice(ids)
    user = rng.choice(["alice", "bob", "carol"])
    names = rng.sample(["news", "sport", "weather", "music"], 2)
    token = FCM.format(rng.randint(0, 400))
    return rng.choice([
        lambda: devices.register(redis_client, iid, "fcm", token),
        lambda: interests.add(redis_client, iid, device_id, None, names),
        lambda: interests.replace(redis_client, iid, device_id, None, names),
        lambda: interests.remove(redis_client, iid, device_id, None, names[:1]),
        lambda: devices.add_user(redis_client, iid, device_id, None, user, exclusive=False),
        lambda: devices.set_token(redis_client, iid, device_id, "fcm", token),
        lambda: devices.delete(redis_client, iid, device_id),
        lambda: devices.delete_user(redis_client, iid, user),
        lambda: devices.register_for_user(redis_client, iid, user, [("fcm", None, token)]),
    ])


def test_every_device_change_is_whole_or_refused_while_its_slot_moves(app, cluster, redis_client):
    redis_client.moving_slot_patience = 0  # refused at once, not after a second of trying again
    rng = random.Random(7)
    client = app.test_client()
    source = cluster.masters()[0]
    target = cluster.masters()[1]
    iid = tenants_on(client, cluster, source)[0]
    ids = [devices.register(redis_client, iid, "fcm", FCM.format(n))[0] for n in range(40)]
    for device_id in ids[:20]:
        interests.add(redis_client, iid, device_id, None, ["news", "sport"])
        devices.add_user(redis_client, iid, device_id, None, rng.choice(["alice", "bob"]), exclusive=False)
    slot = cluster.slot_of(keys.instance(iid))
    outcomes: Counter = Counter()

    def run_some(count: int) -> None:
        for _ in range(count):
            live = [d for d in ids if devices.load_many(redis_client, iid, [d])] or ids
            operation = device_operations(rng, redis_client, iid, live)
            before = snapshot(redis_client, iid)
            try:
                operation()
                outcomes["done"] += 1
            except Exception as exc:  # noqa: BLE001 - sorted below
                if is_unavailable(exc):
                    outcomes["refused"] += 1
                    assert snapshot(redis_client, iid) == before, f"half applied: {exc!r}"
                elif type(exc).__name__ in ("DeviceNotFound", "UserDeviceLimit"):
                    outcomes["domain"] += 1
                else:
                    raise
            check_invariants(redis_client, iid)

    cluster.begin_migration(slot, target)
    run_some(30)  # marked as moving, every key still on the source
    cluster.migrate_keys(slot, source, target, limit=len(snapshot(redis_client, iid)) // 2)
    run_some(30)  # half of the keys on each side
    cluster.end_migration(slot, target)
    run_some(10)  # moved
    assert outcomes["refused"] > 0 and outcomes["done"] > 0, outcomes


def test_a_change_refused_while_its_slot_moves_is_made_once_the_move_ends(app, cluster, redis_client):
    client = app.test_client()
    source, target = cluster.masters()[0], cluster.masters()[1]
    iid = tenants_on(client, cluster, source)[0]
    devices.register(redis_client, iid, "fcm", FCM.format(0))
    slot = cluster.slot_of(keys.instance(iid))
    cluster.begin_migration(slot, target)
    cluster.migrate_keys(slot, source, target)
    # A new device: its bucket and the token index exist on neither side, so
    # the call is refused (TRYAGAIN) until the slot is handed over, 0.8 s on.
    finisher = threading.Timer(0.8, cluster.end_migration, args=(slot, target))
    finisher.start()
    started = time.monotonic()
    try:
        response = register(client, iid, 1)
    finally:
        finisher.join()
    assert response.status_code == 200, response.get_json()
    assert 0.7 < time.monotonic() - started < 2.0


# --- redis-cli --cluster reshard under load ---------------------------------------


def test_a_live_reshard_under_registration_and_publish_load(app, cluster, redis_client):
    client = app.test_client()
    source, target = cluster.masters()[0], cluster.masters()[1]
    tenants = tenants_on(client, cluster, source, count=3)
    secret = {iid: client.post(f"/admin/v1/instances/{iid}/secret_key", headers=ADMIN).get_json()["secret_key"]
              for iid in tenants}
    # Enough keys in each tenant's slot that moving it takes a while.
    for iid in tenants:
        commands = [devices.register_command(iid, "fcm", f"bulk-{iid}-{n:05d}") for n in range(3000)]
        devices.call_many(redis_client, iid, commands)
    statuses: Counter = Counter()
    acknowledged: dict[str, list[str]] = {iid: [] for iid in tenants}
    publishes: dict[str, list[str]] = {iid: [] for iid in tenants}
    stop = threading.Event()

    def load(iid: str) -> None:
        web = app.test_client()
        n = 0
        while not stop.is_set():
            token = f"fcm-reshard-{n:06d}-0123456789abcdef"
            response = web.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": token})
            statuses[response.status_code] += 1
            if response.status_code == 200:
                acknowledged[iid].append(response.get_json()["id"])
                web.post(f"/device_api/v1/instances/{iid}/devices/fcm/{response.get_json()['id']}/interests/news")
            if n % 10 == 0:
                published = web.post(f"/publish_api/v1/instances/{iid}/publishes/interests",
                                     json={"interests": ["news"], "fcm": {"notification": {"title": "t"}}},
                                     headers={"Authorization": f"Bearer {secret[iid]}"})
                statuses[published.status_code] += 1
                if published.status_code == 200:
                    publishes[iid].append(published.get_json()["publishId"])
            n += 1

    threads = [threading.Thread(target=load, args=(iid,)) for iid in tenants]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        slots = sorted(cluster.slots_of(source))
        moving = max(cluster.slot_of(keys.instance(iid)) for iid in tenants) - slots[0] + 1
        resharded = subprocess.run(
            ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{source.port}",
             "--cluster-from", source.node_id(), "--cluster-to", target.node_id(),
             "--cluster-slots", str(moving), "--cluster-yes"],
            capture_output=True, text=True, timeout=300,
        )
        assert resharded.returncode == 0, resharded.stdout[-2000:] + resharded.stderr
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    cluster.wait_healthy()
    assert all(cluster.master_of(keys.instance(iid)).port == target.port for iid in tenants)
    assert set(statuses) <= {200, 204, 503}, statuses
    for iid in tenants:
        assert acknowledged[iid], statuses
        assert set(acknowledged[iid]) <= set(devices.load_many(redis_client, iid, acknowledged[iid]))
        check_invariants(redis_client, iid)
        for publish_id in publishes[iid]:
            assert redis_client.exists(keys.publish(iid, publish_id))
    print(f"reshard of {moving} slots under load: {dict(statuses)}")
