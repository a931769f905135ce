"""Provider credentials (FCM service account, APNs .p8 key), encrypted at rest
with Fernet under ``PUSHLITE_ENCRYPTION_KEY``."""
from __future__ import annotations

import json
from typing import Any

import redis
from cryptography.fernet import Fernet, InvalidToken

from . import keys
from .errors import InstanceNotFound

PROVIDERS = ("apns", "fcm")

# What GET may show of each credential: identifiers, never key material.
PUBLIC_FIELDS = {
    "apns": ("key_id", "team_id", "topic", "environment"),
    "fcm": ("project_id", "client_email", "private_key_id"),
}


class CredentialDecryptError(Exception):
    """The stored credential does not decrypt with this encryption key."""


def put(client: redis.Redis, fernet: Fernet, instance_id: str, provider: str, credential: dict[str, Any]) -> None:
    token = fernet.encrypt(json.dumps(credential).encode()).decode()
    stored = client.eval(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
        "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1",
        2,
        keys.instance(instance_id),
        keys.credentials(instance_id),
        provider,
        token,
    )
    if not stored:
        raise InstanceNotFound(instance_id)


def load(client: redis.Redis, fernet: Fernet, instance_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """provider -> (ciphertext, credential); the ciphertext identifies the version."""
    out = {}
    for provider, token in client.hgetall(keys.credentials(instance_id)).items():
        try:
            out[provider] = (token, json.loads(fernet.decrypt(token.encode())))
        except InvalidToken:
            raise CredentialDecryptError(f"{provider} credential of {instance_id} does not decrypt") from None
    return out


def summary(client: redis.Redis, fernet: Fernet, instance_id: str) -> dict[str, dict[str, Any]]:
    """Which providers are set, with their public identifiers only."""
    return {
        provider: {k: credential.get(k) for k in PUBLIC_FIELDS[provider] if k in credential}
        for provider, (_, credential) in load(client, fernet, instance_id).items()
    }


def delete(client: redis.Redis, instance_id: str, provider: str) -> bool:
    return bool(client.hdel(keys.credentials(instance_id), provider))
