"""Bodies of the Matrix pushers endpoints (client-server API v3)."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields
from marshmallow.types import ErrorMessages

from .errors import MISSING

_ERRORS: ErrorMessages = {"required": MISSING, "invalid": "Must be a string.", "null": "Must not be null."}


def _string(description: str, required: bool = False, allow_none: bool = True) -> fields.String:
    return fields.String(required=required, allow_none=allow_none, error_messages=_ERRORS,
                         metadata={"description": description})


class StrictBoolean(fields.Boolean):
    """JSON true or false only: marshmallow's Boolean also reads "yes", 1, "on"..."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class SetPusherSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    pushkey = _string("Unique identifier of the pusher, e.g. the APNs/FCM token (max 512 bytes)",
                      required=True, allow_none=False)
    kind = _string("http to create or update the pusher; null to delete it", required=True)
    app_id = _string("Reverse-DNS identifier of the application (max 64 characters)",
                     required=True, allow_none=False)
    app_display_name = _string("Required if kind is not null")
    device_display_name = _string("Required if kind is not null")
    profile_tag = _string("Which set of device-specific rules this pusher executes")
    lang = _string("Required if kind is not null: the preferred language of notifications")
    data = fields.Dict(allow_none=True, error_messages={**_ERRORS, "invalid": "Must be an object."},
                       metadata={"description": "Required if kind is not null (PusherData: url, format, ...)"})
    encryption = fields.Dict(allow_none=True, error_messages={**_ERRORS, "invalid": "Must be an object."},
                             metadata={"description": "How to encrypt notifications for this pusher: "
                                                      '{"method": "aes-hmac-sha256", "iss": <32 bytes in hex>, '
                                                      '"key_identifier", "initial_key_period": "YYYY-MM" '
                                                      "(default: the current month)}; the README states the scheme"})
    append = StrictBoolean(load_default=False, error_messages={**_ERRORS, "invalid": "Must be a boolean."},
                           metadata={"description": "true: add this pusher beside other users' pushers with the "
                                                    "same app_id and pushkey; false (default): remove those"})


class PusherSchema(Schema):
    pushkey = fields.String()
    kind = fields.String()
    app_id = fields.String()
    app_display_name = fields.String()
    device_display_name = fields.String()
    profile_tag = fields.String()
    lang = fields.String()
    data = fields.Dict(metadata={"description": "PusherData: url, format and any other fields the client set"})
    encryption = fields.Dict()


class PushersSchema(Schema):
    pushers = fields.List(fields.Nested(PusherSchema), metadata={"description": "The caller's pushers"})


class MatrixEmptySchema(Schema):
    pass
