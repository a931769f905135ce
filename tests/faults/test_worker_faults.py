"""Worker processes killed (SIGKILL) or stopped (SIGTERM) mid-publish: every
live device is still delivered, the publish reaches "done" with counts that
add up, and a device is sent twice only if the dead worker had it in flight
(one sender window, 500 devices)."""
from __future__ import annotations

import signal
import time

import redis
from rq import Queue

from pushlite.storage import devices, keys, work
from tests.conftest import ADMIN
from pushlite.storage.work import FANOUT
from tests.faults.conftest import assert_adds_up, wait_for
from workers.runtime import DELIVERY_QUEUE, FANOUT_QUEUE

WINDOW = 500  # SenderSettings.max_concurrency: what a worker has in flight at most


def duplicates(apns_mock, tokens) -> int:
    return sum(apns_mock.seen[t] - 1 for t in tokens if apns_mock.seen[t] > 1)


def assert_all_delivered_after_the_kill(scene, apns_mock, publish_id: str, tokens: list[str], killed_at: float) -> None:
    """Done within 60 s of the kill: every device sent, at most one window of
    them twice, all of them targeted and delivered, not stalled."""
    record = scene.wait_done(publish_id, 60)
    assert time.monotonic() - killed_at < 60
    assert all(apns_mock.seen[t] >= 1 for t in tokens), "a device was never sent"
    assert duplicates(apns_mock, tokens) <= WINDOW, duplicates(apns_mock, tokens)
    assert record["targeted"] == record["delivered"] == len(tokens), record
    assert_adds_up(record)
    assert record["stalled_since"] is None


def test_sigkill_mid_batch_delivers_everything_once_more_at_most_a_window(scene, workers, apns_mock):
    tokens = scene.add_devices(3000)
    apns_mock.delay = 0.3  # each chunk of a batch takes at least this long
    workers.start(2)
    pid = scene.publish()
    # Batch 0 is in its second chunk: its first 500 devices are answered, 500 more in flight.
    wait_for(lambda: scene.owner_of(pid, "0") and len(apns_mock.requests) >= 1200, 30, "batch 0 mid-way")
    victim = workers.by_owner(scene.owner_of(pid, "0"))
    victim.send_signal(signal.SIGKILL)
    assert_all_delivered_after_the_kill(scene, apns_mock, pid, tokens, time.monotonic())


def test_sigkill_during_a_retry(scene, workers, apns_mock):
    ok = scene.add_devices(200)
    flaky = scene.add_devices(300, prefix="flaky1")  # 503 once, then delivered
    apns_mock.delay = 0.3
    workers.start(2)
    pid = scene.publish()
    # The retry attempt is being sent: some flaky token has been asked a second time.
    wait_for(lambda: any(apns_mock.seen[t] >= 2 for t in flaky) and scene.owner_of(pid, "0"), 30, "the retry")
    workers.by_owner(scene.owner_of(pid, "0")).send_signal(signal.SIGKILL)

    record = scene.wait_done(pid, 60)
    assert all(apns_mock.seen[t] == 1 for t in ok), "delivered devices were sent again"
    assert all(apns_mock.seen[t] >= 2 for t in flaky)
    assert duplicates(apns_mock, flaky) - len(flaky) <= WINDOW  # one 503 each is expected
    assert record["delivered"] == 500 and record["failed"] == 0, record
    assert_adds_up(record)


def test_sigkill_mid_fan_out_every_device_delivered(scene, workers, apns_mock):
    """The worker walking a 20-batch interest is SIGKILLed mid-walk (frozen
    with SIGSTOP the moment its first batches exist, seen as "fanning_out"
    through the API, then killed): the other worker takes the fan-out over
    from the stored position, and the batches the dead one made but never
    enqueued are found by the sweep."""
    tokens = scene.add_devices(20_000, threads=4)
    workers.start(2)
    for _ in range(3):  # a walk that ends before the test catches it is tried again
        apns_mock.reset()
        pid = scene.publish()
        owner = wait_for(lambda: _walking(scene, pid), 30, "the fan-out to make its first batch", interval=0)
        if owner != "ended":
            victim = workers.by_owner(owner)
            victim.send_signal(signal.SIGSTOP)
            walked = scene.data.hmget(keys.publish(scene.iid, pid), "fanout_done", "batches_total")
            # Caught mid-walk: not ended, and not every batch made yet (a
            # worker stopped between its last batch and "fanout_done" is late).
            if walked[0] is None and int(walked[1] or 0) < 20 and scene.status(pid)["status"] == "fanning_out":
                break
            victim.send_signal(signal.SIGCONT)
        scene.wait_done(pid, 60)
    else:
        raise AssertionError("the walk always ended before the test could stop its worker")
    assert 1 <= int(walked[1]) < 20, walked
    victim.send_signal(signal.SIGKILL)
    assert_all_delivered_after_the_kill(scene, apns_mock, pid, tokens, time.monotonic())


