"""Request and response bodies of the Discord-style device endpoints."""
from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

PROVIDERS = ("gcm", "apns", "apns_internal", "apns_voip", "apns_internal_voip")
VOIP_PROVIDERS = ("apns_voip", "apns_internal_voip")
MAX_SYNC_TOKENS = 100

_PROVIDER_DOC = "gcm (FCM), apns (APNs production), apns_internal (APNs sandbox), apns_voip, apns_internal_voip"


def _string(description: str, required: bool = True, **kwargs: Any) -> fields.String:
    return fields.String(
        required=required,
        allow_none=not required,
        validate=validate.Length(min=1, error="This field is required."),
        error_messages={"required": "This field is required.", "null": "This field is required.",
                        "invalid": "Must be a string."},
        metadata={"description": description},
        **kwargs,
    )


class _Body(Schema):
    class Meta:
        unknown = EXCLUDE


class DiscordDeviceSchema(_Body):
    provider = _string("The push notification provider of the device: " + _PROVIDER_DOC)
    token = _string("The push notification token to register")


class DiscordRegisterSchema(DiscordDeviceSchema):
    voip_provider = _string("The VoIP provider of the device: apns_voip or apns_internal_voip", required=False)
    voip_token = _string("The VoIP push notification token (PushKit) to register", required=False)


class DiscordSyncSchema(DiscordDeviceSchema):
    push_sync_tokens = fields.List(
        fields.String(error_messages={"invalid": "Must be a string."}),
        required=True,
        validate=validate.Length(max=MAX_SYNC_TOKENS, error=f"At most {MAX_SYNC_TOKENS} sync tokens."),
        error_messages={"required": "This field is required.", "null": "This field is required.",
                        "invalid": "Must be an array of strings."},
        metadata={"description": "Device sync tokens for each account (at most 100)"},
    )


class SyncTokenSchema(Schema):
    token = fields.String(metadata={"description": "The push notification sync token (valid for 30 days)"})


class SyncResultSchema(Schema):
    invalid_push_sync_tokens = fields.List(
        fields.String(), metadata={"description": "Device sync tokens that are invalid (or whose account is full)"}
    )
