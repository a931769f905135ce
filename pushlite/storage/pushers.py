"""Matrix pushers, stored as devices of platform ``matrix``.

A pusher is identified by (app_id, pushkey): its record's token is the pushkey,
its bundle the app_id, its metadata the pusher's fields (kind, display names,
lang, data, ...) plus ``pushkey_ts``, and its users the users that set it. So a
publish to a user reaches their pushers through the same fan-out as their
phones, and a dead pusher is removed like any dead token.
"""
from __future__ import annotations

import time
from typing import Any

import redis

from . import devices, records
from .devices import MAX_DEVICES_PER_USER
from .records import Device

PLATFORM = "matrix"

# The pusher fields kept in the record's metadata, as the client sent them.
FIELDS = ("kind", "app_display_name", "device_display_name", "profile_tag", "lang", "data", "encryption")


def derive_id(instance_id: str, app_id: str, pushkey: str) -> str:
    return records.derive_id(instance_id, PLATFORM, app_id + "\n" + pushkey)


def set_pusher(
    client: redis.Redis,
    instance_id: str,
    user_id: str,
    app_id: str,
    pushkey: str,
    fields: dict[str, Any],
    *,
    append: bool,
    now: float | None = None,
) -> str:
    """Create or update the user's pusher, in one script call. Without
    ``append``, every other user loses the same (app_id, pushkey). Raises
    UserDeviceLimit when the user already has the maximum of devices."""
    metadata = {name: fields[name] for name in FIELDS if fields.get(name) is not None}
    metadata["pushkey_ts"] = int(time.time() if now is None else now)
    derived = derive_id(instance_id, app_id, pushkey)
    result = devices.call(
        client, instance_id, "set_pusher", derived,
        [derived, records.PLATFORM_CODES[PLATFORM], pushkey, app_id, records.pack_metadata(metadata),
         records.random_id(), user_id, "1" if append else "0", MAX_DEVICES_PER_USER],
    )
    return result[1]


def delete_pusher(client: redis.Redis, instance_id: str, user_id: str, app_id: str, pushkey: str) -> str:
    """Remove the user's pusher (deleting it when no other user has it);
    "none" when the user has no such pusher."""
    return devices.unregister_for_user(
        client, instance_id, user_id, PLATFORM, pushkey,
        derived=derive_id(instance_id, app_id, pushkey), bundle_id=app_id,
    )


def of_user(client: redis.Redis, instance_id: str, user_id: str) -> list[Device]:
    """The user's pushers, in the order they were set."""
    ids = devices.user_device_ids(client, instance_id, user_id)
    found = devices.load_many(client, instance_id, ids)
    return [found[i] for i in ids if i in found and found[i].platform == PLATFORM]


def as_pusher(device: Device) -> dict[str, Any]:
    """A pusher as the Matrix client-server API shows it."""
    pusher: dict[str, Any] = {"pushkey": device.token, "app_id": device.bundle_id}
    pusher.update({name: device.metadata[name] for name in FIELDS if name in device.metadata})
    return pusher
