"""The asyncio protocol behind `h2client.H2Client`: one HTTP/2 connection.

Requests are streams whose answers arrive as futures resolved from
`data_received`. The server's stream limit and flow-control windows are
honoured by waiting. GOAWAY fails at once the streams the server never saw;
jh2 takes no frame after a GOAWAY, so an answer still owed on the others ends
the connection as a protocol error. A lost connection fails every stream with
`TransportError`.

The state machine is jh2, h2's fork with HPACK in Rust: measured with
`bench/sender_throughput.py --tls`, an APNs push cost about 98 us of CPU
with h2 (header checks skipped as below, Huffman coding off) and about 70 us
with jh2; `tests/senders/test_h2client.py` passed against both.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias, cast

import jh2.config
import jh2.connection
import jh2.errors
import jh2.events
import jh2.exceptions
from jh2.hpack import NeverIndexedHeaderTuple

CONNECTION_WINDOW = 1 << 24  # what we let the server send before we acknowledge
# How many new streams between two of jh2's walks over every stream, which drop the closed ones.
PRUNE_EVERY = 256

# jh2's HPACK in Python (its fallback when the Rust one is missing) logs
# header values at DEBUG, and bearer tokens are ordinary indexed headers here
# (see `H2Client.post`): whatever level the root logger has, that log stays off.
logging.getLogger("jh2").setLevel(logging.WARNING)

# A request header: a (name, value) pair, or one kept out of the HPACK table.
RequestHeader: TypeAlias = "tuple[str, str] | NeverIndexedHeaderTuple"


class TransportError(Exception):
    """The request may or may not have reached the server: connect, reset, GOAWAY, timeout."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The parts of an answer the senders read (named like httpx's Response)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class _H2Connection(jh2.connection.H2Connection):
    """jh2's client connection with an O(1) count of open streams: jh2
    counts them on every new stream by walking all of them
    (dropping the closed ones as it goes), which with hundreds in flight cost
    a tenth of each request. The count is the protocol's streams in flight,
    which jh2's open ones never exceed (``Connection.request`` waits for a free
    slot itself); jh2's walk still runs every ``PRUNE_EVERY`` new streams, so
    closed streams do not pile up."""

    def __init__(self, config: jh2.config.H2Configuration, in_flight: Callable[[], int]) -> None:
        super().__init__(config)
        self._in_flight = in_flight
        self._opened = 0

    @property
    def open_outbound_streams(self) -> int:
        self._opened += 1
        if self._opened % PRUNE_EVERY == 0:
            return super().open_outbound_streams
        return self._in_flight()


class _Stream:
    """One request in flight."""

    __slots__ = ("done", "status", "headers", "body")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()


