"""Bodies of the Beams Publish API, and pushlite's publish status."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

_PAYLOAD_DOC = "Provider payload; see the Beams platform publish formats."


class _PublishBody(Schema):
    class Meta:
        unknown = EXCLUDE

    apns = fields.Dict(metadata={"description": "APNs payload (`aps` and custom keys); an optional `headers` "
                                                "object sets apns-priority, apns-expiration, apns-collapse-id."})
    apns_voip = fields.Dict(metadata={"description": "pushlite extension: the payload for APNs VoIP devices "
                                                     "(without it they are skipped)."})
    fcm = fields.Dict(metadata={"description": "FCM payload: `notification`, `data`, and legacy options."})
    matrix = fields.Dict(metadata={"description": "pushlite extension: the Matrix push gateway notification for "
                                                  "Matrix pushers (event_id, room_id, type, sender, content, "
                                                  "counts, prio, ...); without it, one is made from the fcm "
                                                  "notification or apns alert title and body."})
    web = fields.Dict(metadata={"description": "Web Push payload for browsers (Beams web format): `notification` "
                                              "(title, body, icon, deep_link, hide_notification_if_site_has_focus), "
                                              "`data` (without the key `pusher`), `time_to_live` (seconds, at most "
                                              "2419200, the default); pushlite extension: `urgency` (very-low, low, "
                                              "normal, high; default high)."})


class PublishInterestsSchema(_PublishBody):
    interests = fields.List(fields.Raw(), required=True,
                            error_messages={"required": "Missing interests field.", "null": "Missing interests field."},
                            metadata={"description": "1 to 100 interest names."})


class PublishUsersSchema(_PublishBody):
    users = fields.List(fields.Raw(), required=True,
                        error_messages={"required": "Missing users field.", "null": "Missing users field."},
                        metadata={"description": "1 to 1000 user ids."})


class PublishResponseSchema(Schema):
    publishId = fields.String()


class FailureSchema(Schema):
    device_id = fields.String()
    reason = fields.String()


class PublishStatusSchema(Schema):
    publishId = fields.String()
    status = fields.String(metadata={"description": "queued, fanning_out, delivering or done"})
    targeted = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    retried = fields.Integer()
    removed = fields.Integer(metadata={"description": "Devices removed because the provider called their token dead."})
    skipped = fields.Integer(metadata={"description": "Devices not sent to: no credential or no payload for them."})
    acknowledged = fields.Integer(metadata={
        "description": "Devices whose SDK reported the notification reached them (Reporting API `delivery`), "
                       "each counted once; `delivered` is what the providers accepted."})
    opened = fields.Integer(metadata={"description": "Devices whose SDK reported the notification opened "
                                                     "(Reporting API `open`), each counted once."})
    created_at = fields.Integer()
    finished_at = fields.Integer(allow_none=True)
    stalled_since = fields.Integer(allow_none=True, metadata={
        "description": "Set while part of the publish waits for a worker and none is looking after it (every "
                       "worker gone, or the queue unreachable): since when, in seconds since the epoch. The "
                       "publish carries on by itself once a worker runs again."})
    failures = fields.List(fields.Nested(FailureSchema), metadata={"description": "The latest 100 failures."})
    request_id = fields.String(metadata={
        "description": "pushlite extension: the id of the request that created the publish (its `X-Request-Id`): "
                       "the worker log lines of its delivery carry it."})
