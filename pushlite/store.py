"""The app's Redis clients, made once per app by ``init_app``: embedded, the
one in-process store; with ``REDIS_URL``, a client per thread
(``ThreadClients``)."""
from __future__ import annotations

import redis
from flask import Flask, current_app

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
        ).get


def client() -> redis.Redis:
    return current_app.extensions["pushlite.redis"]()


def client_of(app: Flask) -> redis.Redis:
    return app.extensions["pushlite.redis"]()
