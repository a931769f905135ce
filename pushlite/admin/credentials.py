"""Provider credentials of an instance and of its apps, and the dry-run outbox.

Every credential route exists twice: ``/instances/<id>/credentials/...`` for
the instance's own credentials and ``/instances/<id>/apps/<app>/credentials/...``
for an app's (a device registered with that app name is delivered with them).
"""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema

from pushlite import encryption, redis_clients
from pushlite.platforms import CREDENTIAL_PROVIDERS
from pushlite.storage import apps, credentials, instances, outbox
from pushlite.storage.credentials import INSTANCE
from workers.senders import CredentialError, sender_class

from .schemas import ApnsCredentialSchema, CredentialsSummarySchema, FcmCredentialSchema, OutboxSchema
from .views import admin_doc, blp

APP = "/instances/<instance_id>/apps/<app_name>"
PROVIDER = f"<any({', '.join(CREDENTIAL_PROVIDERS)}):provider>"


def store_credential(instance_id: str, provider: str, credential: dict[str, Any], app: str = INSTANCE) -> dict:
    """Check that a credential can work, store it encrypted (the instance's, or
    an app's), and return the summary of that owner's credentials. Raises
    CredentialError (API and CLI alike)."""
    normalized = sender_class(provider).validate_credential(credential)
    credentials.put(redis_clients.client(), encryption.fernet(), instance_id, provider, normalized, app)
    return credentials.summary(redis_clients.client(), encryption.fernet(), instance_id, app)


def owner(app_name: str | None) -> str:
    """The app a route names ("" for the instance's own credentials)."""
    if app_name is None:
        return INSTANCE
    if not apps.is_app_name(app_name):
        abort(400, message=f"An app name is {apps.APP_NAME_RULE}.")
    return app_name


def _store(  # type: ignore[return]  # flask-smorest's abort (untyped) always raises
    instance_id: str, provider: str, credential: dict[str, Any], app_name: str | None,
) -> dict:
    try:
        return store_credential(instance_id, provider, credential, owner(app_name))
    except CredentialError as exc:
        abort(400, message=str(exc))


@blp.route("/instances/<instance_id>/credentials/fcm")
@blp.route(APP + "/credentials/fcm")
class FcmCredential(MethodView):
    @admin_doc
    @blp.arguments(FcmCredentialSchema, error_status_code=400)
    @blp.response(200, CredentialsSummarySchema)
    @blp.alt_response(400, schema=ErrorSchema, description="The credential cannot work")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def put(self, body: dict, instance_id: str, app_name: str | None = None) -> dict:
        """Store the FCM service account of the instance, or of one app of it (encrypted at rest)."""
        return _store(instance_id, "fcm", body["service_account"], app_name)


@blp.route("/instances/<instance_id>/credentials/apns")
@blp.route(APP + "/credentials/apns")
class ApnsCredential(MethodView):
    @admin_doc
    @blp.arguments(ApnsCredentialSchema, error_status_code=400)
    @blp.response(200, CredentialsSummarySchema)
    @blp.alt_response(400, schema=ErrorSchema, description="The credential cannot work")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def put(self, body: dict, instance_id: str, app_name: str | None = None) -> dict:
        """Store the APNs token key of the instance, or of one app of it (encrypted at rest)."""
        return _store(instance_id, "apns", body, app_name)


@blp.route("/instances/<instance_id>/credentials")
@blp.route(APP + "/credentials")
class Credentials(MethodView):
    @admin_doc
    @blp.response(200, CredentialsSummarySchema)
    @blp.alt_response(400, schema=ErrorSchema, description="Not an app name")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def get(self, instance_id: str, app_name: str | None = None) -> dict:
        """Which providers the instance (or the app) has credentials for, with their key ids (never the keys)."""
        app = owner(app_name)
        instances.get(redis_clients.client(), instance_id)
        return credentials.summary(redis_clients.client(), encryption.fernet(), instance_id, app)


@blp.route("/instances/<instance_id>/credentials/" + PROVIDER)
@blp.route(APP + "/credentials/" + PROVIDER)
class CredentialByProvider(MethodView):
    @admin_doc
    @blp.response(204)
    @blp.alt_response(400, schema=ErrorSchema, description="Not an app name")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance or no such credential")
    def delete(self, instance_id: str, provider: str, app_name: str | None = None) -> None:
        """Remove a provider credential: the instance's (its devices are skipped from then on) or an app's
        (its devices fall back to the instance's)."""
        app = owner(app_name)
        instances.get(redis_clients.client(), instance_id)
        if not credentials.delete(redis_clients.client(), instance_id, provider, app):
            abort(404, message=f"The {'app' if app else 'instance'} has no {provider} credential.")


@blp.route("/instances/<instance_id>/outbox")
class Outbox(MethodView):
    @admin_doc
    @blp.response(200, OutboxSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def get(self, instance_id: str) -> dict:
        """The latest 100 notifications a dry run recorded instead of sending (embedded default)."""
        instances.get(redis_clients.client(), instance_id)
        return {"notifications": outbox.latest(redis_clients.client(), instance_id)}