class Connection(asyncio.Protocol):
    """One HTTP/2 connection; streams are futures resolved from `data_received`."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        # jh2's per-header passes (normalization and validation, both ways)
        # cost a sixth of a request's CPU, and are skipped: the request
        # headers are ours (names lowercase constants, values checked where
        # they come from a payload), and of an answer only `:status` and a few
        # headers are read, a missing or malformed status failing the stream.
        config = jh2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", normalize_outbound_headers=False,
            validate_outbound_headers=False, normalize_inbound_headers=False, validate_inbound_headers=False,
        )
        self.streams: dict[int, _Stream] = {}
        self.h2 = _H2Connection(config, self.streams.__len__)
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = self.loop.create_future()  # first SETTINGS from the server
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()  # slots / window
        self.usable = True  # False after GOAWAY or loss: no new streams
        self.last_used = time.monotonic()  # read by H2Client's idle check
        self.flush_pending = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW)
        self.flush()

    def flush(self) -> None:
        self.flush_pending = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def flush_soon(self) -> None:
        """Write once per loop turn: the frames of many new streams leave in one send()."""
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self.flush)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except jh2.exceptions.ProtocolError as exc:
            self.flush()
            self.fail(TransportError(f"HTTP/2 protocol error: {type(exc).__name__}"))
            return
        for event in events:
            if isinstance(event, jh2.events.ResponseReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    # header_encoding="utf-8" makes jh2 hand str pairs (its annotation says bytes).
                    for name, value in cast("list[tuple[str, str]]", event.headers):
                        if name == ":status":
                            stream.status = int(value) if value.isdigit() and len(value) == 3 else 0
                        else:
                            stream.headers[name] = value
            elif isinstance(event, jh2.events.DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, jh2.events.StreamEnded):
                self.finish(event.stream_id, None)
            elif isinstance(event, jh2.events.StreamReset):
                self.finish(event.stream_id, TransportError(f"stream reset by server ({event.error_code!r})"))
            elif isinstance(event, (jh2.events.RemoteSettingsChanged, jh2.events.WindowUpdated)):
                if not self.ready.done():
                    self.ready.set_result(None)
                self.wake()
            elif isinstance(event, jh2.events.ConnectionTerminated):
                self.goaway(event.last_stream_id or 0)
        self.flush()

    def finish(self, stream_id: int, error: Exception | None) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None and not stream.done.done():
            if error is None and not stream.status:
                error = TransportError("answer without a valid :status")
            if error is None:
                stream.done.set_result(None)
            else:
                stream.done.set_exception(error)
        self.wake()
        if not self.usable and not self.streams and self.transport is not None:
            self.transport.close()

    def goaway(self, last_stream_id: int) -> None:
        """The server stops taking streams: those it never saw fail, the rest may finish."""
        self.usable = False
        for stream_id in [s for s in self.streams if s > last_stream_id]:
            self.finish(stream_id, TransportError("server sent GOAWAY"))
        self.fail_waiters(TransportError("server sent GOAWAY"))
        if not self.streams and self.transport is not None:
            self.transport.close()

    def wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def fail_waiters(self, error: Exception) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: nobody may be waiting

    def retire(self) -> None:
        """No new streams; the connection closes once its last stream ends."""
        self.usable = False
        if not self.streams and self.transport is not None:
            self.transport.close()

    def fail(self, error: Exception) -> None:
        # Called from data_received and connection_lost: after connection_made.
        assert self.transport is not None
        self.usable = False
        for stream_id in list(self.streams):
            self.finish(stream_id, error)
        self.fail_waiters(error)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(TransportError("connection lost"))

    async def wait(self) -> None:
        """Until a stream slot or flow-control window may have opened up."""
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        await waiter

    async def request(self, headers: list[RequestHeader], body: bytes) -> Reply:
        # len(self.streams), not jh2's open_outbound_streams, which walks every stream.
        while len(self.streams) >= self.h2.remote_settings.max_concurrent_streams:
            await self.wait()
            if not self.usable:
                raise TransportError("connection closed while waiting for a stream")
        self.last_used = time.monotonic()
        stream_id = self.h2.get_next_available_stream_id()
        stream = _Stream(self.loop.create_future())
        try:
            self.h2.send_headers(stream_id, headers, end_stream=not body)  # counts self.streams: before it joins
            self.streams[stream_id] = stream
            while body:
                size = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size, len(body))
                if size <= 0:
                    self.flush()
                    await self.wait()
                    continue
                chunk, body = body[:size], body[size:]
                self.h2.send_data(stream_id, chunk, end_stream=not body)
            self.flush_soon()
            await stream.done
        except asyncio.CancelledError:  # timeout: give the stream back, keep the connection
            try:
                self.h2.reset_stream(stream_id, jh2.errors.ErrorCodes.CANCEL)
                self.flush()
            except jh2.exceptions.H2Error:  # after GOAWAY jh2 sends nothing more
                pass
            self.finish(stream_id, None)  # frees its slot; a retired connection closes with its last stream
            raise
        except jh2.exceptions.H2Error as exc:
            # jh2 may have refused a header after HPACK-encoding the ones before
            # it: the server's table would no longer match ours.
            self.streams.pop(stream_id, None)
            self.wake()
            self.retire()
            raise TransportError(f"HTTP/2 error: {type(exc).__name__}") from None
        return Reply(stream.status, stream.headers, bytes(stream.body))
