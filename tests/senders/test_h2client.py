"""The senders' HTTP/2 client (`h2client`, `h2protocol`) against a real local
HTTP/2 server: the waits for a stream slot and for the send window, timeouts,
RST_STREAM, protocol errors, GOAWAY, lost and hung connections, idle ones."""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from tests.mocks.h2server import H2Server, Request, Response
from workers.senders import h2client
from workers.senders.h2client import H2Client, Reply, TransportError

Run = Callable[[Coroutine[Any, Any, Any]], Any]
ACTIONS = ("goaway", "goaway-unanswered", "drop", "reset", "garbage", "no-status", "bad-status")


class Scripted(H2Server):
    """Answers by path: ``/hang`` never; ``/slow/...`` after 0.3 s; a last
    segment named in `ACTIONS` does what `Response.then` says; anything else
    is answered at once. The body of a 200 is the length of the request body."""

    def __init__(self, max_streams: int = 100, window: int = 1 << 20) -> None:
        super().__init__()
        self.max_concurrent_streams = max_streams
        self.initial_window_size = window
        self.received: list[Request] = []

    async def handler(self, request: Request) -> Response:
        self.received.append(request)
        segments = request.path.strip("/").split("/")
        if "hang" in segments:
            await asyncio.Event().wait()
        if "slow" in segments:
            await asyncio.sleep(0.3)
        action = segments[-1]
        return Response(200, str(len(request.body)).encode(), then=action if action in ACTIONS else None)


@pytest.fixture
def server() -> Iterator[Scripted]:
    with Scripted() as mock:
        yield mock


def serve(**settings: Any) -> Scripted:
    return Scripted(**settings).start()


async def post(client: H2Client, path: str, body: bytes = b"{}", **headers: str) -> Reply:
    return await client.post(path, content=body, headers=headers)


async def outcomes(*requests: Coroutine[Any, Any, Reply]) -> list[Any]:
    """Each request's reply or exception, started in order one loop turn apart."""
    tasks = []
    for request in requests:
        tasks.append(asyncio.ensure_future(request))
        await asyncio.sleep(0.01)
    return await asyncio.gather(*tasks, return_exceptions=True)


def then_after(
    url: str, *paths: str | tuple[str, dict[str, str]], timeout: float = 2
) -> Coroutine[Any, Any, list[Any]]:
    """On one client: the outcomes of posts to ``paths`` (a path, or a path and
    its headers), started in order one loop turn apart, then of one to
    ``/after`` once they have all ended."""
    async def scenario() -> list[Any]:
        client = H2Client(url, timeout=timeout)
        requests = [post(client, p) if isinstance(p, str) else post(client, p[0], **p[1]) for p in paths]
        results = await outcomes(*requests)
        results.append(await post(client, "/after"))
        await client.aclose()
        return results
    return scenario()


def test_a_post_gets_status_headers_and_body_and_reuses_the_connection(server: Scripted, run: Run) -> None:
    async def scenario() -> list[Reply]:
        client = H2Client(server.url, timeout=2)
        replies = [await post(client, "/one", b"abc", authorization="bearer secret"), await post(client, "/two", b"")]
        await client.aclose()
        return replies

    first, second = run(scenario())
    assert (first.status_code, first.content, second.content) == (200, b"3", b"0")
    assert server.received[0].headers["authorization"] == "bearer secret"
    assert server.connections == 1


def test_streams_beyond_the_servers_limit_wait_for_a_free_slot(run: Run) -> None:
    with serve(max_streams=2) as server:
        async def scenario() -> list[Any]:
            client = H2Client(server.url, timeout=5)
            replies = await asyncio.gather(*(post(client, "/slow") for _ in range(6)))
            await client.aclose()
            return replies

        replies = run(scenario())
    assert [r.status_code for r in replies] == [200] * 6
    assert server.max_open_streams == 2 and server.connections == 1


def test_a_body_larger_than_the_send_window_waits_for_window_updates(run: Run) -> None:
    body = bytes(range(256)) * 40  # 10,240 bytes through a 100-byte stream window
    with serve(window=100) as server:
        async def scenario() -> list[Reply]:
            client = H2Client(server.url, timeout=5)
            replies = await asyncio.gather(post(client, "/big", body), post(client, "/big", body[:150]))
            await client.aclose()
            return replies

        replies = run(scenario())
    assert [r.content for r in replies] == [b"10240", b"150"]
    assert sorted(r.body for r in server.received) == sorted([body, body[:150]])


def test_a_stream_that_times_out_is_reset_and_its_slot_goes_to_a_waiting_request(run: Run) -> None:
    with serve(max_streams=1) as server:
        async def scenario() -> tuple[list[Any], float]:
            client = H2Client(server.url, timeout=1.0)
            started = time.monotonic()
            hung, waiting = await outcomes(post(client, "/hang"), delayed(0.4, post(client, "/ok")))
            elapsed = time.monotonic() - started
            await client.aclose()
            return [hung, waiting], elapsed

        (hung, waiting), elapsed = run(scenario())
    assert isinstance(hung, TransportError) and "no answer" in str(hung)
    # The waiter got the slot when the hung stream gave it back (at 1 s), not at its own timeout (1.4 s).
    assert isinstance(waiting, Reply) and waiting.status_code == 200
    assert elapsed < 1.35
    assert server.resets == 1 and server.connections == 1


