"""Provider senders: one module per provider behind the `Sender` interface in `base`."""
from workers.senders.base import (
    CREDENTIAL_FREE_PROVIDERS,
    CredentialError,
    Outcome,
    Sender,
    SenderError,
    SenderSettings,
    Target,
    UnknownProviderError,
    build_sender,
    sender_class,
)

__all__ = [
    "CREDENTIAL_FREE_PROVIDERS",
    "CredentialError",
    "Outcome",
    "Sender",
    "SenderError",
    "SenderSettings",
    "Target",
    "UnknownProviderError",
    "build_sender",
    "sender_class",
]
