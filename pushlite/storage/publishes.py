"""Publish records: what was asked, and how its delivery is going.

A publish is created by the API, walked by one fan-out and delivered in
batches; ``lua/publish.lua`` keeps its counters and status consistent while
workers take its work items (``work.py``), even when some of them die.
This module is the only reader of the publish hash.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pushlite.storage.cluster import DataClient

from . import keys
from .errors import InstanceNotFound
from .scripts import Call, run

TTL_SECONDS = 7 * 24 * 3600
COUNTERS = ("targeted", "delivered", "failed", "retried", "removed", "skipped",
            # Devices that reported it reached them / was opened (``insights.py``).
            "acknowledged", "opened")
# A free work item is checked by the sweep this long after it was created or
# last checked (its RQ job should have run or still be waiting in a queue).
CHECK_MS = 10_000
# Unfinished work nobody has looked after for this long makes the publish
# "stalled" (every worker gone, or the queue unreachable).
STALLED_AFTER_SECONDS = 5
# How many of an instance's latest publishes it keeps a list of (the console's).
RECENT = 100


class PublishNotFound(Exception):
    pass


PUBLISH_ID = re.compile(r"pubid-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_publish_id(value: str) -> bool:
    """Whether ``value`` has the shape ``create`` gives ids. An id from a
    request is checked before it names a key: ``pubid-...:failures`` would
    otherwise name another of the publish's keys."""
    return PUBLISH_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class Content:
    """What a publish asks for; it never changes, so workers cache it."""

    kind: str  # "interests" | "users" | "devices" (device ids)
    targets: list[str]
    payload: dict[str, Any]
    # When set, only devices registered for one of these app names ("": for no app).
    apps: frozenset[str] | None


def publish_keys(instance_id: str, publish_id: str) -> list[str]:
    """The keys every ``publish.lua`` call gets first, in its order."""
    return [
        keys.publish(instance_id, publish_id),
        keys.publish_work(instance_id, publish_id),
        keys.publish_batches(instance_id, publish_id),
        keys.publish_failures(instance_id, publish_id),
        keys.publish_seen(instance_id, publish_id),
    ]


def create(
    client: DataClient,
    instance_id: str,
    kind: str,
    targets: list[str],
    payload: Mapping[str, Any],
    extra: Mapping[str, str] | None = None,
) -> str:
    """Store a new publish (status ``queued``, its fan-out waiting) and return its id.

    ``kind`` is "interests", "users" or "devices" (ids); ``payload`` holds one
    entry per provider format ("apns", "fcm"); ``extra`` is more fields to
    store: family-specific filters (e.g. an app name), the request id.
    The publish is put on the active list (and the instance's latest) first,
    so that the workers' sweep finds it even if what follows is cut short.
    """
    publish_id = "pubid-" + str(uuid.uuid4())
    record = {
        "status": "queued",
        "kind": kind,
        "targets": json.dumps(targets),
        "payload": json.dumps(payload, separators=(",", ":")),
        "created_at": int(time.time()),
        "batches_total": 0,
        "batches_done": 0,
        **{name: 0 for name in COUNTERS},
        **(extra or {}),
    }
    create = Call(
        "publish.lua",
        [*publish_keys(instance_id, publish_id), keys.instance(instance_id)],
        ["create", TTL_SECONDS, CHECK_MS, *[x for pair in record.items() for x in pair]],
    )
    # One round trip, the active list first (a pipeline keeps the order).
    with client.pipeline(transaction=False) as pipe:
        watch(pipe, instance_id, publish_id)
        _index_recent(pipe, instance_id, publish_id)
        pipe.execute_command(*create.command())
        *indexed, created = pipe.execute(raise_on_error=False)
    for answer in indexed:
        if isinstance(answer, Exception):
            raise answer
    if isinstance(created, Exception):
        # Not run: the function is not loaded yet, or (on a Cluster) its slot
        # is moving; `run` loads it or waits. Any other error comes again.
        created = run(client, create.name, create.keys, create.args)
    if not created:
        forget(client, instance_id, publish_id)
        raise InstanceNotFound(instance_id)
    return publish_id


