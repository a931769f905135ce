"""Request and response bodies of the Twilio-style API
(``twilio-device-registrations.txt``)."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from pushlite.parsing import FullMatch
from pushlite.storage.apps import APP_NAME, APP_NAME_RULE

USER_ID = r"[^\x00-\x1f\x7f]{1,164}"
MAX_TAGS, TAG_KEY_MAX_CHARS, TAG_VALUE_MAX_CHARS = 10, 64, 256
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 50, 1000


class _Body(Schema):
    class Meta:
        unknown = EXCLUDE


def _string(name: str, description: str, *, required: bool = True, pattern: str | None = None,
            why: str = "") -> fields.String:
    validators: list[validate.Validator] = [
        validate.Length(min=1, error=f'Invalid parameter "{name}": must not be empty.'),
    ]
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


def _app_name(required: bool, description: str = "The app") -> fields.String:
    return _string("appName", f"{description} ({APP_NAME_RULE}).", required=required,
                   pattern=APP_NAME, why=f"must be {APP_NAME_RULE}")


def check_tags(tags: dict) -> None:
    """Up to 10 tags, each a 1-64 character string key with a string value of at most 256 characters."""
    if len(tags) > MAX_TAGS:
        raise ValidationError(f'Invalid parameter "tags": at most {MAX_TAGS} tags.')
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= TAG_KEY_MAX_CHARS:
            raise ValidationError(f'Invalid parameter "tags": keys are strings of 1-{TAG_KEY_MAX_CHARS} characters.')
        if not isinstance(value, str) or len(value) > TAG_VALUE_MAX_CHARS:
            raise ValidationError(f'Invalid parameter "tags": the value of {key!r} must be a string of at most '
                                  f'{TAG_VALUE_MAX_CHARS} characters.')


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
    tags = fields.Dict(
        validate=check_tags,
        error_messages={"invalid": 'Invalid parameter "tags": must be an object of strings.',
                        "null": 'Invalid parameter "tags": must be an object of strings.'},
        metadata={"description": f"Up to {MAX_TAGS} tags: string keys (1-{TAG_KEY_MAX_CHARS} characters) to string "
                                 f"values (at most {TAG_VALUE_MAX_CHARS}). Registering a token again with tags "
                                 "replaces its tags.",
                  "example": {"tier": "gold", "locale": "en-US"}},
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
    tags = fields.Dict(metadata={"description": "The registration's tags: string keys to string values"})


class TwilioUserSchema(Schema):
    id = fields.String()
    deviceRegistrations = fields.List(fields.Nested(TwilioRegistrationSchema),
                                      metadata={"description": "The user's registrations made through this API"})


class TwilioPageQuerySchema(_Body):
    PageSize = fields.Integer(
        load_default=PAGE_SIZE_DEFAULT, strict=False,
        validate=validate.Range(1, PAGE_SIZE_MAX,
                                error=f'Invalid parameter "PageSize": must be 1-{PAGE_SIZE_MAX}.'),
        error_messages={"invalid": f'Invalid parameter "PageSize": must be 1-{PAGE_SIZE_MAX}.'},
        metadata={"description": f"Registrations per page (1-{PAGE_SIZE_MAX}, default {PAGE_SIZE_DEFAULT})"},
    )
    PageToken = fields.String(
        validate=validate.Length(min=1, error='Invalid parameter "PageToken": must not be empty.'),
        metadata={"description": "The page to read, from the previous page's next_page_url"},
    )


class TwilioPageMetaSchema(Schema):
    page_size = fields.Integer()
    next_page_url = fields.String(allow_none=True, metadata={"description": "The next page, or null on the last"})


class TwilioRegistrationPageSchema(Schema):
    device_registrations = fields.List(fields.Nested(TwilioRegistrationSchema),
                                       metadata={"description": "The user's registrations, oldest first"})
    meta = fields.Nested(TwilioPageMetaSchema)


class TwilioAppCredentialsSchema(Schema):
    apns = fields.Boolean()
    fcm = fields.Boolean()


class TwilioAppSchema(Schema):
    id = fields.String(metadata={"description": "The app name"})
    name = fields.String(metadata={"description": "The app name"})
    default = fields.Boolean(metadata={"description": "Whether sends that name no app reach this app's devices"})
    credentials = fields.Nested(TwilioAppCredentialsSchema, metadata={
        "description": "Whether the app has its own credential per provider (without one, the instance's is used)"})
    uri = fields.String()


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
    appName = _app_name(required=False, description="Only this app's devices; without it, the default app's "
                                                     "devices and the devices of no app (registered through "
                                                     "another API)")


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
    acknowledged = fields.Integer(metadata={"description": "Devices whose Beams SDK reported the notification "
                                                           "reached them, each once"})
    opened = fields.Integer(metadata={"description": "Devices whose Beams SDK reported the notification opened, "
                                                     "each once"})
    failures = fields.List(fields.Nested(TwilioFailureSchema), metadata={"description": "The latest 100 failures"})
