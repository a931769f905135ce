"""Sends to users, and their progress (an operation is a pushlite publish)."""
from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

from flask.views import MethodView

from pushlite import payloads, publishing, redis_clients
from pushlite.apidoc import document_errors
from pushlite.storage import apps, publishes
from pushlite.storage.cluster import DataClient
from pushlite.storage.publishes import PublishNotFound

from .blueprint import blp, document_basic_auth, instance_id
from .errors import invalid, not_found
from .schemas import TwilioOperationAcceptedSchema, TwilioOperationSchema, TwilioSendSchema

MAX_USERS = 1000
OPERATION_PREFIX = "comms_operation_"
OPERATION_ID = re.compile(OPERATION_PREFIX + r"[0-9a-f]{32}")


def operation_id(publish_id: str) -> str:
    """``pubid-<uuid>`` <-> ``comms_operation_<uuid hex>``: the same id, Twilio-shaped."""
    return OPERATION_PREFIX + uuid.UUID(publish_id.removeprefix("pubid-")).hex


def publish_id_of(operation: str) -> str | None:
    if not OPERATION_ID.fullmatch(operation):
        return None
    return "pubid-" + str(uuid.UUID(operation.removeprefix(OPERATION_PREFIX)))


def iso(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    return datetime.fromtimestamp(int(timestamp), UTC).isoformat().replace("+00:00", "Z")


def app_filter(client: DataClient, iid: str, app_name: str | None) -> dict[str, str]:
    """Which devices a send reaches, as the publish records it: those of the
    app it names, else (as Twilio's) those of the default app, plus the
    devices of no app (registered through Beams, Discord-style or Matrix).
    The default is read now: changing it later does not change this send."""
    if app_name:
        return {"app": app_name, "apps": json.dumps([app_name])}
    default = apps.default_app(client, iid)
    return {"apps": json.dumps([default, ""] if default else [""])}


@blp.route("/PushNotifications")
class PushNotifications(MethodView):
    @document_basic_auth
    @blp.arguments(TwilioSendSchema, error_status_code=400)
    @blp.response(202, TwilioOperationAcceptedSchema)
    @document_errors(400, 401, 413, 415, 503)
    def post(self, body: dict) -> dict:
        """Send a notification to 1-1000 users: their devices of `appName`, else of the default app and of no app."""
        users = list(dict.fromkeys(recipient["userId"] for recipient in body["to"]))
        if not users:
            raise invalid('Invalid parameter "to": name at least one user.')
        if len(users) > MAX_USERS:
            raise invalid(f'Invalid parameter "to": at most {MAX_USERS} users.')
        content = body["content"]
        if not (content.get("title") or content.get("body")):
            raise invalid('Invalid parameter "content": give a title or a body.')
        iid = instance_id()
        payload = payloads.from_message(content.get("title"), content.get("body"))
        try:
            publish_id = publishing.publish(iid, "users", users, payload,
                                            app_filter(redis_clients.client(), iid, body.get("appName")))
        except payloads.PayloadError as exc:
            raise invalid(f'Invalid parameter "content": {exc}') from None
        operation = operation_id(publish_id)
        return {"id": operation, "status": "queued", "uri": f"/PushNotifications/Operations/{operation}"}


@blp.route("/PushNotifications/Operations/<operation>")
class Operation(MethodView):
    @document_basic_auth
    @blp.response(200, TwilioOperationSchema)
    @document_errors(401, 404, 503)
    def get(self, operation: str) -> dict:
        """A send's progress: status, and how many devices were targeted, delivered, failed, retried, removed, skipped."""  # noqa: E501 (one line: it is the OpenAPI summary)
        publish_id = publish_id_of(operation)
        try:
            if publish_id is None:
                raise PublishNotFound(operation)
            record = publishes.get(redis_clients.client(), instance_id(), publish_id)
        except PublishNotFound:
            raise not_found() from None
        counters = {name: int(record.get(name, 0)) for name in publishes.COUNTERS}
        return {
            "id": operation,
            "status": record["status"],
            "appName": record.get("app") or None,
            "createdAt": iso(record.get("created_at")),
            "finishedAt": iso(record.get("finished_at")),
            **counters,
            "failures": [{"deviceId": f.get("device_id"), "reason": f.get("reason")} for f in record["failures"]],
        }
