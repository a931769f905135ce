"""Publish records: what was asked, and how its delivery is going.

A publish is created by the API, walked by one fan-out job and delivered by
batch jobs; ``lua/publish.lua`` keeps its counters and status consistent while
those jobs run concurrently.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Mapping

import redis

from . import keys
from .errors import InstanceNotFound
from .scripts import run

TTL_SECONDS = 7 * 24 * 3600
FAILURES_KEPT = 100
COUNTERS = ("targeted", "delivered", "failed", "retried", "removed", "skipped")


class PublishNotFound(Exception):
    pass


def create(
    client: redis.Redis,
    instance_id: str,
    kind: str,
    targets: list[str],
    payload: Mapping[str, Any],
    extra: Mapping[str, str] | None = None,
) -> str:
    """Store a new publish (status ``queued``) and return its id.

    ``kind`` is "interests" or "users"; ``payload`` holds one entry per provider
    format ("apns", "fcm"); ``extra`` is family-specific filters (e.g. an app name).
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
    created = run(
        client,
        "publish.lua",
        [keys.publish(instance_id, publish_id), keys.instance(instance_id)],
        ["create", TTL_SECONDS, *[x for pair in record.items() for x in pair]],
    )
    if not created:
        raise InstanceNotFound(instance_id)
    return publish_id


def get(client: redis.Redis, instance_id: str, publish_id: str) -> dict[str, Any]:
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.publish(instance_id, publish_id))
        pipe.lrange(keys.publish_failures(instance_id, publish_id), 0, -1)
        record, failures = pipe.execute()
    if not record:
        raise PublishNotFound(publish_id)
    record["failures"] = [dict(zip(("device_id", "reason"), f.split("\t", 1))) for f in failures]
    return record


def start_fanout(client: redis.Redis, instance_id: str, publish_id: str) -> dict[str, Any] | None:
    """Mark the publish as fanning out and return its record (None if it expired)."""
    key = keys.publish(instance_id, publish_id)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, "status", "fanning_out")
        pipe.hgetall(key)
        _, record = pipe.execute()
    return record if record.get("kind") else None


def add_batches(client: redis.Redis, instance_id: str, publish_id: str, batches: int) -> None:
    """Count batches as the fan-out enqueues them, before they can finish."""
    run(client, "publish.lua", [keys.publish(instance_id, publish_id)], ["add", batches])


def finish_fanout(client: redis.Redis, instance_id: str, publish_id: str) -> None:
    run(client, "publish.lua", [keys.publish(instance_id, publish_id)], ["fanout", 0])


def finish_batch(
    client: redis.Redis,
    instance_id: str,
    publish_id: str,
    counts: Mapping[str, int],
    *,
    scheduled: int = 0,
    failures: list[tuple[str, str]] = (),
) -> None:
    """Count one finished batch (and the retry batches it scheduled)."""
    pairs = [x for name, n in counts.items() if n for x in (name, n)]
    with client.pipeline(transaction=True) as pipe:
        if failures:
            failures_key = keys.publish_failures(instance_id, publish_id)
            pipe.lpush(failures_key, *[f"{device_id}\t{reason}" for device_id, reason in failures])
            pipe.ltrim(failures_key, 0, FAILURES_KEPT - 1)
            pipe.expire(failures_key, TTL_SECONDS)
        run(pipe, "publish.lua", [keys.publish(instance_id, publish_id)], ["batch", scheduled, *pairs])
        pipe.execute()


def reopen(client: redis.Redis, instance_id: str, publish_id: str, *, failed: int) -> None:
    """Undelivered devices are being tried again: one more batch, fewer failed."""
    run(client, "publish.lua", [keys.publish(instance_id, publish_id)], ["reopen", 1, failed])
