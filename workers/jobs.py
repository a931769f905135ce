"""The RQ jobs: one fan-out job per publish, then one delivery job per batch
of up to ``batch_size`` devices. Jobs take ids, never objects, and rebuild
what they need from the process runtime.

A job is only a nudge: the work itself (the walk's position, each batch's
devices and which of them are answered) is stored on the publish in the data
Redis, and a job first claims its item there (``pushlite.storage.work``). So
a job that runs twice does the work once, a job lost with the queue Redis is
enqueued again by the sweep (``workers.sweep``), and a batch whose worker
died is taken over where it stopped.
"""
from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypedDict

from rq import Queue, get_current_job

from pushlite.storage import devices, keys, publishes, work
from pushlite.storage.publishes import CHECK_MS
from pushlite.storage.work import FANOUT, BatchResult, LeaseLost
from workers import delivery
from workers.lease import Lease
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)

JOB_TIMEOUT = 300


class JobTTLs(TypedDict):
    """RQ's keyword arguments for how long a job's record stays (typed, so
    that ``**JOB_TTLS`` is checked against RQ's signatures)."""

    result_ttl: int
    failure_ttl: int


# Successful jobs leave nothing behind; failed ones stay a week for operators.
JOB_TTLS: JobTTLs = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
# How many batches the fan-out enqueues in one round trip.
ENQUEUE_GROUP = 50
# RQ's scheduler moves a job at the whole second; one a little early for
# its batch's not-before time waits this long at most instead of rescheduling.
EARLY_WAIT_SECONDS = 2.0


class DeliveryFailed(Exception):
    """The devices of an ``undelivered`` job could not be delivered."""


def job_id(publish_id: str, item: str, gen: int) -> str:
    """The RQ job id of one generation of a work item (a new one each time it is enqueued again)."""
    return f"{publish_id}_{item}_{gen}"


def enqueue_publish(queue: Queue, instance_id: str, publish_id: str) -> None:
    # One round trip: RQ alone sends its queue registration and the job in two.
    with queue.connection.pipeline() as pipe:
        queue.enqueue(fan_out, instance_id, publish_id, job_id=job_id(publish_id, FANOUT, 0),
                      job_timeout=JOB_TIMEOUT, pipeline=pipe, **JOB_TTLS)
        pipe.execute()


def enqueue_item(rt: Runtime, instance_id: str, publish_id: str, item: str, gen: int, not_before: float = 0.0) -> None:
    """Enqueue a work item's job, to run no sooner than ``not_before``. RQ's
    scheduler keeps whole seconds (it may move a job up to a second before the
    time given), so the job is scheduled at the next whole second."""
    queue, func, args = (
        (rt.fanout_queue, fan_out, (instance_id, publish_id)) if item == FANOUT
        else (rt.delivery_queue, deliver, (instance_id, publish_id, item))
    )
    options = {"job_id": job_id(publish_id, item, gen), "job_timeout": JOB_TIMEOUT, **JOB_TTLS}
    if not_before > time.time():
        when = datetime.fromtimestamp(math.ceil(not_before), tz=UTC)
        queue.enqueue_at(when, func, *args, **options)
    else:
        queue.enqueue(func, *args, **options)


def _enqueue_batches(rt: Runtime, instance_id: str, publish_id: str, batches: list[tuple[str, int]]) -> None:
    if batches:
        rt.delivery_queue.enqueue_many([
            Queue.prepare_data(deliver, (instance_id, publish_id, n), job_id=job_id(publish_id, n, gen),
                               timeout=JOB_TIMEOUT, **JOB_TTLS)
            for n, gen in batches
        ])


def fan_out(instance_id: str, publish_id: str) -> None:
    """Walk the publish's targets into batches and enqueue them.

    Interest sets are walked with SSCAN inside Redis, never loaded whole;
    the publish's seen set drops a device that SSCAN returns twice or that
    is in two targeted interests. A publish that fits in one batch is
    delivered here, saving a job hop (its last walk step hands that batch
    to this worker). The walk's position is stored with each batch, so a
    fan-out taken over after a crash carries on from there.
    """
    rt = runtime()
    claim = work.claim(rt.redis, instance_id, publish_id, FANOUT, rt.owner, _ms(rt.delivery.lease_seconds),
                       with_content=not delivery.has_content(instance_id, publish_id))
    if claim.status != "ok":
        return
    content = delivery.publish_content(rt, instance_id, publish_id, claim)
    if content is None:
        log.warning("publish %s of %s expired before fan-out", publish_id, instance_id)
        return
    try:
        with Lease(rt, instance_id, publish_id, FANOUT) as lease:
            walked = _walk(rt, lease, instance_id, publish_id, content.kind, content.targets)
            if walked is None:
                return
            pending, last = walked
            if last.ended:
                publish_done = last.held is None
            else:
                _enqueue_batches(rt, instance_id, publish_id, pending)
                publish_done = work.fanned(rt.redis, instance_id, publish_id, rt.owner)
    except LeaseLost:
        log.warning("fan-out of %s was taken over", publish_id)
        return
    if publish_done:
        publishes.forget(rt.redis, instance_id, publish_id)
    if last.held is not None:
        _deliver(rt, instance_id, publish_id, *last.held)


