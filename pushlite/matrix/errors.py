"""The Matrix error shape ``{"errcode": "M_...", "error": <text>}``.

| HTTP | errcode | when |
|------|---------|------|
| 400 | M_NOT_JSON | the body is not JSON |
| 400 | M_BAD_JSON | the body is JSON but not an object |
| 400 | M_MISSING_PARAM | a required parameter is missing |
| 400 | M_INVALID_PARAM | a parameter has the wrong type or value (kind, lengths, data.url) |
| 400 | M_LIMIT_EXCEEDED | the user already has 100 devices and pushers |
| 401 | M_MISSING_TOKEN | no ``Authorization: Bearer`` access token |
| 401 | M_UNKNOWN_TOKEN | the token is not a valid user JWT of an instance |
| 404, 405 | M_UNRECOGNIZED | an unknown path or method under ``/_matrix/`` |
| 413 | M_TOO_LARGE | the body is over the size limit |
| 500, 503 | M_UNKNOWN | pushlite or its data store failed |
"""
from __future__ import annotations

from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from pushlite.errors import ApiError, validation_messages

MISSING = "Missing parameter."


class MatrixErrorSchema(Schema):
    errcode = fields.String(metadata={"description": "The Matrix error code, e.g. M_MISSING_PARAM"})
    error = fields.String(metadata={"description": "What went wrong"})


def error(status: int, errcode: str, message: str) -> ApiError:
    return ApiError(status, errcode, message)


def missing(*names: str) -> ApiError:
    return error(400, "M_MISSING_PARAM", "Missing parameter: " + ", ".join(names))


def invalid(message: str) -> ApiError:
    return error(400, "M_INVALID_PARAM", message)


def from_messages(messages: dict) -> ApiError:
    """The Matrix error for marshmallow's messages of a body."""
    body = messages.get("json", messages) if isinstance(messages, dict) else {}
    absent = [name for name, value in body.items() if value == [MISSING]] if isinstance(body, dict) else []
    if absent:
        return missing(*sorted(absent))
    for name, value in body.items() if isinstance(body, dict) else []:
        reason = value[0] if isinstance(value, list) and value else value
        return invalid(f"{name}: {reason}")
    return invalid("Invalid parameters.")


FALLBACK = {404: "M_UNRECOGNIZED", 405: "M_UNRECOGNIZED", 413: "M_TOO_LARGE"}


def render(exc: HTTPException) -> tuple[int, dict]:
    messages = validation_messages(exc)
    if messages is not None:
        exc = from_messages(messages)
    status = exc.code or 500
    if isinstance(exc, ApiError) and exc.title.startswith("M_"):
        return status, {"errcode": exc.title, "error": exc.description}
    errcode = FALLBACK.get(status, "M_UNKNOWN")
    message = "Unrecognized request" if errcode == "M_UNRECOGNIZED" else exc.description or exc.name
    return status, {"errcode": errcode, "error": message}
