"""Redis clients for the app and the workers.

With no URL, pushlite runs embedded: an in-process fakeredis server, so the
service starts on a machine without Redis. Each ``connect(None)`` makes a new,
empty server, which is also what gives every test its own store.

RQ pickles its jobs, so queue clients do not decode responses; data clients do.
"""
from __future__ import annotations

import redis


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


def connect_queue(
    url: str | None,
    data: redis.Redis,
    *,
    socket_timeout: float | None = 1.0,
    connect_timeout: float = 1.0,
) -> redis.Redis:
    """A client for RQ: on ``url``, or on the same server as ``data`` when None."""
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=data.connection_pool.connection_kwargs["server"])
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )
