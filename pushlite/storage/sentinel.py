"""Redis through Sentinel: connections that follow the master when Sentinel
fails over to another one, and never write to the old one once it is being
replaced.

redis-py asks Sentinel for the master whenever it opens a connection, and
drops a connection that meets READONLY. That alone loses writes: Sentinel
promotes the replica ~0.2 s before it names it, and demotes the old master
only when it next inspects it (up to ~10 s later); meanwhile the old master
still acknowledges writes, which it throws away when it becomes a replica of
the new one. So each process listens to Sentinel's events:

- when Sentinel tells the replica to become master
  (``+failover-state-send-slaveof-noone``), the *fence* closes: a connection
  may finish the command it has sent, but that answer is withheld (the
  caller gets a ConnectionError: a 503, not an acknowledgement), and no
  connection opens until the fence opens again;
- ``+switch-master`` names the new master: every connection reconnects to it
  and the fence opens (so does a failover that Sentinel aborts, and
  ``FENCE_SECONDS`` at most).

In case an event is missed, the process also asks Sentinel for the master
every second. What remains is Redis' own asynchronous-replication window:
writes the old master acknowledged before the failover began but had not yet
passed to the replica (docs/scaling.md). ``PUSHLITE_REDIS_MIN_REPLICAS``
closes it (``pushlite/redis_clients.py``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

import redis
from redis.connection import Connection, SSLConnection
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool, SentinelManagedConnection

from .urls import RedisTarget

log = logging.getLogger(__name__)

EVENTS = ("+failover-state-send-slaveof-noone", "+switch-master", "-failover-abort-*", "+failover-end-for-timeout")
POLL_SECONDS = 1.0
FENCE_SECONDS = 10.0


class Fence:
    """Closed while a failover is replacing the master (thread-safe)."""

    def __init__(self) -> None:
        self._until = 0.0

    def close(self) -> None:
        self._until = time.monotonic() + FENCE_SECONDS

    def open(self) -> None:
        self._until = 0.0

    def check(self) -> None:
        if time.monotonic() < self._until:
            raise redis.ConnectionError("Redis is failing over to a new master; try again shortly")


class FencedConnection(SentinelManagedConnection):
    def __init__(self, **kwargs: Any) -> None:
        self.fence: Fence = kwargs.pop("fence")
        super().__init__(**kwargs)

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        # Every (re)connection asks Sentinel for the master: redis-py's own
        # sentinel connection does so in connect() only, and reconnects to the
        # old address when a command finds the connection closed.
        if self.is_connected:
            return
        self.fence.check()
        self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)

    def _connect_retry(self) -> None:
        self.connect_check_health(check_health=self.connection_pool.check_connection, retry_socket_connect=False)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # redis-py reconnects a marked connection only after its next command;
        # this one must not go to the old master first.
        if self.should_reconnect():
            self.disconnect()
        super().send_packed_command(command, check_health)


class FencedSSLConnection(FencedConnection, SSLConnection):
    pass


class FollowingPool(SentinelConnectionPool):
    """A master pool whose connections, even those in use, can be sent to a
    new master."""

    def __init__(self, watch: MasterWatch, **kwargs: Any) -> None:
        kwargs["connection_class"] = FencedSSLConnection if kwargs.pop("ssl", False) else FencedConnection
        super().__init__(watch.service, watch.sentinel, fence=watch.fence, **kwargs)
        self.watch = watch
        self._handed_out: weakref.WeakSet = weakref.WeakSet()
        self._handed_out_lock = threading.Lock()
        watch.pools.add(self)

    def get_connection(self, *args: Any, **kwargs: Any) -> Connection:
        self.watch.ensure_running()  # again in a forked child, which has no thread
        connection = super().get_connection(*args, **kwargs)
        with self._handed_out_lock:
            self._handed_out.add(connection)
        return connection

    def reconnect_all(self) -> None:
        """Idle connections close; busy ones reconnect before their next
        command, or once their current one is answered (and while the fence is
        closed, that answer is replaced by a ConnectionError)."""
        self.disconnect(inuse_connections=False)
        with self._handed_out_lock:
            connections = list(self._handed_out)
        for connection in connections:
            connection.mark_for_reconnect()


class MasterWatch:
    """One thread per process that follows Sentinel's failovers of a service
    for its pools."""

    def __init__(self, sentinel: Sentinel, service: str) -> None:
        self.sentinel = sentinel
        self.service = service
        self.fence = Fence()
        self.pools: weakref.WeakSet[FollowingPool] = weakref.WeakSet()
        self.master: tuple[str, int] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name=f"pushlite-sentinel-{self.service}", daemon=True).start()

    def failing_over(self) -> None:
        log.warning("redis master of %s is being replaced: writes wait for the new one", self.service)
        self.fence.close()
        for pool in list(self.pools):
            pool.reconnect_all()

    def switched(self, address: tuple[str, int]) -> None:
        if address != self.master:
            if self.master is not None:
                log.warning("redis master of %s is now %s:%s", self.service, *address)
                for pool in list(self.pools):
                    pool.reconnect_all()
            self.master = address
        self.fence.open()

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
                    pubsub.psubscribe(*EVENTS)
                except redis.RedisError:
                    pubsub.close()
                    continue
                subscriptions.append(pubsub)
            last_poll = 0.0
            while self._pid == pid:
                for pubsub in subscriptions:
                    message = pubsub.get_message(timeout=POLL_SECONDS / len(subscriptions))
                    if message and message["type"] == "pmessage":
                        self._event(message["channel"], message["data"])
                if not subscriptions:
                    time.sleep(POLL_SECONDS)
                if time.monotonic() - last_poll >= POLL_SECONDS:
                    last_poll = time.monotonic()
                    try:
                        self.switched(self.sentinel.discover_master(self.service))
                    except MasterNotFoundError:
                        pass  # none right now: connections fail until there is one
        finally:
            for pubsub in subscriptions:
                pubsub.close()

    def _event(self, channel: str, data: str) -> None:
        parts = data.split()
        if channel == "+switch-master":
            if len(parts) == 5 and parts[0] == self.service:
                self.switched((parts[3], int(parts[4])))
        elif channel == "+failover-state-send-slaveof-noone":
            # "slave <name> <ip> <port> @ <master name> <master ip> <master port>"
            if len(parts) >= 6 and parts[5] == self.service:
                self.failing_over()
        elif len(parts) >= 2 and parts[1] == self.service:  # "master <name> <ip> <port>": aborted or timed out
            self.fence.open()


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
