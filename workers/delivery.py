"""One chunk of a delivery batch: load the devices (``prepare``), send
through each provider's sender concurrently (``start``), then remove dead
tokens, say what happened to each device (a ``BatchResult``, which the job
records on the publish) and add it to the delivery statistics
(``pushlite.storage.stats``) (``finish``). A job prepares its next chunk
while the current one is in flight."""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import redis

from pushlite import payloads
from pushlite.platforms import PROVIDER_OF
from pushlite.storage import devices, publishes, stats
from pushlite.storage.records import Device
from pushlite.storage.work import BatchResult, Claim
from workers.dry_run import DryRunSender
from workers.runtime import Runtime
from workers.senders import Outcome, Sender, Target

log = logging.getLogger(__name__)

_CONTENT: OrderedDict[tuple[str, str], publishes.Content | None] = OrderedDict()


def has_content(instance_id: str, publish_id: str) -> bool:
    """Whether the publish's content is cached (else a claim can read it: ``work.claim``'s ``with_content``)."""
    return (instance_id, publish_id) in _CONTENT


def publish_content(
    rt: Runtime, instance_id: str, publish_id: str, claim: Claim | None = None
) -> publishes.Content | None:
    """The publish's targets, payloads and filter, cached: they never change.
    The payloads carry the delivery metadata the SDKs report with
    (``payloads.with_insights``). A claim that read the content saves
    reading it again."""
    key = (instance_id, publish_id)
    if key not in _CONTENT:
        content = claim.content if claim is not None and claim.content is not None else \
            publishes.content(rt.redis, instance_id, publish_id)
        if content is not None:
            content = replace(content, payload=payloads.with_insights(content.payload, instance_id, publish_id))
        _CONTENT[key] = content
        if len(_CONTENT) > 256:
            _CONTENT.popitem(last=False)
    return _CONTENT[key]


@dataclass
class Chunk:
    """One chunk of a batch, its devices loaded and grouped: ready to send."""

    instance_id: str
    result: BatchResult  # the devices gone and skipped already; the rest once sent
    tally: stats.Tally
    sends: list[tuple[str, Sender, list[Target], dict[str, Any]]]  # (provider, sender, targets, payload)


def prepare(rt: Runtime, instance_id: str, publish_id: str, device_ids: Sequence[str]) -> Chunk:
    """Load a chunk's devices (at most one sender window of them) and group
    them by sender; the devices gone or without a sender are filed at once."""
    content = publish_content(rt, instance_id, publish_id)
    found = devices.load_many(rt.redis, instance_id, device_ids) if content else {}
    if content and content.apps is not None:
        found = {i: d for i, d in found.items() if d.app in content.apps}
    chunk = Chunk(instance_id, BatchResult(gone=[device_id for device_id in device_ids if device_id not in found]),
                  stats.Tally(), [])
    senders = _senders(rt, instance_id, {PROVIDER_OF[d.platform] for d in found.values()})
    groups: dict[tuple[str, str], list[Target]] = {}
    for device in found.values():
        groups.setdefault((credential_app(senders, device), device.platform), []).append(
            Target(device.id, device.token, device.platform, device.environment, device.bundle_id, device.metadata)
        )
    payload = content.payload if content else {}
    for (app, platform), group in groups.items():
        sender = senders.get((app, PROVIDER_OF[platform]))
        if sender is None or platform not in payload:
            chunk.result.skipped.extend(t.device_id for t in group)
            chunk.tally.count(PROVIDER_OF[platform], "skipped", len(group))
            continue
        chunk.sends.append((PROVIDER_OF[platform], sender, group, payload[platform]))
    return chunk


def start(rt: Runtime, chunk: Chunk) -> Future[list[Outcome]]:
    """Send the chunk through each provider's sender concurrently, on the
    process's event loop; the caller can prepare the next chunk meanwhile."""
    return rt.submit(_gather([sender.send(targets, payload) for _, sender, targets, payload in chunk.sends]))


def finish(rt: Runtime, chunk: Chunk, outcomes: list[Outcome]) -> BatchResult:
    """Sort every device of a sent chunk into its result, remove the dead
    tokens and add the chunk to the delivery statistics."""
    result = chunk.result
    for (provider, *_), outcome in zip(chunk.sends, outcomes, strict=True):
        result.delivered.extend(outcome.delivered)
        result.removed.extend(outcome.dead)
        result.failed.extend(outcome.failed)
        result.retry.extend(outcome.retry)
        count(chunk.tally, provider, outcome)
    if result.removed:
        devices.delete_many(rt.redis, chunk.instance_id, result.removed)
    try:
        stats.record(rt.redis, chunk.instance_id, chunk.tally)
    except redis.RedisError as exc:  # counting must never change what is delivered
        log.warning("delivery statistics not recorded: %s", type(exc).__name__)
    return result


def count(tally: stats.Tally, provider: str, outcome: Outcome) -> None:
    """Add a sender's outcome to the chunk's statistics."""
    for name, n in (("delivered", len(outcome.delivered)), ("removed", len(outcome.dead)),
                    ("retried", len(outcome.retry)), ("failed", len(outcome.failed))):
        tally.count(provider, name, n)
    for reason, n in outcome.retry_reasons.items():
        tally.retry(provider, reason, n)
    tally.observe(provider, outcome.latencies)


def credential_app(senders: dict[tuple[str, str], Sender], device: Device) -> str:
    """Whose credential a device is delivered with: its app's when the app has
    one for the provider (a second iOS app has its own apns-topic), else the
    instance's ("")."""
    if device.app and (device.app, PROVIDER_OF[device.platform]) in senders:
        return device.app
    return ""


async def _gather(jobs: list) -> list[Outcome]:
    return list(await asyncio.gather(*jobs))


def _senders(rt: Runtime, instance_id: str, providers: set[str]) -> dict[tuple[str, str], Sender]:
    """Senders by (app, provider); app "" is the instance's own credential."""
    if rt.dry_run:
        return {("", provider): DryRunSender(rt.redis, instance_id, provider) for provider in providers}
    if not providers:
        return {}
    return {**rt.senders(instance_id), **rt.credential_free_senders(providers)}
