"""Each instance's VAPID key pair (RFC 8292), which identifies it to browsers'
push services: a browser subscribes with the public key (the Beams Web SDK
asks for it first), and every Web Push request is signed with the private key.

The pair is the instance's ``web`` credential: encrypted at rest with Fernet
under ``PUSHLITE_ENCRYPTION_KEY`` like the provider credentials, and loaded by
the workers with them, so the Web Push sender is built (and rebuilt after a
rotation) the same way. It is never shown in the credentials summary: only
its public key is, where a browser needs it.
"""
from __future__ import annotations

import json
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushlite import platforms
from pushlite.storage.cluster import DataClient
from pushlite.subscriptions import b64url

from . import keys
from .credentials import CredentialDecryptError
from .errors import InstanceNotFound

PROVIDER = platforms.WEB.provider

# Store the new pair unless one is there (HSETNX), only for an instance that
# exists; answers the pair then stored.
_ENSURE = (
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end "
    "redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) return redis.call('HGET', KEYS[2], ARGV[1])"
)
_REPLACE = (
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1"
)


def generate() -> dict[str, str]:
    """A new P-256 pair: the private key as PKCS#8 PEM, the public key as the
    unpadded base64url of its uncompressed point (what browsers take as
    ``applicationServerKey``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "public_key": public_key_of(key),
    }


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ))


def _public_key(fernet: Fernet, instance_id: str, token: str) -> str:
    try:
        credential: dict[str, Any] = json.loads(fernet.decrypt(token.encode()))
    except InvalidToken:
        raise CredentialDecryptError(f"{PROVIDER} credential of {instance_id} does not decrypt") from None
    return credential["public_key"]


def ensure(client: DataClient, fernet: Fernet, instance_id: str) -> str:
    """The instance's VAPID public key, made now when it has none (an
    instance created before Web Push). Concurrent first calls agree on one."""
    token = cast("str | None", client.hget(keys.credentials(instance_id), PROVIDER))
    if token is None:
        new = fernet.encrypt(json.dumps(generate()).encode()).decode()
        token = client.eval(_ENSURE, 2, keys.instance(instance_id), keys.credentials(instance_id), PROVIDER, new)
        if not token:
            raise InstanceNotFound(instance_id)
    return _public_key(fernet, instance_id, token)


def rotate(client: DataClient, fernet: Fernet, instance_id: str) -> str:
    """Give the instance a new pair and return its public key. Browsers
    subscribed with the old key are refused by their push services from now
    on and must subscribe again."""
    credential = generate()
    token = fernet.encrypt(json.dumps(credential).encode()).decode()
    if not client.eval(_REPLACE, 2, keys.instance(instance_id), keys.credentials(instance_id), PROVIDER, token):
        raise InstanceNotFound(instance_id)
    return credential["public_key"]
