"""A publish's work items (its fan-out and its batches) and their leases.

A worker claims an item before working on it and holds a lease on it (a
deadline it keeps renewing). Progress is stored as it goes: the walk's
position, and for a batch which devices are answered. A worker that dies
stops renewing; once its lease has expired, the item can be claimed again
and the new holder carries on from the stored progress. Everything here is
one ``publish.lua`` call on the publish's keys (one hash tag), so each step
is atomic.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pushlite.storage.cluster import DataClient

from . import keys
from .publishes import CONTENT_FIELDS, Content, parse_content, publish_keys
from .scripts import run

FANOUT = "fanout"


class LeaseLost(Exception):
    """The item was taken over: this worker's lease had expired."""


@dataclass
class BatchResult:
    """What happened to each device of (part of) a batch: the one result type
    from the senders to the publish record. Every device is in one list."""

    delivered: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # the provider called the token dead
    failed: list[tuple[str, str]] = field(default_factory=list)  # (device id, reason)
    skipped: list[str] = field(default_factory=list)  # no credential or no payload for it
    retry: list[tuple[str, float | None]] = field(default_factory=list)  # (device id, Retry-After seconds)
    gone: list[str] = field(default_factory=list)  # no longer a target (deleted meanwhile)

    def extend(self, other: BatchResult) -> None:
        for name in ("delivered", "removed", "failed", "skipped", "retry", "gone"):
            getattr(self, name).extend(getattr(other, name))

    def args(self) -> list[str]:
        """The groups as ``publish.lua answer`` reads them."""
        groups: list[tuple[str, list[str]]] = [
            ("delivered", self.delivered),
            ("removed", self.removed),
            ("failed", [f"{device_id}\t{reason}" for device_id, reason in self.failed]),
            ("skipped", self.skipped),
            ("retry", [device_id for device_id, _ in self.retry]),
            ("gone", self.gone),
        ]
        return [x for name, entries in groups if entries for x in (name, str(len(entries)), *entries)]


@dataclass(frozen=True)
class Claim:
    status: str  # "ok" | "done" | "busy" | "early"
    attempt: int = 0
    takeovers: int = 0
    gen: int = 0
    device_ids: tuple[str, ...] = ()  # untried first, then those waiting for a retry
    not_before: float = 0.0  # "early": seconds since the epoch
    content: Content | None = None  # "ok" with ``with_content``: what the publish asks for


@dataclass(frozen=True)
class Due:
    """A work item the sweep should look at: its lease expired, or it is free
    and due for a check that its job still exists."""

    item: str
    owner: str
    not_before: float
    gen: int
    takeovers: int


def _call(
    client: DataClient, instance_id: str, publish_id: str, args: list[Any], extra_keys: Sequence[str] = ()
) -> Any:
    return run(client, "publish.lua", [*publish_keys(instance_id, publish_id), *extra_keys], args)


def claim(
    client: DataClient, instance_id: str, publish_id: str, item: str, owner: str, lease_ms: int,
    with_content: bool = False,
) -> Claim:
    """Take an item (see ``Claim``); ``with_content`` reads the publish's
    content in the same call (a worker that has not cached it yet)."""
    reply = _call(client, instance_id, publish_id,
                  ["claim", item, owner, lease_ms, *(CONTENT_FIELDS if with_content else ())])
    if reply[0] == "early":
        return Claim("early", not_before=int(reply[1]) / 1000)
    if reply[0] != "ok":
        return Claim(reply[0])
    untried, retry = (tuple(x for x in s.split(",") if x) for s in reply[4:6])
    content = parse_content(reply[6:]) if with_content else None
    return Claim("ok", int(reply[1]), int(reply[2]), int(reply[3]), untried + retry, content=content)


def renew(
    client: DataClient, instance_id: str, publish_id: str, owner: str, lease_ms: int, items: Sequence[str]
) -> list[str]:
    """Push the leases further; returns the items still held."""
    return _call(client, instance_id, publish_id, ["renew", owner, lease_ms, *items])


@dataclass(frozen=True)
class Step:
    """What one fan-out step did."""

    finished: bool  # every target walked
    batches: list[tuple[str, int]]  # new batches to enqueue, with their job generation
    # Set when the step ended a fan-out of at most one batch (no "fanned" to
    # call): that batch, now held by the walker, or None (no device at all).
    ended: bool = False
    held: tuple[str, Claim] | None = None


def _step(reply: list, publish_id: str) -> Step:
    if reply[0] == "lost":
        raise LeaseLost(publish_id)
    if reply[0] == "ended":
        return Step(True, [], ended=True)
    if reply[0] == "held":
        ids = tuple(x for x in reply[2].split(",") if x)
        return Step(True, [], ended=True, held=(reply[1], Claim("ok", device_ids=ids)))
    return Step(reply[0] == 1, [(reply[1], int(reply[2]))] if len(reply) > 1 else [])


