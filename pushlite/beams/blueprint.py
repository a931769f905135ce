"""The Beams Device API blueprints and what every one of their requests goes
through: instance id and device id checks, content type, JSON body.

``blp`` serves ``.../instances/<id>/devices/...``; ``instance_blp`` the one
path of the Device API outside ``devices/``, the Web SDK's VAPID public key."""
from __future__ import annotations

from flask import request

from pushlite.errors import ApiError
from pushlite.parsing import Blueprint
from pushlite.storage import records
from pushlite.storage.instances import is_instance_id

from . import errors

blp = Blueprint(
    "beams_devices",
    __name__,
    url_prefix="/device_api/v1/instances/<instance_id>/devices",
    description="Pusher Beams Device API: what the Beams mobile SDKs call.",
)

instance_blp = Blueprint(
    "beams_device_instance",
    __name__,
    url_prefix="/device_api/v1/instances/<instance_id>",
    description="Pusher Beams Device API: the instance's VAPID public key, for the Beams Web SDK.",
)

for _blueprint in (blp, instance_blp):
    errors.install_handlers(_blueprint)

# Endpoints whose body must be a JSON object.
JSON_BODY = {"registerapns", "registerfcm", "registerweb", "metadata", "token", "interests"}

# What a malformed device id gets, by endpoint: the seed names it for some.
MALFORMED_DEVICE_ID = {
    "user": (400, "Bad Request", "Invalid device id."),
    "interest": (400, "Bad Request", "device-id given is not valid."),
}


@blp.before_request
@instance_blp.before_request
def check_request() -> None:
    req = request._get_current_object()  # one context lookup, not one per attribute
    args = req.view_args or {}
    if not is_instance_id(args.get("instance_id", "")):
        raise ApiError(400, "Bad Request", "instance-id given is not valid.")
    view = (req.endpoint or "").rsplit(".", 1)[-1].lower()
    method = req.method
    device_id = args.get("device_id")
    if device_id is not None and not records.is_device_id(device_id):
        if method == "DELETE" and view == "interest":
            raise ApiError(400, "Incomplete Request", "device-id given is not valid.")
        if view in MALFORMED_DEVICE_ID:
            raise ApiError(*MALFORMED_DEVICE_ID[view])
        if method != "DELETE":
            raise errors.device_not_found()
    json_body = view in JSON_BODY and method in ("POST", "PUT")
    if json_body or req.content_length:
        if req.mimetype != "application/json":
            raise ApiError(400, "Invalid content type", "Only application/json is supported.")
        if json_body and not isinstance(req.get_json(silent=True), dict):
            raise ApiError(400, "Bad request", "Failed to read body as a JSON object.")