def _walk(
    rt: Runtime, lease: Lease, instance_id: str, publish_id: str, kind: str, targets: list[str]
) -> tuple[list[tuple[str, int]], work.Step] | None:
    """Make every batch, enqueueing them in groups as they come. Returns the
    batches not enqueued yet and the last step, or None when the fan-out
    was handed back (SIGTERM) or lost."""
    size, lease_ms = rt.delivery.batch_size, _ms(rt.delivery.lease_seconds)
    if kind == "interests":
        interest_keys = [keys.interest(instance_id, name) for name in targets]

        def step(n: int) -> work.Step:  # the walk keeps its own position
            return work.walk(rt.redis, instance_id, publish_id, interest_keys, rt.owner, lease_ms, size, CHECK_MS)
    else:
        # "users", or "devices": the console's test notification to one device.
        ids = list(targets) if kind == "devices" else devices.users_device_ids(rt.redis, instance_id, targets)

        def step(n: int) -> work.Step:
            chunk = ids[n * size:(n + 1) * size]
            return work.add(rt.redis, instance_id, publish_id, rt.owner, lease_ms, CHECK_MS, chunk,
                            last=(n + 1) * size >= len(ids))
    pending: list[tuple[str, int]] = []
    n = 0
    while True:
        if _must_stop(rt, lease, instance_id, publish_id, FANOUT):
            return None
        last = step(n)
        pending.extend(last.batches)
        if last.finished:
            return pending, last
        if len(pending) > ENQUEUE_GROUP:
            _enqueue_batches(rt, instance_id, publish_id, pending)
            pending = []
        n += 1


def deliver(instance_id: str, publish_id: str, batch: str) -> None:
    """Send one batch (see ``_deliver``) once this worker holds it."""
    rt = runtime()
    lease_ms = _ms(rt.delivery.lease_seconds)
    with_content = not delivery.has_content(instance_id, publish_id)
    claim = work.claim(rt.redis, instance_id, publish_id, batch, rt.owner, lease_ms, with_content)
    if claim.status == "early" and claim.not_before - time.time() <= EARLY_WAIT_SECONDS:
        time.sleep(max(0.0, claim.not_before - time.time()))
        claim = work.claim(rt.redis, instance_id, publish_id, batch, rt.owner, lease_ms, with_content)
    if claim.status == "ok":
        delivery.publish_content(rt, instance_id, publish_id, claim)  # cached for the batch's chunks
        _deliver(rt, instance_id, publish_id, batch, claim)