async def delayed(seconds: float, request: Coroutine[Any, Any, Reply]) -> Reply:
    await asyncio.sleep(seconds)
    return await request


def test_a_reset_stream_fails_that_request_only(server: Scripted, run: Run) -> None:
    slow, reset, after = run(then_after(server.url, "/slow", "/reset"))
    assert isinstance(reset, TransportError) and "reset by server" in str(reset)
    assert slow.status_code == 200 and after.status_code == 200
    assert server.connections == 1


def test_a_protocol_error_fails_every_stream_and_the_next_request_reconnects(run: Run) -> None:
    with serve(max_streams=2) as server:
        *failed, after = run(then_after(server.url, "/hang", "/slow/garbage", "/waits"))
    assert all(isinstance(r, TransportError) for r in failed), failed
    assert "protocol error" in str(failed[0])
    assert after.status_code == 200 and server.connections == 2


def test_goaway_fails_the_streams_the_server_never_took_and_the_next_request_reconnects(run: Run) -> None:
    with serve(max_streams=2) as server:
        hung, goaway, waiting, after = run(then_after(server.url, "/hang", "/slow/goaway", "/waits", timeout=3))
    assert goaway.status_code == 200  # stream 3, named last by the GOAWAY that follows its answer
    assert isinstance(hung, TransportError)  # stream 1: h2 takes no frame after GOAWAY, so it cannot be answered
    assert isinstance(waiting, TransportError)  # waited for a slot on that connection
    assert after.status_code == 200 and server.connections == 2


def test_a_request_waiting_for_a_slot_fails_at_once_when_goaway_leaves_it_none(run: Run) -> None:
    """Both slots stay taken by streams the GOAWAY names as taken (the server
    may still answer them): the request waiting for a slot fails then, not at
    its timeout (one given up before is passed over), and the next request
    goes over a new connection."""
    with serve(max_streams=2) as server:
        async def scenario() -> tuple[list[Any], float, Reply]:
            client = H2Client(server.url, timeout=1.5)
            started = time.monotonic()
            first = asyncio.ensure_future(post(client, "/hang"))
            second = asyncio.ensure_future(post(client, "/slow/goaway-unanswered"))
            await asyncio.sleep(0.05)
            given_up = asyncio.ensure_future(asyncio.wait_for(post(client, "/given-up"), 0.1))
            await asyncio.sleep(0.01)  # it waits first
            waiting = await asyncio.gather(post(client, "/waits"), given_up, return_exceptions=True)
            waited = time.monotonic() - started
            taken = await asyncio.gather(first, second, return_exceptions=True)
            after = await post(client, "/after")
            await client.aclose()
            return [*taken, *waiting], waited, after

        (hung, unanswered, waiting, given_up), waited, after = run(scenario())
    assert isinstance(given_up, TimeoutError)
    assert isinstance(waiting, TransportError) and "GOAWAY" in str(waiting)
    assert waited < 1.0  # the GOAWAY came at 0.3 s; the timeout is 1.5 s
    assert isinstance(hung, TransportError) and isinstance(unanswered, TransportError)  # no answer came
    assert not {"/waits", "/given-up"} & {r.path for r in server.received}
    assert after.status_code == 200 and server.connections == 2


def test_a_request_given_up_while_waiting_for_a_slot_leaves_it_to_the_next(run: Run) -> None:
    with serve(max_streams=1) as server:
        async def scenario() -> list[Any]:
            client = H2Client(server.url, timeout=5)
            busy = asyncio.ensure_future(post(client, "/slow"))
            await asyncio.sleep(0.05)
            given_up = asyncio.ensure_future(asyncio.wait_for(post(client, "/given-up"), 0.1))
            await asyncio.sleep(0.01)
            next_ = asyncio.ensure_future(post(client, "/next"))
            results = await asyncio.gather(busy, given_up, next_, return_exceptions=True)
            await client.aclose()
            return results

        busy, given_up, next_ = run(scenario())
    assert busy.status_code == 200 and isinstance(given_up, TimeoutError)
    assert next_.status_code == 200  # woken when /slow ended, past the abandoned waiter
    assert [r.path for r in server.received] == ["/slow", "/next"] and server.connections == 1


def test_a_lost_connection_fails_its_streams_and_the_next_request_reconnects(server: Scripted, run: Run) -> None:
    hung, dropped, after = run(then_after(server.url, "/hang", "/drop"))
    assert isinstance(hung, TransportError) and "connection lost" in str(hung)
    assert isinstance(dropped, TransportError)
    assert after.status_code == 200 and server.connections == 2


