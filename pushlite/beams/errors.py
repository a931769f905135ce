"""The Beams error shape ``{"error": <title>, "description": <text>}`` and the
translation of storage and auth outcomes into the titles the seed lists."""
from __future__ import annotations

from flask import Blueprint, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, NotFound

from pushlite.auth import AuthError
from pushlite.errors import ApiError, first_message, handle_http_exception, validation_messages
from pushlite.storage import errors as storage

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Payload too large",
    422: "Unprocessable Entity",
    500: "Something went wrong",
    503: "Service unavailable",
}


class BeamsErrorSchema(Schema):
    error = fields.String(metadata={"description": "The error title"})
    description = fields.String(metadata={"description": "What went wrong"})


def install_handlers(blp: Blueprint) -> None:
    """Turn storage and auth outcomes raised in a Beams blueprint's views into
    Beams errors (once, when the blueprint module is imported)."""
    blp.register_error_handler(storage.StorageError, lambda exc: handle_http_exception(from_storage(exc)))
    blp.register_error_handler(AuthError, lambda exc: handle_http_exception(from_auth(exc)))



def render(exc: HTTPException) -> tuple[int, dict]:
    messages = validation_messages(exc)
    if messages is not None:
        # webargs/marshmallow validation: Beams answers 400 with the message.
        title = "Bad Request" if "query" in messages else "Bad request"
        return 400, {"error": title, "description": first_message(messages) or "Invalid request."}
    if isinstance(exc, NotFound) and not isinstance(exc, ApiError):
        exc = incomplete_request(request.path) or exc
    status = exc.code or 500
    title = getattr(exc, "title", None) or TITLES.get(status, exc.name)
    return status, {"error": title, "description": exc.description or title}


def instance_not_found() -> ApiError:
    return ApiError(404, "Instance not found", "Could not find the instance.")


def device_not_found() -> ApiError:
    return ApiError(404, "Device not found", "Could not find the device.")


def from_storage(exc: storage.StorageError) -> ApiError:
    if isinstance(exc, storage.InstanceNotFound):
        return instance_not_found()
    if isinstance(exc, storage.DeviceNotFound):
        return device_not_found()
    if isinstance(exc, storage.UserAlreadySet):
        return ApiError(400, "Bad Request", "A User Id is already associated with this device.")
    if isinstance(exc, storage.UserDeviceLimit):
        return ApiError(422, "Unprocessable Entity", "User already has reached the maximum of 100 devices.")
    if isinstance(exc, storage.InterestLimit):
        return interest_set_too_large()
    raise exc


def interest_set_too_large() -> ApiError:
    return ApiError(
        400,
        "Interest set too large",
        "Too many interests are being set for this device. Only 5000 interests per device are allowed.",
    )


def from_auth(exc: AuthError) -> ApiError:
    title = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}[exc.status]
    return ApiError(exc.status, title, exc.message)


def incomplete_request(path: str) -> ApiError | None:
    """The Beams "Incomplete Request" for a device API path with an empty
    parameter (``/instances//devices/fcm``), which no route matches."""
    prefix = "/device_api/v1/instances/"
    if not path.startswith(prefix):
        return None
    segments = path[len(prefix):].split("/")
    if segments[0] == "":
        return ApiError(400, "Incomplete Request", "instance-id param is missing from path.")
    if len(segments) >= 4 and segments[1] == "devices" and segments[3] == "":
        return ApiError(400, "Incomplete Request", "device-id param is missing from path.")
    if len(segments) >= 6 and segments[4] == "interests" and segments[5] == "":
        return ApiError(400, "Incomplete Request", "interest-name param is missing from path.")
    return None
