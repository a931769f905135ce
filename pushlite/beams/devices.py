"""Beams device views: register (APNs, FCM, web), get, delete, metadata,
token, user id, and the instance's VAPID public key (for the Web SDK)."""
from __future__ import annotations

from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from marshmallow import ValidationError

from pushlite import encryption, platforms, redis_clients, subscriptions
from pushlite.apidoc import document_errors, document_response
from pushlite.auth import AuthError, bearer, same_secret, verify_user_token
from pushlite.errors import ApiError, first_message
from pushlite.platforms import Platform
from pushlite.storage import devices, instances, vapid
from pushlite.storage.errors import DeviceNotFound

from .blueprint import blp, instance_blp, json_body, malformed_device_id
from .schemas import (
    METADATA_FIELDS,
    DeviceSchema,
    EmptySchema,
    MetadataSchema,
    RegisterApnsSchema,
    RegisteredDeviceSchema,
    RegisterFcmSchema,
    RegisterWebSchema,
    TokenSchema,
    VapidPublicKeySchema,
    plain_registration,
)

PLATFORM = "<any(apns, fcm, web):platform>"


def check_client_token(instance_id: str) -> None:
    """The Beams SDKs send no credentials to register; a client that does
    send ``Authorization: Bearer <client token>`` must send the right one."""
    header = request.environ.get("HTTP_AUTHORIZATION")  # request.headers' own lookup, without its EnvironHeaders
    if header is None:
        return
    try:
        given = bearer(header)
        expected = instances.get(redis_clients.client(), instance_id).client_token
    except AuthError:
        given, expected = "", "-"
    if not same_secret(given, expected):
        raise ApiError(401, "Unauthorized", "Incorrect instance credentials.")


def _register(instance_id: str, platform: Platform, body: dict) -> dict:
    check_client_token(instance_id)
    if not platform.accepts(body["token"]):
        raise ApiError(401, "Unauthorized", f"Incorrect {platform.label} token supplied.")
    device_id, interests = devices.register(
        redis_clients.client(),
        instance_id,
        platform.name,
        body["token"],
        bundle_id=body.get("bundleIdentifier", ""),
        metadata=body.get("metadata"),
    )
    return {"id": device_id, "initialInterestSet": interests}


# Registration is the hottest path of the service: its bodies are loaded with
# the schema directly rather than through webargs' layers (plain ones without
# marshmallow at all, see ``plain_registration``), and its answer is made
# directly rather than through flask-smorest's response wrapper; both are
# documented the same (``document_response``).
REGISTER_APNS = RegisterApnsSchema()
REGISTER_FCM = RegisterFcmSchema()
REGISTER_WEB = RegisterWebSchema()


def load(schema: RegisterApnsSchema | RegisterFcmSchema, body: dict) -> dict:
    loaded = plain_registration(schema, body)
    if loaded is not None:
        return loaded
    return validated(schema, body)


def validated(schema: RegisterApnsSchema | RegisterFcmSchema | RegisterWebSchema, body: dict) -> dict:
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise ApiError(400, "Bad request", first_message(exc.messages) or "Invalid request body.") from None


@blp.route("/apns")
class RegisterApns(MethodView):
    @json_body
    @document_response(200, RegisteredDeviceSchema, body=RegisterApnsSchema)
    @document_errors(400, 401, 404, 413, 503)
    def post(self, instance_id: str) -> Response:
        """Register an APNs device (the same token again returns the same device).

        An optional `Authorization: Bearer <client token>` is checked (401 when wrong).
        """
        return jsonify(_register(instance_id, platforms.APNS, load(REGISTER_APNS, request.get_json())))


@blp.route("/fcm")
class RegisterFcm(MethodView):
    @json_body
    @document_response(200, RegisteredDeviceSchema, body=RegisterFcmSchema)
    @document_errors(400, 401, 404, 413, 503)
    def post(self, instance_id: str) -> Response:
        """Register an FCM device (the same token again returns the same device).

        An optional `Authorization: Bearer <client token>` is checked (401 when wrong).
        """
        return jsonify(_register(instance_id, platforms.FCM, load(REGISTER_FCM, request.get_json())))


