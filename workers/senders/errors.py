"""The exceptions the senders raise to their callers.

A provider's answer is never one of them: `Sender.send` sorts every answer
into its `Outcome`. These say that a sender cannot be built (a credential or
provider name that cannot work) or that an auth exchange failed.
"""
from __future__ import annotations


class SenderError(Exception):
    """Base class of the errors raised by this package."""


class CredentialError(SenderError, ValueError):
    """A provider credential that cannot work.

    The message is meant for the operator (the admin API answers 400 with it)
    and never contains key material.
    """


class UnknownProviderError(SenderError, ValueError):
    """No sender exists for that provider name."""


class OAuthError(SenderError):
    """The FCM token exchange failed; `temporary` says whether a later try may work."""

    def __init__(self, reason: str, *, temporary: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.retry_after = retry_after
