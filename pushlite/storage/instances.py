"""Instances (tenants): their public id, secret key and client token."""
from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

import redis

from . import keys
from .errors import InstanceNotFound


@dataclass
class Instance:
    id: str
    name: str
    secret_key: str
    client_token: str
    created_at: int


def is_instance_id(value: str) -> bool:
    """Instance ids are lowercase UUIDs, as Beams instance ids are."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _new_secret() -> str:
    return secrets.token_hex(32).upper()


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
    # HSET only if the instance still exists, in one step.
    updated = client.eval(
        "if redis.call('EXISTS', KEYS[1]) == 1 then "
        "redis.call('HSET', KEYS[1], 'secret_key', ARGV[1]) return 1 end return 0",
        1,
        keys.instance(instance_id),
        new,
    )
    if not updated:
        raise InstanceNotFound(instance_id)
    return get(client, instance_id)


def delete(client: redis.Redis, instance_id: str) -> None:
    """Remove the instance and every key under its hash tag."""
    if not client.srem(keys.INSTANCES, instance_id) and not client.exists(keys.instance(instance_id)):
        raise InstanceNotFound(instance_id)
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
