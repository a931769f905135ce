"""The Beams Device API blueprints and what every one of their requests goes
through: instance id and device id checks, content type, JSON body.

``blp`` serves ``.../instances/<id>/devices/...``; ``instance_blp`` the one
path of the Device API outside ``devices/``, the Web SDK's VAPID public key."""
from __future__ import annotations

from collections.abc import Callable

from flask import Request, current_app, request

from pushlite.errors import ApiError
from pushlite.parsing import Blueprint
from pushlite.storage import records
from pushlite.storage.instances import is_instance_id
from pushlite.view_rules import View, current_view

from .errors import device_not_found, install_handlers

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
    install_handlers(_blueprint)

JSON_BODY = "beams_json_body"
MALFORMED_DEVICE_ID = "beams_malformed_device_id"


def json_body(view: View) -> View:
    """The view's request must carry a JSON object (else 400 before the view runs)."""
    setattr(view, JSON_BODY, True)
    return view


def malformed_device_id(status: int, title: str, description: str) -> Callable[[View], View]:
    """What a malformed device id in the view's path gets, where the seed names
    it; elsewhere it is a 404 "Device not found" (a DELETE: the view's own answer)."""
    def decorate(view: View) -> View:
        setattr(view, MALFORMED_DEVICE_ID, (status, title, description))
        return view
    return decorate


@blp.before_request
@instance_blp.before_request
def check_request() -> None:
    # One context lookup, not one per attribute. Flask types ``request`` as the
    # Request it stands for, not as the LocalProxy it is; _get_current_object is
    # the documented way to unwrap a proxy.
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    args = req.view_args or {}
    if not is_instance_id(args.get("instance_id", "")):
        raise ApiError(400, "Bad Request", "instance-id given is not valid.")
    view = current_view(current_app, req)
    device_id = args.get("device_id")
    if device_id is not None and not records.is_device_id(device_id):
        malformed = getattr(view, MALFORMED_DEVICE_ID, None)
        if malformed is not None:
            raise ApiError(*malformed)
        if req.method != "DELETE":
            raise device_not_found()
    json_body = getattr(view, JSON_BODY, False)
    if json_body or req.content_length:
        if req.mimetype != "application/json":
            raise ApiError(400, "Invalid content type", "Only application/json is supported.")
        if json_body and not isinstance(req.get_json(silent=True), dict):
            raise ApiError(400, "Bad request", "Failed to read body as a JSON object.")

