"""Admin API bodies."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from pushlite.parsing import FullMatch
from pushlite.storage.apps import APP_NAME, APP_NAME_RULE


class InstanceCreateSchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "A name for the operator's benefit."},
    )


class InstanceSchema(Schema):
    id = fields.String(metadata={"description": "The public instance id (used in every API path)."})
    name = fields.String()
    client_token = fields.String(metadata={"description": "Public token embedded in apps (registration only)."})
    created_at = fields.Integer(metadata={"description": "Unix time of creation."})


class InstanceWithSecretSchema(InstanceSchema):
    secret_key = fields.String(
        metadata={"description": "Server-side secret: publish, HTTP Basic and user JWT signing. "
                                 "Shown only here; store it now."}
    )


class SecretKeySchema(Schema):
    id = fields.String()
    secret_key = fields.String(metadata={"description": "The new secret key; the old one stops working."})


class VapidKeySchema(Schema):
    id = fields.String()
    vapid_public_key = fields.String(metadata={
        "description": "The new VAPID public key (unpadded base64url P-256 point); the old pair stops working: "
                       "browsers subscribed with it must subscribe again."})


class FcmCredentialSchema(Schema):
    service_account = fields.Dict(
        required=True, metadata={"description": "The service account JSON file Google gives, as an object."}
    )


class ApnsCredentialSchema(Schema):
    key_id = fields.String(required=True, metadata={"description": "The 10-character Key ID of the .p8 key."})
    team_id = fields.String(required=True, metadata={"description": "The 10-character Team ID."})
    private_key = fields.String(required=True, metadata={"description": "The .p8 file's PEM text."})
    topic = fields.String(required=True, metadata={"description": "The app's bundle id (apns-topic)."})
    environment = fields.String(
        load_default="production",
        validate=validate.OneOf(["production", "development", "sandbox"]),
        metadata={"description": "APNs environment for devices that do not name one "
                                 "(sandbox is a synonym of development)."},
    )


class CredentialsSummarySchema(Schema):
    apns = fields.Dict(metadata={"description": "key_id, team_id, topic, environment (never the key)"})
    fcm = fields.Dict(metadata={"description": "project_id, client_email, private_key_id (never the key)"})


class OutboxSchema(Schema):
    notifications = fields.List(fields.Dict(), metadata={
        "description": "The latest 100 notifications a dry run recorded, newest first: provider, platform, "
                       "device_id, token, payload, at."})


class DefaultAppSchema(Schema):
    appName = fields.String(
        required=True, allow_none=False, validate=FullMatch(APP_NAME, error=f"An app name is {APP_NAME_RULE}."),
        metadata={"description": "The default app's name"},
    )
