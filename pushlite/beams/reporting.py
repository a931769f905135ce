"""The Beams Reporting API: what the Android, iOS and Web SDKs report back
about a notification (``POST /reporting_api/v2/instances/<id>/events``).

The SDKs send no credentials. Event bodies, as their sources send them:

- Web (service worker): ``{"publishId", "event": "delivery" | "open",
  "deviceId", "userId": <string or null>, "timestampSecs", "appInBackground",
  "hasDisplayableContent", "hasData"}``;
- Android: ``{"event": "Delivery" | "Open", "instanceId", "deviceId",
  "userId"?, "publishId", "timestampSecs", ...}`` (Gson leaves out nulls; the
  three booleans only on a delivery);
- iOS: the same with ``"Delivery"`` / ``"Open"``.

An event is counted once per device and publish (``storage/insights.py``);
one for a publish or device pushlite does not know (or no longer keeps) is
accepted and ignored, as the SDKs cannot do better with it. A malformed one
is a 400 in the Beams shape.
"""
from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from pushlite import redis_clients
from pushlite.apidoc import document_errors
from pushlite.errors import ApiError
from pushlite.parsing import Blueprint
from pushlite.storage import insights, instances

from .errors import install_handlers
from .schemas import EmptySchema

reporting_blp = Blueprint(
    "beams_reporting", __name__, url_prefix="/reporting_api/v2/instances/<instance_id>",
    description="Pusher Beams Reporting API: what the Beams SDKs report back (delivery and open events).",
)
install_handlers(reporting_blp)


def _required(field: type[fields.Field], name: str, kind: str, **kwargs: Any) -> fields.Field:
    missing = f"{name} is missing from body."
    return field(required=True, error_messages={
        "required": missing, "null": missing, "invalid": f"{name} must be {kind}.",
    }, **kwargs)


def _optional(field: type[fields.Field], name: str, kind: str, **kwargs: Any) -> fields.Field:
    return field(allow_none=True, error_messages={"invalid": f"{name} must be {kind}."}, **kwargs)


class ReportEventSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # instanceId (mobile SDKs) and anything newer

    event = _required(fields.String, "event", "a string", metadata={
        "description": "`delivery` or `open`, in any case (the mobile SDKs send `Delivery` / `Open`)."})
    publishId = _required(fields.String, "publishId", "a string", metadata={
        "description": "The publish the notification came from (its `data.pusher.publishId`)."})
    deviceId = _required(fields.String, "deviceId", "a string", metadata={"description": "The reporting device."})
    timestampSecs = _required(fields.Integer, "timestampSecs", "an integer", strict=True,
                              validate=validate.Range(min=0, error="timestampSecs must not be negative."),
                              metadata={"description": "When it happened, in Unix seconds."})
    userId = _optional(fields.String, "userId", "a string", metadata={"description": "The device's user id."})
    appInBackground = _optional(fields.Boolean, "appInBackground", "a boolean", truthy={True}, falsy={False})
    hasDisplayableContent = _optional(fields.Boolean, "hasDisplayableContent", "a boolean",
                                      truthy={True}, falsy={False})
    hasData = _optional(fields.Boolean, "hasData", "a boolean", truthy={True}, falsy={False})

    @validates("event")
    def known_event(self, value: str, **kwargs: Any) -> None:
        if value.lower() not in insights.COUNTERS:
            raise ValidationError("event must be delivery or open.")


@reporting_blp.before_request
def check_request() -> None:
    if not instances.is_instance_id((request.view_args or {}).get("instance_id", "")):
        raise ApiError(400, "Bad request", "The instance id given is invalid. It is expected to be in this format: "
                                           "426abfc7-41fe-492f-bcf1-27586fa9bd3f .")
    if request.method == "POST":
        if request.mimetype != "application/json":
            raise ApiError(400, "Invalid content type", "Only application/json is supported.")
        if not isinstance(request.get_json(silent=True), dict):
            raise ApiError(400, "Bad request", "Failed to read body as a JSON object.")


@reporting_blp.route("/events")
class Events(MethodView):
    @reporting_blp.arguments(ReportEventSchema(), error_status_code=400)
    @reporting_blp.response(200, EmptySchema)
    @document_errors(404, 503)
    def post(self, event: dict, instance_id: str) -> dict:
        """Report that a notification reached a device (`delivery`) or was opened (`open`); each device counts once
        in the publish's `acknowledged` / `opened`. Events for unknown publishes or devices are accepted and ignored."""
        insights.record(redis_clients.client(), instance_id, event["publishId"], event["deviceId"],
                        event["event"].lower())
        return {}