def get(client: DataClient, instance_id: str, publish_id: str) -> dict[str, Any]:
    """The record as the status APIs show it, with the latest failures and,
    while its unfinished work is looked after by nobody, ``stalled_since``."""
    if not is_publish_id(publish_id):
        raise PublishNotFound(publish_id)
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.publish(instance_id, publish_id))
        pipe.lrange(keys.publish_failures(instance_id, publish_id), 0, -1)
        pipe.zrange(keys.publish_work(instance_id, publish_id), 0, 0, withscores=True)
        record, failures, oldest = pipe.execute()
    if not record:
        raise PublishNotFound(publish_id)
    record = _shown(record)
    # An entry is "<device id>\t<reason>"; one without the tab shows its device id only.
    record["failures"] = [dict(zip(("device_id", "reason"), f.split("\t", 1), strict=False)) for f in failures]
    record["stalled_since"] = None
    if oldest and record.get("status") != "done":
        since = int(oldest[0][1] // 1000)
        # Redis' clock, which scored the work (asked apart: a Cluster pipeline refuses TIME).
        seconds, _ = client.time()
        if seconds - since >= STALLED_AFTER_SECONDS:
            record["stalled_since"] = since
    return record


def _index_recent(pipe: Any, instance_id: str, publish_id: str) -> None:
    """Put the publish first in the instance's list of latest publishes (an
    id whose publish was not stored, or has expired, is skipped by ``recent``)."""
    key = keys.recent_publishes(instance_id)
    pipe.lpush(key, publish_id)
    pipe.ltrim(key, 0, RECENT - 1)
    pipe.expire(key, TTL_SECONDS)


def recent(client: DataClient, instance_id: str, limit: int = RECENT) -> list[dict[str, Any]]:
    """The instance's latest publishes, newest first, each as ``get`` shows
    it without its failures and with its ``id`` (two round trips)."""
    listed = cast("list[str]", client.lrange(keys.recent_publishes(instance_id), 0, limit - 1))
    ids = [i for i in listed if is_publish_id(i)]
    with client.pipeline(transaction=False) as pipe:
        for publish_id in ids:
            pipe.hgetall(keys.publish(instance_id, publish_id))
        found = pipe.execute()
    out = []
    for publish_id, record in zip(ids, found, strict=True):
        if record:
            out.append({"id": publish_id, **_shown(record)})
    return out


def _shown(record: dict[str, str]) -> dict[str, Any]:
    """The fields of a publish hash a status shows (not the work's bookkeeping),
    with every counter (a publish stored before a counter existed lacks it)."""
    shown: dict[str, Any] = {name: 0 for name in COUNTERS}
    shown.update((k, v) for k, v in record.items() if not k.startswith(("reopened:", "walk")))
    return shown


CONTENT_FIELDS = ("kind", "targets", "payload", "app", "apps")  # what a publish asks for (``Content``)


def content(client: DataClient, instance_id: str, publish_id: str) -> Content | None:
    """What the publish asks for (None once it expired)."""
    return parse_content(cast("list[str | None]", client.hmget(keys.publish(instance_id, publish_id), CONTENT_FIELDS)))


def parse_content(fields: Sequence[str | None]) -> Content | None:
    """A publish's content from its ``CONTENT_FIELDS`` (None once it expired)."""
    kind, targets, payload, app, apps = fields
    if kind is None:
        return None
    # "apps" (a JSON list) is what the Twilio-style send limits the publish
    # to; a publish stored before it was written names its one app in "app".
    allowed = frozenset(json.loads(apps)) if apps else frozenset([app]) if app else None
    return Content(kind, json.loads(targets or "[]"), json.loads(payload or "{}"), allowed)


# --- the active list, which the workers' sweep walks -------------------------


def active_member(instance_id: str, publish_id: str) -> str:
    return f"{instance_id} {publish_id}"


def watch(client: DataClient, instance_id: str, publish_id: str) -> None:
    """Put a publish on the active list (before it gets work), so that the
    sweep looks after it until it is done."""
    client.zadd(keys.ACTIVE_PUBLISHES, {active_member(instance_id, publish_id): time.time()})


def active(client: DataClient, limit: int = 1000) -> list[tuple[str, str]]:
    """The oldest ``limit`` publishes not known to be done, as (instance id, publish id)."""
    members = cast("list[str]", client.zrange(keys.ACTIVE_PUBLISHES, 0, limit - 1))
    return [(instance_id, publish_id) for instance_id, publish_id in (m.split(" ", 1) for m in members)]


def forget(client: DataClient, instance_id: str, publish_id: str) -> None:
    """Take a publish off the active list (it is done or expired)."""
    client.zrem(keys.ACTIVE_PUBLISHES, active_member(instance_id, publish_id))
