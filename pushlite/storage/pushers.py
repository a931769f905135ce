"""Matrix pushers, stored as devices of platform ``matrix``.

A pusher is one user's, for one (app_id, pushkey): its record's token is the
pushkey, its bundle the app_id, its metadata the pusher's fields (kind,
display names, lang, data, encryption, ...) plus ``pushkey_ts``, and its one
user the user that set it. So a publish to a user reaches their pushers
through the same fan-out as their phones, with their own data only, and a
dead pusher is removed like any dead token.

Users who set the same (app_id, pushkey) have a record each: its id derives
from (user, app_id, pushkey), and the token index lists it under the id
derived from (app_id, pushkey), which finds every user's pusher for it (for
``append: false``). A pusher stored before pushers were per user is one record
under that shared id with all its users; it keeps working, and each user is
split off it the first time they set or delete their pusher (``device.lua``).
"""
from __future__ import annotations

import time
from typing import Any

from pushlite import platforms
from pushlite.storage.cluster import DataClient

from . import devices, records
from .devices import MAX_DEVICES_PER_USER
from .records import Device

PLATFORM = platforms.MATRIX.name

# The pusher fields kept in the record's metadata, as the client sent them.
FIELDS = ("kind", "app_display_name", "device_display_name", "profile_tag", "lang", "data", "encryption")


def shared_id(instance_id: str, app_id: str, pushkey: str) -> str:
    """The id every user's pusher for (app_id, pushkey) is indexed under."""
    return records.derive_id(instance_id, PLATFORM, app_id + "\n" + pushkey)


def own_id(instance_id: str, user_id: str, app_id: str, pushkey: str) -> str:
    """The id of the user's pusher for (app_id, pushkey), unless taken."""
    return records.derive_id(instance_id, PLATFORM, user_id + "\n" + app_id + "\n" + pushkey)


def set_pusher(
    client: DataClient,
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
    ``append``, every other user's pusher for the same (app_id, pushkey) is
    deleted. Raises UserDeviceLimit when the user already has the maximum of
    devices. Returns the pusher's device id."""
    metadata = {name: fields[name] for name in FIELDS if fields.get(name) is not None}
    metadata["pushkey_ts"] = int(time.time() if now is None else now)
    own = own_id(instance_id, user_id, app_id, pushkey)
    result = devices.call(
        client, instance_id, "set_pusher",
        [own, shared_id(instance_id, app_id, pushkey), platforms.CODES[PLATFORM], pushkey, app_id,
         records.pack_metadata(metadata), records.random_id(), user_id, "1" if append else "0",
         MAX_DEVICES_PER_USER],
        devices=[own, shared_id(instance_id, app_id, pushkey)], users=[user_id],
    )
    return result[1]


def delete_pusher(client: DataClient, instance_id: str, user_id: str, app_id: str, pushkey: str) -> bool:
    """Delete the user's pusher (other users' are left alone); False when the
    user had none."""
    shared = shared_id(instance_id, app_id, pushkey)
    result = devices.call(
        client, instance_id, "delete_pusher",
        [shared, platforms.CODES[PLATFORM], pushkey, app_id, user_id],
        devices=[shared], users=[user_id],
    )
    return int(result[1]) > 0


def of_user(client: DataClient, instance_id: str, user_id: str) -> list[Device]:
    """The user's pushers, in the order they were set."""
    ids = devices.user_device_ids(client, instance_id, user_id)
    found = devices.load_many(client, instance_id, ids)
    return [found[i] for i in ids if i in found and found[i].platform == PLATFORM]


def as_pusher(device: Device) -> dict[str, Any]:
    """A pusher as the Matrix client-server API shows it."""
    pusher: dict[str, Any] = {"pushkey": device.token, "app_id": device.bundle_id}
    pusher.update({name: device.metadata[name] for name in FIELDS if name in device.metadata})
    return pusher
