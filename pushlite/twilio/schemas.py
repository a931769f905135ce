"""Request and response bodies of the Twilio-style API
(``twilio-device-registrations.txt``)."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from pushlite.parsing import FullMatch

USER_ID = r"[^\x00-\x1f\x7f]{1,164}"
APP_NAME = r"[A-Za-z0-9_.\-]{1,100}"


class _Body(Schema):
    class Meta:
        unknown = EXCLUDE


def _string(name: str, description: str, *, required: bool = True, pattern: str | None = None,
            why: str = "") -> fields.String:
    validators = [validate.Length(min=1, error=f'Invalid parameter "{name}": must not be empty.')]
    if pattern:
        validators.append(FullMatch(pattern, error=f'Invalid parameter "{name}": {why}'))
    return fields.String(
        required=required,
        validate=validators,
        error_messages={"required": f'Required parameter "{name}" missing.',
                        "null": f'Required parameter "{name}" missing.',
                        "invalid": f'Invalid parameter "{name}": must be a string.'},
        metadata={"description": description},
    )


def _user_id(required: bool) -> fields.String:
    return _string("userId", "The user (1-164 characters, no control characters).", required=required,
                   pattern=USER_ID, why="must be 1-164 characters without control characters.")


def _app_name(required: bool) -> fields.String:
    return _string("appName", "The app (1-100 characters of A-Z a-z 0-9 _ . -).", required=required,
                   pattern=APP_NAME, why="must be 1-100 characters of A-Z a-z 0-9 _ . -")


class TwilioRegistrationBodySchema(_Body):
    userId = _user_id(required=False)
    token = _string("token", "The device token from FCM or APNs.")
    appName = _app_name(required=True)
    provider = fields.String(
        required=True,
        validate=validate.OneOf(["FCM", "APNS"], error='Invalid parameter "provider": must be FCM or APNS.'),
        error_messages={"required": 'Required parameter "provider" missing.',
                        "null": 'Required parameter "provider" missing.',
                        "invalid": 'Invalid parameter "provider": must be FCM or APNS.'},
        metadata={"description": "FCM or APNS."},
    )


class TwilioDeviceSchema(Schema):
    provider = fields.String(metadata={"description": "FCM or APNS"})
    token = fields.String()


class TwilioRelatedSchema(Schema):
    id = fields.String()
    name = fields.String(metadata={"description": "user or push_notification_app"})
    uri = fields.String()


class TwilioRegistrationSchema(Schema):
    appName = fields.String()
    userId = fields.String()
    devices = fields.List(fields.Nested(TwilioDeviceSchema))
    id = fields.String(metadata={"description": "comms_device_registration_ and 32 hex digits"})
    related = fields.List(fields.Nested(TwilioRelatedSchema), metadata={"description": "The user and the app"})
    tags = fields.Dict()


class TwilioUserSchema(Schema):
    id = fields.String()
    deviceRegistrations = fields.List(fields.Nested(TwilioRegistrationSchema),
                                      metadata={"description": "The user's registrations made through this API"})


class TwilioRecipientSchema(_Body):
    userId = _user_id(required=True)


class TwilioContentSchema(_Body):
    title = fields.String(error_messages={"invalid": 'Invalid parameter "content.title": must be a string.'},
                          metadata={"description": "The notification title"})
    body = fields.String(error_messages={"invalid": 'Invalid parameter "content.body": must be a string.'},
                         metadata={"description": "The notification text"})


class TwilioSendSchema(_Body):
    to = fields.List(
        fields.Nested(TwilioRecipientSchema, error_messages={"type": 'Invalid parameter "to": items are {"userId"}.'}),
        required=True,
        error_messages={"required": 'Required parameter "to" missing.', "null": 'Required parameter "to" missing.',
                        "invalid": 'Invalid parameter "to": must be an array.'},
        metadata={"description": "1 to 1000 recipients: `{\"userId\"}`"},
    )
    content = fields.Nested(
        TwilioContentSchema, required=True,
        error_messages={"required": 'Required parameter "content" missing.',
                        "null": 'Required parameter "content" missing.',
                        "type": 'Invalid parameter "content": must be an object.'},
    )
    appName = _app_name(required=False)


class TwilioOperationAcceptedSchema(Schema):
    id = fields.String(metadata={"description": "The operation id: comms_operation_ and 32 hex digits"})
    status = fields.String(metadata={"description": "queued"})
    uri = fields.String()


class TwilioFailureSchema(Schema):
    deviceId = fields.String()
    reason = fields.String()


class TwilioOperationSchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "queued, fanning_out, delivering or done"})
    appName = fields.String(allow_none=True, metadata={"description": "The app the send was limited to, if any"})
    createdAt = fields.String(metadata={"description": "ISO 8601"})
    finishedAt = fields.String(allow_none=True, metadata={"description": "ISO 8601, once done"})
    targeted = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    retried = fields.Integer()
    removed = fields.Integer(metadata={"description": "Devices removed because the provider called their token dead"})
    skipped = fields.Integer(metadata={"description": "Devices not sent to: no credential for their provider"})
    failures = fields.List(fields.Nested(TwilioFailureSchema), metadata={"description": "The latest 100 failures"})
