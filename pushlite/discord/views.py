"""Discord-style push devices: ``/users/@me/devices`` for the caller named by
a user JWT. A device registered here is the same device as the same token
registered through Beams (same id), attached to the caller without excluding
other users, so a phone signed in to several accounts is one device."""
from __future__ import annotations

from flask import Response, g, request
from flask.views import MethodView

from pushlite import platforms, redis_clients
from pushlite.apidoc import document_errors
from pushlite.auth import AuthError
from pushlite.parsing import Blueprint
from pushlite.platforms import Platform
from pushlite.storage import devices
from pushlite.storage.errors import UserDeviceLimit
from pushlite.user_auth import authenticate

from .errors import INVALID_JSON, error, invalid_form_body, max_devices, unauthorized
from .schemas import (
    VOIP_PROVIDERS,
    DiscordDeviceSchema,
    DiscordRegisterSchema,
    DiscordSyncSchema,
    SyncResultSchema,
    SyncTokenSchema,
)
from .sync_tokens import issue as issue_sync_token
from .sync_tokens import verify as verify_sync_token

blp = Blueprint(
    "discord_devices",
    __name__,
    url_prefix="/users/@me/devices",
    description="Discord-style push devices (`Authorization: Bearer <user JWT>`).",
)

# Discord's provider names: the platform and APNs environment each stands for.
PLATFORMS: dict[str, tuple[Platform, str | None]] = {
    "gcm": (platforms.FCM, None),
    "apns": (platforms.APNS, "production"),
    "apns_internal": (platforms.APNS, "sandbox"),
    "apns_voip": (platforms.APNS_VOIP, "production"),
    "apns_internal_voip": (platforms.APNS_VOIP, "sandbox"),
}


@blp.before_request
def authenticate_caller() -> None:
    try:
        g.caller = authenticate(redis_clients.client(), request.headers.get("Authorization"))
    except AuthError as exc:
        raise unauthorized(exc.message) from None
    if request.method in ("POST", "PUT", "DELETE"):
        if request.mimetype != "application/json" or not isinstance(request.get_json(silent=True), dict):
            raise error(400, INVALID_JSON, "The request body contains invalid JSON.")


def device(provider: str, token: str, field: str = "") -> tuple[str, str | None, str]:
    """(platform, environment, token) of a provider and token, or a 400."""
    if provider not in PLATFORMS:
        raise invalid_form_body(f"{field}provider", f"Unknown push provider {provider!r}.")
    platform, environment = PLATFORMS[provider]
    if not platform.accepts(token):
        raise invalid_form_body(f"{field}token", f"Invalid {platform.label} token.")
    return platform.name, environment, token


def register(user_id: str, tokens: list[tuple[str, str | None, str]]) -> None:
    try:
        devices.register_for_user(redis_clients.client(), g.caller.instance_id, user_id, tokens)
    except UserDeviceLimit:
        raise max_devices() from None


def no_content() -> Response:
    return Response(status=204)


@blp.route("")
class Devices(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.arguments(DiscordRegisterSchema, error_status_code=400)
    @blp.response(204)
    @document_errors(400, 401, 503)
    def post(self, body: dict) -> Response:
        """Register the caller's push token (and VoIP token): 204.

        The device counts toward the caller's 100 devices; the token and the
        VoIP token are registered together or not at all.
        """
        tokens = [device(body["provider"], body["token"])]
        voip_provider, voip_token = body.get("voip_provider"), body.get("voip_token")
        if voip_provider or voip_token:
            if not voip_provider:
                raise invalid_form_body("voip_provider", "Required with voip_token.")
            if not voip_token:
                raise invalid_form_body("voip_token", "Required with voip_provider.")
            if voip_provider not in VOIP_PROVIDERS:
                raise invalid_form_body("voip_provider", "Must be apns_voip or apns_internal_voip.")
            tokens.append(device(voip_provider, voip_token, "voip_"))
        register(g.caller.user_id, tokens)
        return no_content()

    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.arguments(DiscordDeviceSchema, error_status_code=400)
    @blp.response(204)
    @document_errors(400, 401, 503)
    def delete(self, body: dict) -> Response:
        """Unregister the caller's push token: 204.

        The caller is detached from the device, which is deleted when no other
        account has it. Another account's token is left alone (still 204).
        """
        if body["provider"] not in PLATFORMS:
            raise invalid_form_body("provider", f"Unknown push provider {body['provider']!r}.")
        platform, _ = PLATFORMS[body["provider"]]
        devices.unregister_for_user(redis_clients.client(), g.caller.instance_id, g.caller.user_id, platform.name,
                                    body["token"])
        return no_content()


@blp.route("/sync-token")
class SyncToken(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.response(200, SyncTokenSchema)
    @document_errors(401, 503)
    def get(self):
        """Get a sync token for the caller (valid 30 days; signed, not stored)."""
        caller = g.caller
        return {"token": issue_sync_token(caller.instance_id, caller.secret_key, caller.user_id)}


@blp.route("/sync")
class Sync(MethodView):
    @blp.doc(security=[{"BeamsUserJWT": []}])
    @blp.arguments(DiscordSyncSchema, error_status_code=400)
    @blp.response(200, SyncResultSchema)
    @document_errors(400, 401, 503)
    def put(self, body: dict) -> dict:
        """Register the push token for the caller and for every account whose sync token is valid.

        Each account is registered in one atomic step. Tokens that are not
        valid for this instance (tampered with, expired, another instance's)
        and accounts that already have 100 devices are listed as invalid.
        """
        caller = g.caller
        token = device(body["provider"], body["token"])
        register(caller.user_id, [token])
        client = redis_clients.client()
        invalid: list[str] = []
        done = {caller.user_id}
        for sync_token in dict.fromkeys(body["push_sync_tokens"]):
            user_id = verify_sync_token(sync_token, caller.instance_id, caller.secret_key)
            if user_id in done:
                continue
            try:
                if user_id is not None:
                    devices.register_for_user(client, caller.instance_id, user_id, [token])
                    done.add(user_id)
                    continue
            except UserDeviceLimit:
                pass
            invalid.append(sync_token)
        return {"invalid_push_sync_tokens": invalid}
