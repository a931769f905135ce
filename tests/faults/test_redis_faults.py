"""The queue Redis (here also the data Redis) SIGKILLed and restarted from
its AOF mid-publish, a provider's Retry-After, and the walk's dedupe."""
from __future__ import annotations

import time

from pushlite.storage import keys, work
from pushlite.storage.work import FANOUT
from tests.faults.conftest import assert_adds_up, wait_for


def test_redis_restart_mid_publish_every_device_delivered_workers_reconnect(scene, workers, apns_mock, fault_redis):
    tokens = scene.add_devices(3000)
    apns_mock.delay = 0.2
    procs = workers.start(2)
    pid = scene.publish()
    wait_for(lambda: len(apns_mock.requests) >= 1000, 30, "delivery under way")
    fault_redis.kill()
    time.sleep(1.0)
    fault_redis.start()  # same port and directory: its AOF (everysec) is loaded

    record = scene.wait_done(pid, 60)
    assert all(apns_mock.seen[t] >= 1 for t in tokens), "a device was never sent"
    assert record["delivered"] == 3000, record
    assert_adds_up(record)
    assert all(p.poll() is None for p in procs), "a worker process died with Redis"
    # The workers are still working: a new publish goes through.
    apns_mock.reset()
    again = scene.publish()
    assert scene.wait_done(again, 30)["delivered"] == 3000


def test_retry_after_is_honoured(scene, workers, apns_mock):
    (token,) = scene.add_devices(1, prefix="wait2")  # 429 Retry-After: 2, then 200
    workers.start(1)
    pid = scene.publish()
    record = scene.wait_done(pid, 30)
    assert record["delivered"] == 1 and record["retried"] == 1, record
    first_answer, retried_at = apns_mock.answered[token][0], apns_mock.arrived[token][1]
    assert retried_at - first_answer >= 2.0, retried_at - first_answer


def test_the_walk_sends_each_device_once_when_sscan_repeats_and_interests_overlap(scene):
    """Members SSCAN returns again (the set rehashed under the walk, or a
    fan-out resumed from an earlier cursor) and devices in two targeted
    interests land in one batch only."""
    scene.add_devices(3000, interest="a")
    both = list(scene.data.smembers(keys.interest(scene.iid, "a")))[:1000]
    for device_id in both:
        scene.data.sadd(keys.interest(scene.iid, "b"), device_id)
    pid = scene.publish("a", "b")
    owner = "test:1:walker"
    assert work.claim(scene.data, scene.iid, pid, FANOUT, owner, 60_000).status == "ok"
    interest_keys = [keys.interest(scene.iid, "a"), keys.interest(scene.iid, "b")]
    batches, finished, steps = [], False, 0
    while not finished:
        step = work.walk(scene.data, scene.iid, pid, interest_keys, owner, 60_000, 500, 10_000)
        finished = step.finished
        batches.extend(step.batches)
        steps += 1
        if steps == 2:  # walk the first interest again from the start, as a repeating SSCAN would
            scene.data.hset(keys.publish(scene.iid, pid), "walk", "1:0")
        if steps == 3:  # shrink and grow the sets under the walk: they rehash
            scene.data.sadd(keys.interest(scene.iid, "a"), *[f"x{i:011d}" for i in range(5000)])
            scene.data.srem(keys.interest(scene.iid, "a"), *[f"x{i:011d}" for i in range(5000)])
    stored = scene.data.hgetall(keys.publish_batches(scene.iid, pid))
    ids = [i for n, _ in batches for i in stored[n].split(",")]
    assert len(ids) == len(set(ids)) == 3000
