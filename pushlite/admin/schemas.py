"""Admin API bodies."""
from __future__ import annotations

from marshmallow import Schema, fields, validate


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
