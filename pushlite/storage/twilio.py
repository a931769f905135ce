"""Twilio-style device registrations: a device token stored for a user and an app.

A registration is a pushlite device (registered like any other, with the app
name on its record) that its user holds; ``{iid}:twilio:regs`` keeps what the
API shows of it and ``{iid}:twilio:tokens`` finds it again from its token.
The device is the truth: a registration whose device has gone since (a dead
token, a user deleted through Beams) or no longer has its user is gone too,
and its record is dropped when next met.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from pushlite import platforms
from pushlite.platforms import Platform
from pushlite.storage.cluster import DataClient

from . import devices, keys
from .errors import DeviceNotFound, InstanceNotFound, StorageError, UserDeviceLimit
from .records import Device
from .scripts import Call, run, run_many

# The platforms a registration can be on, by the provider name Twilio gives them.
PLATFORMS: dict[str, Platform] = {"FCM": platforms.FCM, "APNS": platforms.APNS}
TWILIO_NAME = {platform.name: name for name, platform in PLATFORMS.items()}

REGISTRATION_PREFIX = "comms_device_registration_"
USER_PREFIX = "comms_user_"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class RegistrationNotFound(StorageError):
    pass


class RegistrationConflict(StorageError):
    """The token is already registered, for another user or app."""

    def __init__(self, existing: Registration) -> None:
        super().__init__(existing.id)
        self.existing = existing


@dataclass
class Registration:
    id: str
    device_id: str
    user_id: str
    app: str
    provider: str
    token: str
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)

    def stored(self) -> str:
        """The record's JSON in ``{iid}:twilio:regs`` (everything but the id)."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "id"}, separators=(",", ":"))


def new_registration_id() -> str:
    return REGISTRATION_PREFIX + secrets.token_hex(16)


