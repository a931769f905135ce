"""A small HTTP/2 server (h2c, prior knowledge) on 127.0.0.1 for provider mocks.

It runs its own event loop in a background thread, answers each request from
an async handler in its own task (so many streams are open at once, as on the
real providers), and counts the streams open at the same time.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # "goaway": answer, then GOAWAY naming this stream last; instead of answering,
    # "goaway-unanswered" sends that GOAWAY and leaves the stream open, "drop"
    # cuts the TCP connection, "reset" sends RST_STREAM and "garbage" sends a
    # frame no HTTP/2 peer accepts (a connection-level protocol error).
    then: str | None = None

    @classmethod
    def json(cls, status: int, value: Any, headers: list[tuple[str, str]] | None = None,
             then: str | None = None) -> Response:
        return cls(status, json.dumps(value).encode(), [("content-type", "application/json"), *(headers or [])], then)


Handler = Callable[[Request], Awaitable[Response]]


class _Connection(asyncio.Protocol):
    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.transport: asyncio.Transport | None = None
        self.partial: dict[int, Request] = {}
        self.silent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections += 1
        self.silent = self.server.silent_connections > 0
        if self.silent:  # a hung server: the connection is accepted, nothing is ever read or sent
            self.server.silent_connections -= 1
            return
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.server.initial_window_size,
            },
        )
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(1 << 24)
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.silent:
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = dict(event.headers)
                self.partial[event.stream_id] = Request(headers.pop(":method"), headers.pop(":path"), headers)
                self.server.stream_opened()
            elif isinstance(event, h2.events.DataReceived):
                request = self.partial.get(event.stream_id)
                if request is not None:
                    request.body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                request = self.partial.pop(event.stream_id, None)
                if request is not None:
                    asyncio.get_running_loop().create_task(self.respond(event.stream_id, request))
            elif isinstance(event, h2.events.StreamReset):
                self.server.resets += 1
                if self.partial.pop(event.stream_id, None) is not None:
                    self.server.stream_closed()
            elif isinstance(event, h2.events.ConnectionTerminated) and self.transport is not None:
                self.transport.close()
        self.flush()

    async def respond(self, stream_id: int, request: Request) -> None:
        try:
            response = await self.server.handler(request)
        except Exception as exc:  # a mock bug shows up as a 599 the test will notice
            response = Response(599, repr(exc).encode())
        self.server.stream_closed()
        if response.then == "drop":
            if self.transport is not None:
                self.transport.abort()
            return
        if response.then == "goaway-unanswered":
            self.conn.close_connection(last_stream_id=stream_id)
            self.flush()
            return
        if response.then == "reset":
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            self.flush()
            return
        if response.then == "garbage":
            if self.transport is not None:  # WINDOW_UPDATE of 0 on the connection
                self.transport.write(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")
            return
        headers = [(":status", str(response.status)), *response.headers]
        if response.then in ("no-status", "bad-status"):  # an answer h2 would refuse to send: not validated
            headers[0] = ("server", "mock") if response.then == "no-status" else (":status", "2x0")
            self.conn.config.validate_outbound_headers = False
        try:
            self.conn.send_headers(stream_id, headers, end_stream=not response.body)
            self.conn.config.validate_outbound_headers = True
            if response.body:
                self.conn.send_data(stream_id, response.body, end_stream=True)
            if response.then == "goaway":
                self.conn.close_connection(last_stream_id=stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.closed_connections += 1
        for _ in self.partial:
            self.server.stream_closed()
        self.partial.clear()


async def _cancel_pending() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class H2Server:
    """Base of the provider mocks: `handler` answers, `url` is where to point a sender."""

    max_concurrent_streams = 1000
    initial_window_size = 1 << 20  # each stream's flow-control window for what clients send

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.ssl_context: ssl.SSLContext | None = None  # set before start() to serve HTTP/2 over TLS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._count_lock = threading.Lock()
        self.open_streams = 0
        self.max_open_streams = 0
        self.connections = 0  # connections accepted so far
        self.closed_connections = 0  # connections ended so far (by either side)
        self.resets = 0  # streams the client reset (RST_STREAM)
        self.silent_connections = 0  # how many of the next connections get no answer at all

    async def handler(self, request: Request) -> Response:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def stream_opened(self) -> None:
        with self._count_lock:
            self.open_streams += 1
            self.max_open_streams = max(self.max_open_streams, self.open_streams)

    def stream_closed(self) -> None:
        with self._count_lock:
            self.open_streams -= 1

    def start(self) -> H2Server:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _Connection(self), self.host, 0, ssl=self.ssl_context)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(_cancel_pending())  # handlers that never answer
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("mock server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> H2Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