@blp.route("/web")
class RegisterWeb(MethodView):
    @json_body
    @document_response(200, RegisteredDeviceSchema, body=RegisterWebSchema)
    @document_errors(400, 401, 404, 413, 503)
    def post(self, instance_id: str) -> Response:
        """Register a browser's push subscription (the same token again returns the same device).

        The endpoint must match `PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST` and reach public addresses only:
        else, or for a token that is no push subscription, 400 "Invalid web push token".
        """
        body = validated(REGISTER_WEB, request.get_json())
        check_client_token(instance_id)
        try:
            subscriptions.check(body["token"], current_app.config["PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST"])
        except subscriptions.InvalidSubscription as exc:
            raise ApiError(400, "Invalid web push token", str(exc)) from None
        device_id, interests = devices.register(
            redis_clients.client(), instance_id, platforms.WEB.name, body["token"], metadata=body.get("metadata")
        )
        return jsonify({"id": device_id, "initialInterestSet": interests})


@instance_blp.route("/web-vapid-public-key")
class VapidPublicKey(MethodView):
    @instance_blp.response(200, VapidPublicKeySchema)
    @document_errors(400, 404, 503)
    def get(self, instance_id: str) -> dict:
        """The instance's VAPID public key, which browsers subscribe with (the Beams Web SDK asks first)."""
        return {"vapidPublicKey": vapid.ensure(redis_clients.client(), encryption.fernet(), instance_id)}


@blp.route(f"/{PLATFORM}/<device_id>")
class Device(MethodView):
    @blp.response(200, DeviceSchema)
    @document_errors(400, 404, 503)
    def get(self, instance_id: str, platform: str, device_id: str) -> dict:
        """Get a device: its id, user id and metadata."""
        device = devices.get(redis_clients.client(), instance_id, device_id, platform)
        return {"id": device.id, "userId": device.user_id, "metadata": device.metadata}

    @blp.response(200, EmptySchema)
    @document_errors(400, 404, 503)
    def delete(self, instance_id: str, platform: str, device_id: str) -> dict:
        """Delete a device with its interests and user; deleting it again is not an error."""
        try:
            devices.delete(redis_clients.client(), instance_id, device_id, platform)
        except DeviceNotFound:
            pass
        return {}


@blp.route(f"/{PLATFORM}/<device_id>/metadata")
class Metadata(MethodView):
    @json_body
    @blp.arguments(MetadataSchema(), error_status_code=400)
    @blp.response(200, EmptySchema)
    @document_errors(404, 503)
    def put(self, body: dict, instance_id: str, platform: str, device_id: str) -> dict:
        """Replace a device's metadata (APNs: sdkVersion, iosVersion, macosVersion; FCM: sdkVersion, androidVersion;
        web: sdkVersion)."""
        body = {k: v for k, v in body.items() if k in METADATA_FIELDS[platform]}
        devices.set_metadata(redis_clients.client(), instance_id, device_id, platform, body)
        return {}


@blp.route("/fcm/<device_id>/token")
class Token(MethodView):
    @json_body
    @blp.arguments(TokenSchema(), error_status_code=400)
    @blp.response(200, EmptySchema)
    @document_errors(401, 404, 503)
    def put(self, body: dict, instance_id: str, device_id: str) -> dict:
        """Replace an FCM device's token (after FCM refreshed it)."""
        if not platforms.FCM.accepts(body["token"]):
            raise ApiError(401, "Unauthorized", "Incorrect FCM token supplied.")
        devices.set_token(redis_clients.client(), instance_id, device_id, platforms.FCM.name, body["token"])
        return {}


@blp.route(f"/{PLATFORM}/<device_id>/user")
class User(MethodView):
    @malformed_device_id(400, "Bad Request", "Invalid device id.")
    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.response(200, EmptySchema)
    @document_errors(400, 401, 403, 404, 422, 503)
    def put(self, instance_id: str, platform: str, device_id: str) -> dict:
        """Associate the device with the user named by a Beams user JWT (`Authorization: Bearer`)."""
        token = bearer(request.headers.get("Authorization"))
        client = redis_clients.client()
        secret = instances.secret_key(client, instance_id)
        user_id = verify_user_token(token, instance_id, secret)
        devices.add_user(client, instance_id, device_id, platform, user_id, exclusive=True)
        return {}
