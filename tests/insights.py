"""Reading what a provider received apart from the delivery metadata every
apns, fcm and web payload carries for the Beams SDKs: ``data.pusher`` (in FCM,
a data value, so a JSON string)."""
from __future__ import annotations

import json
from typing import Any


def split(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the body without data.pusher, data.pusher) of an APNs body or a browser's
    message; ``data`` goes too when pusher was all it held."""
    data = dict(body["data"])
    metadata = data.pop("pusher")
    rest = {k: v for k, v in body.items() if k != "data"}
    if data:
        rest["data"] = data
    return rest, metadata


def split_fcm(data: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """(the v1 message's data without "pusher", the metadata it held as JSON)."""
    rest = {k: v for k, v in data.items() if k != "pusher"}
    return rest, json.loads(data["pusher"])


def metadata(instance_id: str, publish_id: str, displayable: bool = True, has_data: bool = False) -> dict[str, Any]:
    return {"publishId": publish_id, "instanceId": instance_id,
            "hasDisplayableContent": displayable, "hasData": has_data}
