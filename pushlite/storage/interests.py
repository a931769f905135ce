"""Device interests: named sets of devices, kept sorted on each device so that
paging with a cursor is stable."""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import cast

from pushlite.storage.cluster import DataClient

from . import devices, keys
from .devices import MAX_INTERESTS_PER_DEVICE

INTEREST_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")


def is_interest_name(name: object) -> bool:
    return isinstance(name, str) and INTEREST_NAME.fullmatch(name) is not None


def add(client: DataClient, instance_id: str, device_id: str, platform: str | None, names: Iterable[str]) -> None:
    command = add_command(device_id, platform, names)
    devices.call(client, instance_id, command.name, command.args, devices=command.devices,
                 interests=command.interests)


def add_command(device_id: str, platform: str | None, names: Iterable[str]) -> devices.Command:
    """What ``add`` runs, for ``devices.call_many``."""
    names = list(names)
    return devices.Command(
        "add_interests", [device_id, devices.platform_code(platform), MAX_INTERESTS_PER_DEVICE, *names],
        devices=[device_id], interests=names,
    )


def replace(
    client: DataClient, instance_id: str, device_id: str, platform: str | None, names: Iterable[str]
) -> None:
    names = list(names)
    devices.call(
        client, instance_id, "set_interests",
        [device_id, devices.platform_code(platform), MAX_INTERESTS_PER_DEVICE, *names],
        devices=[device_id], interests=names,
    )


def remove(
    client: DataClient, instance_id: str, device_id: str, platform: str | None, names: Iterable[str]
) -> None:
    names = list(names)
    devices.call(
        client, instance_id, "remove_interests",
        [device_id, devices.platform_code(platform), *names],
        devices=[device_id], interests=names,
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


def sizes(client: DataClient, instance_id: str, names: Sequence[str]) -> list[int]:
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.scard(keys.interest(instance_id, name))
        return pipe.execute()


def members(client: DataClient, instance_id: str, name: str) -> set[str]:
    """Every device of a small interest (use ``scan`` for a large one)."""
    return cast("set[str]", client.smembers(keys.interest(instance_id, name)))


def scan(client: DataClient, instance_id: str, name: str, count: int) -> Iterator[list[str]]:
    """The devices of an interest in chunks of about ``count``, without loading
    the whole set (SSCAN; a device may come twice if the set is resized meanwhile)."""
    key = keys.interest(instance_id, name)
    sscan = cast("Callable[..., tuple[int, list[str]]]", client.sscan)  # typed once, outside the loop
    cursor, chunk = 0, []
    while True:
        cursor, ids = sscan(key, cursor, count=count)
        chunk.extend(ids)
        if len(chunk) >= count or (cursor == 0 and chunk):
            yield chunk
            chunk = []
        if cursor == 0:
            return
