"""Provider payloads of a publish: built from a plain title/body (the MPush and
Twilio-style sends), and checked against each provider's size limit."""
from __future__ import annotations

import json
from typing import Any

# Largest payload each provider accepts (bytes of JSON).
LIMITS = {"apns": 4096, "apns_voip": 5120, "fcm": 4096}


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


def check(payloads: dict[str, Any]) -> dict[str, Any]:
    """The payloads for the providers pushlite delivers to, within their limits."""
    found = {name: payloads[name] for name in LIMITS if payloads.get(name) is not None}
    if not found:
        raise PayloadError("The publish has no payload for a supported platform: give apns, fcm or apns_voip.")
    for name, payload in found.items():
        n = size(name, payload)
        if n > LIMITS[name]:
            raise PayloadTooLarge(f"The {name} payload is {n} bytes; the provider accepts at most {LIMITS[name]}.")
    return found
