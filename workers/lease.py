"""Keeping the leases of the work items a worker process holds.

One thread per process (``Leases``, started on first use) renews every
lease the process holds every third of the lease's length, so a live worker
keeps its items however long a step takes, and a dead one loses them within
``lease_seconds``. Holding an item only registers it: a job starts no
thread of its own. When a renewal finds an item taken over (this process
stalled past its lease), that lease's ``lost`` is set and the job stops at
its next step.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Protocol

import redis

from pushlite.storage import work
from pushlite.storage.cluster import DataClient

log = logging.getLogger(__name__)

# The thread ends once the process has held nothing for this long (it starts
# again with the next lease), so a runtime no longer used keeps no thread.
IDLE_SECONDS = 30.0


class _LeaseLength(Protocol):
    lease_seconds: float


class Holder(Protocol):
    """What leases read of the worker process that holds them (a
    `workers.runtime.Runtime`), read again at each use: tests change
    ``delivery`` after the runtime is built."""

    @property
    def redis(self) -> DataClient: ...
    @property
    def owner(self) -> str: ...
    @property
    def delivery(self) -> _LeaseLength: ...
    @property
    def leases(self) -> Leases: ...


class Lease:
    """One item held by this process while its ``with`` block runs."""

    def __init__(self, rt: Holder, instance_id: str, publish_id: str, item: str) -> None:
        self.rt, self.instance_id, self.publish_id, self.item = rt, instance_id, publish_id, item
        self.lost = False

    def __enter__(self) -> Lease:
        self.rt.leases.hold(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.rt.leases.release(self)


class Leases:
    """The leases one process holds, and the thread that renews them."""

    def __init__(self, rt: Holder) -> None:
        self.rt = rt
        self._held: set[Lease] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held.add(lease)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pushlite-leases", daemon=True)
                self._thread.start()

    def release(self, lease: Lease) -> None:
        with self._lock:
            self._held.discard(lease)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self.rt.delivery.lease_seconds / 3)
            with self._lock:
                held = list(self._held)
                if not held and time.monotonic() - idle_since > IDLE_SECONDS:
                    self._thread = None
                    return
            if held:
                idle_since = time.monotonic()
                self._renew(held)

    def _renew(self, held: list[Lease]) -> None:
        lease_ms = int(self.rt.delivery.lease_seconds * 1000)
        by_publish: dict[tuple[str, str], list[Lease]] = defaultdict(list)
        for lease in held:
            by_publish[(lease.instance_id, lease.publish_id)].append(lease)
        for (instance_id, publish_id), leases in by_publish.items():
            items = [lease.item for lease in leases]
            try:
                kept = set(work.renew(self.rt.redis, instance_id, publish_id, self.rt.owner, lease_ms, items))
            except redis.RedisError as exc:  # the job's own next write fails too, or Redis is back by then
                log.warning("could not renew the leases of %s %s: %s", publish_id, items, exc)
                continue
            with self._lock:
                for lease in leases:
                    if lease.item not in kept and lease in self._held:
                        log.warning("lost the lease of %s %s: taken over", publish_id, lease.item)
                        lease.lost = True
