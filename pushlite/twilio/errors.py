"""The Twilio error shape ``{"code": <n>, "message": <text>, "status": <http>}``.

Codes follow Twilio's: 20003 Authenticate, 20404 not found, 20001 for an
invalid parameter; the rest are 20000 + the HTTP status (``CODES``; the README
and the OpenAPI descriptions list the same table).
"""
from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from pushlite.errors import ApiError, first_message, handle_http_exception, validation_messages
from pushlite.storage import errors as storage
from pushlite.storage.twilio import RegistrationConflict, RegistrationNotFound

INVALID_PARAMETER = 20001
AUTHENTICATE = 20003
METHOD_NOT_ALLOWED = 20004
NOT_FOUND = 20404
CONFLICT = 20409
TOO_MANY_DEVICES = 20422

CODES = {
    INVALID_PARAMETER: "400: a parameter is missing or invalid, or the body is not a JSON object",
    AUTHENTICATE: "401: HTTP Basic <instance id>:<secret key> is missing or wrong",
    METHOD_NOT_ALLOWED: "405: method not allowed",
    NOT_FOUND: "404: the registration, user, operation or endpoint does not exist",
    CONFLICT: "409: the token is already registered for another user or app",
    20413: "413: request body too large",
    20415: "415: Content-Type is not application/json",
    TOO_MANY_DEVICES: "422: the user already has 100 devices",
    20500: "500: internal error",
    20503: "503: the data store is unavailable; retry",
}
CODES_DOC = "Error codes: " + "; ".join(f"{code} = {text}" for code, text in CODES.items()) + "."

_BY_STATUS = {400: INVALID_PARAMETER, 401: AUTHENTICATE, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}


class TwilioError(ApiError):
    def __init__(self, code: int, status: int, message: str) -> None:
        super().__init__(status, "Twilio error", message)
        self.twilio_code = code


class TwilioErrorSchema(Schema):
    code = fields.Integer(metadata={"description": CODES_DOC})
    message = fields.String(metadata={"description": "What went wrong"})
    status = fields.Integer(metadata={"description": "The HTTP status"})


def authenticate() -> TwilioError:
    return TwilioError(AUTHENTICATE, 401, "Authenticate")


def not_found(what: str | None = None) -> TwilioError:
    return TwilioError(NOT_FOUND, 404, f"The requested resource {what or request.path} was not found")


def invalid(message: str) -> TwilioError:
    return TwilioError(INVALID_PARAMETER, 400, message)


def render(exc: HTTPException) -> tuple[int, dict]:
    messages = validation_messages(exc)
    if messages is not None:
        return 400, {"code": INVALID_PARAMETER, "message": first_message(messages) or "Invalid parameter",
                     "status": 400}
    status = exc.code or 500
    code = getattr(exc, "twilio_code", None) or _BY_STATUS.get(status, 20000 + status)
    if status == 404 and not isinstance(exc, ApiError):
        message = f"The requested resource {request.path} was not found"
    else:
        message = exc.description or HTTPStatus(status).phrase
    return status, {"code": code, "message": message, "status": status}


def from_storage(exc: storage.StorageError) -> TwilioError:
    if isinstance(exc, storage.InstanceNotFound):
        return authenticate()
    if isinstance(exc, RegistrationNotFound):
        return not_found()
    if isinstance(exc, RegistrationConflict):
        existing = exc.existing
        return TwilioError(CONFLICT, 409, f"The token is already registered as {existing.id} for user "
                                          f"{existing.user_id} and app {existing.app}; delete it first.")
    if isinstance(exc, storage.UserDeviceLimit):
        return TwilioError(TOO_MANY_DEVICES, 422, "The user already has the maximum of 100 devices.")
    raise exc


def install_handlers(blp: Blueprint) -> None:
    blp.register_error_handler(storage.StorageError, lambda exc: handle_http_exception(from_storage(exc)))
