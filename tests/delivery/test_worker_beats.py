"""The worker's beats outside a pipeline, which RQ asks for several times a
job: at most one a second, and each keeps the worker's key alive."""
from __future__ import annotations

from workers.worker import HEARTBEAT_TTL, MIN_BEAT_SECONDS, DeliveryWorker


def test_a_beat_keeps_the_worker_key_alive_and_comes_at_most_once_a_second(runtime):
    connection = runtime.fanout_queue.connection
    worker = DeliveryWorker([runtime.fanout_queue], connection=connection, runtime=runtime)
    worker.heartbeat()
    assert connection.hget(worker.key, "last_heartbeat")
    assert 0 < connection.ttl(worker.key) <= HEARTBEAT_TTL
    connection.delete(worker.key)
    worker.heartbeat()  # asked again within the second: nothing sent
    assert not connection.exists(worker.key)
    worker._last_beat -= MIN_BEAT_SECONDS  # a second later
    worker.heartbeat()
    assert connection.hget(worker.key, "last_heartbeat") and 0 < connection.ttl(worker.key) <= HEARTBEAT_TTL
