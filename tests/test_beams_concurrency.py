"""Beams Device API limits and invariants under concurrent requests: the cap of
100 devices per user, the cap of 5,000 interests per device, one device per
token, one user per device, and interest sets that agree with the devices.

Each worker thread has its own test client, as each gunicorn worker would have
its own request; both backends (fakeredis, real redis-server) run every test.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import jwt
import pytest

from pushlite.storage import keys, records

THREADS = 32


def base(instance_id: str) -> str:
    return f"/device_api/v1/instances/{instance_id}/devices"


def fcm_token(n: int) -> str:
    return f"fcm-token-{n:020d}"


def register(client, instance_id: str, n: int = 0) -> str:
    response = client.post(f"{base(instance_id)}/fcm", json={"token": fcm_token(n)})
    assert response.status_code == 200
    return response.get_json()["id"]


def user_jwt(instance: dict, user_id: str = "alice") -> str:
    claims = {"sub": user_id, "iss": f"pushlite:{instance['id']}", "exp": int(time.time()) + 600}
    return jwt.encode(claims, instance["secret_key"], algorithm="HS256")


def concurrently(app, calls: list[Callable]) -> list:
    """Run ``call(client)`` for each call on a pool of threads, each thread with
    its own test client, all released together; the responses in call order."""
    local = threading.local()
    start = threading.Barrier(min(THREADS, len(calls)))

    def run(call: Callable):
        if not hasattr(local, "client"):
            local.client = app.test_client()
            try:
                start.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        return call(local.client)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, calls))


def stored(redis_client, instance_id: str, device_id: str) -> records.Device | None:
    record = redis_client.hget(keys.device_bucket(instance_id, device_id), device_id)
    return None if record is None else records.unpack(device_id, record)


def user_devices(redis_client, instance_id: str, user_id: str) -> list[str]:
    value = redis_client.hget(keys.user_bucket(instance_id, user_id), user_id)
    return value.split(",") if value else []


def test_150_concurrent_set_user_calls_give_the_user_exactly_100_devices(app, client, redis_client, instance):
    iid = instance["id"]
    devices = [register(client, iid, n) for n in range(150)]
    headers = {"Authorization": f"Bearer {user_jwt(instance)}"}

    def set_user(device_id: str):
        return lambda c: c.put(f"{base(iid)}/fcm/{device_id}/user", headers=headers)

    responses = concurrently(app, [set_user(d) for d in devices])
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 100, sorted(set(statuses))
    assert statuses.count(422) == 50
    for r in responses:
        if r.status_code == 422:
            assert r.get_json() == {
                "error": "Unprocessable Entity",
                "description": "User already has reached the maximum of 100 devices.",
            }

    accepted = {d for d, s in zip(devices, statuses) if s == 200}
    listed = user_devices(redis_client, iid, "alice")
    assert len(listed) == 100
    assert set(listed) == accepted
    # Each device agrees with the user's list.
    for device_id in devices:
        expected = ["alice"] if device_id in accepted else []
        assert stored(redis_client, iid, device_id).users == expected


def test_concurrent_adds_stop_at_5000_interests(app, client, redis_client, instance):
    iid = instance["id"]
    device_id = register(client, iid)
    url = f"{base(iid)}/fcm/{device_id}/interests"
    assert client.put(url, json={"interests": [f"i{n:04d}" for n in range(4990)]}).status_code == 200
    names = [f"new-{n:02d}" for n in range(40)]

    responses = concurrently(app, [lambda c, name=name: c.post(f"{url}/{name}") for name in names])
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10, sorted(set(statuses))
    assert statuses.count(400) == 30
    for r in responses:
        if r.status_code == 400:
            assert r.get_json()["error"] == "Interest set too large"

    added = {name for name, s in zip(names, statuses) if s == 200}
    device = stored(redis_client, iid, device_id)
    assert len(device.interests) == 5000
    assert added <= set(device.interests)
    for name in names:
        members = redis_client.smembers(keys.interest(iid, name))
        assert members == ({device_id} if name in added else set())
    count, cursor = 0, None
    while True:
        body = client.get(url, query_string={"cursor": cursor} if cursor else {}).get_json()
        count += len(body["interests"])
        cursor = body["responseMetadata"].get("nextCursor")
        if not cursor:
            break
    assert count == 5000


def test_concurrent_registrations_of_one_token_make_one_device(app, client, redis_client, instance):
    iid = instance["id"]
    body = {"token": fcm_token(7)}
    responses = concurrently(app, [lambda c: c.post(f"{base(iid)}/fcm", json=body)] * 40)
    assert {r.status_code for r in responses} == {200}
    ids = {r.get_json()["id"] for r in responses}
    assert len(ids) == 1
    device_id = ids.pop()
    assert stored(redis_client, iid, device_id).token == fcm_token(7)
    assert redis_client.hlen(keys.device_bucket(iid, device_id)) == 1
    assert not redis_client.exists(keys.token_index(iid))


def test_concurrent_users_for_one_device_leave_exactly_one(app, client, redis_client, instance):
    iid = instance["id"]
    device_id = register(client, iid)
    users = [f"user-{n}" for n in range(40)]

    def set_user(user_id: str):
        headers = {"Authorization": f"Bearer {user_jwt(instance, user_id)}"}
        return lambda c: c.put(f"{base(iid)}/fcm/{device_id}/user", headers=headers)

    responses = concurrently(app, [set_user(u) for u in users])
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1
    assert statuses.count(400) == 39
    winner = users[statuses.index(200)]
    assert client.get(f"{base(iid)}/fcm/{device_id}").get_json()["userId"] == winner
    for user_id in users:
        assert user_devices(redis_client, iid, user_id) == ([device_id] if user_id == winner else [])


def test_interest_sets_agree_with_devices_after_concurrent_writes_and_deletes(app, client, redis_client, instance):
    iid = instance["id"]
    devices = [register(client, iid, n) for n in range(8)]
    names = [f"topic-{n}" for n in range(6)]
    calls = []
    for i, device_id in enumerate(devices):
        url = f"{base(iid)}/fcm/{device_id}"
        for name in names:
            calls.append(lambda c, url=url, name=name: c.post(f"{url}/interests/{name}"))
        calls.append(lambda c, url=url: c.put(f"{url}/interests", json={"interests": names[:3]}))
        calls.append(lambda c, url=url, name=names[i % 6]: c.delete(f"{url}/interests/{name}"))
        if i % 2:
            calls.append(lambda c, url=url: c.delete(url))
    # Interleave the devices' calls.
    calls = calls[::3] + calls[1::3] + calls[2::3]
    responses = concurrently(app, calls)
    assert {r.status_code for r in responses} <= {200, 404}

    for name in names:
        members = redis_client.smembers(keys.interest(iid, name))
        holders = set()
        for device_id in devices:
            device = stored(redis_client, iid, device_id)
            if device is not None and name in device.interests:
                holders.add(device_id)
        assert members == holders, name
    for i, device_id in enumerate(devices):
        assert (stored(redis_client, iid, device_id) is None) == bool(i % 2)
