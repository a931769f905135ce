"""Liveness and readiness probes for the PaaS."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from pushlite import store
from pushlite.storage import keys

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    """Ready only when Redis takes writes (a replica after a failover answers
    reads, and PING, but refuses them)."""
    try:
        store.client().set(keys.READY_PROBE, "1", px=10_000)
    except redis.RedisError:
        response = jsonify({"status": "unavailable", "message": "Redis does not answer or refuses writes."})
        response.status_code = 503
        return response
    return {"status": "ok"}