def _walking(scene, publish_id: str) -> str:
    """The fan-out's owner once it has made a batch, "ended" once the walk
    is over, "" before either."""
    done, batches = scene.data.hmget(keys.publish(scene.iid, publish_id), "fanout_done", "batches_total")
    if done:
        return "ended"
    owner = scene.owner_of(publish_id, FANOUT)
    return owner if owner and int(batches or 0) else ""


def test_fanout_taken_over_from_a_dead_worker_resumes_its_walk(scene, workers, apns_mock):
    """The state a worker SIGKILLed mid-walk leaves: the fan-out leased by a
    process that is gone, part of the interests walked into batches (one of
    them never enqueued). Another worker takes it over and carries on."""
    tokens = scene.add_devices(2500)
    pid = scene.publish()
    Queue(FANOUT_QUEUE, connection=redis.Redis.from_url(scene.app.config["REDIS_URL"])).empty()  # lost with its worker
    dead = "ghost:1:dead"
    assert work.claim(scene.data, scene.iid, pid, FANOUT, dead, 2000).status == "ok"
    interest = [keys.interest(scene.iid, "news")]
    assert len(work.walk(scene.data, scene.iid, pid, interest, dead, 2000, 1000, 10_000).batches) == 1
    workers.start(1)
    record = scene.wait_done(pid, 60)
    assert all(apns_mock.seen[t] == 1 for t in tokens), "each device exactly once"
    assert record["targeted"] == record["delivered"] == 2500, record
    assert_adds_up(record)


def test_sigterm_hands_the_batch_back_within_10_seconds_nothing_lost_nothing_twice(scene, workers, apns_mock):
    tokens = scene.add_devices(1000)  # one batch of two chunks
    apns_mock.delay = 1.0
    workers.start(2)
    pid = scene.publish()
    wait_for(lambda: scene.owner_of(pid, "0") and len(apns_mock.requests) >= 100, 30, "the batch to start")
    victim = workers.by_owner(scene.owner_of(pid, "0"))
    victim.send_signal(signal.SIGTERM)
    started = time.monotonic()
    victim.wait(15)
    assert time.monotonic() - started < 10, "SIGTERM must end the worker within 10 s"

    record = scene.wait_done(pid, 30)
    assert all(apns_mock.seen[t] == 1 for t in tokens), (
        sum(1 for t in tokens if apns_mock.seen[t] == 0), duplicates(apns_mock, tokens))
    assert record["delivered"] == 1000
    assert_adds_up(record)


def test_every_worker_gone_shows_stalled_then_completes_when_one_comes_back(scene, workers, apns_mock):
    tokens = scene.add_devices(1500)
    apns_mock.delay = 0.5
    (only,) = workers.start(1)
    pid = scene.publish()
    wait_for(lambda: len(apns_mock.requests) >= 200, 30, "delivery to start")
    only.send_signal(signal.SIGKILL)
    only.wait(5)

    stalled = wait_for(lambda: scene.status(pid)["stalled_since"], 30, "stalled_since", interval=0.5)
    record = scene.status(pid)
    assert record["status"] != "done" and stalled <= time.time()
    # /rq: no worker left, and the publish's batch still stands as started there.
    wait_for(lambda: scene.web.get("/rq/0/data/workers.json", headers=ADMIN).get_json()["workers"] == [], 20,
             "the dead worker to leave /rq", interval=0.5)
    started = scene.web.get(f"/rq/0/data/jobs/{DELIVERY_QUEUE}/started/10/asc/1.json", headers=ADMIN).get_json()
    assert any(job["id"].startswith(pid) for job in started["jobs"]), started

    workers.start(1)
    record = scene.wait_done(pid, 60)
    assert record["stalled_since"] is None
    assert all(apns_mock.seen[t] >= 1 for t in tokens)
    assert duplicates(apns_mock, tokens) <= WINDOW
    assert_adds_up(record)


def test_a_device_deleted_while_its_batch_waits_is_not_targeted(scene, workers, apns_mock):
    tokens = scene.add_devices(10)
    pid = scene.publish()
    first = next(iter(scene.data.sscan_iter(keys.interest(scene.iid, "news"))))
    devices.delete(scene.data, scene.iid, first)
    workers.start(1)
    record = scene.wait_done(pid, 30)
    assert record["targeted"] == record["delivered"] == 9
    assert sum(apns_mock.seen[t] for t in tokens) == 9
