"""The senders' HTTP/2 client: many small POSTs to one origin.

Why not httpx: measured with `bench/sender_throughput.py` (when it could still
select httpx), an APNs push through httpx over h2 cost about 600 us of CPU
(calling httpcore directly saves about a third), spent in per-request models,
pool bookkeeping and anyio layers; driving the same `h2` state machine from
one asyncio protocol (`h2protocol`) cost about 175 us, and about 70 us over
TLS now (`h2protocol` says why: jh2, fewer header passes). This
client does only what the senders need: POST a small body, read the whole
answer, reconnect after GOAWAY, a lost connection or a long idle time. Any
transport failure raises `TransportError` (the caller retries later).
"""
from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from jh2.hpack import NeverIndexedHeaderTuple

from workers.senders.h2protocol import Connection, Reply, RequestHeader, TransportError

__all__ = ["IDLE_LIMIT", "H2Client", "NoHTTP2", "Reply", "TransportError", "tls_context"]

# A connection unused this long is replaced rather than trusted: providers close
# idle ones themselves, and a silently dropped one (NAT, load balancer) would
# only show as timeouts.
IDLE_LIMIT = 300.0


class NoHTTP2(TransportError):
    """The server's TLS handshake did not choose HTTP/2 (ALPN): it speaks HTTP/1.1 only."""


def tls_context() -> ssl.SSLContext:
    """Verified TLS: the system CAs plus `SSL_CERT_FILE` when set; HTTP/2 by ALPN."""
    context = ssl.create_default_context()
    extra = os.environ.get("SSL_CERT_FILE")
    if extra and os.path.isfile(extra):
        context.load_verify_locations(cafile=extra)
    context.set_alpn_protocols(["h2"])
    return context


class H2Client:
    """Requests to one origin over one connection, reopened when it goes away.

    ``address``, when given, is where to connect instead of resolving the
    origin's host again (an address ``pushlite.url_guard`` checked); TLS still
    verifies the host's certificate and names it in SNI and ``:authority``.
    """

    def __init__(self, origin: str, timeout: float, address: str | None = None) -> None:
        parts = urlsplit(origin)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.address = address
        self.port = parts.port or (443 if self.tls else 80)
        self.scheme = parts.scheme
        self.authority = parts.netloc
        self.timeout = timeout
        self._conn: Connection | None = None
        self._connecting: asyncio.Future[Connection] | None = None

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is not None and conn.usable:
            if time.monotonic() - conn.last_used < IDLE_LIMIT:
                return conn
            conn.retire()  # idle too long: do not trust it
        if self._connecting is None:  # one connect for all the streams waiting for it
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        # Shielded: a stream that times out must not cancel the others' connect.
        return await asyncio.shield(self._connecting)

    def _connected(self, connecting: asyncio.Future[Connection]) -> None:
        self._connecting = None
        if not connecting.cancelled():  # cancelled: the loop closed meanwhile
            connecting.exception()  # retrieved here even if every waiter timed out

    async def _connect(self) -> Connection:
        """A new connection, once the server's first SETTINGS arrived. Bounded by
        the timeout: a server that accepts but never answers must not hold the
        connect (and every request waiting for it) forever."""
        loop = asyncio.get_running_loop()
        conn: Connection | None = None
        try:
            async with asyncio.timeout(self.timeout):
                _, conn = await loop.create_connection(
                    Connection, self.address or self.host, self.port,
                    ssl=tls_context() if self.tls else None, server_hostname=self.host if self.tls else None,
                )
                assert conn.transport is not None
                if self.tls:
                    tls = conn.transport.get_extra_info("ssl_object")
                    if tls is None or tls.selected_alpn_protocol() != "h2":
                        conn.transport.close()
                        raise NoHTTP2(f"{self.authority} does not speak HTTP/2")
                await conn.ready
        except TimeoutError:  # before OSError, its base class
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            raise TransportError(f"no HTTP/2 connection to {self.authority} within {self.timeout}s") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.authority}: {type(exc).__name__}") from None
        self._conn = conn
        return conn

    async def post(self, path: str, *, content: bytes, headers: Mapping[str, str]) -> Reply:
        # Every header but the path goes into the HPACK table, so that from the
        # second request on it costs a byte: bearer tokens too (a JWT or an
        # OAuth token is not guessable whole, and HPACK only ever matches a
        # whole value; `h2protocol` keeps jh2's debug log off). The path
        # names the device for APNs and web push: new on every request, it
        # would only push the repeating headers out of the table.
        request_headers: list[RequestHeader] = [
            (":method", "POST"), (":scheme", self.scheme), (":authority", self.authority),
            NeverIndexedHeaderTuple(":path", path), ("content-length", str(len(content))), *headers.items(),
        ]
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._connection()
                return await conn.request(request_headers, content)
        except TimeoutError:
            raise TransportError(f"no answer from {self.authority} within {self.timeout}s") from None

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None:
            conn.usable = False
            conn.h2.close_connection()  # h2 sends GOAWAY in any connection state
            conn.flush()
            conn.transport.close()
