"""Devices: register, read, update and delete, each one script call.

Every write goes through ``lua/device.lua`` so that a device, its interest
sets, its users and the token index always change together.
"""
from __future__ import annotations

from typing import Any, Sequence

import redis

from . import keys, records
from .errors import DeviceNotFound, InstanceNotFound, InterestLimit, UserAlreadySet, UserDeviceLimit
from .records import Device
from .scripts import run

MAX_DEVICES_PER_USER = 100
MAX_INTERESTS_PER_DEVICE = 5000

_FAILURES = {
    "no_instance": InstanceNotFound,
    "not_found": DeviceNotFound,
    "already": UserAlreadySet,
    "user_cap": UserDeviceLimit,
    "interest_cap": InterestLimit,
}


def platform_code(platform: str | None) -> str:
    return records.PLATFORM_CODES[platform] if platform else ""


def call(
    client: redis.Redis,
    instance_id: str,
    command: str,
    device_id: str,
    args: Sequence[Any],
) -> list[Any]:
    """Run one device.lua command; raise the domain exception for a failure."""
    result = run(
        client,
        "device.lua",
        keys=[keys.instance(instance_id), keys.device_bucket(instance_id, device_id)],
        args=[command, *keys.script_prefixes(instance_id), *args],
    )
    status = result[0]
    if status != "ok":
        raise _FAILURES[status](device_id)
    return result


def register(
    client: redis.Redis,
    instance_id: str,
    platform: str,
    token: str,
    *,
    environment: str | None = None,
    bundle_id: str = "",
    metadata: dict[str, Any] | None = None,
    app: str = "",
) -> tuple[str, list[str]]:
    """Register a token, or find the device that already has it.

    Returns the device id and its current interests. One round trip.
    """
    records.check_fields(token, bundle_id, app)
    derived = records.derive_id(instance_id, platform, token)
    _, device_id, interests = call(
        client,
        instance_id,
        "register",
        derived,
        [
            derived,
            records.PLATFORM_CODES[platform],
            records.ENVIRONMENT_CODES[environment],
            token,
            bundle_id,
            records.pack_metadata(metadata),
            records.random_id(),
            app,
        ],
    )
    return device_id, interests.split(records.LIST_SEP) if interests else []


def get(client: redis.Redis, instance_id: str, device_id: str, platform: str | None = None) -> Device:
    """The device, checking in the same round trip that the instance exists."""
    with client.pipeline(transaction=False) as pipe:
        pipe.exists(keys.instance(instance_id))
        pipe.hget(keys.device_bucket(instance_id, device_id), device_id)
        exists, record = pipe.execute()
    if not exists:
        raise InstanceNotFound(instance_id)
    if record is None:
        raise DeviceNotFound(device_id)
    device = records.unpack(device_id, record)
    if platform and device.platform != platform:
        raise DeviceNotFound(device_id)
    return device


def delete(client: redis.Redis, instance_id: str, device_id: str, platform: str | None = None) -> None:
    call(client, instance_id, "delete", device_id, [device_id, platform_code(platform)])


def set_metadata(
    client: redis.Redis, instance_id: str, device_id: str, platform: str | None, metadata: dict[str, str]
) -> None:
    call(
        client,
        instance_id,
        "metadata",
        device_id,
        [device_id, platform_code(platform), records.pack_metadata(metadata)],
    )


def set_token(
    client: redis.Redis,
    instance_id: str,
    device_id: str,
    platform: str,
    token: str,
    *,
    new_platform: str | None = None,
) -> None:
    """Move the device to a new token (of ``new_platform`` when given), keeping
    its id, interests and users; a device that held that token merges into it."""
    records.check_fields(token)
    derived = records.derive_id(instance_id, new_platform or platform, token)
    call(
        client, instance_id, "token", device_id,
        [device_id, platform_code(platform), derived, token, platform_code(new_platform)],
    )


def add_user(
    client: redis.Redis,
    instance_id: str,
    device_id: str,
    platform: str | None,
    user_id: str,
    *,
    exclusive: bool,
) -> None:
    """Attach the device to a user, holding the per-user device cap atomically.

    ``exclusive`` is the Beams rule: a device belongs to at most one user.
    """
    records.check_fields(user_id)
    call(
        client,
        instance_id,
        "user",
        device_id,
        [device_id, platform_code(platform), user_id, "1" if exclusive else "0", MAX_DEVICES_PER_USER],
    )


