"""Per-device channels: an enabled channel is an interest of the device, a
disabled one is not and is remembered in the record's ``disabled`` list; a
channel in neither is unset (treated as disabled, not listed).

Clients name their device by its push token, without a platform: an FCM,
APNs or VoIP token, or a Matrix pusher's pushkey (a Matrix-only client's
device is its pusher). The device is looked for among the caller's own
devices (at most 100), so a pushkey other users also registered finds only
the caller's pusher.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from pushlite import platforms
from pushlite.storage.cluster import DataClient

from . import devices
from .devices import MAX_INTERESTS_PER_DEVICE
from .errors import DeviceNotFound
from .records import Device

ENABLED, DISABLED = "enabled", "disabled"


def devices_with_token(client: DataClient, instance_id: str, user_id: str, token: str) -> list[Device]:
    """The user's devices whose push token or pushkey is ``token`` (normally one)."""
    ids = devices.user_device_ids(client, instance_id, user_id)
    found = devices.load_many(client, instance_id, ids)
    return [found[i] for i in ids if i in found and found[i].token == token and user_id in found[i].users]


def set_channels(
    client: DataClient, instance_id: str, user_id: str, token: str, channels: Mapping[str, bool]
) -> None:
    """Enable (True) or disable (False) channels on the user's device with that
    token, in one script call (which checks again that each device is still
    the user's, with that token); channels not named are unchanged. Raises
    DeviceNotFound when the user has no such device, InterestLimit past 5,000."""
    found = devices_with_token(client, instance_id, user_id, token)
    if not found:
        raise DeviceNotFound(token)
    args: list[object] = [user_id, MAX_INTERESTS_PER_DEVICE, token, len(found)]
    for device in found:
        args += [platforms.CODES[device.platform], device.id]
    for name, enabled in channels.items():
        args += [name, "1" if enabled else "0"]
    devices.call(client, instance_id, "set_channels", args, devices=[device.id for device in found],
                 interests=list(channels))


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


def of_user(client: DataClient, instance_id: str, user_id: str) -> list[dict[str, str]]:
    """The channels of all the user's devices."""
    ids = devices.user_device_ids(client, instance_id, user_id)
    return statuses(devices.load_many(client, instance_id, ids).values())
