"""HTTP/2 plumbing shared by the senders.

One long-lived client per origin carries every stream to that provider host:
`http://` origins are spoken as HTTP/2 with prior knowledge (h2c, for local
mocks), `https://` ones negotiate HTTP/2 over verified TLS. The hot path uses
`h2client.H2Client` or an `httpx.AsyncClient` (`SenderSettings.http_client`);
occasional requests such as the OAuth exchange always use httpx.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from workers.senders.h2client import IDLE_LIMIT, H2Client, TransportError, tls_context

T = TypeVar("T")

HTTP_CLIENTS = ("h2", "httpx")
# What a failed request raises on either client: the caller retries later.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, TransportError)


class Answer(Protocol):
    """What the senders read of a provider's answer (httpx.Response and h2client.Reply)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def content(self) -> bytes: ...


class Poster(Protocol):
    """The one call the senders' hot path makes."""

    async def post(self, url: str, *, content: bytes, headers: Any) -> Any: ...


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, the key a client is kept under."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def new_client(origin: str, timeout: float) -> httpx.AsyncClient:
    """An HTTP/2 client for one origin (h2c prior knowledge for `http://`)."""
    prior_knowledge = origin.startswith("http://")
    return httpx.AsyncClient(
        base_url=origin,
        verify=tls_context(),  # not httpx's certifi bundle: the system's CAs plus SSL_CERT_FILE
        http1=not prior_knowledge,
        http2=True,
        timeout=timeout,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=IDLE_LIMIT),
        follow_redirects=False,
    )


class ClientPool:
    """The clients of one sender, by origin.

    Connections belong to the event loop that opened them. If a caller
    switches loops (a new `asyncio.run` per job), the old clients cannot be
    used or closed from the new loop: they are dropped and new ones made, while
    the sender's auth tokens survive.
    """

    def __init__(self, timeout: float, http_client: str = "h2") -> None:
        if http_client not in HTTP_CLIENTS:
            raise ValueError(f"http_client must be one of {HTTP_CLIENTS}, not {http_client!r}")
        self._timeout = timeout
        self._kind = http_client
        self._clients: dict[tuple[str, str], H2Client | httpx.AsyncClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, origin: str) -> Poster:
        """The hot-path client for an origin."""
        return self._client(self._kind, origin)

    def httpx(self, origin: str) -> httpx.AsyncClient:
        """An httpx client, for occasional requests that need its conveniences (forms)."""
        client = self._client("httpx", origin)
        assert isinstance(client, httpx.AsyncClient)
        return client

    def _client(self, kind: str, origin: str) -> H2Client | httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._clients = {}
            self._loop = loop
        client = self._clients.get((kind, origin))
        if client is None:
            client = H2Client(origin, self._timeout) if kind == "h2" else new_client(origin, self._timeout)
            self._clients[(kind, origin)] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        if self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)


class LoopLock:
    """An `asyncio.Lock` that is re-created when the running loop changes (see `ClientPool`)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock


async def bounded_gather(limit: int, items: Iterable[T], worker: Callable[[T], Awaitable[None]]) -> None:
    """Run `worker(item)` for every item with at most `limit` in flight."""
    slots = asyncio.Semaphore(max(1, limit))

    async def run(item: T) -> None:
        async with slots:
            await worker(item)

    await asyncio.gather(*(run(item) for item in items))


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def json_object(content: bytes) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is anything else."""
    try:
        value = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as sent to providers."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
