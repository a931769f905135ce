"""Request and response bodies of the Beams Device API, with the error texts
the seed documents for missing fields."""
from __future__ import annotations

import re
from typing import Any, cast

from marshmallow import EXCLUDE, Schema, fields, validate

from pushlite import subscriptions
from pushlite.parsing import FullMatch, whole_value_pattern
from pushlite.platforms import APNS_TOKEN, FCM_TOKEN
from pushlite.storage.interests import INTEREST_NAME


class _Body(Schema):
    class Meta:
        # The SDKs may send fields this version does not know; Beams ignores them.
        unknown = EXCLUDE


def _required_string(message: str, name: str, max_length: int | None = None, *more: validate.Validator,
                     **kwargs: Any) -> fields.String:
    """A required string whose absence gets the seed's message. A present but
    malformed value is not "missing": it gets its own message (or the view
    judges it, as with token shapes)."""
    validators: list[validate.Validator] = [validate.Length(min=1, error=message)]
    if max_length:
        validators.append(validate.Length(max=max_length, error=f"{name} is longer than {max_length} characters."))
    validators += more
    return fields.String(
        required=True,
        validate=validators,
        error_messages={"required": message, "null": message, "invalid": f"{name} must be a string."},
        **kwargs,
    )


# A bundle identifier is stored in the packed device record (storage/records.py),
# whose fields are separated by control characters: it must hold none.
NO_CONTROL_CHARACTERS = FullMatch(
    r"[^\x00-\x1f\x7f]*", error="bundleIdentifier must not contain control characters."
)


class ApnsMetadataSchema(_Body):
    sdkVersion = fields.String(metadata={"description": "The version of the SDK."})
    iosVersion = fields.String(metadata={"description": "The iOS version the device has."})
    macosVersion = fields.String(metadata={"description": "The macOS version the device has."})


class FcmMetadataSchema(_Body):
    sdkVersion = fields.String(metadata={"description": "The version of the SDK."})
    androidVersion = fields.String(metadata={"description": "The Android version the device has."})


class WebMetadataSchema(_Body):
    sdkVersion = fields.String(metadata={"description": "The version of the SDK."})


class MetadataSchema(ApnsMetadataSchema, FcmMetadataSchema, WebMetadataSchema):
    """Any platform's metadata; the view keeps the fields of the device's platform."""


METADATA_FIELDS = {
    "apns": set(ApnsMetadataSchema().fields),
    "fcm": set(FcmMetadataSchema().fields),
    "web": set(WebMetadataSchema().fields),
}


class RegisterApnsSchema(_Body):
    token = _required_string(
        "Missing APNs token.", "token",
        metadata={"description": "The APNs gateway token.", "pattern": whole_value_pattern(APNS_TOKEN.pattern)},
    )
    bundleIdentifier = _required_string(
        "Missing App Bundle Identifier.", "bundleIdentifier", 255, NO_CONTROL_CHARACTERS,
        metadata={"description": "The application bundle identifier."},
    )
    metadata = fields.Nested(ApnsMetadataSchema)


class RegisterFcmSchema(_Body):
    token = _required_string(
        "Missing FCM token.", "token",
        metadata={"description": "The FCM gateway token.", "pattern": whole_value_pattern(FCM_TOKEN.pattern)},
    )
    bundleIdentifier = fields.String(
        validate=[validate.Length(max=255), NO_CONTROL_CHARACTERS],
        metadata={"description": "The application bundle identifier."},
    )
    metadata = fields.Nested(FcmMetadataSchema)


class RegisterWebSchema(_Body):
    token = _required_string(
        "Missing web push token.", "token", subscriptions.MAX_TOKEN_LENGTH,
        metadata={"description": "The browser's push subscription: the base64 of its JSON "
                                 '(`btoa(JSON.stringify(subscription))`, as the Beams Web SDK sends it), with an '
                                 "https `endpoint` the server's endpoint allowlist admits and `keys.p256dh` "
                                 "(65-byte P-256 point) and `keys.auth` (16 bytes) in base64url."},
    )
    metadata = fields.Nested(WebMetadataSchema)


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def plain_registration(schema: RegisterApnsSchema | RegisterFcmSchema, body: dict[str, Any]) -> dict | None:
    """What ``schema.load(body)`` returns when every field of the body is
    plainly valid (what the Beams SDKs send), worked out without marshmallow's
    machinery, which costs more than the rest of the request's own work:
    registration is the service's hottest request. None for any other body,
    which the schema itself then loads (or explains what is wrong with it).
    ``tests/test_beams_register_bodies.py`` holds this to the schema.
    """
    token = body.get("token")
    if type(token) is not str or not token:
        return None
    loaded: dict[str, Any] = {"token": token}
    if "bundleIdentifier" in body:
        bundle = body["bundleIdentifier"]
        if type(bundle) is not str or not 0 < len(bundle) <= 255 or CONTROL_CHARACTER.search(bundle):
            return None
        loaded["bundleIdentifier"] = bundle
    elif schema.fields["bundleIdentifier"].required:
        return None
    if "metadata" in body:
        metadata = body["metadata"]
        if type(metadata) is not dict:
            return None
        known = cast(fields.Nested, schema.fields["metadata"]).schema.fields  # both schemas nest it
        loaded["metadata"] = kept = {name: value for name, value in metadata.items() if name in known}
        if any(type(value) is not str for value in kept.values()):
            return None
    return loaded


class RegisteredDeviceSchema(Schema):
    id = fields.String(metadata={"description": "Unique string used to identify this device."})
    initialInterestSet = fields.List(
        fields.String(), metadata={"description": "Interests the device is already subscribed to."}
    )


class DeviceSchema(Schema):
    id = fields.String(metadata={"description": "Unique string used to identify this device."})
    userId = fields.String(metadata={"description": "The User Id this device belongs to (empty if none)."})
    metadata = fields.Dict(keys=fields.String(), values=fields.String())


class TokenSchema(_Body):
    token = _required_string(
        "Missing token field with the FCM Registration Id.", "token",
        metadata={
            "description": "The updated FCM token for this device.",
            "pattern": whole_value_pattern(FCM_TOKEN.pattern),
        },
    )


class InterestsSchema(_Body):
    interests = fields.List(
        # Any value is read, so that a wrong one gets the seed's "Invalid interest name".
        fields.Raw(allow_none=True, metadata={"type": "string", "pattern": whole_value_pattern(INTEREST_NAME.pattern)}),
        required=True,
        error_messages={"required": "Missing interests field.", "null": "Missing interests field."},
        metadata={"description": "The set of interests (1-164 chars of A-Z a-z 0-9 _ - = @ , . ;), "
                                 "at most 5000; replaces the current set."},
    )


class InterestsQuerySchema(Schema):
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=100, error="limit given is not valid."),
        error_messages={"invalid": "limit given is not valid."},
        metadata={"description": "At most this many interests (1-100, default 100)."},
    )
    cursor = fields.String(metadata={"description": "The nextCursor of the previous page."})


class ResponseMetadataSchema(Schema):
    nextCursor = fields.String(metadata={"description": "Present when more interests follow."})


class InterestsPageSchema(Schema):
    interests = fields.List(fields.String())
    responseMetadata = fields.Nested(ResponseMetadataSchema)


class VapidPublicKeySchema(Schema):
    vapidPublicKey = fields.String(metadata={
        "description": "The instance's VAPID public key: the unpadded base64url of an uncompressed P-256 point "
                       "(the `applicationServerKey` a browser subscribes with)."})


class EmptySchema(Schema):
    pass
