"""The app's Redis clients, made once per app by ``init_app``: embedded, the
one in-process store; with ``REDIS_URL``, a client per thread
(``ThreadClients``) behind one circuit breaker per Redis (``breaker_for``),
so that a hung Redis costs the process one timeout, not one per request.

With ``PUSHLITE_REDIS_MIN_REPLICAS`` = n, a request that changed something
is answered only once n replicas have it (``WAIT``); otherwise it gets a 503
and the caller tries again. Redis replicates asynchronously, so without this
a failover can lose writes the old master had acknowledged but not yet passed
on (docs/scaling.md). Every write a request makes goes through its thread's
one connection, which is the one ``WAIT`` waits for.
"""
from __future__ import annotations

import redis
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import ServiceUnavailable

from pushlite.errors import handle_http_exception
from pushlite.storage import keys
from pushlite.storage.breaker import Breaker
from pushlite.storage.cluster import is_cluster
from pushlite.storage.connection import DataClient, ThreadClients, connect

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def init_app(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    if url is None:
        embedded = connect(None)
        app.extensions["pushlite.redis"] = lambda: embedded
        return
    app.extensions["pushlite.redis"] = ThreadClients(
        url,
        socket_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
        connect_timeout=app.config["REDIS_CONNECT_TIMEOUT"],
        breaker=breaker_for(app, url),
    ).get
    if app.config["PUSHLITE_REDIS_MIN_REPLICAS"]:
        app.after_request(wait_for_replicas)


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
        self._client: DataClient | None = None

    def __call__(self) -> None:
        if self._client is None:
            self._client = connect(self.url, socket_timeout=self.socket_timeout, connect_timeout=self.connect_timeout)
        self._client.ping()


def client() -> DataClient:
    return current_app.extensions["pushlite.redis"]()


def client_of(app: Flask) -> DataClient:
    return app.extensions["pushlite.redis"]()


def check_writable() -> None:
    """Raise a Redis error unless Redis takes writes now: a write to a replica
    (an old master after a failover) fails with READONLY. A Cluster counts as
    ready while it answers: a master that is down stops only its own slots,
    whose requests answer 503 themselves."""
    redis_ = client()
    if is_cluster(redis_):
        redis_.ping()
    else:
        redis_.set(keys.READY_PROBE, "1", px=10_000)


def wait_for_replicas(response: Response) -> Response:
    if request.method in READ_METHODS or response.status_code >= 400:
        return response
    wanted = current_app.config["PUSHLITE_REDIS_MIN_REPLICAS"]
    try:
        acknowledged = client().execute_command("WAIT", wanted, current_app.config["REDIS_WAIT_TIMEOUT_MS"])
    except redis.RedisError:
        acknowledged = -1
    if acknowledged >= wanted:
        return response
    current_app.logger.warning("write not confirmed by %s Redis replica(s) (got %s)", wanted, acknowledged)
    return handle_http_exception(ServiceUnavailable(
        "The change was not confirmed by enough Redis replicas; try again shortly."
    ))
