"""The app's Redis client, made once per app by ``init_app``."""
from __future__ import annotations

import redis
from flask import Flask, current_app

from pushlite.storage.connection import connect


def init_app(app: Flask) -> None:
    app.extensions["pushlite.redis"] = connect(
        app.config["REDIS_URL"],
        socket_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
        connect_timeout=app.config["REDIS_CONNECT_TIMEOUT"],
    )


def client() -> redis.Redis:
    return client_of(current_app)


def client_of(app: Flask) -> redis.Redis:
    return app.extensions["pushlite.redis"]
