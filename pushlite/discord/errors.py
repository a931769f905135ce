"""The Discord error shape ``{"code": <n>, "message": <text>}``.

Codes follow Discord's JSON error codes where one fits:

| HTTP | code  | when |
|------|-------|------|
| 400  | 50035 | Invalid Form Body: a missing or invalid field (the message names it) |
| 400  | 50109 | the request body is not a JSON object |
| 400  | 30000 | the user already has the maximum of 100 devices (pushlite's code) |
| 401  | 0     | missing, malformed, expired or foreign user JWT |
| 4xx/5xx | 0  | anything else, e.g. ``404: Not Found``, ``503: Service Unavailable`` |
"""
from __future__ import annotations

from http import HTTPStatus

from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from pushlite.errors import ApiError, validation_messages

INVALID_FORM_BODY = 50035
INVALID_JSON = 50109
MAX_DEVICES = 30000


class DiscordErrorSchema(Schema):
    code = fields.Integer(metadata={"description": "Discord JSON error code (0: see the HTTP status)"})
    message = fields.String(metadata={"description": "What went wrong"})


def error(status: int, code: int, message: str) -> ApiError:
    return ApiError(status, str(code), message)


def invalid_form_body(field: str, message: str) -> ApiError:
    return error(400, INVALID_FORM_BODY, f"Invalid Form Body: {field}: {message}")


def unauthorized(reason: str) -> ApiError:
    return error(401, 0, f"401: Unauthorized: {reason}")


def max_devices() -> ApiError:
    return error(400, MAX_DEVICES, "Maximum number of devices reached (100).")


def first_field_error(messages: object, path: str = "") -> tuple[str, str]:
    """(dotted field path, message) of the first leaf of marshmallow's messages."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = path if key in ("json", "_schema") else f"{path}.{key}" if path else str(key)
            return first_field_error(value, name)
    if isinstance(messages, list) and messages:
        return first_field_error(messages[0], path)
    return path or "body", str(messages)


def render(exc: HTTPException) -> tuple[int, dict]:
    messages = validation_messages(exc)
    if messages is not None:
        field, message = first_field_error(messages)
        return 400, {"code": INVALID_FORM_BODY, "message": f"Invalid Form Body: {field}: {message}"}
    status = exc.code or 500
    if isinstance(exc, ApiError):
        code = int(exc.title) if exc.title.isdigit() else 0
        return status, {"code": code, "message": exc.description}
    return status, {"code": 0, "message": f"{status}: {HTTPStatus(status).phrase}"}
