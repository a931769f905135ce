"""Channel views: get and set one device's channels, list all the caller's."""
from __future__ import annotations

from http import HTTPStatus

from flask import g, request
from flask.views import MethodView
from marshmallow import EXCLUDE, Schema, fields, validate
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from pushlite import redis_clients
from pushlite.apidoc import document_errors
from pushlite.auth import AuthError
from pushlite.discord.errors import first_field_error
from pushlite.errors import ApiError, validation_messages
from pushlite.parsing import Blueprint
from pushlite.storage import channels, interests
from pushlite.storage.errors import DeviceNotFound, InterestLimit
from pushlite.user_auth import authenticate

blp = Blueprint(
    "channels",
    __name__,
    url_prefix="/v1",
    description="Per-device channels (`Authorization: Bearer <user JWT>`); an enabled channel is an interest.",
)

MAX_CHANNELS_PER_REQUEST = 1000


class ChannelsErrorSchema(Schema):
    code = fields.Integer(metadata={"description": "The HTTP status"})
    message = fields.String(metadata={"description": "What went wrong"})


def render(exc: HTTPException) -> tuple[int, dict]:
    messages = validation_messages(exc)
    if messages is not None:
        field, message = first_field_error(messages)
        return 400, {"code": 400, "message": f"{field}: {message}"}
    status = exc.code or 500
    description = exc.description if isinstance(exc, ApiError) else None
    return status, {"code": status, "message": description or HTTPStatus(status).phrase}


def fail(status: int, message: str) -> ApiError:
    return ApiError(status, str(status), message)


class ChannelSchema(Schema):
    id = fields.String(metadata={"description": "The channel name"})
    status = fields.String(metadata={"description": "enabled or disabled"})


class ChannelsSchema(Schema):
    channels = fields.List(fields.Nested(ChannelSchema), metadata={"description": "An array containing channels"})


class ChannelSettingSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, metadata={"description": "The channel name (1-164 of A-Z a-z 0-9 _-=@,.;)"})
    value = fields.String(required=True, validate=validate.OneOf(["enabled", "disabled"]),
                          metadata={"description": "enabled or disabled"})


class SetChannelsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    channels = fields.List(
        fields.Nested(ChannelSettingSchema), required=True,
        validate=validate.Length(max=MAX_CHANNELS_PER_REQUEST),
        metadata={"description": "The channels to set; channels not listed are unchanged"},
    )


class ChannelsEmptySchema(Schema):
    pass



@blp.before_request
def authenticate_caller() -> None:
    try:
        g.caller = authenticate(redis_clients.client(), request.headers.get("Authorization"))
    except AuthError as exc:
        raise fail(401, exc.message) from None
    if request.method == "POST":
        if request.mimetype != "application/json" or not isinstance(request.get_json(silent=True), dict):
            raise fail(400, "The request body must be a JSON object.")


def no_device() -> ApiError:
    return fail(404, "You have no device with this push token.")


class PushTokenConverter(BaseConverter):
    """A push token or pushkey as one path segment, ``/`` included: Matrix
    pushkeys are often base64 (``Xp/MzCt8/...``), sent as ``%2F``, which the
    server decodes before routing. Anything up to the last ``/channels``."""

    regex = ".+?"
    part_isolating = False


@blp.route("/devices/<pushtoken:pushtoken>/channels")
class DeviceChannels(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.response(200, ChannelsSchema)
    @document_errors(401, 404, 503)
    def get(self, pushtoken: str) -> dict:
        """Get the channels of the caller's device with this push token (or Matrix pusher pushkey)."""
        caller = g.caller
        found = channels.devices_with_token(redis_clients.client(), caller.instance_id, caller.user_id, pushtoken)
        if not found:
            raise no_device()
        return {"channels": channels.statuses(found)}

    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.arguments(SetChannelsSchema, error_status_code=400)
    @blp.response(200, ChannelsEmptySchema)
    @document_errors(400, 401, 404, 503)
    def post(self, body: dict, pushtoken: str) -> dict:
        """Enable or disable channels of the caller's device with this push token (or Matrix pusher pushkey).

        Channels not in the body are unchanged; an unset channel is disabled.
        An enabled channel is an interest of the device (at most 5000).
        """
        settings = {}
        for channel in body["channels"]:
            if not interests.is_interest_name(channel["name"]):
                raise fail(400, f"Invalid channel name {channel['name']!r}: 1-164 characters of "
                                "A-Z a-z 0-9 _ - = @ , . ;")
            settings[channel["name"]] = channel["value"] == "enabled"
        caller = g.caller
        try:
            channels.set_channels(redis_clients.client(), caller.instance_id, caller.user_id, pushtoken, settings)
        except DeviceNotFound:
            raise no_device() from None
        except InterestLimit:
            raise fail(400, "Too many channels: a device may have at most 5000.") from None
        return {}


@blp.route("/channels")
class UserChannels(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.response(200, ChannelsSchema)
    @document_errors(401, 503)
    def get(self):
        """Get the channels of all the caller's devices (enabled on any device wins)."""
        caller = g.caller
        return {"channels": channels.of_user(redis_clients.client(), caller.instance_id, caller.user_id)}
