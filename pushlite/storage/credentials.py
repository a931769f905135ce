"""Provider credentials (FCM service account, APNs .p8 key), encrypted at rest
with Fernet under ``PUSHLITE_ENCRYPTION_KEY``.

An instance has its own credentials, and each of its apps (the app name a
device was registered with) may have its own too: a device of an app is
delivered with its app's credential for the provider when there is one, else
with the instance's. Both live in the instance's credentials hash: field
``<provider>`` for the instance, ``<app>/<provider>`` for an app (app names
cannot hold ``/``).
"""
from __future__ import annotations

import json
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken

from pushlite.platforms import CREDENTIAL_PROVIDERS
from pushlite.storage.cluster import DataClient

from . import keys
from .errors import InstanceNotFound

INSTANCE = ""  # the app name that stands for the instance's own credentials

# What GET may show of each credential: identifiers, never key material.
PUBLIC_FIELDS = {
    "apns": ("key_id", "team_id", "topic", "environment"),
    "fcm": ("project_id", "client_email", "private_key_id"),
}


class CredentialDecryptError(Exception):
    """The stored credential does not decrypt with this encryption key."""


def field(provider: str, app: str = INSTANCE) -> str:
    return f"{app}/{provider}" if app else provider


def parse_field(name: str) -> tuple[str, str]:
    """(app, provider) of a credentials hash field."""
    app, _, provider = name.rpartition("/")
    return app, provider


def put(
    client: DataClient, fernet: Fernet, instance_id: str, provider: str, credential: dict[str, Any],
    app: str = INSTANCE,
) -> None:
    token = fernet.encrypt(json.dumps(credential).encode()).decode()
    stored = client.eval(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
        "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1",
        2,
        keys.instance(instance_id),
        keys.credentials(instance_id),
        field(provider, app),
        token,
    )
    if not stored:
        raise InstanceNotFound(instance_id)


def load(client: DataClient, fernet: Fernet, instance_id: str) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(app, provider) -> (ciphertext, credential) for the instance (app "")
    and every app of it; the ciphertext identifies the version."""
    return {
        (app, provider): (token, decrypt(fernet, instance_id, app, provider, token))
        for (app, provider), token in ciphertexts(client, instance_id).items()
    }


def ciphertexts(client: DataClient, instance_id: str) -> dict[tuple[str, str], str]:
    """(app, provider) -> ciphertext, nothing decrypted: what tells a holder of
    decrypted credentials (the workers' senders) which of them changed."""
    stored = cast("dict[str, str]", client.hgetall(keys.credentials(instance_id)))
    return {parse_field(name): token for name, token in stored.items()}


def decrypt(fernet: Fernet, instance_id: str, app: str, provider: str, token: str) -> dict[str, Any]:
    """One credential from its ciphertext."""
    try:
        return cast("dict[str, Any]", json.loads(fernet.decrypt(token.encode())))
    except InvalidToken:
        owner = f"app {app} of {instance_id}" if app else instance_id
        raise CredentialDecryptError(f"{provider} credential of {owner} does not decrypt") from None


def summary(client: DataClient, fernet: Fernet, instance_id: str, app: str = INSTANCE) -> dict[str, dict[str, Any]]:
    """Which providers the instance (or one app) has, with their public
    identifiers only (the VAPID pair, ``vapid.py``, is not one of them)."""
    return {
        provider: {k: credential.get(k) for k in PUBLIC_FIELDS[provider] if k in credential}
        for (owner, provider), (_, credential) in load(client, fernet, instance_id).items()
        if owner == app and provider in PUBLIC_FIELDS
    }


def has(client: DataClient, instance_id: str, app: str) -> dict[str, bool]:
    """Which providers the app has a credential of its own for (nothing decrypted)."""
    found = client.hmget(keys.credentials(instance_id), [field(provider, app) for provider in CREDENTIAL_PROVIDERS])
    return {provider: value is not None for provider, value in zip(CREDENTIAL_PROVIDERS, found, strict=True)}


def delete(client: DataClient, instance_id: str, provider: str, app: str = INSTANCE) -> bool:
    return bool(client.hdel(keys.credentials(instance_id), field(provider, app)))
