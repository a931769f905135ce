"""One error path per API family.

Every error a request can meet (a view's ``ApiError``, a webargs validation
failure, a routing 404/405, a body over the size limit, Redis being down, an
unexpected exception) ends in ``handle_http_exception``, which renders it in
the shape of the family the request's path belongs to. Never an HTML page,
never a stack trace.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Response, current_app, jsonify, request
from redis.exceptions import RedisClusterException
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from pushlite.storage.errors import is_unavailable

Renderer = Callable[[HTTPException], tuple[int, dict]]


class ApiError(HTTPException):
    """An error a view raises on purpose: status, the family's title, a message."""

    def __init__(self, status: int, title: str, description: str) -> None:
        super().__init__(description=description)
        self.code = status
        self.title = title


@dataclass(frozen=True)
class Family:
    name: str
    prefixes: tuple[str, ...]
    render: Renderer
    # The marshmallow schema of the family's error body, for the OpenAPI spec.
    schema: type | None = None


def validation_messages(exc: HTTPException) -> dict | None:
    """The webargs/marshmallow messages flask-smorest attaches to a 422."""
    data = getattr(exc, "data", None) or {}
    return data.get("messages")


def first_message(messages: object) -> str | None:
    """The first leaf message of a (nested) marshmallow error dict."""
    if isinstance(messages, str):
        return messages
    if isinstance(messages, dict):
        for value in messages.values():
            found = first_message(value)
            if found:
                return found
    if isinstance(messages, list):
        for value in messages:
            found = first_message(value)
            if found:
                return found
    return None


def render_default(exc: HTTPException) -> tuple[int, dict]:
    """flask-smorest's shape, used by the admin API and unknown paths."""
    body: dict = {"code": exc.code, "status": exc.name}
    data = getattr(exc, "data", None) or {}
    if data.get("messages"):
        body["errors"] = data["messages"]
    message = data.get("message") or exc.description
    if message:
        body["message"] = message
    return exc.code or 500, body


_DEFAULT = Family("default", (), render_default)


def family_of(app: Flask, path: str) -> Family:
    for family in app.extensions["pushlite.families"]:
        if path.startswith(family.prefixes):
            return family
    return _DEFAULT


def register_family(app: Flask, family: Family, api: Any = None) -> None:
    app.extensions.setdefault("pushlite.families", []).append(family)
    if api is not None and family.schema is not None:
        name = family.schema.__name__.removesuffix("Schema")
        if name not in api.spec.components.schemas:
            api.spec.components.schema(name, schema=family.schema)


def handle_http_exception(exc: HTTPException) -> Response:
    status, body = family_of(current_app, request.path).render(exc)
    response = jsonify(body)
    response.status_code = status
    allow = dict(exc.get_headers()).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def note_unavailable(exc: Exception) -> None:
    """Log and count a request that met an unavailable Redis (answered 503)."""
    current_app.logger.warning("redis unavailable: %s", type(exc).__name__)
    current_app.extensions["pushlite.metrics"].redis_errors.labels(type(exc).__name__).inc()


def handle_redis_error(exc: Exception) -> Response:
    """A Redis (or Redis Cluster client) error: a 503 when it means "try again"
    (``storage.errors.is_unavailable``); any other is a bug, answered as one."""
    if not is_unavailable(exc):
        return handle_unexpected(exc)
    note_unavailable(exc)
    return handle_http_exception(
        ServiceUnavailable("The data store is unavailable; try again shortly.")
    )


def handle_unexpected(exc: Exception) -> Response:
    # The route template, not the path: a path may hold a push token.
    route = request.url_rule.rule if request.url_rule else "<unmatched>"
    current_app.logger.exception("unhandled error on %s %s", request.method, route)
    return handle_http_exception(InternalServerError("Internal server error."))


def init_app(app: Flask) -> None:
    app.extensions.setdefault("pushlite.families", [])
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(redis.RedisError, handle_redis_error)
    app.register_error_handler(RedisClusterException, handle_redis_error)
    app.register_error_handler(Exception, handle_unexpected)