def _deliver(rt: Runtime, instance_id: str, publish_id: str, batch: str, claim: work.Claim) -> None:
    """Send a held batch in chunks of one sender window, recording each
    chunk's answers before the next (so a take-over resends at most one
    window) and the last one's with the end of the run, then schedule a retry
    for the temporary failures or fail them once ``max_attempts`` is reached.

    Devices that end failed are also put in RQ's failed registry, as one
    ``undelivered`` job per batch run (requeuing it tries them again)."""
    settings = rt.delivery
    lease_ms = _ms(settings.lease_seconds)
    failures: list[tuple[str, str]] = []
    retry: list[tuple[str, float | None]] = []
    with Lease(rt, instance_id, publish_id, batch) as lease:
        ids = claim.device_ids
        last = BatchResult()  # answers recorded by "finish"
        if claim.takeovers >= settings.max_takeovers:
            reason = f"its worker was lost {claim.takeovers} times while delivering it"
            last = BatchResult(failed=[(device_id, reason) for device_id in ids])
            failures, ids = list(last.failed), ()
        window = max(1, rt.sender_settings.max_concurrency)
        chunks = [ids[start:start + window] for start in range(0, len(ids), window)]
        ready: delivery.Chunk | None = None
        for n, device_ids in enumerate(chunks):
            if _must_stop(rt, lease, instance_id, publish_id, batch):
                return
            chunk = ready or delivery.prepare(rt, instance_id, publish_id, device_ids)
            sending = delivery.start(rt, chunk)
            ready = _prepare_next(rt, instance_id, publish_id, chunks[n + 1]) if n + 1 < len(chunks) else None
            result = delivery.finish(rt, chunk, sending.result())
            if n + 1 < len(chunks):
                work.answer(rt.redis, instance_id, publish_id, batch, rt.owner, lease_ms, result)
            else:
                last = result
            failures.extend(result.failed)
            retry.extend(result.retry)
        exhausted = f"temporary provider failures; gave up after {claim.attempt + 1} attempts"
        finished = work.finish(
            rt.redis, instance_id, publish_id, batch, rt.owner, last, max_attempts=settings.max_attempts,
            delay_ms=_ms(backoff(rt, claim.attempt, [after for _, after in retry])),
            check_ms=CHECK_MS, reason=exhausted,
        )
    if finished.status == "retry":
        enqueue_item(rt, instance_id, publish_id, batch, finished.gen, finished.not_before)
    elif finished.status == "done" and retry and claim.attempt + 1 >= settings.max_attempts:
        failures.extend((device_id, exhausted) for device_id, _ in retry)
    if finished.publish_done:
        publishes.forget(rt.redis, instance_id, publish_id)
    if failures:
        reasons = sorted({reason for _, reason in failures})
        rt.delivery_queue.enqueue(
            undelivered, instance_id, publish_id, [device_id for device_id, _ in failures], "; ".join(reasons),
            job_id=undelivered_job_id(publish_id), job_timeout=JOB_TIMEOUT, **JOB_TTLS,
        )


def _prepare_next(rt: Runtime, instance_id: str, publish_id: str, device_ids: Sequence[str]) -> delivery.Chunk | None:
    """The next chunk, loaded while the current one is in flight; None when
    that failed (it is loaded again in turn, once the current chunk's answers
    are recorded, and fails there if it still does: Redis away, say)."""
    try:
        return delivery.prepare(rt, instance_id, publish_id, device_ids)
    except Exception:  # noqa: BLE001 - raised again where it is prepared in turn
        return None


def _must_stop(rt: Runtime, lease: Lease, instance_id: str, publish_id: str, item: str) -> bool:
    """Between two steps: stop when the lease was lost, or hand the item back
    (to be taken up at once by another worker) when this one is stopping."""
    if lease.lost:
        return True
    if not rt.stopping.is_set():
        return False
    released = work.release(rt.redis, instance_id, publish_id, item, rt.owner, CHECK_MS)
    if released is not None:
        not_before, gen = released
        enqueue_item(rt, instance_id, publish_id, item, gen, not_before)
        log.warning("stopping: handed %s %s back", publish_id, item)
    return True


def undelivered_job_id(publish_id: str) -> str:
    """Named after its publish, so that /rq and ``publishes requeue`` find a publish's undelivered jobs."""
    return f"{publish_id}_undelivered_{uuid.uuid4().hex[:12]}"


def undelivered(instance_id: str, publish_id: str, device_ids: Sequence[str], reason: str) -> None:
    """Fails on purpose, so that undelivered devices stand in RQ's failed
    registry with their reason. Requeued by an operator (RQ Dashboard, or
    ``flask --app wsgi publishes requeue``), it makes those devices a new
    batch of the publish, once, enqueues it and ends finished; the batch is
    delivered like any other (devices that fail again get a new
    ``undelivered`` job)."""
    job = get_current_job()
    if job is not None and not job.meta.get("reported"):
        job.meta["reported"] = True
        job.save_meta()
        raise DeliveryFailed(f"{len(device_ids)} device(s) of {publish_id} not delivered: {reason}")
    rt = runtime()
    token = job.id if job is not None else "-".join(device_ids)
    publishes.watch(rt.redis, instance_id, publish_id)  # done publishes have left the sweep's list
    reopened = work.reopen(rt.redis, instance_id, publish_id, token, CHECK_MS, device_ids)
    if reopened is not None:
        enqueue_item(rt, instance_id, publish_id, *reopened)


def backoff(rt: Runtime, attempt: int, retry_after: Sequence[float | None]) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    settings = rt.delivery
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** attempt)
    delay = random.uniform(ceiling / 2, ceiling)
    hinted = max((a for a in retry_after if a is not None), default=0.0)
    return min(settings.retry_max_seconds, max(delay, hinted))


def _ms(seconds: float) -> int:
    return int(math.ceil(seconds * 1000))
