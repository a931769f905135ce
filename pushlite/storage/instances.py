"""Instances (tenants): their public id, secret key and client token."""
from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

from pushlite.storage.cluster import DataClient

from . import keys
from .cluster import scan_slot_of
from .errors import InstanceNotFound

# How long an index entry may wait for its instance hash before a listing
# takes it for the leftover of a create that crashed, and removes it.
UNFINISHED_GRACE = 60.0
DELETING = "deleting"


@dataclass
class Instance:
    id: str
    name: str
    secret_key: str = field(repr=False)  # never in a log line or a traceback's locals
    client_token: str = field(repr=False)
    created_at: int


INSTANCE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_instance_id(value: str) -> bool:
    """Instance ids are lowercase UUIDs, as Beams instance ids are."""
    return INSTANCE_ID.fullmatch(value) is not None


def _new_secret() -> str:
    return secrets.token_hex(32).upper()


def token_digest(token: str) -> str:
    """What the token index stores of a secret key or client token."""
    return hashlib.sha256(token.encode()).hexdigest()


def find_by_token(client: DataClient, token: str) -> tuple[Instance, str] | None:
    """The instance whose secret key ("secret") or client token ("client") this is.

    The index only finds the candidate; the instance hash decides, so a stale
    index entry (a rotated secret) never authenticates.
    """
    instance_id = cast("str | None", client.get(keys.instance_token(token_digest(token))))
    if not instance_id:
        return None
    data = cast("dict[str, str]", client.hgetall(keys.instance(instance_id)))
    if not data:
        return None
    instance = _from_hash(instance_id, data)
    for kind, expected in (("secret", instance.secret_key), ("client", instance.client_token)):
        if secrets.compare_digest(token.encode(), expected.encode()):
            return instance, kind
    return None


def create(client: DataClient, name: str) -> Instance:
    """Make a new instance. Each step writes one key (on a Cluster they live
    on different nodes), in an order that a crash at any point leaves
    something ``list_all`` or a retried ``delete`` finishes: the index entry
    first, then the digests of its credentials and their index keys, and the
    instance hash last; the instance exists from then on."""
    instance = Instance(
        id=str(uuid.uuid4()),
        name=name,
        secret_key=_new_secret(),
        client_token=secrets.token_urlsafe(24),
        created_at=int(time.time()),
    )
    client.hset(keys.INSTANCE_INDEX, instance.id, instance.created_at)
    _index_tokens(client, instance.id, [instance.secret_key, instance.client_token])
    client.hset(
        keys.instance(instance.id),
        mapping={
            "name": instance.name,
            "secret_key": instance.secret_key,
            "client_token": instance.client_token,
            "created_at": instance.created_at,
        },
    )
    return instance


def _index_tokens(client: DataClient, instance_id: str, tokens: list[str]) -> None:
    digests = [token_digest(t) for t in tokens]
    client.sadd(keys.auth_digests(instance_id), *digests)
    for digest in digests:
        client.set(keys.instance_token(digest), instance_id)


def _from_hash(instance_id: str, data: dict[str, str]) -> Instance:
    return Instance(
        id=instance_id,
        name=data["name"],
        secret_key=data["secret_key"],
        client_token=data["client_token"],
        created_at=int(data["created_at"]),
    )


def get(client: DataClient, instance_id: str) -> Instance:
    data = cast("dict[str, str]", client.hgetall(keys.instance(instance_id)))
    if not data:
        raise InstanceNotFound(instance_id)
    return _from_hash(instance_id, data)


def list_all(client: DataClient, *, now: float | None = None) -> list[Instance]:
    """Every instance, by id. This also finishes what a crash cut short: a
    deletion (its entry says "deleting"), and a create whose entry has waited
    ``UNFINISHED_GRACE`` seconds for its instance hash; so nothing either of
    them wrote stays behind."""
    entries = cast("dict[str, str]", client.hgetall(keys.INSTANCE_INDEX))
    ids = sorted(entries)
    with client.pipeline(transaction=False) as pipe:
        for instance_id in ids:
            pipe.hgetall(keys.instance(instance_id))
        found = pipe.execute()
    now = time.time() if now is None else now
    listed = []
    for instance_id, data in zip(ids, found, strict=True):
        entry = entries[instance_id]
        if entry == DELETING or (not data and now - float(entry) > UNFINISHED_GRACE):
            _remove(client, instance_id)
        elif data:
            listed.append(_from_hash(instance_id, data))
    return listed


