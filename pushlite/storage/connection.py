"""Redis clients for the app and the workers.

With no URL, pushlite runs embedded: an in-process fakeredis server, so the
service starts on a machine without Redis. Each ``connect(None)`` makes a new,
empty server, which is also what gives every test its own store.

RQ pickles its jobs, so queue clients do not decode responses; data clients do.
"""
from __future__ import annotations

import os
import threading

import redis

from .breaker import Breaker


def connect(
    url: str | None,
    *,
    socket_timeout: float | None = 1.0,
    connect_timeout: float = 1.0,
) -> redis.Redis:
    """A data client (responses decoded to str)."""
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )


class ThreadClients:
    """Data clients for a process serving requests: one per thread, each
    holding one connection of a shared pool for as long as its thread lives.

    A pooled client takes a connection from its pool and gives it back on every
    command (a lock, a readiness poll of the socket, metrics hooks): 18 us of
    the 331 us a registration cost a gunicorn worker on a 2-core machine
    (``bench/register_throughput.py``). A sync gunicorn worker has one thread,
    so one connection; a forked child makes its own.
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float | None = 1.0,
        connect_timeout: float = 1.0,
        breaker: Breaker | None = None,
    ) -> None:
        self.breaker = breaker
        self.pool = redis.ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            health_check_interval=30,
        )
        self._local = threading.local()

    def get(self) -> redis.Redis:
        """This thread's client (connecting it first: raises ConnectionError
        while Redis is unreachable, and tries again on the next call)."""
        local = self._local
        client = getattr(local, "client", None)
        if client is None or local.pid != os.getpid():
            client = redis.Redis(connection_pool=self.pool, single_connection_client=True)
            if self.breaker is not None:
                self.breaker.guard(client)
            local.client, local.pid = client, os.getpid()
        return client


def connect_queue(
    url: str | None,
    data: redis.Redis | None,
    *,
    socket_timeout: float | None = 1.0,
    connect_timeout: float = 1.0,
) -> redis.Redis:
    """A client for RQ: on ``url``, or (embedded) on the same server as ``data``."""
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=data.connection_pool.connection_kwargs["server"])
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )
