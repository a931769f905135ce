"""The MPush error shape ``{"status_code": <n>, "message": <text>}``.

``status_code`` is 0 on success. An error's is four digits: its HTTP status
and one digit that tells apart the errors sharing that status (``CODES``; the
README and the OpenAPI descriptions list the same table).
"""
from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from pushlite.errors import ApiError, first_message, handle_http_exception, validation_messages
from pushlite.storage import errors as storage

OK = 0
BAD_REQUEST = 4000          # a field is missing or has the wrong type; the body is not a JSON object
BAD_PLATFORM = 4001         # platform is not "ios" or "android"
BAD_TOKEN = 4002            # the token is not an APNs (ios) or FCM (android) token
BAD_TOPIC = 4003            # a topic is not 1-164 characters of A-Z a-z 0-9 _ - = @ , . ;
TOO_MANY_TOPICS = 4004      # more than 100 topics in a send, or 5,000 on one device
BAD_VERSION = 4005          # X-MPush-Version is missing or not 2
PAYLOAD_TOO_LARGE = 4006    # the notification exceeds a provider's size limit
BAD_CREDENTIALS = 4010      # X-MPush-Token is missing or is no instance's client token or secret key
SECRET_KEY_REQUIRED = 4030  # /api/send called with the client token
UNKNOWN_DEVICE = 4040       # no device has this device_id: send its token to /api/tokens first

CODES = {
    OK: "success",
    BAD_REQUEST: "400: a field is missing or has the wrong type, or the body is not a JSON object",
    BAD_PLATFORM: "400: platform is not ios or android",
    BAD_TOKEN: "400: token is not a valid APNs (ios) or FCM (android) token",
    BAD_TOPIC: "400: a topic name is not 1-164 characters of A-Z a-z 0-9 _ - = @ , . ;",
    TOO_MANY_TOPICS: "400: more than 100 topics in a send, or more than 5,000 on a device",
    BAD_VERSION: "400: X-MPush-Version is missing or is not 2",
    PAYLOAD_TOO_LARGE: "400: the notification is larger than a provider accepts (4 KB)",
    BAD_CREDENTIALS: "401: X-MPush-Token is missing or wrong",
    SECRET_KEY_REQUIRED: "403: /api/send needs the secret key, not the client token",
    UNKNOWN_DEVICE: "404: unknown device_id",
    4041: "404: no such endpoint",
    4050: "405: method not allowed",
    4130: "413: request body too large",
    4150: "415: Content-Type is not application/json",
    5000: "500: internal error",
    5030: "503: the data store is unavailable; retry",
}

CODES_DOC = "status_code values: " + "; ".join(f"{code} = {text}" for code, text in CODES.items()) + "."


class MPushError(ApiError):
    """An MPush error: its ``status_code``, whose first three digits are the HTTP status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code // 10, "MPush error", message)
        self.status_code = status_code


class MPushErrorSchema(Schema):
    status_code = fields.Integer(metadata={"description": "Non-zero on error. " + CODES_DOC})
    message = fields.String(metadata={"description": "What went wrong"})


class MPushStatusSchema(Schema):
    status_code = fields.Integer(metadata={"description": "0: success."})


def render(exc: HTTPException) -> tuple[int, dict]:
    messages = validation_messages(exc)
    if messages is not None:
        return 400, {"status_code": BAD_REQUEST, "message": first_message(messages) or "Invalid request body."}
    status = exc.code or 500
    # A routing 404 (no such endpoint) is told apart from an unknown device_id.
    code = getattr(exc, "status_code", None) or (4041 if status == 404 else status * 10)
    return status, {"status_code": code, "message": exc.description or HTTPStatus(status).phrase}


def from_storage(exc: storage.StorageError) -> MPushError:
    if isinstance(exc, storage.DeviceNotFound):
        return MPushError(UNKNOWN_DEVICE, "Unknown device_id: send its token to /api/tokens first.")
    if isinstance(exc, storage.InstanceNotFound):
        return MPushError(BAD_CREDENTIALS, "Invalid X-MPush-Token.")
    if isinstance(exc, storage.InterestLimit):
        return MPushError(TOO_MANY_TOPICS, "A device can be registered to at most 5000 topics.")
    raise exc


def install_handlers(blp: Blueprint) -> None:
    blp.register_error_handler(storage.StorageError, lambda exc: handle_http_exception(from_storage(exc)))
