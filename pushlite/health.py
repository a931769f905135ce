"""Liveness and readiness probes for the PaaS."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from pushlite import store

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    """Ready only when Redis answers."""
    try:
        store.client().ping()
    except redis.RedisError:
        response = jsonify({"status": "unavailable", "message": "Redis does not answer."})
        response.status_code = 503
        return response
    return {"status": "ok"}
