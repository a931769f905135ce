"""The instance's default app: what a Twilio-style send that names no app reaches."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest.error_handler import ErrorSchema

from pushlite import redis_clients
from pushlite.storage import apps

from .schemas import DefaultAppSchema
from .views import admin_doc, blp


@blp.route("/instances/<instance_id>/twilio/default_app")
class DefaultApp(MethodView):
    @admin_doc
    @blp.response(200, DefaultAppSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def get(self, instance_id: str) -> dict:
        """The default app (null until an app is registered or set)."""
        return {"appName": apps.default_app(redis_clients.client(), instance_id)}

    @admin_doc
    @blp.arguments(DefaultAppSchema, error_status_code=400)
    @blp.response(200, DefaultAppSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="Not an app name")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def put(self, body: dict, instance_id: str) -> dict:
        """Set the default app: Twilio-style sends that name no app reach its devices (and devices of no app)."""
        apps.set_default(redis_clients.client(), instance_id, body["appName"])
        return {"appName": body["appName"]}
