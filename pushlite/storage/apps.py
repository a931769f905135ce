"""Apps: the app names devices are registered with (a Twilio-style
registration's ``appName``), and the instance's default app.

An app is known once a registration named it, once it is made the default,
or once it has credentials of its own (``credentials.py``). The first app ever
registered becomes the default (``lua/twilio.lua``); the admin API changes it.
A Twilio-style send that names no app reaches the default app's devices and
the devices of no app.

Registrations stored before pushlite kept the apps set are indexed once, the
first time the apps or the default are asked for: every app they name joins
the set, and the app of the oldest of them becomes the default unless one was
set.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pushlite.storage.cluster import DataClient

from . import credentials, keys
from .errors import InstanceNotFound

DEFAULT_APP, APPS_INDEXED = "default_app", "apps_indexed"
# What an app name may be (the Twilio-style API's appName).
APP_NAME = r"[A-Za-z0-9_.\-]{1,100}"
APP_NAME_RULE = "1-100 characters of A-Z a-z 0-9 _ . -"


def is_app_name(value: str) -> bool:
    return re.fullmatch(APP_NAME, value) is not None


@dataclass
class App:
    name: str
    default: bool
    credentials: dict[str, bool]  # provider -> whether the app has its own


def _index_registrations(client: DataClient, instance_id: str) -> None:
    """Index registrations made before the apps set existed (once)."""
    names: set[str] = set()
    oldest: tuple[int, str, str] | None = None
    for registration_id, raw in client.hscan_iter(keys.twilio_registrations(instance_id), count=1000):
        record = json.loads(raw)
        names.add(record["app"])
        candidate = (int(record["created_at"]), registration_id, record["app"])
        oldest = candidate if oldest is None or candidate < oldest else oldest
    with client.pipeline(transaction=True) as pipe:
        if names:
            pipe.sadd(keys.apps(instance_id), *names)
        if oldest is not None:
            pipe.hsetnx(keys.instance(instance_id), DEFAULT_APP, oldest[2])
        pipe.hset(keys.instance(instance_id), APPS_INDEXED, "1")
        pipe.execute()


def default_app(client: DataClient, instance_id: str) -> str | None:
    """The instance's default app (None before any app was registered), after
    indexing older registrations if that is still to do."""
    exists, default, indexed = _read(client, instance_id)
    if not exists:
        raise InstanceNotFound(instance_id)
    if indexed:
        return default
    _index_registrations(client, instance_id)
    return _read(client, instance_id)[1]


def _read(client: DataClient, instance_id: str) -> tuple[bool, str | None, bool]:
    with client.pipeline(transaction=False) as pipe:
        pipe.exists(keys.instance(instance_id))
        pipe.hmget(keys.instance(instance_id), DEFAULT_APP, APPS_INDEXED)
        exists, (default, indexed) = pipe.execute()
    return bool(exists), default, bool(indexed)


def set_default(client: DataClient, instance_id: str, name: str) -> None:
    """Make ``name`` the default app (it need not have devices yet)."""
    stored = client.eval(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1",
        1, keys.instance(instance_id), DEFAULT_APP, name,
    )
    if not stored:
        raise InstanceNotFound(instance_id)


def get(client: DataClient, instance_id: str, name: str) -> App | None:
    """The app, or None when the instance knows no app of that name."""
    default = default_app(client, instance_id)
    registered = client.sismember(keys.apps(instance_id), name)
    own = credentials.has(client, instance_id, name)
    if not (registered or name == default or any(own.values())):
        return None
    return App(name, name == default, own)
