"""Instances: create, list, get, delete, rotate the secret key and the VAPID key."""
from __future__ import annotations

from dataclasses import asdict

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema
from werkzeug.exceptions import NotFound

from pushlite import encryption, redis_clients
from pushlite.auth import AuthError, bearer, same_secret
from pushlite.errors import handle_http_exception
from pushlite.parsing import StrictJsonBlueprint
from pushlite.storage import instances, vapid
from pushlite.storage.errors import InstanceNotFound

from .schemas import InstanceCreateSchema, InstanceSchema, InstanceWithSecretSchema, SecretKeySchema, VapidKeySchema

blp = StrictJsonBlueprint(
    "admin",
    __name__,
    url_prefix="/admin/v1",
    description="Operator API: instances (tenants). `Authorization: Bearer $PUSHLITE_ADMIN_TOKEN`.",
)


def admin_doc(view):
    """Document the admin token and its 401 on an admin operation."""
    view = blp.alt_response(401, schema=ErrorSchema, description="Missing or wrong admin token")(view)
    return blp.doc(security=[{"AdminToken": []}])(view)


@blp.before_request
def require_admin_token() -> None:
    try:
        token = bearer(request.headers.get("Authorization"))
    except AuthError as exc:
        abort(401, message=exc.message)
    if not same_secret(token, current_app.config["PUSHLITE_ADMIN_TOKEN"]):
        abort(401, message="Invalid admin token.")


@blp.errorhandler(InstanceNotFound)
def instance_not_found(exc: InstanceNotFound) -> Response:
    return handle_http_exception(NotFound("Could not find the instance."))


@blp.route("/instances")
class Instances(MethodView):
    @admin_doc
    @blp.response(200, InstanceSchema(many=True))
    def get(self):
        """List every instance."""
        return [asdict(i) for i in instances.list_all(redis_clients.client())]

    @admin_doc
    @blp.arguments(InstanceCreateSchema)
    @blp.response(201, InstanceWithSecretSchema)
    def post(self, body: dict) -> dict:
        """Create an instance (with its VAPID key pair); the response is the only one that shows its secret key."""
        instance = instances.create(redis_clients.client(), body["name"])
        vapid.ensure(redis_clients.client(), encryption.fernet(), instance.id)
        return asdict(instance)


@blp.route("/instances/<instance_id>")
class InstanceById(MethodView):
    @admin_doc
    @blp.response(200, InstanceSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def get(self, instance_id: str) -> dict:
        """Get an instance (never its secret key)."""
        return asdict(instances.get(redis_clients.client(), instance_id))

    @admin_doc
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def delete(self, instance_id: str) -> None:
        """Delete an instance and every device, interest and user it has."""
        instances.delete(redis_clients.client(), instance_id)


@blp.route("/instances/<instance_id>/secret_key")
class SecretKey(MethodView):
    @admin_doc
    @blp.response(200, SecretKeySchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def post(self, instance_id: str) -> dict:
        """Rotate the secret key; the new one is shown once, the old one stops working."""
        instance = instances.rotate_secret(redis_clients.client(), instance_id)
        return {"id": instance.id, "secret_key": instance.secret_key}


@blp.route("/instances/<instance_id>/vapid_key")
class VapidKey(MethodView):
    @admin_doc
    @blp.response(200, VapidKeySchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def post(self, instance_id: str) -> dict:
        """Rotate the VAPID key pair (Web Push); browsers subscribed with the old public key must subscribe again."""
        public_key = vapid.rotate(redis_clients.client(), encryption.fernet(), instance_id)
        return {"id": instance_id, "vapid_public_key": public_key}
