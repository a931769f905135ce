"""MPush devices: the app names each device with a ``device_id`` of its own.

``{iid}:mpush:devices`` maps that id to a pushlite device, registered like any
other so that every family reaches it. An app sends the token of a device_id
again whenever it changes; the device keeps its topics (interests) and users.
"""
from __future__ import annotations

from typing import cast

from pushlite.storage.cluster import DataClient

from . import devices, keys
from .errors import DeviceNotFound
from .records import Device
from .scripts import run

# Attempts at mapping a device_id while concurrent token calls race for it.
_ATTEMPTS = 3


def device_of(client: DataClient, instance_id: str, app_device_id: str) -> Device:
    """The device an app device_id names; DeviceNotFound when it names none
    (never registered, or its device was deleted since, e.g. a dead token)."""
    device_id = cast("str | None", client.hget(keys.mpush_devices(instance_id), app_device_id))
    if device_id is None:
        raise DeviceNotFound(app_device_id)
    return devices.get(client, instance_id, device_id)


def _mapped(client: DataClient, instance_id: str, app_device_id: str) -> tuple[str, Device | None]:
    """What the map holds for the device_id ("" for nothing) and its device, if it still exists."""
    current = cast("str | None", client.hget(keys.mpush_devices(instance_id), app_device_id)) or ""
    if not current:
        return "", None
    try:
        return current, devices.get(client, instance_id, current)
    except DeviceNotFound:
        return current, None


def _swap(client: DataClient, instance_id: str, app_device_id: str, expected: str, device_id: str) -> bool:
    return bool(run(client, "mpush.lua", [keys.mpush_devices(instance_id)], [app_device_id, expected, device_id]))


def set_token(client: DataClient, instance_id: str, app_device_id: str, platform: str, token: str) -> str:
    """Register the token of an app device, or move the device to it (to
    another platform too), keeping its id, topics and users. Returns the device id.

    An unknown device_id (or one whose device is gone) registers the token,
    finding the device that already has it, whichever family registered it.
    """
    for _ in range(_ATTEMPTS):
        current, device = _mapped(client, instance_id, app_device_id)
        if device is not None:
            try:
                devices.set_token(client, instance_id, device.id, device.platform, token, new_platform=platform)
            except DeviceNotFound:
                continue  # deleted meanwhile (e.g. a dead token): map the token afresh
            return device.id
        device_id, _ = devices.register(client, instance_id, platform, token)
        if _swap(client, instance_id, app_device_id, current, device_id):
            return device_id
        # A concurrent call mapped the device_id first: start over from its device.
    raise RuntimeError(f"device_id {app_device_id!r} kept changing under concurrent token calls")
