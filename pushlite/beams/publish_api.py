"""The Beams Publish and Customer APIs (what the Beams server SDKs call),
authenticated with ``Authorization: Bearer <secret key>``."""
from __future__ import annotations

from flask import request
from flask.views import MethodView

from pushlite import payloads, publishing, redis_clients
from pushlite.apidoc import document_errors
from pushlite.auth import AuthError, bearer, same_secret
from pushlite.errors import ApiError
from pushlite.parsing import Blueprint
from pushlite.storage import devices, instances, interests, publishes
from pushlite.storage.errors import InstanceNotFound
from pushlite.storage.publishes import PublishNotFound

from .errors import install_handlers, instance_not_found
from .publish_schemas import (
    PublishInterestsSchema,
    PublishResponseSchema,
    PublishStatusSchema,
    PublishUsersSchema,
)
from .schemas import EmptySchema

publish_blp = Blueprint(
    "beams_publish", __name__, url_prefix="/publish_api/v1/instances/<instance_id>",
    description="Pusher Beams Publish API: what the Beams server SDKs call (`Bearer <secret key>`).",
)
customer_blp = Blueprint(
    "beams_customer", __name__, url_prefix="/customer_api/v1/instances/<instance_id>",
    description="Pusher Beams Customer API (`Bearer <secret key>`).",
)

MAX_INTERESTS = 100
MAX_USERS = 1000


def bad_request(description: str) -> ApiError:
    return ApiError(400, "Bad request", description)


def check_secret_key() -> None:
    """Every publish/customer request carries the instance's secret key."""
    instance_id = (request.view_args or {}).get("instance_id", "")
    if not instances.is_instance_id(instance_id):
        raise ApiError(400, "Bad Request", "instance-id given is not valid.")
    try:
        given = bearer(request.headers.get("Authorization"))
    except AuthError as exc:
        raise ApiError(401, "Unauthorized", exc.message) from None
    try:
        secret = instances.secret_key(redis_clients.client(), instance_id)
    except InstanceNotFound:
        raise instance_not_found() from None
    if not same_secret(given, secret):
        raise ApiError(401, "Unauthorized", "Incorrect API Key")
    if request.method == "POST" and not isinstance(request.get_json(silent=True), dict):
        raise ApiError(400, "Bad request", "Failed to read body as a JSON object.")


for _blueprint in (publish_blp, customer_blp):
    _blueprint.before_request(check_secret_key)
    install_handlers(_blueprint)


def _publish(instance_id: str, kind: str, targets: list[str], body: dict) -> dict:
    try:
        return {"publishId": publishing.publish(instance_id, kind, targets, body)}
    except payloads.PayloadTooLarge as exc:
        raise ApiError(400, "Payload too large", str(exc)) from None
    except payloads.PayloadError as exc:
        raise bad_request(str(exc)) from None



@publish_blp.route("/publishes/interests")
class PublishToInterests(MethodView):
    @publish_blp.doc(security=[{"SecretKey": []}])
    @publish_blp.arguments(PublishInterestsSchema(), error_status_code=400)
    @publish_blp.response(200, PublishResponseSchema)
    @document_errors(401, 404, 413, 503)
    def post(self, body: dict, instance_id: str) -> dict:
        """Publish to the devices subscribed to 1-100 interests (each device gets it once)."""
        names = body["interests"]
        if not names:
            raise bad_request("Publish must target at least one interest.")
        if len(names) > MAX_INTERESTS:
            raise bad_request(f"Publish can target at most {MAX_INTERESTS} interests.")
        if not all(interests.is_interest_name(n) for n in names):
            raise ApiError(400, "Invalid interest name", "interest-name given is not valid.")
        return _publish(instance_id, "interests", list(dict.fromkeys(names)), body)


@publish_blp.route("/publishes/users")
class PublishToUsers(MethodView):
    @publish_blp.doc(security=[{"SecretKey": []}])
    @publish_blp.arguments(PublishUsersSchema(), error_status_code=400)
    @publish_blp.response(200, PublishResponseSchema)
    @document_errors(401, 404, 413, 503)
    def post(self, body: dict, instance_id: str) -> dict:
        """Publish to every device of 1-1000 users."""
        users = body["users"]
        if not users:
            raise bad_request("Publish must target at least one user.")
        if len(users) > MAX_USERS:
            raise bad_request(f"Publish can target at most {MAX_USERS} users.")
        if not all(isinstance(u, str) and 1 <= len(u) <= 164 for u in users):
            raise bad_request("User ids must be strings of 1-164 characters.")
        return _publish(instance_id, "users", list(dict.fromkeys(users)), body)


@publish_blp.route("/publishes/<publish_id>")
class PublishStatus(MethodView):
    @publish_blp.doc(security=[{"SecretKey": []}])
    @publish_blp.response(200, PublishStatusSchema)
    @document_errors(401, 404, 503)
    def get(self, instance_id: str, publish_id: str) -> dict:
        """A publish's progress: status and how many devices were targeted, delivered, failed, retried, removed,
        skipped, and reported it acknowledged or opened."""
        try:
            record = publishes.get(redis_clients.client(), instance_id, publish_id)
        except PublishNotFound:
            raise ApiError(404, "Publish not found", "Could not find the publish (they are kept for 7 days).") from None
        return {"publishId": publish_id, **record}


@customer_blp.route("/users/<user_id>")
class User(MethodView):
    @customer_blp.doc(security=[{"SecretKey": []}])
    @customer_blp.response(200, EmptySchema)
    @document_errors(401, 404, 503)
    def delete(self, instance_id: str, user_id: str) -> dict:
        """Delete a user and all their devices."""
        devices.delete_user(redis_clients.client(), instance_id, user_id)
        return {}
