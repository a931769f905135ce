"""FCM HTTP v1 sender: one `messages:send` stream per target over one HTTP/2 connection.

Classification follows the v1 error model (`error.status`, and the FCM
`errorCode` in `error.details[]`): UNREGISTERED, 404, or an INVALID_ARGUMENT
that names `message.token` means the token is dead; 429 and 5xx are temporary;
everything else is a permanent failure that leaves the token alone.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from workers.senders.base import HTTPSender, Outcome, SenderSettings, Target
from workers.senders.clients import ClientPool
from workers.senders.errors import OAuthError
from workers.senders.fcm_auth import AccessToken, validate_fcm_credential
from workers.senders.fcm_message import BodyTemplate, to_v1_message
from workers.senders.h2client import H2Client
from workers.senders.wire import as_list, as_str, json_object

log = logging.getLogger(__name__)

TOKEN_FIELD = "message.token"


def error_fields(content: bytes) -> tuple[str, str, str, list[str]] | None:
    """(status, errorCode, message, fieldViolation fields) of a v1 error body, None if unreadable."""
    body = json_object(content)
    error = body.get("error") if body else None
    if not isinstance(error, dict):
        return None
    status, message = as_str(error.get("status")), as_str(error.get("message"))
    code = ""
    fields: list[str] = []
    for detail in as_list(error.get("details")):
        if not isinstance(detail, dict):
            continue
        if isinstance(detail.get("errorCode"), str) and not code:
            code = detail["errorCode"]
        for violation in as_list(detail.get("fieldViolations")):
            if isinstance(violation, dict) and isinstance(violation.get("field"), str):
                fields.append(violation["field"])
    return status, code, message, fields


def classify(http_status: int, content: bytes) -> tuple[str, str]:
    """Sort an FCM answer: ("delivered" | "dead" | "retry" | "failed", reason for failed)."""
    if http_status == 200:
        return "delivered", ""
    status, code, message, fields = error_fields(content) or ("", "", "", [])
    reason = f"fcm:{http_status}:{code or status or 'unreadable'}"
    if http_status == 404 or "UNREGISTERED" in (code, status):
        return "dead", reason
    if http_status == 400 and status == "INVALID_ARGUMENT" and (
        TOKEN_FIELD in fields or TOKEN_FIELD in message or "registration token" in message.lower()
    ):
        return "dead", reason
    if http_status == 429 or http_status >= 500:
        return "retry", reason
    return "failed", reason


class FCMSender(HTTPSender[tuple[Target, BodyTemplate]]):
    """Sends one payload to many FCM tokens concurrently with a shared, cached access token."""

    provider = "fcm"

    def __init__(self, credential: dict[str, Any], settings: SenderSettings) -> None:
        super().__init__(credential, settings)
        self.project_id: str = credential["project_id"]
        self._clients: ClientPool[str, H2Client] = ClientPool(lambda origin: H2Client(origin, settings.timeout))
        self.access_token = AccessToken(credential, self._clients)
        self._endpoint = settings.fcm_endpoint.rstrip("/")
        self._path = f"/v1/projects/{quote(self.project_id, safe='')}/messages:send"

    @classmethod
    def validate_credential(cls, credential: dict[str, Any]) -> dict[str, Any]:
        return validate_fcm_credential(credential)

    async def requests(
        self, targets: Sequence[Target], payload: dict[str, Any], outcome: Outcome
    ) -> list[tuple[Target, BodyTemplate]]:
        template = BodyTemplate(to_v1_message(payload))
        try:
            await self.access_token.get()
        except OAuthError as exc:
            log.warning("fcm: token exchange for %s failed: %s", self.project_id, exc.reason)
            self._record_auth_failure([t.device_id for t in targets], exc, outcome)
            return []
        return [(target, template) for target in targets]

    @staticmethod
    def device_ids(request: tuple[Target, BodyTemplate]) -> list[str]:
        return [request[0].device_id]

    async def post(self, request: tuple[Target, BodyTemplate], outcome: Outcome) -> None:
        target, template = request
        try:
            await self._post(target, template, outcome)
        except OAuthError as exc:
            self._record_auth_failure([target.device_id], exc, outcome)

    async def _post(self, target: Target, template: BodyTemplate, outcome: Outcome) -> None:
        client = self._clients.get(self._endpoint)
        body = template.render(target.token)
        for attempt in (1, 2):
            token = await self.access_token.get()
            headers = {"authorization": "Bearer " + token, "content-type": "application/json"}
            response = await outcome.timed(client.post(self._path, content=body, headers=headers))
            if response.status_code == 200:
                outcome.delivered.append(target.device_id)
                return
            kind, reason = classify(response.status_code, response.content)
            if response.status_code != 401 or reason.endswith("THIRD_PARTY_AUTH_ERROR"):
                break
            if attempt == 1:
                await self.access_token.refresh(stale=token)
                continue
            kind = "retry"  # still 401 with a fresh token: let the job's backoff try later
        outcome.record(target.device_id, kind, response, reason)

    @staticmethod
    def _record_auth_failure(device_ids: list[str], exc: OAuthError, outcome: Outcome) -> None:
        if exc.temporary:
            outcome.retry_later(device_ids, exc.retry_after, "auth")
        else:
            outcome.failed.extend((device_id, exc.reason) for device_id in device_ids)

    async def aclose(self) -> None:
        await self._clients.aclose()
