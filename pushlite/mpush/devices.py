"""MPush device views: a device's token, and its topics (pushlite interests,
so a topic and a Beams interest of the same name are the same set)."""
from __future__ import annotations

from flask.views import MethodView

from pushlite import platforms, redis_clients
from pushlite.apidoc import document_errors
from pushlite.storage import interests, mpush
from pushlite.storage.devices import MAX_INTERESTS_PER_DEVICE

from .blueprint import blp, instance_id, requires_token
from .errors import (
    BAD_PLATFORM,
    BAD_REQUEST,
    BAD_TOKEN,
    BAD_TOPIC,
    OK,
    TOO_MANY_TOPICS,
    MPushError,
    MPushStatusSchema,
)
from .schemas import MPushDeviceIdSchema, MPushTokensSchema, MPushTopicsSchema

# The platforms MPush registers, by the names it gives them.
PLATFORMS = {"ios": platforms.APNS, "android": platforms.FCM}
SUCCESS = {"status_code": OK}


def check_topics(names: list) -> list[str]:
    if not all(interests.is_interest_name(name) for name in names):
        raise MPushError(BAD_TOPIC, "Topic names are 1-164 characters of A-Z a-z 0-9 _ - = @ , . ;")
    return list(dict.fromkeys(names))


@blp.route("/tokens")
class Tokens(MethodView):
    @requires_token()
    @blp.arguments(MPushTokensSchema, error_status_code=400)
    @blp.response(200, MPushStatusSchema)
    @document_errors(400, 401, 413, 415, 503)
    def post(self, body: dict) -> dict:
        """Register a device token, or give a known device_id its new token (it keeps its topics)."""
        if body["platform"] not in PLATFORMS:
            raise MPushError(BAD_PLATFORM, "platform must be ios or android.")
        platform = PLATFORMS[body["platform"]]
        if not platform.accepts(body["token"]):
            raise MPushError(BAD_TOKEN, f"token is not a valid {platform.label} device token.")
        mpush.set_token(redis_clients.client(), instance_id(), body["device_id"], platform.name, body["token"])
        return SUCCESS


@blp.route("/register")
class Register(MethodView):
    @requires_token()
    @blp.arguments(MPushTopicsSchema, error_status_code=400)
    @blp.response(200, MPushStatusSchema)
    @document_errors(400, 401, 404, 413, 415, 503)
    def post(self, body: dict) -> dict:
        """Register a device to topics, creating them on first use (at most 5000 per device)."""
        names = check_topics(body["topics"])
        if not names:
            raise MPushError(BAD_REQUEST, "topics must name at least one topic.")
        if len(names) > MAX_INTERESTS_PER_DEVICE:
            raise MPushError(TOO_MANY_TOPICS, "A device can be registered to at most 5000 topics.")
        client = redis_clients.client()
        device = mpush.device_of(client, instance_id(), body["device_id"])
        interests.add(client, instance_id(), device.id, None, names)
        return SUCCESS


@blp.route("/unregister")
class Unregister(MethodView):
    @requires_token()
    @blp.arguments(MPushTopicsSchema, error_status_code=400)
    @blp.response(200, MPushStatusSchema)
    @document_errors(400, 401, 404, 413, 415, 503)
    def post(self, body: dict) -> dict:
        """Unregister a device from topics; topics it is not registered to are ignored."""
        names = [name for name in body["topics"] if interests.is_interest_name(name)]
        client = redis_clients.client()
        device = mpush.device_of(client, instance_id(), body["device_id"])
        if names:
            interests.remove(client, instance_id(), device.id, None, names)
        return SUCCESS


@blp.route("/unregister-all")
class UnregisterAll(MethodView):
    @requires_token()
    @blp.arguments(MPushDeviceIdSchema, error_status_code=400)
    @blp.response(200, MPushStatusSchema)
    @document_errors(400, 401, 404, 413, 415, 503)
    def post(self, body: dict) -> dict:
        """Unregister a device from all its topics."""
        client = redis_clients.client()
        device = mpush.device_of(client, instance_id(), body["device_id"])
        interests.replace(client, instance_id(), device.id, None, [])
        return SUCCESS
