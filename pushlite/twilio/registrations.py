"""Device registrations: a token stored for a user and an app, with tags."""
from __future__ import annotations

from urllib.parse import quote

from flask.views import MethodView

from pushlite import redis_clients
from pushlite.apidoc import document_errors
from pushlite.storage import twilio
from pushlite.storage.records import Device
from pushlite.storage.twilio import Registration

from .blueprint import blp, document_basic_auth, instance_id
from .errors import invalid
from .schemas import TwilioRegistrationBodySchema, TwilioRegistrationSchema


def shown(registration: Registration, device: Device) -> dict:
    """A registration as the seed shows it (the device's current token)."""
    user, app = registration.user_id, registration.app
    return {
        "appName": app,
        "userId": user,
        "devices": [{"provider": registration.provider, "token": device.token}],
        "id": registration.id,
        "related": [
            {"id": user, "name": "user", "uri": f"/Users/{quote(user, safe='')}"},
            {"id": app, "name": "push_notification_app", "uri": f"/PushNotifications/Apps/{app}"},
        ],
        "tags": registration.tags,
    }


@blp.route("/PushNotifications/DeviceRegistrations")
class DeviceRegistrations(MethodView):
    @document_basic_auth
    @blp.arguments(TwilioRegistrationBodySchema, error_status_code=400)
    @blp.response(201, TwilioRegistrationSchema, description="Registered")
    @blp.alt_response(200, schema=TwilioRegistrationSchema, description="The token was already registered so: "
                                                                  "its registration")
    @document_errors(400, 401, 409, 413, 415, 422, 503)
    def post(self, body: dict) -> tuple[dict, int]:
        """Register a device token for a user (a new comms_user_ when no userId is given) and an app, with tags."""
        platform = twilio.PLATFORMS[body["provider"]]
        if not platform.accepts(body["token"]):
            raise invalid(f'Invalid parameter "token": not an {platform.token_name}.')
        registration, device, created = twilio.register(
            redis_clients.client(), instance_id(), body["provider"], body["token"], body["appName"], body.get("userId"),
            body.get("tags"),
        )
        return shown(registration, device), 201 if created else 200


@blp.route("/PushNotifications/DeviceRegistrations/<registration_id>")
class DeviceRegistration(MethodView):
    @document_basic_auth
    @blp.response(200, TwilioRegistrationSchema)
    @document_errors(401, 404, 503)
    def get(self, registration_id: str) -> dict:
        """Get a device registration."""
        return shown(*twilio.get(redis_clients.client(), instance_id(), registration_id))

    @document_basic_auth
    @blp.response(204)
    @document_errors(401, 404, 503)
    def delete(self, registration_id: str) -> None:
        """Delete a registration: its user no longer reaches the token (the device goes when nothing else holds it)."""
        client = redis_clients.client()
        registration, _ = twilio.get(client, instance_id(), registration_id)
        twilio.delete(client, instance_id(), registration)
