"""The app's Redis clients, made once per app by ``init_app``: embedded, the
one in-process store; with ``REDIS_URL``, a client per thread
(``ThreadClients``) behind one circuit breaker per Redis (``breaker_for``),
so that a hung Redis costs the process one timeout, not one per request."""
from __future__ import annotations

import redis
from flask import Flask, current_app

from pushlite.storage.breaker import Breaker
from pushlite.storage.connection import ThreadClients, connect


def init_app(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    if url is None:
        embedded = connect(None)
        app.extensions["pushlite.redis"] = lambda: embedded
    else:
        app.extensions["pushlite.redis"] = ThreadClients(
            url,
            socket_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
            connect_timeout=app.config["REDIS_CONNECT_TIMEOUT"],
            breaker=breaker_for(app, url),
        ).get


def breaker_for(app: Flask, url: str) -> Breaker:
    """The app's breaker for the Redis at ``url`` (data and queue share one when they are the same)."""
    breakers = app.extensions.setdefault("pushlite.breakers", {})
    if url not in breakers:
        breakers[url] = Breaker(_Ping(url, app.config["REDIS_SOCKET_TIMEOUT"], app.config["REDIS_CONNECT_TIMEOUT"]),
                                app.config["REDIS_BREAKER_RETRY_SECONDS"])
    return breakers[url]


class _Ping:
    """A breaker's probe: PING on a client of its own, made on first use (in
    the process that probes, so never shared across a fork)."""

    def __init__(self, url: str, socket_timeout: float, connect_timeout: float) -> None:
        self.url, self.socket_timeout, self.connect_timeout = url, socket_timeout, connect_timeout
        self._client: redis.Redis | None = None

    def __call__(self) -> None:
        if self._client is None:
            self._client = connect(self.url, socket_timeout=self.socket_timeout, connect_timeout=self.connect_timeout)
        self._client.ping()


def client() -> redis.Redis:
    return current_app.extensions["pushlite.redis"]()


def client_of(app: Flask) -> redis.Redis:
    return app.extensions["pushlite.redis"]()
