"""Per-device channels: an enabled channel is an interest of the device, a
disabled one is not and is remembered in the record's ``disabled`` list; a
channel in neither is unset (treated as disabled, not listed).

Mobile clients name their device by its push token, without a platform, so a
device is looked up by token on every platform a phone token can have, the way
``device.lua``'s ``find`` does (derived id, then the token index).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import redis

from . import devices, keys, records
from .devices import MAX_INTERESTS_PER_DEVICE
from .records import Device

PLATFORMS = ("fcm", "apns", "apns_voip")
ENABLED, DISABLED = "enabled", "disabled"


def devices_with_token(client: redis.Redis, instance_id: str, user_id: str, token: str) -> list[Device]:
    """The user's devices whose push token is ``token`` (normally one)."""
    derived = {platform: records.derive_id(instance_id, platform, token) for platform in PLATFORMS}
    with client.pipeline(transaction=False) as pipe:
        for device_id in derived.values():
            pipe.hget(keys.token_index(instance_id), device_id)
        aliases = pipe.execute()
    candidates = list(derived.values())
    for value in aliases:
        candidates += value.split(",") if value else []
    found = devices.load_many(client, instance_id, list(dict.fromkeys(candidates)))
    return [
        device for device in found.values()
        if device.platform in PLATFORMS and device.token == token and user_id in device.users
    ]


def set_channels(
    client: redis.Redis, instance_id: str, user_id: str, token: str, channels: Mapping[str, bool]
) -> None:
    """Enable (True) or disable (False) channels on the user's device with that
    token, in one script call; channels not named are unchanged. Raises
    DeviceNotFound when the user has no such device, InterestLimit past 5,000."""
    args: list[object] = [user_id, MAX_INTERESTS_PER_DEVICE, token, len(PLATFORMS)]
    for platform in PLATFORMS:
        args += [records.PLATFORM_CODES[platform], records.derive_id(instance_id, platform, token)]
    for name, enabled in channels.items():
        args += [name, "1" if enabled else "0"]
    devices.call(client, instance_id, "set_channels", records.derive_id(instance_id, PLATFORMS[0], token), args)


def statuses(found: Iterable[Device]) -> list[dict[str, str]]:
    """The channels of these devices, sorted by name; a channel enabled on any
    of them is enabled."""
    state: dict[str, str] = {}
    for device in found:
        for name in device.disabled_channels:
            state.setdefault(name, DISABLED)
        for name in device.interests:
            state[name] = ENABLED
    return [{"id": name, "status": state[name]} for name in sorted(state)]


def of_user(client: redis.Redis, instance_id: str, user_id: str) -> list[dict[str, str]]:
    """The channels of all the user's devices."""
    ids = devices.user_device_ids(client, instance_id, user_id)
    return statuses(devices.load_many(client, instance_id, ids).values())
