"""The one interface every provider sender implements, and the send template
the HTTP providers fill in.

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
import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from pushlite.subscriptions import DEFAULT_ENDPOINT_ALLOWLIST
from workers.senders.h2client import Reply, TransportError
from workers.senders.wire import retry_after

T = TypeVar("T")
R = TypeVar("R")


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

    def record(self, device_id: str, kind: str, reply: Reply, reason: str) -> None:
        """File one device by its answer's kind ("delivered" | "dead" | "retry" |
        "failed"); a retry waits for the answer's Retry-After, a failure keeps
        ``reason``."""
        if kind == "delivered":
            self.delivered.append(device_id)
        elif kind == "dead":
            self.dead.append(device_id)
        elif kind == "retry":
            after = retry_after(reply.headers.get("retry-after"))
            self.retry_later([device_id], after, retry_reason(reply.status_code))
        else:
            self.failed.append((device_id, reason))

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
    `SSL_CERT_FILE`).
    """

    fcm_endpoint: str = "https://fcm.googleapis.com"
    apns_endpoint: str | None = None  # overrides both APNs hosts
    timeout: float = 10.0
    max_concurrency: int = 500  # streams in flight per batch
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


class HTTPSender(Sender, Generic[R]):
    """The send template the provider senders fill in.

    ``requests`` turns a batch into provider requests (of one target, or of
    many for a Matrix gateway) and files at once the targets no request can
    carry; ``post`` makes one request and files its targets by the answer.
    This class runs the requests, at most ``max_concurrency`` at a time; a
    request that got no answer (`TransportError`) is retried later, and a bug
    in one request retries its devices without losing the rest of the batch.
    """

    @abc.abstractmethod
    async def requests(self, targets: Sequence[Target], payload: dict[str, Any], outcome: Outcome) -> Sequence[R]:
        """The requests that send ``payload`` to ``targets``."""

    @abc.abstractmethod
    async def post(self, request: R, outcome: Outcome) -> None:
        """Send one request and file each of its devices in ``outcome``."""

    @staticmethod
    @abc.abstractmethod
    def device_ids(request: R) -> list[str]:
        """The devices one request is for."""

    async def send(self, targets: Sequence[Target], payload: dict[str, Any]) -> Outcome:
        outcome = Outcome()
        requests = await self.requests(targets, payload, outcome)
        slots = asyncio.Semaphore(max(1, self.settings.max_concurrency))
        log = logging.getLogger(type(self).__module__)

        async def run(request: R) -> None:
            async with slots:
                try:
                    await self.post(request, outcome)
                except TransportError as exc:
                    ids = self.device_ids(request)
                    log.info("%s: %s sending to %s; will retry", self.provider, exc, _some(ids))
                    outcome.retry_later(ids, None, "network")
                except Exception:  # a bug must not lose the rest of the batch
                    ids = self.device_ids(request)
                    log.exception("%s: unexpected error sending to %s", self.provider, _some(ids))
                    outcome.retry_later(ids, None, "unexpected")

        await asyncio.gather(*(run(request) for request in requests))
        if outcome.failed:
            log.warning("%s: %d of %d failed, first: %s", self.provider, len(outcome.failed), len(targets),
                        outcome.failed[0])
        return outcome


def _some(device_ids: list[str]) -> str:
    """Device ids for a log line: the first and how many more."""
    more = f" and {len(device_ids) - 1} more" if len(device_ids) > 1 else ""
    return f"device {device_ids[0]}{more}" if device_ids else "no device"
