"""PEM private key loading for the credential validators.

Errors name the field and the expected kind of key, never the key itself: the
admin API shows them to the operator and they end up in logs.
"""
from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from workers.senders.errors import CredentialError


def load_private_key(pem: str, *, expected: type, what: str) -> Any:
    """Parse a PEM private key of the expected type; errors name the field, never the key.

    A bare base64 body (the .p8 file without its BEGIN/END lines) is accepted too.
    """
    text = pem.strip().replace("\\n", "\n")
    if "-----BEGIN" not in text:
        body = "\n".join(text.split())
        text = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:
        raise CredentialError(f"private_key is encrypted; provide the unencrypted {what}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CredentialError(f"private_key is not a readable PEM private key (expected {what})") from None
    if not isinstance(key, expected):
        raise CredentialError(f"private_key is the wrong kind of key (expected {what})")
    return key