def secret_key(client: DataClient, instance_id: str) -> str:
    value = cast("str | None", client.hget(keys.instance(instance_id), "secret_key"))
    if value is None:
        raise InstanceNotFound(instance_id)
    return value


def rotate_secret(client: DataClient, instance_id: str) -> Instance:
    """Give the instance a new secret key; the old one stops working at once."""
    new = _new_secret()
    # Indexed first: until the HSET below, the instance hash refuses it anyway.
    _index_tokens(client, instance_id, [new])
    # HSET only if the instance still exists, in one step; returns the old secret.
    old = client.eval(
        "local old = redis.call('HGET', KEYS[1], 'secret_key') "
        "if old then redis.call('HSET', KEYS[1], 'secret_key', ARGV[1]) return old end return false",
        1,
        keys.instance(instance_id),
        new,
    )
    if not old:
        _unindex_tokens(client, instance_id, [token_digest(new)])
        raise InstanceNotFound(instance_id)
    _unindex_tokens(client, instance_id, [token_digest(old)])
    return get(client, instance_id)


def _unindex_tokens(client: DataClient, instance_id: str, digests: list[str]) -> None:
    for digest in digests:
        client.delete(keys.instance_token(digest))
    if digests:
        client.srem(keys.auth_digests(instance_id), *digests)


def delete(client: DataClient, instance_id: str) -> None:
    """Remove the instance and every key under its hash tag. Raises
    InstanceNotFound when there is nothing to remove; run again after a
    failure, it finishes what the failed run left."""
    if client.hget(keys.INSTANCE_INDEX, instance_id) is None and not client.exists(keys.instance(instance_id)):
        raise InstanceNotFound(instance_id)
    _remove(client, instance_id)


def _remove(client: DataClient, instance_id: str) -> None:
    client.hset(keys.INSTANCE_INDEX, instance_id, DELETING)
    # The instance hash goes first, so every device script sees "no_instance"
    # from here on and nothing new is written while the rest is removed.
    client.unlink(keys.instance(instance_id))
    _unindex_tokens(client, instance_id, list(cast("set[str]", client.smembers(keys.auth_digests(instance_id)))))
    batch: list[str] = []
    for key in _instance_keys(client, instance_id):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)
    client.hdel(keys.INSTANCE_INDEX, instance_id)


def reindex(client: DataClient) -> int:
    """Rebuild the index entry and token keys of every instance from the
    instances themselves (every master is scanned), and drop the indexes of
    versions before them. Run once after such an upgrade, or to repair a
    restored backup; running it again changes nothing. Returns how many
    instances it found."""
    found = 0
    hgetall = cast("Callable[[str], dict[str, str]]", client.hgetall)  # typed once, outside the loop
    for key in client.scan_iter(match=keys.ANY_INSTANCE, count=1000):
        data = hgetall(key)
        if not data:
            continue
        instance_id = keys.instance_id_of(key)
        client.hsetnx(keys.INSTANCE_INDEX, instance_id, data["created_at"])
        _index_tokens(client, instance_id, [data["secret_key"], data["client_token"]])
        found += 1
    for legacy in keys.LEGACY_INDEXES:
        client.delete(legacy)
    return found


def _instance_keys(client: DataClient, instance_id: str) -> Iterator[str]:
    """Every key of the instance: on a Cluster, only the master that holds
    its slot is scanned."""
    match, cursor = keys.instance_pattern(instance_id), 0
    while True:
        cursor, names = scan_slot_of(client, keys.instance(instance_id), cursor, match, 1000)
        yield from names
        if cursor == 0:
            return
