"""The senders' connections: one pool of clients per sender, and the HTTP/1.1
client for servers that offer no HTTP/2.

HTTP/2 (APNs, FCM and its OAuth exchange, most push services) goes through
`h2client.H2Client`. Matrix gateways and the push services that do not
speak HTTP/2 get `Http1Client` (httpx, HTTP/1.1 keep-alive only).
"""
from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, Protocol, TypeVar

import httpx

from workers.senders.h2client import Reply, TransportError, tls_context


class Client(Protocol):
    async def post(self, path: str, *, content: bytes, headers: Mapping[str, str]) -> Reply: ...

    async def aclose(self) -> None: ...


K = TypeVar("K", bound=Hashable)
C = TypeVar("C", bound=Client)


class ClientPool(Generic[K, C]):
    """The clients of one sender by key (an origin, or an origin and the
    address it was checked at), made by ``factory`` on first use; past
    ``limit`` the least recently used one is closed.

    Connections belong to the event loop that opened them. If a caller
    switches loops (a new `asyncio.run` per job), the old clients cannot be
    used or closed from the new loop: they are dropped and new ones made, while
    the sender's auth tokens survive.
    """

    def __init__(self, factory: Callable[[K], C], limit: int | None = None) -> None:
        self._factory = factory
        self._limit = limit
        self._clients: OrderedDict[K, C] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        # The loop keeps only weak references to its tasks: an evicted client's
        # close must be held here or it can be collected before it runs.
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, key: K) -> C:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._clients, self._loop, self._closing = OrderedDict(), loop, set()
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._factory(key)
            if self._limit is not None and len(self._clients) > self._limit:
                _, oldest = self._clients.popitem(last=False)
                closing = loop.create_task(oldest.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        elif self._limit is not None:
            self._clients.move_to_end(key)
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, OrderedDict()
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


def _http1_tls() -> ssl.SSLContext:
    context = tls_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class Http1Client:
    """HTTP/1.1 keep-alive requests to one origin at a checked address (the
    host still in the Host header and TLS SNI), answering like `H2Client`:
    a `Reply`, or `TransportError` when no answer came. Redirects are not
    followed and no proxy from the environment is used."""

    def __init__(self, origin: str, address: str, timeout: float) -> None:
        url = httpx.URL(origin)
        literal = f"[{address}]" if ":" in address else address
        self._base = f"{url.scheme}://{literal}:{url.port or (443 if url.scheme == 'https' else 80)}"
        self._host = url.netloc.decode()
        self._sni = {"sni_hostname": url.host}
        self._client = httpx.AsyncClient(
            verify=_http1_tls(), timeout=timeout, follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    async def post(self, path: str, *, content: bytes, headers: Mapping[str, str]) -> Reply:
        try:
            response = await self._client.post(
                self._base + path, content=content, headers={**headers, "host": self._host}, extensions=self._sni
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__} from {self._host}") from None
        return Reply(response.status_code, dict(response.headers), response.content)

    async def aclose(self) -> None:
        await self._client.aclose()