def delete_user(client: redis.Redis, instance_id: str, user_id: str) -> int:
    """Delete the user and every device of theirs; returns how many devices."""
    result = run(
        client,
        "device.lua",
        keys=[keys.instance(instance_id), keys.user_bucket(instance_id, user_id)],
        args=["delete_user", *keys.script_prefixes(instance_id), user_id],
    )
    if result[0] != "ok":
        raise _FAILURES[result[0]](instance_id)
    return int(result[1])


def user_device_ids(client: redis.Redis, instance_id: str, user_id: str) -> list[str]:
    return users_device_ids(client, instance_id, [user_id])


def users_device_ids(client: redis.Redis, instance_id: str, user_ids: Sequence[str]) -> list[str]:
    """The devices of these users, each once, in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.hget(keys.user_bucket(instance_id, user_id), user_id)
        values = pipe.execute()
    return list(dict.fromkeys(i for value in values if value for i in value.split(",")))


def load_many(client: redis.Redis, instance_id: str, device_ids: Sequence[str]) -> dict[str, Device]:
    """The devices that still exist among ``device_ids``, in one round trip."""
    by_bucket: dict[str, list[str]] = {}
    for device_id in device_ids:
        by_bucket.setdefault(keys.device_bucket(instance_id, device_id), []).append(device_id)
    with client.pipeline(transaction=False) as pipe:
        for bucket, ids in by_bucket.items():
            pipe.hmget(bucket, ids)
        found = pipe.execute()
    return {
        device_id: records.unpack(device_id, record)
        for ids, records_ in zip(by_bucket.values(), found)
        for device_id, record in zip(ids, records_)
        if record is not None
    }


def delete_many(client: redis.Redis, instance_id: str, device_ids: Sequence[str]) -> None:
    """Delete devices (e.g. dead tokens) in one round trip; missing ones are skipped."""
    with client.pipeline(transaction=False) as pipe:
        for device_id in device_ids:
            run(
                pipe,
                "device.lua",
                keys=[keys.instance(instance_id), keys.device_bucket(instance_id, device_id)],
                args=["delete", *keys.script_prefixes(instance_id), device_id, ""],
            )
        pipe.execute()


# --- devices owned by users (Discord-style devices, Matrix pushers) -------------


def register_for_user(
    client: redis.Redis,
    instance_id: str,
    user_id: str,
    tokens: Sequence[tuple[str, str | None, str]],
) -> list[str]:
    """Register each (platform, environment, token) and attach it to the user,
    all in one script call: either every device is the user's afterwards, or,
    when the user would pass the device cap, nothing changed (UserDeviceLimit).

    Unlike the Beams user id, this attachment is not exclusive: a device may
    belong to several users (one phone signed in to several accounts).
    Returns the device ids, in order.
    """
    args: list[Any] = [user_id, MAX_DEVICES_PER_USER]
    for platform, environment, token in tokens:
        args += [
            records.derive_id(instance_id, platform, token),
            records.PLATFORM_CODES[platform],
            records.ENVIRONMENT_CODES[environment],
            token,
            records.random_id(),
        ]
    result = call(client, instance_id, "register_for_user", args[2], args)
    return list(result[1:])


def unregister_for_user(client: redis.Redis, instance_id: str, user_id: str, platform: str, token: str) -> str:
    """Detach the user from their device with that token; the device is deleted
    when no user is left. Another user's device is never touched.

    Returns "deleted", "detached" or "none" (the user had no such device).
    """
    derived = records.derive_id(instance_id, platform, token)
    result = call(
        client, instance_id, "unregister_for_user", derived,
        [derived, records.PLATFORM_CODES[platform], token, user_id],
    )
    return result[1]


def detach_user(client: redis.Redis, instance_id: str, user_id: str) -> int:
    """Detach the user from every device of theirs and forget the user, in one
    script call: a device nothing else holds (no other user, no interest) is
    deleted, and so is the user's Matrix pusher. Returns how many devices went."""
    result = run(
        client,
        "device.lua",
        keys=[keys.instance(instance_id), keys.user_bucket(instance_id, user_id)],
        args=["detach_user", *keys.script_prefixes(instance_id), user_id, records.PLATFORM_CODES["matrix"]],
    )
    if result[0] != "ok":
        raise _FAILURES[result[0]](instance_id)
    return int(result[1])
