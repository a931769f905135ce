"""The one interface every provider sender implements.

A delivery job hands a sender a batch of `Target`s and one provider payload and
gets back an `Outcome` that sorts every device id into exactly one of four
lists: delivered, dead (remove the device everywhere), retry (temporary; honour
the delay when given) and failed (permanent, but the token is fine: a bad
payload or a bad credential).

Senders are built once per (instance, provider) and reused for the life of the
worker process: they keep their HTTP/2 connections and auth tokens between
batches. Connections belong to the event loop that opened them, so keep one
loop per process (e.g. an `asyncio.Runner` that stays open): a sender called
from a new loop still works, but opens new connections.
"""
from __future__ import annotations

import abc
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from pushlite.subscriptions import DEFAULT_ENDPOINT_ALLOWLIST

T = TypeVar("T")

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

class SenderError(Exception):
    """Base class of the configuration errors raised by this package."""


class CredentialError(SenderError, ValueError):
    """A provider credential that cannot work.

    The message is meant for the operator (the admin API answers 400 with it)
    and never contains key material.
    """


class UnknownProviderError(SenderError, ValueError):
    """No sender exists for that provider name."""


@dataclass(frozen=True, slots=True)
class Target:
    """One device to notify."""

    device_id: str
    token: str
    platform: str  # "apns" | "apns_voip" | "fcm" | "matrix" | "web"
    environment: str | None = None  # APNs only: "production" | "sandbox" | None (= credential default)
    # Matrix only: the pusher's app_id and its fields (data.url, data.format, pushkey_ts, ...).
    bundle_id: str = ""
    metadata: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)


def retry_reason(status: int) -> str:
    """The retry reason of a provider answer its sender calls temporary."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "provider_error"
    return "auth"


@dataclass
class Outcome:
    """What happened to each target of one batch; every device id lands in
    one list. Also, for ``/metrics``: why the retried ones are retried, and
    how long each provider request took (seconds)."""

    delivered: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    retry: list[tuple[str, float | None]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    retry_reasons: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def retry_later(self, device_ids: Iterable[str], after: float | None, reason: str) -> None:
        """Devices to try again, no sooner than ``after`` seconds when given,
        because of ``reason``: "rate_limited" (429), "provider_error" (5xx),
        "auth" (a fresh access or provider token refused, or the token
        exchange failed), "network" (no answer) or "unexpected" (a bug)."""
        before = len(self.retry)
        self.retry.extend((device_id, after) for device_id in device_ids)
        self.retry_reasons[reason] += len(self.retry) - before

    async def timed(self, request: Awaitable[T]) -> T:
        """Await a provider request, adding how long it took (answered or not) to ``latencies``."""
        started = time.perf_counter()
        try:
            return await request
        finally:
            self.latencies.append(time.perf_counter() - started)

    @property
    def total(self) -> int:
        return len(self.delivered) + len(self.dead) + len(self.retry) + len(self.failed)

    def counts(self) -> dict[str, int]:
        """Per-list sizes, for logs and the publish record's counters."""
        return {
            "delivered": len(self.delivered),
            "dead": len(self.dead),
            "retry": len(self.retry),
            "failed": len(self.failed),
        }


@dataclass(frozen=True)
class SenderSettings:
    """Process-wide knobs, from config (`PUSHLITE_FCM_ENDPOINT`, `PUSHLITE_APNS_ENDPOINT`).

    An `http://` endpoint is spoken as HTTP/2 with prior knowledge (h2c); an
    `https://` one negotiates HTTP/2 over verified TLS (system CAs plus
    `SSL_CERT_FILE`). `http_client` picks the hot-path HTTP/2 client: "h2"
    (`h2client`, about 3x less CPU per push) or "httpx".
    """

    fcm_endpoint: str = "https://fcm.googleapis.com"
    apns_endpoint: str | None = None  # overrides both APNs hosts
    timeout: float = 10.0
    max_concurrency: int = 500  # streams in flight per batch
    http_client: str = "h2"  # "h2" | "httpx"; compare with bench/sender_throughput.py
    # URL globs a Matrix gateway URL may match (`PUSHLITE_MATRIX_GATEWAY_ALLOWLIST`, see pushlite.url_guard).
    matrix_gateway_allowlist: str = "https://*"
    # URL globs a browser's push endpoint may match (`PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST`).
    webpush_endpoint_allowlist: str = DEFAULT_ENDPOINT_ALLOWLIST
    # The VAPID JWT's `sub` (`PUSHLITE_VAPID_SUBJECT`): "mailto:..." or "https://...".
    vapid_subject: str = ""


class Sender(abc.ABC):
    """A provider connection: validates its credential when built, then sends batches."""

    provider: ClassVar[str]

    def __init__(self, credential: dict[str, Any], settings: SenderSettings) -> None:
        """`credential` is what `validate_credential` returned."""
        self.settings = settings

    @classmethod
    @abc.abstractmethod
    def validate_credential(cls, credential: dict[str, Any]) -> dict[str, Any]:
        """Return the normalized credential, or raise `CredentialError` saying what is wrong."""

    @abc.abstractmethod
    async def send(self, targets: Sequence[Target], payload: dict[str, Any]) -> Outcome:
        """Send one payload to every target concurrently; never raises for a provider answer."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the provider connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # Never the credential: a repr ends up in logs and tracebacks.
        return f"<{type(self).__name__} provider={self.provider!r}>"


# Providers whose sender needs no credential: built once per worker process
# and shared by every instance (Matrix gateways are named by each pusher).
CREDENTIAL_FREE_PROVIDERS = ("matrix",)


def sender_class(provider: str) -> type[Sender]:
    """The sender class for a provider name ("apns", "fcm", "matrix", "web").

    The admin API calls `sender_class(name).validate_credential(...)` to check a
    credential before storing it.
    """
    # Imported here so that importing the interface pulls in no provider module.
    from workers.senders.apns import APNsSender
    from workers.senders.fcm import FCMSender
    from workers.senders.matrix import MatrixSender
    from workers.senders.webpush import WebPushSender

    classes: dict[str, type[Sender]] = {
        "apns": APNsSender, "fcm": FCMSender, "matrix": MatrixSender, "web": WebPushSender,
    }
    try:
        return classes[provider]
    except KeyError:
        raise UnknownProviderError(f"unknown provider {provider!r}; expected one of {sorted(classes)}") from None


def build_sender(provider: str, credential: dict[str, Any], settings: SenderSettings) -> Sender:
    """Validate the credential and build the provider's sender (no network yet)."""
    cls = sender_class(provider)
    return cls(cls.validate_credential(credential), settings)