def new_user_id() -> str:
    """``comms_user_`` and a ULID (48-bit milliseconds, 80 random bits) in lowercase Crockford base32."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return USER_PREFIX + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def token_digest(provider: str, token: str) -> str:
    return hashlib.sha256(f"{provider}\n{token}".encode()).hexdigest()


def _call(client: DataClient, instance_id: str, args: Sequence[Any], extra_keys: Sequence[str] = ()) -> list:
    result = run(
        client,
        "twilio.lua",
        keys=[keys.instance(instance_id), keys.twilio_registrations(instance_id), keys.twilio_tokens(instance_id),
              *extra_keys],
        args=args,
    )
    if result[0] == "no_instance":
        raise InstanceNotFound(instance_id)
    return result


def _forget(client: DataClient, instance_id: str, registration: Registration) -> None:
    _call(client, instance_id, ["forget", registration.id, token_digest(registration.provider, registration.token)])


def _parse(registration_id: str, raw: str) -> Registration:
    return Registration(id=registration_id, **json.loads(raw))


def _live_device(client: DataClient, instance_id: str, registration: Registration) -> Device | None:
    try:
        device = devices.get(client, instance_id, registration.device_id)
    except DeviceNotFound:
        return None
    return device if registration.user_id in device.users else None


def get(client: DataClient, instance_id: str, registration_id: str) -> tuple[Registration, Device]:
    """The registration and its device; RegistrationNotFound when either has gone."""
    raw = cast("str | None", client.hget(keys.twilio_registrations(instance_id), registration_id))
    if raw is None:
        if not client.exists(keys.instance(instance_id)):
            raise InstanceNotFound(instance_id)
        raise RegistrationNotFound(registration_id)
    registration = _parse(registration_id, raw)
    device = _live_device(client, instance_id, registration)
    if device is None:
        _forget(client, instance_id, registration)
        raise RegistrationNotFound(registration_id)
    return registration, device


def find_by_token(
    client: DataClient, instance_id: str, provider: str, token: str
) -> tuple[Registration, Device] | None:
    registration_id = cast("str | None", client.hget(keys.twilio_tokens(instance_id), token_digest(provider, token)))
    if registration_id is None:
        return None
    try:
        return get(client, instance_id, registration_id)
    except RegistrationNotFound:
        return None


def register(
    client: DataClient, instance_id: str, provider: str, token: str, app: str, user_id: str | None,
    tags: Mapping[str, str] | None = None,
) -> tuple[Registration, Device, bool]:
    """Register a token for a user (a new one when ``user_id`` is None) and an
    app, with tags (None: none, or unchanged for a token already registered).

    The same token again returns its registration (``created`` False), with
    the tags given, when the request agrees with it, and raises
    RegistrationConflict when it names another user or app. The user's
    100-device cap applies (UserDeviceLimit).
    """
    existing = find_by_token(client, instance_id, provider, token)
    if existing is not None:
        registration, device = existing
        if (user_id is not None and user_id != registration.user_id) or app != registration.app:
            raise RegistrationConflict(registration)
        if tags is not None and dict(tags) != registration.tags:
            registration = _retag(client, instance_id, registration, dict(tags))
        return registration, device, False
    user_id = user_id or new_user_id()
    platform = PLATFORMS[provider].name
    device_id, _ = devices.register(client, instance_id, platform, token, app=app)
    try:
        devices.add_user(client, instance_id, device_id, platform, user_id, exclusive=False)
    except UserDeviceLimit:
        _drop_if_unheld(client, instance_id, device_id)
        raise
    registration = Registration(new_registration_id(), device_id, user_id, app, provider, token, int(time.time()),
                                dict(tags or {}))
    status, stored = _call(
        client, instance_id,
        ["create", registration.id, token_digest(provider, token), registration.stored(), app],
        [keys.apps(instance_id)],
    )
    if status == "exists":
        # A concurrent request registered the same token first.
        return (*get(client, instance_id, stored), False)
    return registration, devices.get(client, instance_id, device_id), True


def _retag(client: DataClient, instance_id: str, registration: Registration, tags: dict[str, str]) -> Registration:
    """The registration with new tags: a compare-and-set of its record, tried
    again if another request changed it in between."""
    for _ in range(3):
        raw = cast("str | None", client.hget(keys.twilio_registrations(instance_id), registration.id))
        if raw is None:
            raise RegistrationNotFound(registration.id)
        changed = _parse(registration.id, raw)
        changed.tags = tags
        status, *_ = _call(client, instance_id, ["replace", registration.id, raw, changed.stored()])
        if status == "ok":
            return changed
        if status == "not_found":
            raise RegistrationNotFound(registration.id)
    return get(client, instance_id, registration.id)[0]


def _drop_if_unheld(client: DataClient, instance_id: str, device_id: str) -> None:
    """Delete a device nothing holds (no user, no interest): nothing could reach it."""
    try:
        device = devices.get(client, instance_id, device_id)
        if not device.users and not device.interests:
            devices.delete(client, instance_id, device_id)
    except DeviceNotFound:
        pass


def delete(client: DataClient, instance_id: str, registration: Registration) -> bool:
    """Delete the registration and detach its user from the device, in one
    step; the device goes too when nothing else holds it. Returns whether it did."""
    status, *rest = _call(
        client,
        instance_id,
        ["delete", registration.id, token_digest(registration.provider, registration.token),
         registration.device_id, registration.user_id],
        [keys.device_bucket(instance_id, registration.device_id),
         keys.user_bucket(instance_id, registration.user_id),
         keys.token_index(instance_id)],
    )
    if status == "not_found":
        raise RegistrationNotFound(registration.id)
    return bool(rest[0])


def of_user(client: DataClient, instance_id: str, user_id: str) -> list[tuple[Registration, Device]] | None:
    """The user's registrations (None when the user has no device at all,
    through any family)."""
    device_ids = devices.user_device_ids(client, instance_id, user_id)
    if not device_ids:
        if not client.exists(keys.instance(instance_id)):
            raise InstanceNotFound(instance_id)
        return None
    found = [d for d in devices.load_many(client, instance_id, device_ids).values()
             if d.platform in TWILIO_NAME]
    if not found:
        return []
    digests = [token_digest(TWILIO_NAME[d.platform], d.token) for d in found]
    registration_ids = cast("list[str | None]", client.hmget(keys.twilio_tokens(instance_id), digests))
    wanted = [(i, d) for i, d in zip(registration_ids, found, strict=True) if i]
    raws: list[str | None] = []
    if wanted:
        raws = cast("list[str | None]", client.hmget(keys.twilio_registrations(instance_id), [i for i, _ in wanted]))
    result = []
    for (registration_id, device), raw in zip(wanted, raws, strict=True):
        if raw is None:
            continue
        registration = _parse(registration_id, raw)
        if registration.user_id == user_id and registration.device_id == device.id:
            result.append((registration, device))
    return sorted(result, key=lambda pair: (pair[0].created_at, pair[0].id))


def delete_user(client: DataClient, instance_id: str, user_id: str) -> bool:
    """Delete the user: detach them from every device of theirs, through any
    family (a device nothing else holds goes), and drop their registrations.
    False when the user has no device at all."""
    found = of_user(client, instance_id, user_id)
    if found is None:
        return False
    devices.detach_user(client, instance_id, user_id)
    run_many(client, [
        Call("twilio.lua",
             [keys.instance(instance_id), keys.twilio_registrations(instance_id), keys.twilio_tokens(instance_id)],
             ["forget", registration.id, token_digest(registration.provider, registration.token)])
        for registration, _ in found
    ])
    return True
