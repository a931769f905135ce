"""Provider senders: one module per provider behind the `Sender` interface in `base`."""
from workers.senders.base import (
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
