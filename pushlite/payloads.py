"""Provider payloads of a publish: built from a plain title/body (the MPush and
Twilio-style sends), and checked against each provider's size limit."""
from __future__ import annotations

import json
from typing import Any

# Largest payload each provider accepts (bytes of JSON). "matrix" is the push
# gateway notification object (event_id, room_id, type, sender, content,
# counts, prio, ...): gateways relay it to phones, so it is held to their size.
LIMITS = {"apns": 4096, "apns_voip": 5120, "fcm": 4096, "matrix": 4096}


class PayloadError(ValueError):
    """A payload the providers would refuse; the message says why."""


class PayloadTooLarge(PayloadError):
    pass


def from_message(title: str | None, body: str | None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The apns and fcm payloads of a notification with a title and a body."""
    alert = {k: v for k, v in (("title", title), ("body", body)) if v}
    apns: dict[str, Any] = {"aps": {"alert": alert, "sound": "default"}}
    fcm: dict[str, Any] = {"notification": dict(alert)}
    if data:
        apns["data"] = data
        fcm["data"] = data
    return {"apns": apns, "fcm": fcm}


def size(name: str, payload: dict[str, Any]) -> int:
    """Bytes the provider counts: APNs headers are not part of the body."""
    if name.startswith("apns"):
        payload = {k: v for k, v in payload.items() if k not in ("headers", "collapse_id", "expiration", "priority")}
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


def _title_and_body(payloads: dict[str, Any]) -> tuple[Any, Any]:
    """The title and body of the fcm notification, else of the apns alert."""
    notification = (payloads.get("fcm") or {}).get("notification")
    if isinstance(notification, dict) and (notification.get("title") or notification.get("body")):
        return notification.get("title"), notification.get("body")
    aps = (payloads.get("apns") or {}).get("aps")
    alert = aps.get("alert") if isinstance(aps, dict) else None
    if isinstance(alert, str):
        return None, alert
    if isinstance(alert, dict):
        return alert.get("title"), alert.get("body")
    return None, None


def matrix_notification(payloads: dict[str, Any]) -> dict[str, Any] | None:
    """A Matrix gateway notification for a publish that gives none: the title
    becomes ``room_name`` and the body ``content.body``. None when the publish
    has no visible text (a data-only push means nothing to a Matrix client)."""
    title, body = _title_and_body(payloads)
    title = title if isinstance(title, str) and title else None
    body = body if isinstance(body, str) and body else None
    if not (title or body):
        return None
    notification: dict[str, Any] = {"type": "m.room.message", "prio": "high"}
    if title and body:
        notification["room_name"] = title
    notification["content"] = {"msgtype": "m.text", "body": body or title}
    return notification


def check(payloads: dict[str, Any]) -> dict[str, Any]:
    """The payloads for the providers pushlite delivers to, within their limits
    (with a Matrix notification derived from the title and body when none is given)."""
    found = {name: payloads[name] for name in LIMITS if payloads.get(name) is not None}
    if not found:
        raise PayloadError("The publish has no payload for a supported platform: give apns, fcm or apns_voip.")
    if "matrix" in found and not isinstance(found["matrix"], dict):
        raise PayloadError("The matrix payload must be an object (a push gateway notification).")
    for name, payload in found.items():
        n = size(name, payload)
        if n > LIMITS[name]:
            raise PayloadTooLarge(f"The {name} payload is {n} bytes; the provider accepts at most {LIMITS[name]}.")
    if "matrix" not in found:
        derived = matrix_notification(found)
        if derived is not None:
            found["matrix"] = derived
    return found
