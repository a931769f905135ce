"""Device interests: named sets of devices, kept sorted on each device so that
paging with a cursor is stable."""
from __future__ import annotations

import bisect
import re
from typing import Iterable

import redis

from . import devices
from .devices import MAX_INTERESTS_PER_DEVICE

INTEREST_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")


def is_interest_name(name: object) -> bool:
    return isinstance(name, str) and INTEREST_NAME.fullmatch(name) is not None


def add(client: redis.Redis, instance_id: str, device_id: str, platform: str | None, names: Iterable[str]) -> None:
    devices.call(
        client, instance_id, "add_interests", device_id,
        [device_id, devices.platform_code(platform), MAX_INTERESTS_PER_DEVICE, *names],
    )


def replace(
    client: redis.Redis, instance_id: str, device_id: str, platform: str | None, names: Iterable[str]
) -> None:
    devices.call(
        client, instance_id, "set_interests", device_id,
        [device_id, devices.platform_code(platform), MAX_INTERESTS_PER_DEVICE, *names],
    )


def remove(
    client: redis.Redis, instance_id: str, device_id: str, platform: str | None, names: Iterable[str]
) -> None:
    devices.call(
        client, instance_id, "remove_interests", device_id,
        [device_id, devices.platform_code(platform), *names],
    )


def page(names: list[str], limit: int, after: str | None) -> tuple[list[str], str | None]:
    """One page of a device's sorted interests, starting after ``after``.

    Returns the page and the last name of it when more follow (the caller turns
    that into an opaque cursor), else None.
    """
    start = 0 if after is None else bisect.bisect_right(names, after)
    chunk = names[start:start + limit]
    more = start + limit < len(names)
    return chunk, (chunk[-1] if more and chunk else None)
