"""Devices: register, read, update and delete, each one script call.

Every write goes through ``lua/device.lua`` so that a device, its interest
sets, its users and the token index always change together.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import TryAgainError

from pushlite import platforms
from pushlite.storage.cluster import DataClient

from . import keys, records
from .errors import DeviceNotFound, InstanceNotFound, InterestLimit, UserAlreadySet, UserDeviceLimit
from .records import Device
from .scripts import Call, run_call, run_many

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
    return platforms.CODES[platform] if platform else ""


def call(
    client: DataClient,
    instance_id: str,
    command: str,
    args: Sequence[Any],
    *,
    devices: Sequence[str] = (),
    interests: Sequence[str] = (),
    users: Sequence[str] = (),
) -> list[Any]:
    """Run one device.lua command with the keys of these devices, interests
    and users (and any other it turns out to need); raise the domain exception
    for a failure."""
    return call_one(client, instance_id, Command(command, args, devices, interests, users))


def call_one(client: DataClient, instance_id: str, command: Command) -> list[Any]:
    """``call`` for a command already made (``register_command``...): what
    ``call_many`` does for one command, without its batch bookkeeping (a
    registration's path)."""
    manifest = _manifest(command)
    for _ in range(_ROUNDS):
        answer = run_call(client, _script_call(instance_id, command, manifest))
        if answer[0] != "need":
            return checked(answer, command.devices, command.users)
        _add_needed(manifest, answer)
    raise _kept_changing(instance_id)


def checked(result: list[Any], devices: Sequence[str] = (), users: Sequence[str] = ()) -> list[Any]:
    """A command's answer, or its failure raised as the domain exception."""
    if result[0] != "ok":
        raise _FAILURES[result[0]](next(iter([*devices, *users]), ""))
    return result


@dataclass(frozen=True)
class Command:
    """One device.lua command and the devices, interests and users whose keys
    it is known to touch (the script asks for any others)."""

    name: str
    args: Sequence[Any]
    devices: Sequence[str] = ()
    interests: Sequence[str] = ()
    users: Sequence[str] = ()


def call_many(client: DataClient, instance_id: str, commands: Sequence[Command]) -> list[list[Any]]:
    """Run device.lua commands in one round trip (two or three when a command
    turns out to touch keys nobody could name beforehand, such as the
    interest sets of a device being deleted), and return their answers."""
    manifests = [_manifest(c) for c in commands]
    results: list[Any] = [None] * len(commands)
    pending = list(range(len(commands)))
    for _ in range(_ROUNDS):
        calls = [_script_call(instance_id, commands[i], manifests[i]) for i in pending]
        if len(calls) == 1:  # no pipeline to build
            answers = [run_call(client, calls[0])]
        else:
            answers = run_many(client, calls)
        asking = []
        for i, answer in zip(pending, answers, strict=True):
            if answer[0] == "need":
                _add_needed(manifests[i], answer)
                asking.append(i)
            else:
                results[i] = answer
        pending = asking
        if not pending:
            break
    else:
        raise _kept_changing(instance_id)
    return results


# device.lua is asked again at most this many times for keys it needed.
_ROUNDS = 5


def _manifest(command: Command) -> list[str]:
    """The entries naming the keys a command is known to touch ("d<device id>",
    "i<interest>", "u<user id>"), each once."""
    entries = ["d" + d for d in command.devices]
    if command.interests:
        entries += ["i" + i for i in command.interests]
    if command.users:
        entries += ["u" + u for u in command.users]
    return list(dict.fromkeys(entries))


def _add_needed(manifest: list[str], answer: list[Any]) -> None:
    """Add the entries a "need" answer asked for."""
    manifest += [entry for entry in answer[1:] if entry not in manifest]


def _kept_changing(instance_id: str) -> TryAgainError:
    return TryAgainError(f"devices of {instance_id} kept changing while a change was made; try again")


_KEY_OF = {"d": keys.device_bucket, "i": keys.interest, "u": keys.user_bucket}


def _script_call(instance_id: str, command: Command, manifest: list[str]) -> Call:
    return Call(
        "device.lua",
        [keys.instance(instance_id), keys.token_index(instance_id),
         *[_KEY_OF[entry[0]](instance_id, entry[1:]) for entry in manifest]],
        [command.name, len(manifest), *manifest, *command.args],
    )


def register(
    client: DataClient,
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
    command = register_command(instance_id, platform, token, environment=environment, bundle_id=bundle_id,
                               metadata=metadata, app=app)
    return registered(call_one(client, instance_id, command))


def register_command(
    instance_id: str,
    platform: str,
    token: str,
    *,
    environment: str | None = None,
    bundle_id: str = "",
    metadata: dict[str, Any] | None = None,
    app: str = "",
) -> Command:
    """What ``register`` runs, for ``call_many`` (``registered`` reads its answer)."""
    records.check_fields(token, bundle_id, app)
    derived = records.derive_id(instance_id, platform, token)
    return Command(
        "register",
        [
            derived,
            platforms.CODES[platform],
            records.ENVIRONMENT_CODES[environment],
            token,
            bundle_id,
            records.pack_metadata(metadata),
            records.random_id(),
            app,
        ],
        devices=[derived],
    )


def registered(result: list[Any]) -> tuple[str, list[str]]:
    """The device id and interests a register command answered."""
    _, device_id, interests = result
    return device_id, interests.split(records.LIST_SEP) if interests else []


def get(client: DataClient, instance_id: str, device_id: str, platform: str | None = None) -> Device:
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


def delete(client: DataClient, instance_id: str, device_id: str, platform: str | None = None) -> None:
    call(client, instance_id, "delete", [device_id, platform_code(platform)], devices=[device_id])


def set_metadata(
    client: DataClient, instance_id: str, device_id: str, platform: str | None, metadata: dict[str, str]
) -> None:
    call(
        client,
        instance_id,
        "metadata",
        [device_id, platform_code(platform), records.pack_metadata(metadata)],
        devices=[device_id],
    )


def set_token(
    client: DataClient,
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
        client, instance_id, "token",
        [device_id, platform_code(platform), derived, token, platform_code(new_platform)],
        devices=[device_id, derived],
    )


def add_user(
    client: DataClient,
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
        [device_id, platform_code(platform), user_id, "1" if exclusive else "0", MAX_DEVICES_PER_USER],
        devices=[device_id],
        users=[user_id],
    )


def delete_user(client: DataClient, instance_id: str, user_id: str) -> int:
    """Delete the user and every device of theirs; returns how many devices."""
    return int(call(client, instance_id, "delete_user", [user_id], users=[user_id])[1])


def user_device_ids(client: DataClient, instance_id: str, user_id: str) -> list[str]:
    return users_device_ids(client, instance_id, [user_id])


def users_device_ids(client: DataClient, instance_id: str, user_ids: Sequence[str]) -> list[str]:
    """The devices of these users, each once, in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.hget(keys.user_bucket(instance_id, user_id), user_id)
        values = pipe.execute()
    return list(dict.fromkeys(i for value in values if value for i in value.split(",")))


def load_many(client: DataClient, instance_id: str, device_ids: Sequence[str]) -> dict[str, Device]:
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
        for ids, records_ in zip(by_bucket.values(), found, strict=True)
        for device_id, record in zip(ids, records_, strict=True)
        if record is not None
    }


def delete_many(client: DataClient, instance_id: str, device_ids: Sequence[str]) -> None:
    """Delete devices (e.g. dead tokens) in one round trip; missing ones are skipped."""
    call_many(client, instance_id,
              [Command("delete", [device_id, ""], devices=[device_id]) for device_id in device_ids])


# --- devices owned by users (Discord-style devices, Matrix pushers) -------------


def register_for_user(
    client: DataClient,
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
    derived = []
    for platform, environment, token in tokens:
        derived.append(records.derive_id(instance_id, platform, token))
        args += [
            derived[-1],
            platforms.CODES[platform],
            records.ENVIRONMENT_CODES[environment],
            token,
            records.random_id(),
        ]
    result = call(client, instance_id, "register_for_user", args, devices=derived, users=[user_id])
    return list(result[1:])


def unregister_for_user(client: DataClient, instance_id: str, user_id: str, platform: str, token: str) -> str:
    """Detach the user from their device with that token; the device is deleted
    when no user is left. Another user's device is never touched.

    Returns "deleted", "detached" or "none" (the user had no such device).
    """
    derived = records.derive_id(instance_id, platform, token)
    result = call(
        client, instance_id, "unregister_for_user",
        [derived, platforms.CODES[platform], token, user_id],
        devices=[derived], users=[user_id],
    )
    return result[1]


def detach_user(client: DataClient, instance_id: str, user_id: str) -> int:
    """Detach the user from every device of theirs and forget the user, in one
    script call: a device nothing else holds (no other user, no interest) is
    deleted, and so is the user's Matrix pusher. Returns how many devices went."""
    result = call(client, instance_id, "detach_user", [user_id, platforms.MATRIX.code], users=[user_id])
    return int(result[1])
