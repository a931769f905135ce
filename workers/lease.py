"""Keeping a work item's lease while a job works on it.

A thread renews the lease every third of its length, so a live worker keeps
its item however long a chunk takes, and a dead one loses it within
``lease_seconds``. When a renewal finds the item taken over (this process
stalled past its lease), ``lost`` is set and the job stops at its next step.
"""
from __future__ import annotations

import logging
import threading

import redis

from pushlite.storage import work
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, rt: Runtime, instance_id: str, publish_id: str, item: str) -> None:
        self.rt, self.instance_id, self.publish_id, self.item = rt, instance_id, publish_id, item
        self.lease_ms = int(rt.delivery.lease_seconds * 1000)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{item}", daemon=True)

    def __enter__(self) -> "Lease":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._stop.wait(self.rt.delivery.lease_seconds / 3):
            try:
                held = work.renew(
                    self.rt.redis, self.instance_id, self.publish_id, self.rt.owner, self.lease_ms, [self.item]
                )
            except redis.RedisError as exc:  # the job's own next write will fail too, or Redis is back by then
                log.warning("could not renew the lease of %s %s: %s", self.publish_id, self.item, exc)
                continue
            if not held:
                log.warning("lost the lease of %s %s: taken over", self.publish_id, self.item)
                self.lost = True
                return
