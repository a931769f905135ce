"""Provider senders: one module per provider behind the `Sender` interface
(`base`), found here by provider name.

The admin API calls ``sender_class(name).validate_credential(...)`` to check a
credential before storing it; workers call `build_sender`.
"""
from __future__ import annotations

from typing import Any

from workers.senders.apns import APNsSender
from workers.senders.base import Outcome, Sender, SenderSettings, Target
from workers.senders.errors import CredentialError, OAuthError, SenderError, UnknownProviderError
from workers.senders.fcm import FCMSender
from workers.senders.matrix import MatrixSender
from workers.senders.webpush import WebPushSender

__all__ = [
    "CREDENTIAL_FREE_PROVIDERS",
    "SENDERS",
    "CredentialError",
    "OAuthError",
    "Outcome",
    "Sender",
    "SenderError",
    "SenderSettings",
    "Target",
    "UnknownProviderError",
    "build_sender",
    "sender_class",
]

SENDERS: dict[str, type[Sender]] = {
    "apns": APNsSender, "fcm": FCMSender, "matrix": MatrixSender, "web": WebPushSender,
}

# Providers whose sender needs no credential: built once per worker process
# and shared by every instance (Matrix gateways are named by each pusher).
CREDENTIAL_FREE_PROVIDERS = ("matrix",)


def sender_class(provider: str) -> type[Sender]:
    """The sender class for a provider name ("apns", "fcm", "matrix", "web")."""
    try:
        return SENDERS[provider]
    except KeyError:
        raise UnknownProviderError(f"unknown provider {provider!r}; expected one of {sorted(SENDERS)}") from None


def build_sender(provider: str, credential: dict[str, Any], settings: SenderSettings) -> Sender:
    """Validate the credential and build the provider's sender (no network yet)."""
    cls = sender_class(provider)
    return cls(cls.validate_credential(credential), settings)
