"""APNs sender: token-based auth over one long-lived HTTP/2 connection per host.

The payload is the APNs JSON body (`{"aps": {...}, ...custom keys}`) as a
Beams publish carries it. Request headers come from it too, the way the Beams
server SDKs type the `apns` object: top-level `priority` (5 | 10),
`expiration` (unix seconds) and `collapse_id` become `apns-priority`,
`apns-expiration` and `apns-collapse-id` and are not sent in the body. A
top-level `headers` dict (`apns-priority`, `apns-expiration`,
`apns-collapse-id`, `apns-push-type`) is accepted as well and wins.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization

from workers.senders.apns_auth import ProviderToken, validate_apns_credential
from workers.senders.base import HTTPSender, Outcome, SenderSettings, Target
from workers.senders.clients import ClientPool
from workers.senders.h2client import H2Client, Reply
from workers.senders.wire import dumps, json_object

PRODUCTION_ORIGIN = "https://api.push.apple.com"
SANDBOX_ORIGIN = "https://api.sandbox.push.apple.com"

BEAMS_HEADER_KEYS = {"priority": "apns-priority", "expiration": "apns-expiration", "collapse_id": "apns-collapse-id"}
OVERRIDABLE_HEADERS = frozenset({"apns-priority", "apns-expiration", "apns-collapse-id", "apns-push-type"})
# A token APNs calls invalid. DeviceTokenNotForTopic is not one: the token is
# fine but belongs to another app than the credential's topic (a credential
# problem, e.g. an app without credentials of its own), so it is a failure.
DEAD_REASONS = frozenset({"BadDeviceToken"})
# Apple's size limits: a larger body fails locally instead of on every stream.
MAX_BODY = {"apns": 4096, "apns_voip": 5120}


class PayloadError(ValueError):
    """A payload no APNs request can carry; every target fails with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """What one batch sends to every target: the body bytes and headers by platform."""

    body: bytes
    headers: Mapping[str, Mapping[str, str]]  # "apns" / "apns_voip" -> request headers


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PayloadError(f"apns:payload:bad-{name}")
    text = str(value)
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise PayloadError(f"apns:payload:bad-{name}")
    return text


def is_background(aps: Any) -> bool:
    """A push that only wakes the app: `content-available` and no alert, sound or badge."""
    if not isinstance(aps, dict) or not aps.get("content-available"):
        return False
    return not any(key in aps for key in ("alert", "sound", "badge"))


def prepare(payload: Mapping[str, Any], topic: str) -> PreparedRequest:
    """Split a Beams APNs payload into the body (serialized once) and the headers per platform."""
    body = dict(payload)
    overrides: dict[str, str] = {}
    for key, header in BEAMS_HEADER_KEYS.items():
        if key in body:
            overrides[header] = _header_value(header, body.pop(key))
    extra = body.pop("headers", None)
    if isinstance(extra, dict):
        for name, value in extra.items():
            name = str(name).lower()
            if name in OVERRIDABLE_HEADERS:
                overrides[name] = _header_value(name, value)
    push_type = overrides.pop("apns-push-type", None)
    if push_type is None:
        push_type = "background" if is_background(body.get("aps")) else "alert"
    alert = {"apns-topic": topic, "apns-push-type": push_type, **overrides}
    if push_type == "background":
        alert["apns-priority"] = "5"  # Apple rejects priority 10 for background pushes
    voip = {"apns-topic": f"{topic}.voip", "apns-push-type": "voip", **overrides}
    return PreparedRequest(body=dumps(body), headers={"apns": alert, "apns_voip": voip})


def classify(status: int, reason: str) -> str:
    """Sort an APNs answer into "delivered", "dead", "retry" or "failed"."""
    if status == 200:
        return "delivered"
    if status == 410 or (status == 400 and reason in DEAD_REASONS):
        return "dead"
    if status == 429 or status >= 500 or (status == 403 and reason == "ExpiredProviderToken"):
        return "retry"
    return "failed"


def error_reason(response: Reply) -> str:
    """APNs' `reason` string from an error body, or "unreadable"."""
    body = json_object(response.content)
    reason = body.get("reason") if body else None
    return reason if isinstance(reason, str) and reason else "unreadable"


class APNsSender(HTTPSender[tuple[Target, PreparedRequest]]):
    """Sends one payload to many APNs devices concurrently, reusing connections and the provider token."""

    provider = "apns"

    def __init__(self, credential: dict[str, Any], settings: SenderSettings) -> None:
        super().__init__(credential, settings)
        self.topic: str = credential["topic"]
        self.environment: str = credential["environment"]  # "production" | "development"
        key = serialization.load_pem_private_key(credential["private_key"].encode(), password=None)
        self.provider_token = ProviderToken(credential["key_id"], credential["team_id"], key)  # type: ignore[arg-type]
        self._clients: ClientPool[str, H2Client] = ClientPool(lambda origin: H2Client(origin, settings.timeout))

    @classmethod
    def validate_credential(cls, credential: dict[str, Any]) -> dict[str, Any]:
        return validate_apns_credential(credential)

    def origin(self, target: Target) -> str:
        """The APNs host for a target: its own environment, else the credential's."""
        if self.settings.apns_endpoint:
            return self.settings.apns_endpoint.rstrip("/")
        environment = target.environment or self.environment
        return PRODUCTION_ORIGIN if environment == "production" else SANDBOX_ORIGIN

    async def requests(
        self, targets: Sequence[Target], payload: dict[str, Any], outcome: Outcome
    ) -> list[tuple[Target, PreparedRequest]]:
        try:
            request = prepare(payload, self.topic)
        except PayloadError as exc:
            outcome.failed.extend((t.device_id, exc.reason) for t in targets)
            return []
        return [(target, request) for target in targets]

    @staticmethod
    def device_ids(request: tuple[Target, PreparedRequest]) -> list[str]:
        return [request[0].device_id]

    async def post(self, request: tuple[Target, PreparedRequest], outcome: Outcome) -> None:
        target, prepared = request
        headers = prepared.headers.get(target.platform)
        if headers is None:
            outcome.failed.append((target.device_id, f"apns:unsupported-platform:{target.platform}"))
            return
        if len(prepared.body) > MAX_BODY[target.platform]:
            outcome.failed.append((target.device_id, "apns:413:PayloadTooLarge"))
            return
        client = self._clients.get(self.origin(target))
        path = "/3/device/" + quote(target.token, safe="")
        for attempt in (1, 2):
            token = self.provider_token.value
            response = await outcome.timed(client.post(
                path, content=prepared.body, headers={**headers, "authorization": "bearer " + token}
            ))
            if response.status_code == 200:
                outcome.delivered.append(target.device_id)
                return
            reason = error_reason(response)
            if attempt == 1 and response.status_code == 403 and reason == "ExpiredProviderToken":
                self.provider_token.refresh(stale=token)
                continue
            break
        kind = classify(response.status_code, reason)
        outcome.record(target.device_id, kind, response, f"apns:{response.status_code}:{reason}")

    async def aclose(self) -> None:
        await self._clients.aclose()
