"""Beams device interest views: get (paged), set, add, remove."""
from __future__ import annotations

import base64
import binascii

from flask.views import MethodView

from pushlite import redis_clients
from pushlite.apidoc import document_errors
from pushlite.errors import ApiError
from pushlite.storage import devices, interests
from pushlite.storage.devices import MAX_INTERESTS_PER_DEVICE

from .blueprint import blp, json_body, malformed_device_id
from .devices import PLATFORM
from .errors import interest_set_too_large
from .schemas import EmptySchema, InterestsPageSchema, InterestsQuerySchema, InterestsSchema


def invalid_interest_name() -> ApiError:
    return ApiError(400, "Invalid interest name", "interest-name given is not valid.")


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        after = None
    if after is None or not interests.is_interest_name(after):
        raise ApiError(400, "Bad Request", "cursor given is not valid.")
    return after


@blp.route(f"/{PLATFORM}/<device_id>/interests")
class Interests(MethodView):
    @blp.arguments(InterestsQuerySchema(), location="query", error_status_code=400)
    @blp.response(200, InterestsPageSchema)
    @document_errors(404, 503)
    def get(self, query: dict, instance_id: str, platform: str, device_id: str) -> dict:
        """List the device's interests, a page at a time (`limit`, `cursor`)."""
        after = decode_cursor(query["cursor"]) if "cursor" in query else None
        device = devices.get(redis_clients.client(), instance_id, device_id, platform)
        names, last = interests.page(device.interests, query["limit"], after)
        metadata = {"nextCursor": encode_cursor(last)} if last else {}
        return {"interests": names, "responseMetadata": metadata}

    @json_body
    @blp.arguments(InterestsSchema(), error_status_code=400)
    @blp.response(200, EmptySchema)
    @document_errors(404, 503)
    def put(self, body: dict, instance_id: str, platform: str, device_id: str) -> dict:
        """Replace the device's interests (at most 5000)."""
        names = body["interests"]
        if not all(interests.is_interest_name(name) for name in names):
            raise invalid_interest_name()
        if len(set(names)) > MAX_INTERESTS_PER_DEVICE:
            raise interest_set_too_large()
        interests.replace(redis_clients.client(), instance_id, device_id, platform, names)
        return {}


# A path converter, so that an encoded slash reaches the name check.
@blp.route(f"/{PLATFORM}/<device_id>/interests/<path:interest_name>")
class Interest(MethodView):
    @malformed_device_id(400, "Bad Request", "device-id given is not valid.")
    @blp.response(200, EmptySchema)
    @document_errors(400, 404, 503)
    def post(self, instance_id: str, platform: str, device_id: str, interest_name: str) -> dict:
        """Subscribe the device to an interest."""
        if not interests.is_interest_name(interest_name):
            raise invalid_interest_name()
        interests.add(redis_clients.client(), instance_id, device_id, platform, [interest_name])
        return {}

    @malformed_device_id(400, "Incomplete Request", "device-id given is not valid.")
    @blp.response(200, EmptySchema)
    @document_errors(400, 404, 503)
    def delete(self, instance_id: str, platform: str, device_id: str, interest_name: str) -> dict:
        """Unsubscribe the device from an interest."""
        if not interests.is_interest_name(interest_name):
            raise invalid_interest_name()
        interests.remove(redis_clients.client(), instance_id, device_id, platform, [interest_name])
        return {}