def test_a_server_that_never_answers_the_connection_is_given_up_and_retried(server: Scripted, run: Run) -> None:
    server.silent_connections = 1

    async def scenario() -> list[Any]:
        client = H2Client(server.url, timeout=0.5)
        results = await outcomes(post(client, "/first"))
        await asyncio.sleep(0.1)
        results += await outcomes(post(client, "/second"))
        await client.aclose()
        return results

    first, second = run(scenario())
    assert isinstance(first, TransportError) and "no answer" in str(first)
    assert isinstance(second, Reply) and second.status_code == 200
    assert server.connections == 2


def test_a_tls_handshake_that_never_ends_is_given_up_at_the_timeout(run: Run) -> None:
    """A server that takes the TCP connection and never answers the TLS
    ClientHello: the connect itself is cut at the client's timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        async def scenario() -> tuple[Any, float]:
            client = H2Client(f"https://127.0.0.1:{port}", timeout=0.5)
            started = time.monotonic()
            result = (await outcomes(post(client, "/first")))[0]
            elapsed = time.monotonic() - started
            await client.aclose()
            return result, elapsed

        result, elapsed = run(scenario())
    assert isinstance(result, TransportError) and "within 0.5s" in str(result)
    assert elapsed < 1.5


def test_connection_refused_is_a_transport_error(run: Run) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match="cannot connect"):
        run(post(H2Client(f"http://127.0.0.1:{port}", timeout=2), "/x"))


def test_a_connection_idle_too_long_is_replaced(server: Scripted, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2client, "IDLE_LIMIT", 0.2)

    async def scenario() -> list[Reply]:
        client = H2Client(server.url, timeout=2)
        first = await post(client, "/one")
        await asyncio.sleep(0.3)
        second = await post(client, "/two")
        await client.aclose()
        return [first, second]

    assert [r.status_code for r in run(scenario())] == [200, 200]
    assert server.connections == 2


def test_a_retired_connection_closes_when_its_last_stream_times_out(
    server: Scripted, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h2client, "IDLE_LIMIT", 0.2)

    async def scenario() -> tuple[list[Any], int]:
        client = H2Client(server.url, timeout=0.6)
        # /fresh comes when the first connection has been idle too long: it is retired
        # with /hang still on it, and closes once /hang gives up (RST_STREAM sent first).
        hung, fresh = await outcomes(post(client, "/hang"), delayed(0.3, post(client, "/fresh")))
        await asyncio.sleep(0.1)
        closed_before_aclose = server.closed_connections
        await client.aclose()
        return [hung, fresh], closed_before_aclose

    (hung, fresh), closed = run(scenario())
    assert isinstance(hung, TransportError) and "no answer" in str(hung)
    assert fresh.status_code == 200 and server.connections == 2
    assert closed == 1 and server.resets == 1


def test_a_header_the_server_refuses_fails_that_request_and_the_next_goes_over_a_new_connection(
    server: Scripted, run: Run
) -> None:
    refused, after = run(then_after(server.url, ("/bad", {"connection": "keep-alive"})))
    # The client does not validate its own headers (the senders build them);
    # the server takes a connection-specific header as a protocol error.
    assert isinstance(refused, TransportError)
    assert after.status_code == 200 and server.connections == 2


def test_an_answer_without_a_valid_status_fails_its_request_and_keeps_the_connection(
    server: Scripted, run: Run
) -> None:
    missing, malformed, after = run(then_after(server.url, "/no-status", "/bad-status"))
    for failed in (missing, malformed):
        assert isinstance(failed, TransportError) and "without a valid :status" in str(failed)
    assert after.status_code == 200 and server.connections == 1


def test_aclose_fails_what_is_in_flight_and_is_safe_after_goaway(server: Scripted, run: Run) -> None:
    async def scenario() -> list[Any]:
        client = H2Client(server.url, timeout=2)
        await client.aclose()  # nothing opened yet
        hung = asyncio.ensure_future(post(client, "/hang"))
        await asyncio.sleep(0.1)
        await client.aclose()
        results: list[Any] = list(await asyncio.gather(hung, return_exceptions=True))
        results.append(await post(client, "/goaway"))
        await client.aclose()  # the connection already got GOAWAY
        return results

    hung, goaway = run(scenario())
    assert isinstance(hung, TransportError) and goaway.status_code == 200


def test_a_connect_still_pending_when_the_loop_closes_logs_nothing(
    server: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    server.silent_connections = 1
    with caplog.at_level(logging.DEBUG, logger="asyncio"), asyncio.Runner() as runner:
        client = H2Client(server.url, timeout=5)

        async def start() -> None:
            asyncio.ensure_future(post(client, "/x"))
            await asyncio.sleep(0.1)

        runner.run(start())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_missing_ssl_cert_file_leaves_the_system_cas(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "absent.pem"))
    context = h2client.tls_context()
    assert context.verify_mode.name == "CERT_REQUIRED"
