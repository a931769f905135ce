"""Redis through Sentinel: connections that follow the master when Sentinel
fails over to another one.

redis-py asks Sentinel for the master whenever it opens a connection, and
drops a connection that meets READONLY. That alone is not enough: after a
failover Sentinel demotes the old master only when it next inspects it (up to
~10 s later), and until then the old master still accepts writes, which it
throws away when it becomes a replica of the new one. So each process
follows Sentinel's ``+switch-master`` announcements (and, in case one is
missed, asks Sentinel for the master every second): on a switch, idle
connections are closed and those in use reconnect as soon as their current
command is answered, so nothing is sent to the old master after the process
has heard of the new one.

What remains is Redis' own window (see docs/scaling.md): writes the old
master acknowledged but had not yet passed to the replica when it was
promoted. ``PUSHLITE_REDIS_MIN_REPLICAS`` closes it (``store.py``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

import redis
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from .urls import RedisTarget

log = logging.getLogger(__name__)

SWITCH_CHANNEL = "+switch-master"
POLL_SECONDS = 1.0


class FollowingPool(SentinelConnectionPool):
    """A master pool that can be sent to a new master while in use."""

    def __init__(self, watch: "MasterWatch", **kwargs: Any) -> None:
        super().__init__(watch.service, watch.sentinel, **kwargs)
        self.watch = watch
        self._handed_out: weakref.WeakSet = weakref.WeakSet()
        watch.pools.add(self)

    def get_connection(self, *args: Any, **kwargs: Any):
        self.watch.ensure_running()  # again in a forked child, which has no thread
        connection = super().get_connection(*args, **kwargs)
        self._handed_out.add(connection)
        return connection

    def follow(self, address: tuple[str, int]) -> None:
        """Use ``address`` from now on: idle connections close, busy ones
        reconnect once their current command is answered."""
        if self.proxy.master_address == address:
            return
        log.warning("redis master of %s is now %s:%s", self.service_name, *address)
        self.proxy.master_address = address
        self.disconnect(inuse_connections=False)
        for connection in list(self._handed_out):
            if (connection.host, connection.port) != address:
                connection.mark_for_reconnect()


class MasterWatch:
    """One thread per process that tells the pools of a service about a new master."""

    def __init__(self, sentinel: Sentinel, service: str) -> None:
        self.sentinel = sentinel
        self.service = service
        self.pools: weakref.WeakSet[FollowingPool] = weakref.WeakSet()
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name=f"pushlite-sentinel-{self.service}", daemon=True).start()

    def switch(self, address: tuple[str, int]) -> None:
        for pool in list(self.pools):
            pool.follow(address)

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            try:
                self._listen(pid)
            except (redis.RedisError, OSError) as exc:
                log.debug("sentinel watch of %s: %s", self.service, exc)
                time.sleep(POLL_SECONDS)

    def _listen(self, pid: int) -> None:
        subscriptions = []
        try:
            for node in self.sentinel.sentinels:
                pubsub = node.pubsub(ignore_subscribe_messages=True)
                try:
                    pubsub.subscribe(SWITCH_CHANNEL)
                except redis.RedisError:
                    pubsub.close()
                    continue
                subscriptions.append(pubsub)
            last_poll = 0.0
            while self._pid == pid:
                for pubsub in subscriptions:
                    message = pubsub.get_message(timeout=POLL_SECONDS / max(len(subscriptions), 1))
                    if message and message["type"] == "message":
                        self._announced(message["data"])
                if not subscriptions:
                    time.sleep(POLL_SECONDS)
                if time.monotonic() - last_poll >= POLL_SECONDS:
                    last_poll = time.monotonic()
                    try:
                        self.switch(self.sentinel.discover_master(self.service))
                    except MasterNotFoundError:
                        pass  # no master right now: connections fail until there is one
        finally:
            for pubsub in subscriptions:
                pubsub.close()

    def _announced(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            data = data.decode()
        parts = data.split()
        if len(parts) == 5 and parts[0] == self.service:
            self.switch((parts[3], int(parts[4])))


_watches: dict[tuple, MasterWatch] = {}
_watches_lock = threading.Lock()


def _watch_for(target: RedisTarget, socket_timeout: float | None, connect_timeout: float) -> MasterWatch:
    key = (target.hosts, target.service, tuple(sorted(target.sentinel_options.items())))
    with _watches_lock:
        if key not in _watches:
            sentinel_kwargs = {"socket_timeout": socket_timeout or 1.0, "socket_connect_timeout": connect_timeout,
                               "decode_responses": True, **target.sentinel_options}
            _watches[key] = MasterWatch(Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs), target.service)
        return _watches[key]


def master_pool(target: RedisTarget, **options: Any) -> FollowingPool:
    """A pool of connections to the current master of ``target``'s service."""
    watch = _watch_for(target, options.get("socket_timeout"), options.get("socket_connect_timeout", 1.0))
    return FollowingPool(watch, **{**target.options, **options})
