"""Instances (tenants): their public id, secret key and client token."""
from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field

import redis

from . import keys
from .errors import InstanceNotFound


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
    """What the global token index stores of a secret key or client token."""
    return hashlib.sha256(token.encode()).hexdigest()


def find_by_token(client: redis.Redis, token: str) -> tuple[Instance, str] | None:
    """The instance whose secret key ("secret") or client token ("client") this is.

    The index only finds the candidate; the instance hash decides, so a stale
    index entry (a rotated secret) never authenticates.
    """
    instance_id = client.hget(keys.TOKENS, token_digest(token))
    data = client.hgetall(keys.instance(instance_id)) if instance_id else None
    if not data:
        return None
    instance = _from_hash(instance_id, data)
    for kind, expected in (("secret", instance.secret_key), ("client", instance.client_token)):
        if secrets.compare_digest(token.encode(), expected.encode()):
            return instance, kind
    return None


def create(client: redis.Redis, name: str) -> Instance:
    instance = Instance(
        id=str(uuid.uuid4()),
        name=name,
        secret_key=_new_secret(),
        client_token=secrets.token_urlsafe(24),
        created_at=int(time.time()),
    )
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(
            keys.instance(instance.id),
            mapping={
                "name": instance.name,
                "secret_key": instance.secret_key,
                "client_token": instance.client_token,
                "created_at": instance.created_at,
            },
        )
        pipe.sadd(keys.INSTANCES, instance.id)
        pipe.hset(keys.TOKENS, mapping={token_digest(instance.secret_key): instance.id,
                                        token_digest(instance.client_token): instance.id})
        pipe.execute()
    return instance


def _from_hash(instance_id: str, data: dict[str, str]) -> Instance:
    return Instance(
        id=instance_id,
        name=data["name"],
        secret_key=data["secret_key"],
        client_token=data["client_token"],
        created_at=int(data["created_at"]),
    )


def get(client: redis.Redis, instance_id: str) -> Instance:
    data = client.hgetall(keys.instance(instance_id))
    if not data:
        raise InstanceNotFound(instance_id)
    return _from_hash(instance_id, data)


def list_all(client: redis.Redis) -> list[Instance]:
    ids = sorted(client.smembers(keys.INSTANCES))
    with client.pipeline(transaction=False) as pipe:
        for instance_id in ids:
            pipe.hgetall(keys.instance(instance_id))
        found = pipe.execute()
    return [_from_hash(i, data) for i, data in zip(ids, found) if data]


def secret_key(client: redis.Redis, instance_id: str) -> str:
    value = client.hget(keys.instance(instance_id), "secret_key")
    if value is None:
        raise InstanceNotFound(instance_id)
    return value


def rotate_secret(client: redis.Redis, instance_id: str) -> Instance:
    """Give the instance a new secret key; the old one stops working at once."""
    new = _new_secret()
    # Indexed first: until the HSET below, the instance hash refuses it anyway.
    client.hset(keys.TOKENS, token_digest(new), instance_id)
    # HSET only if the instance still exists, in one step; returns the old secret.
    old = client.eval(
        "local old = redis.call('HGET', KEYS[1], 'secret_key') "
        "if old then redis.call('HSET', KEYS[1], 'secret_key', ARGV[1]) return old end return false",
        1,
        keys.instance(instance_id),
        new,
    )
    if not old:
        client.hdel(keys.TOKENS, token_digest(new))
        raise InstanceNotFound(instance_id)
    client.hdel(keys.TOKENS, token_digest(old))
    return get(client, instance_id)


def delete(client: redis.Redis, instance_id: str) -> None:
    """Remove the instance and every key under its hash tag."""
    tokens = [t for t in client.hmget(keys.instance(instance_id), "secret_key", "client_token") if t]
    if not client.srem(keys.INSTANCES, instance_id) and not client.exists(keys.instance(instance_id)):
        raise InstanceNotFound(instance_id)
    if tokens:
        client.hdel(keys.TOKENS, *[token_digest(t) for t in tokens])
    # The instance hash goes first, so every device script sees "no_instance"
    # from here on and nothing new is written while the rest is removed.
    client.unlink(keys.instance(instance_id))
    batch: list[str] = []
    for key in client.scan_iter(match=keys.instance_pattern(instance_id), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)
