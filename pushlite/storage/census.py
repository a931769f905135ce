"""How many devices (by platform), users and interests an instance has, for
the console: counted on demand with caps, and kept for a minute.

Nothing maintains these counts as devices come and go (that would cost
every registration a write); a console page asks, and:

- devices: exact, the HLEN of each device bucket (one pipelined round trip);
- by platform: read from the records of the first buckets until
  ``PLATFORM_SAMPLE`` devices are seen, then scaled to the total (exact up
  to that many devices, an estimate above: ``platforms_estimated``);
- users: exact, the HLEN of each user bucket (the same round trip);
- interests: a SCAN for the instance's interest sets, at most
  ``SCAN_CALLS`` calls; when that does not reach the end, the count is a
  lower bound (``interests_at_least``).

So a page costs at most a few hundred milliseconds of Redis work, however
big the instance, and the result is cached in ``{iid}:census`` for
``CACHE_SECONDS``: page views within that minute read one hash.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from pushlite.platforms import NAMES_BY_CODE
from pushlite.storage.cluster import DataClient

from . import keys, records
from .cluster import scan_slot_of

CACHE_SECONDS = 60
PLATFORM_SAMPLE = 20_000
SCAN_CALLS = 200
SCAN_COUNT = 1000
BUCKETS = [f"{n:03x}" for n in range(16 ** keys.DEVICE_BUCKET_WIDTH)]


@dataclass
class Census:
    devices: int
    platforms: dict[str, int] = field(default_factory=dict)
    platforms_estimated: bool = False
    users: int = 0
    interests: int = 0
    interests_at_least: bool = False
    counted_at: int = 0


def get(client: DataClient, instance_id: str) -> Census:
    """The cached census, or a new one."""
    cached = client.get(keys.census(instance_id))
    if cached:
        return Census(**json.loads(cached))
    census = count(client, instance_id)
    client.set(keys.census(instance_id), json.dumps(asdict(census)), ex=CACHE_SECONDS)
    return census


def count(client: DataClient, instance_id: str, *, platform_sample: int = PLATFORM_SAMPLE,
          scan_calls: int = SCAN_CALLS) -> Census:
    device_prefix = keys.device_prefix(instance_id)
    user_prefix = keys.user_prefix(instance_id)
    with client.pipeline(transaction=False) as pipe:
        for bucket in BUCKETS:
            pipe.hlen(device_prefix + bucket)
        for n in range(keys.USER_BUCKETS):
            pipe.hlen(user_prefix + f"{n:03x}")
        lengths = pipe.execute()
    per_bucket, users = lengths[:len(BUCKETS)], sum(lengths[len(BUCKETS):])
    total = sum(per_bucket)
    platforms, sampled = _platforms(client, device_prefix, per_bucket, platform_sample)
    estimated = sampled < total
    if estimated and sampled:
        platforms = Counter({name: round(n * total / sampled) for name, n in platforms.items()})
    interests, complete = _interests(client, instance_id, scan_calls)
    return Census(total, dict(platforms.most_common()), estimated, users, interests, not complete, int(time.time()))


def _platforms(client: DataClient, device_prefix: str, per_bucket: list[int], sample: int) -> tuple[Counter[str], int]:
    """Devices by platform in the first buckets holding ``sample`` devices, and how many were read."""
    chosen, sampled = [], 0
    for bucket, n in zip(BUCKETS, per_bucket, strict=True):
        if sampled >= sample:
            break
        if n:
            chosen.append(bucket)
            sampled += n
    platforms: Counter[str] = Counter()
    with client.pipeline(transaction=False) as pipe:
        for bucket in chosen:
            pipe.hvals(device_prefix + bucket)
        for values in pipe.execute():
            # The platform code is the record's first field.
            platforms.update(NAMES_BY_CODE.get(v.split(records.FIELD_SEP, 1)[0], "other") for v in values)
    return platforms, sampled


def _interests(client: DataClient, instance_id: str, calls: int) -> tuple[int, bool]:
    """How many interest sets SCAN found, and whether it went through the whole keyspace."""
    pattern = keys.interest(instance_id, "*")
    found, cursor = 0, 0
    for _ in range(calls):
        cursor, names = scan_slot_of(client, keys.instance(instance_id), cursor, pattern, SCAN_COUNT)
        found += len(names)
        if cursor == 0:
            return found, True
    return found, False
