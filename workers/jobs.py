"""The RQ jobs: one fan-out job per publish, then delivery jobs of up to
``batch_size`` devices. Jobs take ids, never objects, and rebuild what they
need from the process runtime."""
from __future__ import annotations

import json
import logging
import random
from datetime import timedelta
from typing import Sequence

from rq import Queue, get_current_job

from pushlite.storage import devices, interests, publishes
from workers import delivery
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)

JOB_TIMEOUT = 300
# Successful jobs leave nothing behind; failed ones stay a week for operators.
JOB_TTLS = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600}


class DeliveryFailed(Exception):
    """The devices of an ``undelivered`` job could not be delivered."""


def enqueue_publish(queue: Queue, instance_id: str, publish_id: str) -> None:
    queue.enqueue(fan_out, instance_id, publish_id, job_timeout=JOB_TIMEOUT, **JOB_TTLS)


def fan_out(instance_id: str, publish_id: str) -> None:
    """Walk the publish's targets and enqueue delivery batches.

    A publish that fits in one batch is delivered here, saving a job hop. A
    bigger one is walked incrementally: interest sets with SSCAN, never loaded
    whole; a device in several targeted interests is delivered only with the
    first of them (the delivery job checks, so fan-out keeps no state).
    """
    rt = runtime()
    record = publishes.start_fanout(rt.redis, instance_id, publish_id)
    if record is None:
        log.warning("publish %s of %s expired before fan-out", publish_id, instance_id)
        return
    try:
        _walk(rt, instance_id, publish_id, record["kind"], json.loads(record["targets"]), rt.delivery.batch_size)
    finally:
        # Batches are counted as they are enqueued, so even a walk that failed
        # half-way leaves a publish that reaches "done" once they are.
        publishes.finish_fanout(rt.redis, instance_id, publish_id)


def _walk(rt: Runtime, instance_id: str, publish_id: str, kind: str, targets: list[str], size: int) -> None:
    if kind == "interests":
        counts = interests.sizes(rt.redis, instance_id, targets)
        if sum(counts) <= size:
            ids: set[str] = set()
            for name, count in zip(targets, counts):
                if count:
                    ids |= interests.members(rt.redis, instance_id, name)
            _deliver_inline(rt, instance_id, publish_id, sorted(ids))
        else:
            pending = []
            for name in targets:
                for chunk in interests.scan(rt.redis, instance_id, name, size):
                    pending.append((chunk, name))
                    if len(pending) >= 50:
                        _enqueue(rt, instance_id, publish_id, pending)
                        pending = []
            _enqueue(rt, instance_id, publish_id, pending)
    else:
        ids_ordered = devices.users_device_ids(rt.redis, instance_id, targets)
        if len(ids_ordered) <= size:
            _deliver_inline(rt, instance_id, publish_id, ids_ordered)
        else:
            chunks = [(ids_ordered[i:i + size], None) for i in range(0, len(ids_ordered), size)]
            _enqueue(rt, instance_id, publish_id, chunks)


def _deliver_inline(rt: Runtime, instance_id: str, publish_id: str, ids: list[str]) -> None:
    if ids:
        publishes.add_batches(rt.redis, instance_id, publish_id, 1)
        deliver(instance_id, publish_id, ids)


def _enqueue(rt: Runtime, instance_id: str, publish_id: str, chunks: list[tuple[list[str], str | None]]) -> None:
    if not chunks:
        return
    publishes.add_batches(rt.redis, instance_id, publish_id, len(chunks))
    rt.delivery_queue.enqueue_many([
        Queue.prepare_data(deliver, (instance_id, publish_id, ids, interest), timeout=JOB_TIMEOUT, **JOB_TTLS)
        for ids, interest in chunks
    ])


def deliver(
    instance_id: str,
    publish_id: str,
    device_ids: Sequence[str],
    interest: str | None = None,
    attempt: int = 0,
) -> None:
    """Send one batch and record what happened; schedule a retry for the
    temporary failures, or fail them once ``max_attempts`` is reached.

    Devices that end failed are also put in RQ's failed registry, as one
    ``undelivered`` job per batch (requeuing it tries them again)."""
    rt = runtime()
    result = delivery.send_batch(rt, instance_id, publish_id, device_ids, interest, first_attempt=attempt == 0)
    retry_ids = [device_id for device_id, _ in result.retry]
    scheduled = 0
    exhausted: list[tuple[str, str]] = []
    if retry_ids and attempt + 1 < rt.delivery.max_attempts:
        delay = backoff(rt, attempt, [after for _, after in result.retry])
        rt.delivery_queue.enqueue_in(
            timedelta(seconds=delay), deliver, instance_id, publish_id, retry_ids, None, attempt + 1,
            job_timeout=JOB_TIMEOUT, **JOB_TTLS,
        )
        scheduled = 1
    elif retry_ids:
        reason = f"temporary provider failures; gave up after {attempt + 1} attempts"
        exhausted = [(device_id, reason) for device_id in retry_ids]
    counts = dict(result.counts)
    counts["retried"] = len(retry_ids) if scheduled else 0
    counts["failed"] = counts.get("failed", 0) + len(exhausted)
    failures = result.failed + exhausted
    publishes.finish_batch(rt.redis, instance_id, publish_id, counts, scheduled=scheduled, failures=failures)
    if failures:
        reasons = sorted({reason for _, reason in failures})
        rt.delivery_queue.enqueue(
            undelivered, instance_id, publish_id, [device_id for device_id, _ in failures], "; ".join(reasons),
            job_timeout=JOB_TIMEOUT, **JOB_TTLS,
        )


def undelivered(instance_id: str, publish_id: str, device_ids: Sequence[str], reason: str) -> None:
    """Fails on purpose, so that undelivered devices stand in RQ's failed
    registry with their reason. Requeued by an operator (RQ Dashboard), it
    tries those devices again as a new batch of the publish."""
    job = get_current_job()
    if job is not None and not job.meta.get("reported"):
        job.meta["reported"] = True
        job.save_meta()
        raise DeliveryFailed(f"{len(device_ids)} device(s) of {publish_id} not delivered: {reason}")
    rt = runtime()
    publishes.reopen(rt.redis, instance_id, publish_id, failed=len(device_ids))
    deliver(instance_id, publish_id, device_ids, None, attempt=1)


def backoff(rt: Runtime, attempt: int, retry_after: Sequence[float | None]) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    settings = rt.delivery
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** attempt)
    delay = random.uniform(ceiling / 2, ceiling)
    hinted = max((a for a in retry_after if a is not None), default=0.0)
    return min(settings.retry_max_seconds, max(delay, hinted))
