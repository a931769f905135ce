"""The sweep: what makes every publish reach "done" whatever dies.

Every worker process runs it every ``sweep_seconds`` (one at a time, under a
short lock). For each publish on the active list it looks at the work items
whose score has passed (``pushlite.storage.work.due``):

- an item whose lease expired (its worker died, or hung past its lease) is
  released and its job enqueued again: the new holder skips the devices
  already answered;
- a free item whose RQ job no longer exists, or failed (the queue Redis lost
  it, or its worker died before claiming it), is enqueued again;
- a free item whose job is still queued or scheduled is checked again later.

Done and expired publishes leave the active list. Enqueueing twice is
harmless: a job first claims its item, and a second one finds it held or done.
"""
from __future__ import annotations

import logging
import threading

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from pushlite.storage import keys, publishes, work
from pushlite.storage.publishes import CHECK_MS
from workers.jobs import enqueue_item, job_id
from workers.runtime import Runtime

log = logging.getLogger(__name__)

ALIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def sweep(rt: Runtime) -> int:
    """One pass; returns how many items were enqueued again."""
    lock_ms = max(100, int(rt.delivery.sweep_seconds * 1000 * 0.9))
    if not rt.redis.set(keys.SWEEP_LOCK, rt.owner, nx=True, px=lock_ms):
        return 0
    recovered = 0
    for instance_id, publish_id in publishes.active(rt.redis):
        status, items = work.due(rt.redis, instance_id, publish_id)
        if status in ("gone", "done"):
            publishes.forget(rt.redis, instance_id, publish_id)
            continue
        alive = []
        for item in items:
            old = job_id(publish_id, item.item, item.gen)
            if item.owner == "" and _job_alive(rt, old):
                alive.append(item.item)
                continue
            released = work.release(rt.redis, instance_id, publish_id, item.item, "", CHECK_MS)
            if released is None:
                continue
            not_before, gen = released
            _delete_job(rt, old)
            enqueue_item(rt, instance_id, publish_id, item.item, gen, not_before)
            recovered += 1
            log.warning("sweep: %s %s of %s enqueued again (%s)", publish_id, item.item, instance_id,
                        "its worker's lease expired" if item.owner else "its job was gone")
        work.bump(rt.redis, instance_id, publish_id, CHECK_MS, alive)
    return recovered


def _job_alive(rt: Runtime, id_: str) -> bool:
    try:
        return Job.fetch(id_, connection=rt.delivery_queue.connection).get_status() in ALIVE
    except NoSuchJobError:
        return False


def _delete_job(rt: Runtime, id_: str) -> None:
    """The job a dead worker left started (or RQ then failed as abandoned):
    its item is taken over, so it should not stand in /rq as a failure."""
    try:
        Job.fetch(id_, connection=rt.delivery_queue.connection).delete()
    except NoSuchJobError:
        pass


class Sweeper:
    """Runs ``sweep`` in a daemon thread every ``sweep_seconds`` until stopped;
    Redis errors are logged and the next pass tries again."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pushlite-sweep", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.rt.delivery.sweep_seconds):
            try:
                sweep(self.rt)
            except redis.RedisError as exc:
                log.warning("sweep: Redis unavailable (%s); trying again", type(exc).__name__)
            except Exception:  # the sweep must outlive any one bad publish (logged with its traceback)
                log.exception("sweep failed; trying again")
