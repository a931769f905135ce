"""Beams' FCM payload (the legacy HTTP shape) mapped to an FCM HTTP v1 message.

Beams publishes `{"notification": {...}, "data": {...}, "priority",
"time_to_live", "collapse_key"}`, the legacy downstream format. HTTP v1 keeps
only title, body and image in `message.notification`; the other legacy
notification keys are Android options (`message.android.notification`), the
delivery options move to `message.android`, and data values must be strings.
v1 blocks already in the payload (`android`, `apns`, `webpush`, `fcm_options`)
are passed through; mapped legacy keys only fill what they leave unset.
"""
from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from typing import Any

from workers.senders.wire import dumps

NOTIFICATION_KEYS = ("title", "body", "image")
ANDROID_NOTIFICATION_KEYS = {
    "icon": "icon",
    "color": "color",
    "sound": "sound",
    "tag": "tag",
    "click_action": "click_action",
    "android_channel_id": "channel_id",
    "channel_id": "channel_id",
    "body_loc_key": "body_loc_key",
    "body_loc_args": "body_loc_args",
    "title_loc_key": "title_loc_key",
    "title_loc_args": "title_loc_args",
    "ticker": "ticker",
}
ANDROID_OPTIONS = {"collapse_key": "collapse_key", "restricted_package_name": "restricted_package_name"}
PASSTHROUGH = ("android", "apns", "webpush", "fcm_options")


def data_value(value: Any) -> str:
    """v1 data values are strings: strings stay, anything else is sent as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_v1_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The v1 `message` object for a Beams FCM payload, without the token."""
    message: dict[str, Any] = {
        key: copy.deepcopy(payload[key]) for key in PASSTHROUGH if isinstance(payload.get(key), dict)
    }
    android: dict[str, Any] = message.get("android", {})
    legacy = payload.get("notification")
    if isinstance(legacy, dict):
        notification = {key: legacy[key] for key in NOTIFICATION_KEYS if key in legacy}
        if notification:
            message["notification"] = notification
        android_notification = android.setdefault("notification", {})
        for key, v1_key in ANDROID_NOTIFICATION_KEYS.items():
            if key in legacy:
                android_notification.setdefault(v1_key, legacy[key])
        if not android_notification:
            del android["notification"]
    data = payload.get("data")
    if isinstance(data, dict) and data:
        message["data"] = {str(key): data_value(value) for key, value in data.items()}
    priority = payload.get("priority")
    if isinstance(priority, str) and priority.lower() in ("high", "normal"):
        android.setdefault("priority", priority.lower())
    ttl = payload.get("time_to_live")
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl >= 0:
        android.setdefault("ttl", f"{int(ttl)}s")
    for key, v1_key in ANDROID_OPTIONS.items():
        if isinstance(payload.get(key), str):
            android.setdefault(v1_key, payload[key])
    if android:
        message["android"] = android
    return message


class BodyTemplate:
    """The request body of one batch, serialized once; only the token is spliced in per target."""

    def __init__(self, message: Mapping[str, Any]) -> None:
        marker = f"token-{uuid.uuid4().hex}"
        encoded = dumps({"message": {"token": marker, **message}})
        self._prefix, self._suffix = encoded.split(dumps(marker), 1)

    def render(self, token: str) -> bytes:
        return self._prefix + dumps(token) + self._suffix