def walk(
    client: DataClient, instance_id: str, publish_id: str, interest_keys: Sequence[str],
    owner: str, lease_ms: int, batch_size: int, check_ms: int,
) -> Step:
    """One step of an interests fan-out."""
    reply = _call(client, instance_id, publish_id, ["walk", owner, lease_ms, batch_size, check_ms], interest_keys)
    return _step(reply, publish_id)


def add(
    client: DataClient, instance_id: str, publish_id: str, owner: str, lease_ms: int, check_ms: int,
    device_ids: Sequence[str], last: bool,
) -> Step:
    """One step of a users fan-out: a batch of the devices not seen before in
    this publish (none when all were); ``last`` when no more ids follow."""
    reply = _call(client, instance_id, publish_id, ["add", owner, lease_ms, check_ms, int(last), *device_ids])
    return _step(reply, publish_id)


def fanned(client: DataClient, instance_id: str, publish_id: str, owner: str) -> bool:
    """The fan-out has made and enqueued every batch; returns whether the publish is done."""
    status = _call(client, instance_id, publish_id, ["fanned", owner])
    if status == "lost":
        raise LeaseLost(publish_id)
    return status == "done"


def answer(
    client: DataClient, instance_id: str, publish_id: str, item: str, owner: str, lease_ms: int, result: BatchResult,
) -> None:
    """Record one chunk's answers and counters (and renew the lease) in one step."""
    args = result.args()
    if args:
        _call(client, instance_id, publish_id, ["answer", item, owner, lease_ms, *args])


@dataclass(frozen=True)
class Finished:
    status: str  # "done" | "retry" (the devices to try again, after not_before) | "lost"
    not_before: float = 0.0
    gen: int = 0  # the retry's job generation
    publish_done: bool = False


def finish(
    client: DataClient, instance_id: str, publish_id: str, item: str, owner: str, result: BatchResult,
    *, max_attempts: int, delay_ms: int, check_ms: int, reason: str,
) -> Finished:
    """End this run of a batch, recording ``result`` (its last chunk's answers) in the same step."""
    reply = _call(client, instance_id, publish_id,
                  ["finish", item, owner, max_attempts, delay_ms, check_ms, reason, *result.args()])
    if reply[0] == "retry":
        return Finished("retry", int(reply[1]) / 1000, int(reply[2]))
    if reply[0] == "done":
        return Finished("done", publish_done=reply[1] == 1)
    return Finished(reply[0])


def release(
    client: DataClient, instance_id: str, publish_id: str, item: str, owner: str, check_ms: int,
) -> tuple[float, int] | None:
    """Give an item back (``owner``'s, or with ``owner`` "" one whose lease
    expired): returns (not before, the new job generation), None when it is
    held by a live lease."""
    reply = _call(client, instance_id, publish_id, ["release", item, owner, check_ms])
    return (int(reply[1]) / 1000, int(reply[2])) if reply[0] == "ok" else None


def due(client: DataClient, instance_id: str, publish_id: str) -> tuple[str, list[Due]]:
    """The publish's status ("gone" once expired) and its items due for a look."""
    reply = _call(client, instance_id, publish_id, ["due"])
    items = [
        Due(reply[i], reply[i + 1], int(reply[i + 2]) / 1000, int(reply[i + 3]), int(reply[i + 4]))
        for i in range(1, len(reply), 5)
    ]
    return reply[0], items


def bump(client: DataClient, instance_id: str, publish_id: str, check_ms: int, items: Sequence[str]) -> None:
    """Free items whose job was found alive: check them again later."""
    if items:
        _call(client, instance_id, publish_id, ["bump", check_ms, *items])


def reopen(
    client: DataClient, instance_id: str, publish_id: str, token: str, check_ms: int, device_ids: Sequence[str],
) -> tuple[str, int] | None:
    """Undelivered devices become a new batch, once per ``token``; None when
    that token was used already or the publish expired."""
    reply = _call(client, instance_id, publish_id, ["reopen", token, check_ms, *device_ids])
    return (reply[0], int(reply[1])) if reply else None


def unfinished(client: DataClient, instance_id: str, publish_id: str, limit: int = 100) -> list[tuple[str, int]]:
    """The publish's work items not done yet, with their job generation
    (the state's fifth field, see ``lua/publish.lua``): which RQ jobs to look at."""
    items = cast("list[str]", client.zrange(keys.publish_work(instance_id, publish_id), 0, limit - 1))
    with client.pipeline(transaction=False) as pipe:
        for item in items:
            pipe.hget(keys.publish_batches(instance_id, publish_id), f"{item}:st")
        states = pipe.execute()
    return [(item, int(state.split("|")[4])) for item, state in zip(items, states, strict=True) if state]
