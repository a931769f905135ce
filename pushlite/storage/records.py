"""The packed device record and device ids.

A device is one string in its bucket hash: fields joined by US (0x1f), lists
inside a field joined by RS (0x1e). ``lua/records.lua`` reads and writes the same
layout; the field order below is the contract between the two.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from pushlite import platforms

FIELD_SEP = "\x1f"
LIST_SEP = "\x1e"

# Field positions (0-based here, 1-based in Lua). Empty fields after ALIAS
# are not stored, so a device that uses none of them pays nothing for them.
PLATFORM, ENVIRONMENT, TOKEN, USERS, INTERESTS, BUNDLE, METADATA, ALIAS, DISABLED, APP = range(10)
FIELD_COUNT = 10

ENVIRONMENT_CODES = {None: "", "production": "p", "sandbox": "s"}
ENVIRONMENTS = {code: name for name, code in ENVIRONMENT_CODES.items()}

DEVICE_ID_LENGTH = 12


@dataclass
class Device:
    id: str
    platform: str
    token: str
    environment: str | None = None
    users: list[str] = field(default_factory=list)
    interests: list[str] = field(default_factory=list)
    bundle_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    disabled_channels: list[str] = field(default_factory=list)
    app: str = ""

    @property
    def user_id(self) -> str:
        """The Beams user id: the first (and through Beams the only) user."""
        return self.users[0] if self.users else ""


def check_fields(*values: str) -> None:
    """Refuse a value that would break the packed record. The APIs validate
    their input before this; this keeps a record from ever being corrupted."""
    for value in values:
        if FIELD_SEP in value or LIST_SEP in value:
            raise ValueError("a device field cannot contain the record separators 0x1e/0x1f")


def derive_id(instance_id: str, platform: str, token: str) -> str:
    """The id a (platform, token) gets unless that id is already taken.

    Deriving ids from tokens makes re-registration idempotent without a token
    index entry per device; the instance id is mixed in so that the same token
    in two instances gives two unrelated ids.
    """
    digest = hashlib.sha1(f"{instance_id}\n{platform}\n{token}".encode()).hexdigest()
    return digest[:DEVICE_ID_LENGTH]


def random_id() -> str:
    """The id for a token whose derived id is taken (see ``device.lua``).

    Every registration makes one, so it comes from ``random`` (reseeded from
    the OS in each forked process) rather than a ``getrandom`` system call:
    a device id is a name, like the derived ids anyone holding the token can
    compute, not a secret."""
    return f"{random.getrandbits(DEVICE_ID_LENGTH * 4):0{DEVICE_ID_LENGTH}x}"


def is_device_id(value: str) -> bool:
    return len(value) == DEVICE_ID_LENGTH and all(c in "0123456789abcdef" for c in value)


def pack_metadata(metadata: dict[str, Any] | None) -> str:
    return json.dumps(metadata, separators=(",", ":"), sort_keys=True) if metadata else ""


def unpack(device_id: str, record: str | bytes) -> Device:
    if isinstance(record, bytes):
        record = record.decode("utf-8")
    parts = record.split(FIELD_SEP)
    parts += [""] * (FIELD_COUNT - len(parts))
    return Device(
        id=device_id,
        platform=platforms.NAMES_BY_CODE[parts[PLATFORM]],
        environment=ENVIRONMENTS.get(parts[ENVIRONMENT]),
        token=parts[TOKEN],
        users=parts[USERS].split(LIST_SEP) if parts[USERS] else [],
        interests=parts[INTERESTS].split(LIST_SEP) if parts[INTERESTS] else [],
        bundle_id=parts[BUNDLE],
        metadata=json.loads(parts[METADATA]) if parts[METADATA] else {},
        disabled_channels=parts[DISABLED].split(LIST_SEP) if parts[DISABLED] else [],
        app=parts[APP],
    )
