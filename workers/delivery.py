"""One delivery batch: load the devices, send through each provider's sender
concurrently, remove dead tokens, and count what happened."""
from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from pushlite.storage import devices, keys
from pushlite.storage.records import Device
from workers.dry_run import DryRunSender
from workers.runtime import Runtime
from workers.senders import Outcome, Sender, Target

# Which sender serves a device platform. The publish payload a device gets is
# the one named like its platform: VoIP devices only get an explicit
# "apns_voip" payload, since iOS punishes VoIP pushes that ring no call.
# Matrix pushers get the publish's "matrix" notification (given, or derived
# from its title and body by pushlite.payloads).
PROVIDER_OF = {"fcm": "fcm", "apns": "apns", "apns_voip": "apns", "matrix": "matrix"}


@dataclass(frozen=True)
class PublishContent:
    targets: list[str]
    payload: dict[str, Any]
    # When set, only devices registered for one of these app names ("": for no app).
    apps: frozenset[str] | None


_PUBLISHES: OrderedDict[tuple[str, str], PublishContent] = OrderedDict()


@dataclass
class BatchResult:
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    retry: list[tuple[str, float | None]] = field(default_factory=list)

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def publish_content(rt: Runtime, instance_id: str, publish_id: str) -> PublishContent:
    """The publish's targets, payloads and filter, cached: they never change."""
    key = (instance_id, publish_id)
    if key not in _PUBLISHES:
        targets, payload, app, apps = rt.redis.hmget(
            keys.publish(instance_id, publish_id), "targets", "payload", "app", "apps")
        allowed = frozenset(json.loads(apps)) if apps else frozenset([app]) if app else None
        _PUBLISHES[key] = PublishContent(json.loads(targets or "[]"), json.loads(payload or "{}"), allowed)
        if len(_PUBLISHES) > 256:
            _PUBLISHES.popitem(last=False)
    return _PUBLISHES[key]


def first_targeted_interest(device: Device, targets: Sequence[str]) -> str | None:
    mine = set(device.interests)
    return next((name for name in targets if name in mine), None)


def send_batch(
    rt: Runtime,
    instance_id: str,
    publish_id: str,
    device_ids: Sequence[str],
    interest: str | None,
    *,
    first_attempt: bool,
) -> BatchResult:
    content = publish_content(rt, instance_id, publish_id)
    payload = content.payload
    found = devices.load_many(rt.redis, instance_id, device_ids)
    if interest is not None and len(content.targets) > 1:
        # Deduplicate across interests without state: a device goes out only
        # with the first targeted interest it has.
        found = {i: d for i, d in found.items() if first_targeted_interest(d, content.targets) == interest}
    if content.apps is not None:
        found = {i: d for i, d in found.items() if d.app in content.apps}
    result = BatchResult()
    if first_attempt:
        result.add("targeted", len(found))
    senders = _senders(rt, instance_id, {PROVIDER_OF[d.platform] for d in found.values()})
    groups: dict[tuple[str, str], list[Target]] = {}
    for device in found.values():
        groups.setdefault((credential_app(senders, device), device.platform), []).append(
            Target(device.id, device.token, device.platform, device.environment, device.bundle_id, device.metadata)
        )
    jobs = []
    for (app, platform), group in groups.items():
        sender = senders.get((app, PROVIDER_OF[platform]))
        if sender is None or platform not in payload:
            result.add("skipped", len(group))
            continue
        jobs.append(sender.send(group, payload[platform]))
    dead: list[str] = []
    for outcome in rt.run(_gather(jobs)):
        result.add("delivered", len(outcome.delivered))
        result.add("failed", len(outcome.failed))
        result.failed.extend(outcome.failed)
        result.retry.extend(outcome.retry)
        dead.extend(outcome.dead)
    if dead:
        devices.delete_many(rt.redis, instance_id, dead)
        result.add("removed", len(dead))
    return result


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
