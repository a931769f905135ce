"""Liveness and readiness probes for the PaaS."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify
from redis.exceptions import RedisClusterException

from pushlite import redis_clients

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    """Ready only while Redis takes writes (a replica, such as an old master
    after a failover, answers reads and PING but refuses them)."""
    try:
        redis_clients.check_writable()
    except (redis.RedisError, RedisClusterException):
        response = jsonify({"status": "unavailable", "message": "Redis does not answer or refuses writes."})
        response.status_code = 503
        return response
    return {"status": "ok"}
