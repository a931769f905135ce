"""Provider credentials of an instance, and the dry-run outbox."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema

from pushlite import delivery, store
from pushlite.storage import credentials, instances, outbox
from workers.senders import CredentialError, sender_class

from .schemas import ApnsCredentialSchema, CredentialsSummarySchema, FcmCredentialSchema, OutboxSchema
from .views import admin_doc, blp


def store_credential(instance_id: str, provider: str, credential: dict[str, Any]) -> dict:
    """Check that a credential can work, store it encrypted, and return the
    instance's credential summary. Raises CredentialError (API and CLI alike)."""
    normalized = sender_class(provider).validate_credential(credential)
    credentials.put(store.client(), delivery.fernet(), instance_id, provider, normalized)
    return credentials.summary(store.client(), delivery.fernet(), instance_id)


def _store(instance_id: str, provider: str, credential: dict[str, Any]) -> dict:
    try:
        return store_credential(instance_id, provider, credential)
    except CredentialError as exc:
        abort(400, message=str(exc))


@blp.route("/instances/<instance_id>/credentials/fcm")
class FcmCredential(MethodView):
    @admin_doc
    @blp.arguments(FcmCredentialSchema, error_status_code=400)
    @blp.response(200, CredentialsSummarySchema)
    @blp.alt_response(400, schema=ErrorSchema, description="The credential cannot work")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def put(self, body: dict, instance_id: str):
        """Store the instance's FCM service account (encrypted at rest)."""
        return _store(instance_id, "fcm", body["service_account"])


@blp.route("/instances/<instance_id>/credentials/apns")
class ApnsCredential(MethodView):
    @admin_doc
    @blp.arguments(ApnsCredentialSchema, error_status_code=400)
    @blp.response(200, CredentialsSummarySchema)
    @blp.alt_response(400, schema=ErrorSchema, description="The credential cannot work")
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def put(self, body: dict, instance_id: str):
        """Store the instance's APNs token key (encrypted at rest)."""
        return _store(instance_id, "apns", body)


@blp.route("/instances/<instance_id>/credentials")
class Credentials(MethodView):
    @admin_doc
    @blp.response(200, CredentialsSummarySchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def get(self, instance_id: str):
        """Which providers are set, with their key ids (never the keys)."""
        instances.get(store.client(), instance_id)
        return credentials.summary(store.client(), delivery.fernet(), instance_id)


@blp.route("/instances/<instance_id>/credentials/<any(apns, fcm):provider>")
class CredentialByProvider(MethodView):
    @admin_doc
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance or no such credential")
    def delete(self, instance_id: str, provider: str):
        """Remove a provider credential; its devices are skipped from then on."""
        instances.get(store.client(), instance_id)
        if not credentials.delete(store.client(), instance_id, provider):
            abort(404, message=f"The instance has no {provider} credential.")


@blp.route("/instances/<instance_id>/outbox")
class Outbox(MethodView):
    @admin_doc
    @blp.response(200, OutboxSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown instance")
    def get(self, instance_id: str):
        """The latest 100 notifications a dry run recorded instead of sending (embedded default)."""
        instances.get(store.client(), instance_id)
        return {"notifications": outbox.latest(store.client(), instance_id)}
