"""Matrix pushers (client-server API ``/_matrix/client/v3/pushers``) for the
caller named by a user JWT (the access token). A pusher is a device of
platform ``matrix``, so a publish to the user reaches it like their phones."""
from __future__ import annotations

from flask import current_app, g, request
from flask.views import MethodView
from marshmallow import ValidationError

from pushlite import redis_clients, url_guard
from pushlite.apidoc import document_errors
from pushlite.auth import AuthError
from pushlite.parsing import Blueprint
from pushlite.storage import pushers
from pushlite.storage.errors import UserDeviceLimit
from pushlite.user_auth import authenticate
from workers.senders import matrix_encryption

from .errors import error, from_messages, invalid, missing
from .schemas import MatrixEmptySchema, PushersSchema, SetPusherSchema

blp = Blueprint(
    "matrix_pushers",
    __name__,
    url_prefix="/_matrix/client",
    description="Matrix pushers (the user JWT as the access token: `Authorization: Bearer <user JWT>`, or the "
                "`access_token` query parameter of older clients). `/_matrix/client/r0/...` works like "
                "`/_matrix/client/v3/...`.",
)

NOTIFY_PATH = "/_matrix/push/v1/notify"
PUSHKEY_MAX_BYTES = 512
APP_ID_MAX_CHARS = 64
REQUIRED_WITH_KIND = ("app_display_name", "device_display_name", "lang", "data")
# Older clients send the access token in the query string (which proxies may log: prefer the header).
ACCESS_TOKEN = {"in": "query", "name": "access_token", "required": False, "schema": {"type": "string"},
                "description": "The user JWT, for clients that do not send `Authorization: Bearer`"}



@blp.before_request
def authenticate_caller() -> None:
    """The access token from the Authorization header, else (older clients)
    from the ``access_token`` query parameter."""
    header = request.headers.get("Authorization")
    if not (header and header.lower().startswith("bearer ")) and request.args.get("access_token"):
        header = "Bearer " + request.args["access_token"]
    try:
        g.caller = authenticate(redis_clients.client(), header)
    except AuthError as exc:
        if not header or not header.lower().startswith("bearer "):
            raise error(401, "M_MISSING_TOKEN", "Missing access token.") from None
        raise error(401, "M_UNKNOWN_TOKEN", f"Unrecognised access token: {exc.message}") from None


def json_object() -> dict:
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise error(400, "M_NOT_JSON", "Content not JSON.")
    if not isinstance(body, dict):
        raise error(400, "M_BAD_JSON", "Content must be a JSON object.")
    return body


def has_control_characters(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def check_identity(body: dict) -> None:
    if len(body["pushkey"].encode()) > PUSHKEY_MAX_BYTES:
        raise invalid(f"pushkey must be at most {PUSHKEY_MAX_BYTES} bytes.")
    if len(body["app_id"]) > APP_ID_MAX_CHARS:
        raise invalid(f"app_id must be at most {APP_ID_MAX_CHARS} characters.")
    if not body["pushkey"] or not body["app_id"]:
        raise invalid("pushkey and app_id must not be empty.")
    if has_control_characters(body["pushkey"]) or has_control_characters(body["app_id"]):
        raise invalid("pushkey and app_id must not contain control characters.")


def check_http_pusher(body: dict) -> None:
    if body["kind"] != "http":
        raise invalid(f"Unsupported pusher kind {body['kind']!r}: only http is supported.")
    absent = [name for name in REQUIRED_WITH_KIND if body.get(name) is None]
    if absent:
        raise missing(*absent)
    url = body["data"].get("url")
    if url is None:
        raise missing("data.url")
    if not isinstance(url, str):
        raise invalid("data.url must be a string.")
    if "format" in body["data"] and not isinstance(body["data"]["format"], str):
        raise invalid("data.format must be a string.")
    try:
        destination = url_guard.check(url, current_app.config["PUSHLITE_MATRIX_GATEWAY_ALLOWLIST"])
    except url_guard.UnsafeURL as exc:
        raise invalid(f"data.url: {exc}") from None
    if destination.target.split("?", 1)[0] != NOTIFY_PATH:
        raise invalid(f"data.url must have the path {NOTIFY_PATH}.")
    if body.get("encryption") is not None:
        try:
            body["encryption"] = matrix_encryption.check(body["encryption"])
        except matrix_encryption.InvalidEncryption as exc:
            raise invalid(str(exc)) from None


@blp.route("/r0/pushers")
@blp.route("/v3/pushers")
class Pushers(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}], parameters=[ACCESS_TOKEN])
    @blp.response(200, PushersSchema)
    @document_errors(401, 503)
    def get(self):
        """Get the caller's pushers, with every field they set."""
        caller = g.caller
        found = pushers.of_user(redis_clients.client(), caller.instance_id, caller.user_id)
        return {"pushers": [pushers.as_pusher(device) for device in found]}


@blp.route("/r0/pushers/set")
@blp.route("/v3/pushers/set")
class SetPusher(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}], parameters=[ACCESS_TOKEN],
             requestBody={"required": True, "content": {"application/json": {"schema": SetPusherSchema}}})
    @blp.response(200, MatrixEmptySchema)
    @document_errors(400, 401, 503)
    def post(self):
        """Create, update (kind http) or delete (kind null) the caller's pusher for an app_id and pushkey.

        Without `append: true`, other users lose their pusher with the same
        app_id and pushkey. `data.url` must be a public push gateway URL
        allowed by `PUSHLITE_MATRIX_GATEWAY_ALLOWLIST`.
        """
        try:
            body = SetPusherSchema().load(json_object())
        except ValidationError as exc:
            raise from_messages(exc.normalized_messages()) from None
        check_identity(body)
        caller, client = g.caller, redis_clients.client()
        if body["kind"] is None:
            pushers.delete_pusher(client, caller.instance_id, caller.user_id, body["app_id"], body["pushkey"])
            return {}
        check_http_pusher(body)
        try:
            pushers.set_pusher(client, caller.instance_id, caller.user_id, body["app_id"], body["pushkey"], body,
                               append=body["append"])
        except UserDeviceLimit:
            raise error(400, "M_LIMIT_EXCEEDED", "The user already has the maximum of 100 devices "
                                                        "and pushers.") from None
        return {}
