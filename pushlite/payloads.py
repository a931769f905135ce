"""Provider payloads of a publish: built from a plain title/body (the MPush and
Twilio-style sends), checked against each provider's size limit, and given the
Beams delivery metadata (``with_insights``) the client SDKs report back with."""
from __future__ import annotations

import json
from typing import Any

# Largest payload each provider accepts (bytes of JSON). "matrix" is the push
# gateway notification object (event_id, room_id, type, sender, content,
# counts, prio, ...): gateways relay it to phones, so it is held to their size.
# "web" is what the browser decrypts (``web_message``): push services take
# 4096 bytes of body (RFC 8030), and aes128gcm adds an 86-byte header, a
# padding delimiter and a 16-byte tag (RFC 8291).
WEB_MESSAGE_LIMIT = 4096 - 86 - 1 - 16
LIMITS = {"apns": 4096, "apns_voip": 5120, "fcm": 4096, "matrix": 4096, "web": WEB_MESSAGE_LIMIT}

# The Beams web publish format: `notification` (title, body, icon, deep_link,
# hide_notification_if_site_has_focus), `data` (without the key "pusher"),
# `time_to_live` (seconds a push service keeps it for an offline browser);
# pushlite also takes `urgency` (RFC 8030).
WEB_MAX_TTL = 2_419_200  # four weeks, Beams' maximum and default
WEB_NOTIFICATION_STRINGS = ("title", "body", "icon", "deep_link")
URGENCIES = ("very-low", "low", "normal", "high")

# Where the SDKs read the delivery metadata: `data.pusher` (the Android SDK
# reads FCM data key "pusher" as a JSON string, which the FCM sender makes of
# any non-string data value; the iOS SDK reads `data.pusher` of the APNs
# payload; the Beams service worker ignores a push without `data.pusher`).
INSIGHTS_PLATFORMS = ("apns", "fcm", "web")
# Ids of the longest shape, to hold payloads to their limits with the metadata in.
_LONGEST_IDS = ("0" * 36, "pubid-" + "0" * 36)


class PayloadError(ValueError):
    """A payload the providers would refuse; the message says why."""


class PayloadTooLarge(PayloadError):
    pass


def from_message(title: str | None, body: str | None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The apns, fcm and web payloads of a notification with a title and a body."""
    alert = {k: v for k, v in (("title", title), ("body", body)) if v}
    apns: dict[str, Any] = {"aps": {"alert": alert, "sound": "default"}}
    fcm: dict[str, Any] = {"notification": dict(alert)}
    web: dict[str, Any] = {"notification": dict(alert)}
    if data:
        apns["data"] = data
        fcm["data"] = data
        # "pusher" is the delivery metadata's key in a browser's data.
        web["data"] = {k: v for k, v in data.items() if k != "pusher"}
    return {"apns": apns, "fcm": fcm, "web": web}


def web_message(payload: dict[str, Any]) -> dict[str, Any]:
    """What a browser receives of a web payload: the notification (always an
    object: the Beams service worker reads its fields) and the data."""
    message: dict[str, Any] = {"notification": payload.get("notification") or {}}
    if payload.get("data") is not None:
        message["data"] = payload["data"]
    return message


def size(name: str, payload: dict[str, Any]) -> int:
    """Bytes the provider counts: APNs headers are not part of the body, nor
    are a web payload's delivery options."""
    if name.startswith("apns"):
        payload = {k: v for k, v in payload.items() if k not in ("headers", "collapse_id", "expiration", "priority")}
    elif name == "web":
        payload = web_message(payload)
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


def _has_displayable_content(name: str, payload: dict[str, Any]) -> bool:
    if name == "apns":
        aps = payload.get("aps")
        return isinstance(aps, dict) and bool(aps.get("alert"))
    notification = payload.get("notification")
    return isinstance(notification, dict) and bool(notification.get("title") or notification.get("body"))


def with_insights(payloads: dict[str, Any], instance_id: str, publish_id: str) -> dict[str, Any]:
    """The payloads with the Beams delivery metadata in their ``data.pusher``
    (apns, fcm and web; Matrix and VoIP pushes reach no Beams SDK): the
    publish and instance ids the SDKs report a delivery or an open with, and
    whether the notification shows something and carries data of its own. A
    payload whose ``data`` is not an object is left as it is. Any ``pusher``
    key the publish gave in ``data`` is replaced."""
    out = dict(payloads)
    for name in INSIGHTS_PLATFORMS:
        payload = payloads.get(name)
        if not isinstance(payload, dict):
            continue
        data = payload.get("data", {})
        if not isinstance(data, dict):
            continue
        own = {k: v for k, v in data.items() if k != "pusher"}
        metadata = {
            "publishId": publish_id,
            "instanceId": instance_id,
            "hasDisplayableContent": _has_displayable_content(name, payload),
            "hasData": bool(own),
        }
        out[name] = {**payload, "data": {**own, "pusher": metadata}}
    return out


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


def check_web(payload: Any) -> None:
    """Refuse a web payload that is not in the Beams web format."""
    if not isinstance(payload, dict):
        raise PayloadError("The web payload must be an object.")
    notification = payload.get("notification")
    if notification is not None:
        if not isinstance(notification, dict):
            raise PayloadError("web.notification must be an object.")
        for key in WEB_NOTIFICATION_STRINGS:
            if notification.get(key) is not None and not isinstance(notification[key], str):
                raise PayloadError(f"web.notification.{key} must be a string.")
        hide = notification.get("hide_notification_if_site_has_focus")
        if hide is not None and not isinstance(hide, bool):
            raise PayloadError("web.notification.hide_notification_if_site_has_focus must be a boolean.")
    data = payload.get("data")
    if data is not None and not isinstance(data, dict):
        raise PayloadError("web.data must be an object.")
    if isinstance(data, dict) and "pusher" in data:
        raise PayloadError('web.data cannot contain the key "pusher".')
    ttl = payload.get("time_to_live")
    if ttl is not None and (type(ttl) is not int or not 0 <= ttl <= WEB_MAX_TTL):
        raise PayloadError(f"web.time_to_live must be an integer from 0 to {WEB_MAX_TTL} (seconds).")
    urgency = payload.get("urgency")
    if urgency is not None and urgency not in URGENCIES:
        raise PayloadError(f"web.urgency must be one of {', '.join(URGENCIES)}.")


def check(payloads: dict[str, Any]) -> dict[str, Any]:
    """The payloads for the providers pushlite delivers to, within their limits
    with the delivery metadata in (``with_insights``), and with a Matrix
    notification derived from the title and body when none is given."""
    found = {name: payloads[name] for name in LIMITS if payloads.get(name) is not None}
    if not found:
        raise PayloadError("The publish has no payload for a supported platform: give apns, fcm, web or apns_voip.")
    if "matrix" in found and not isinstance(found["matrix"], dict):
        raise PayloadError("The matrix payload must be an object (a push gateway notification).")
    if "web" in found:
        check_web(found["web"])
    stamped = with_insights(found, *_LONGEST_IDS)
    for name, payload in stamped.items():
        n = size(name, payload)
        if n > LIMITS[name]:
            metadata = " with its delivery metadata (data.pusher)" if name in INSIGHTS_PLATFORMS else ""
            raise PayloadTooLarge(
                f"The {name} payload is {n} bytes{metadata}; the provider accepts at most {LIMITS[name]}."
            )
    if "matrix" not in found:
        derived = matrix_notification(found)
        if derived is not None:
            found["matrix"] = derived
    return found
