"""One error path per API family.

Every error a request can meet (a view's ``ApiError``, a webargs validation
failure, a routing 404/405, a body over the size limit, Redis being down, an
unexpected exception) ends in ``handle_http_exception``, which renders it in
the shape of the family the request's path belongs to. Never an HTML page,
never a stack trace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable

import flask_smorest as smorest
from apispec import BasePlugin
from webargs import core
from webargs.flaskparser import FlaskParser

import redis
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

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


def document_errors(*statuses: int):
    """Document error responses of a view without wrapping it (flask-smorest's
    ``alt_response`` adds a call layer per status); ``FamilyErrorsPlugin``
    gives them the family's error body."""
    def decorate(view):
        responses = view.__dict__.setdefault("_apidoc", {}).setdefault("response", {}).setdefault("responses", {})
        for status in statuses:
            responses.setdefault(status, []).append(
                {"description": HTTPStatus(status).phrase, "content_type": None}
            )
        return view
    return decorate


class CachedJsonParser(FlaskParser):
    """Reads the JSON body Flask already parsed (and cached) for the request,
    instead of parsing it a second time. Used by families that check the body
    in ``before_request`` and answer an unreadable one in their own words."""

    def _raw_load_json(self, req):
        data = req.get_json(silent=True)
        return core.missing if data is None else data


class Blueprint(smorest.Blueprint):
    ARGUMENTS_PARSER = CachedJsonParser()


def documented(status: int, schema: type, *, body: type | None = None):
    """Document a view's success response (and JSON request body) the way
    ``blp.response``/``blp.doc`` would, without wrapping it: for the hot path,
    whose view makes its response itself."""
    def decorate(view):
        apidoc = view.__dict__.setdefault("_apidoc", {})
        apidoc.setdefault("response", {}).setdefault("responses", {}).setdefault(status, []).append(
            {"schema": schema, "description": HTTPStatus(status).phrase, "content_type": None}
        )
        apidoc.setdefault("success_status_codes", []).append(status)
        if body is not None:
            apidoc.setdefault("manual_doc", {})["requestBody"] = json_body(body)
        return view
    return decorate


def json_body(schema: type) -> dict:
    """An OpenAPI requestBody for a view that loads its JSON body itself."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


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


class FamilyErrorsPlugin(BasePlugin):
    """Documents every error response of a family's paths with that family's
    error body, replacing flask-smorest's default error schema there."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs):
        family = family_of(self.app, re.sub(r"\{[^}]*\}", "x", path or ""))
        if family.schema is None:
            return
        ref = {"$ref": "#/components/schemas/" + family.schema.__name__.removesuffix("Schema")}
        for operation in (operations or {}).values():
            responses = operation.get("responses", {})
            responses.pop("default", None)
            for status in list(responses):
                if str(status)[0] in "45":
                    description = HTTPStatus(int(status)).phrase
                    responses[status] = {"description": description, "content": {"application/json": {"schema": ref}}}


def handle_http_exception(exc: HTTPException):
    status, body = family_of(current_app, request.path).render(exc)
    response = jsonify(body)
    response.status_code = status
    allow = dict(exc.get_headers()).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def handle_redis_error(exc: redis.RedisError):
    current_app.logger.warning("redis unavailable: %s", type(exc).__name__)
    return handle_http_exception(
        ServiceUnavailable("The data store is unavailable; try again shortly.")
    )


def handle_unexpected(exc: Exception):
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_exception(InternalServerError("Internal server error."))


def init_app(app: Flask) -> None:
    app.extensions.setdefault("pushlite.families", [])
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(redis.RedisError, handle_redis_error)
    app.register_error_handler(Exception, handle_unexpected)
