"""Request and response bodies of the MPush API (``mpush-topics.txt``)."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from .errors import MPushStatusSchema


class _Body(Schema):
    class Meta:
        # Clients may send fields this version does not know; they are ignored.
        unknown = EXCLUDE


def _string(name: str, description: str, max_length: int) -> fields.String:
    """A required string; each way of getting it wrong gets a message naming the field."""
    return fields.String(
        required=True,
        validate=validate.Length(min=1, max=max_length, error=f"{name} must be 1-{max_length} characters."),
        error_messages={"required": f"Missing {name} field.", "null": f"Missing {name} field.",
                        "invalid": f"{name} must be a string."},
        metadata={"description": description},
    )


def _device_id() -> fields.String:
    return _string("device_id", "The app's own unique id of the device; it keeps naming the device when "
                                "its token changes.", 255)


def _topics(description: str) -> fields.List:
    return fields.List(
        fields.Raw(),
        required=True,
        error_messages={"required": "Missing topics field.", "null": "Missing topics field.",
                        "invalid": "topics must be an array of topic names."},
        metadata={"description": description},
    )


class MPushTokensSchema(_Body):
    token = _string("token", "The device token obtained from APNs (ios) or FCM (android).", 4096)
    platform = _string("platform", "The device platform: ios or android.", 16)
    device_id = _device_id()


class MPushTopicsSchema(_Body):
    topics = _topics("Topic names (1-164 characters of A-Z a-z 0-9 _ - = @ , . ;).")
    device_id = _device_id()


class MPushDeviceIdSchema(_Body):
    device_id = _device_id()


class MPushSendSchema(_Body):
    topics = _topics("1 to 100 topic names; each subscribed device gets the notification once.")
    title = fields.String(
        required=True,
        error_messages={"required": "Missing title field.", "null": "Missing title field.",
                        "invalid": "title must be a string."},
        metadata={"description": "The notification title."},
    )
    body = fields.String(
        required=True,
        error_messages={"required": "Missing body field.", "null": "Missing body field.",
                        "invalid": "body must be a string."},
        metadata={"description": "The notification text."},
    )
    data = fields.Dict(
        keys=fields.String(), allow_none=True,
        error_messages={"invalid": "data must be an object."},
        metadata={"description": "Custom data delivered with the notification (FCM gets its values as strings)."},
    )


class MPushSendResponseSchema(MPushStatusSchema):
    publish_id = fields.String(metadata={
        "description": "pushlite's publish id, for following the delivery "
                       "(`GET /publish_api/v1/instances/<id>/publishes/<publish_id>`).",
    })
