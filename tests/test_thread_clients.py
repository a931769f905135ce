"""The web process's Redis clients: one connection per thread, a new one in a
forked child, a client that connects again after Redis comes back, and a
thread's first connect going through the circuit breaker.

A command whose reply needs no conversion (HGET, EXISTS, FCALL...) goes
straight to the client's connection (``HeldConnectionClient``); the tests
below check that it still decodes, raises a reply's error, times out, and
connects again like any other command."""
from __future__ import annotations

import os
import threading
import time

import pytest
import redis

from pushlite.storage.breaker import Breaker, CircuitOpen
from pushlite.storage.connection import ThreadClients
from tests.conftest import run_together


def connection_ids(server_url: str) -> set[str]:
    admin = redis.Redis.from_url(server_url, decode_responses=True)
    return {str(c["id"]) for c in admin.client_list() if c["cmd"] != "client|list"}


def test_a_thread_keeps_its_client_and_each_thread_has_its_own(redis_server):
    clients = ThreadClients(redis_server.url)
    mine = clients.get()
    assert clients.get() is mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(clients.get().client_id()))
    thread.start()
    thread.join()
    assert theirs[0] != mine.client_id()
    assert mine.client_id() == mine.client_id()  # one connection, every command


def test_a_forked_child_uses_its_own_connection(redis_server):
    clients = ThreadClients(redis_server.url)
    parent = clients.get().client_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, never run the rest of pytest
        try:
            os.write(write, str(clients.get().client_id()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 100))
    os.waitpid(pid, 0)
    os.close(read)
    assert child != parent
    assert clients.get().client_id() == parent  # the parent's connection was not disturbed


def test_unreachable_then_back(redis_server):
    clients = ThreadClients(redis_server.url, connect_timeout=0.5, socket_timeout=0.5)
    client = clients.get()
    redis_server.stop()
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
        with pytest.raises(redis.ConnectionError):
            clients.get().ping()
    finally:
        redis_server.start()
    assert clients.get().ping() is True
    assert str(clients.get().client_id()) in connection_ids(redis_server.url)


def test_a_thread_that_never_connected_fails_fast_once_redis_hangs(redis_server):
    """A thread with no connection yet (a gunicorn worker that had served
    nothing) while Redis hangs: its first call waits the socket timeout and
    opens the breaker; the next ones are refused at once instead of each
    waiting the timeout again. Once Redis answers, the probe closes the
    breaker and the thread connects."""
    def probe():
        redis.Redis.from_url(redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3).ping()

    breaker = Breaker(probe, retry_after=0.1)
    clients = ThreadClients(redis_server.url, socket_timeout=0.3, connect_timeout=0.3, breaker=breaker)
    redis_server.pause()
    try:
        outcomes = []
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises((redis.TimeoutError, redis.ConnectionError)) as raised:
                clients.get().execute_command("EXISTS", "h")
            outcomes.append((raised.type, time.monotonic() - started))
        assert outcomes[0][0] is redis.TimeoutError and outcomes[0][1] >= 0.25
        assert [kind for kind, _ in outcomes[1:]] == [CircuitOpen, CircuitOpen]
        assert max(elapsed for _, elapsed in outcomes[1:]) < 0.1
        assert breaker.is_open
    finally:
        redis_server.resume()
    deadline = time.monotonic() + 3
    while breaker.is_open and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not breaker.is_open
    assert clients.get().execute_command("EXISTS", "h") == 0


def test_a_direct_command_decodes_its_reply_and_raises_its_error_on_the_same_connection(redis_server):
    client = ThreadClients(redis_server.url).get()
    client.hset("h", "f", "v")
    connection = client.client_id()
    assert "HGET" not in client.response_callbacks  # the direct path
    assert client.execute_command("HGET", "h", "f") == "v"
    assert client.execute_command("HMGET", "h", "f", "g") == ["v", None]
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        client.execute_command("HGET", "h")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.execute_command("LLEN", "h")
    assert client.execute_command("HGET", "h", "f") == "v"
    assert client.client_id() == connection  # an error reply keeps the connection


def test_commands_redis_py_packs_itself_still_go_through(redis_server):
    """pushlite packs commands itself (``CommandPacker``); what it leaves to
    redis-py's packer (a command name of two words, a bytearray or memoryview
    argument, a value no packer takes) still works as before."""
    client = ThreadClients(redis_server.url).get()
    client.execute_command("HSET", "h", "f", bytearray(b"bytes"), "g", memoryview(b"view"), "n", 1.5)
    assert client.hgetall("h") == {"f": "bytes", "g": "view", "n": "1.5"}
    assert client.execute_command("CONFIG GET", "maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    with pytest.raises(redis.DataError):
        client.execute_command("HSET", "h", "f", None)
    assert client.execute_command("HGET", "h", "f") == "bytes"


def test_a_direct_command_to_a_hung_redis_times_out_then_works_once_it_answers(redis_server):
    client = ThreadClients(redis_server.url, socket_timeout=0.3).get()
    client.hset("h", "f", "v")
    redis_server.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            client.execute_command("HGET", "h", "f")
    finally:
        redis_server.resume()
    # The timed-out connection was dropped: its late reply cannot answer the next command.
    assert client.execute_command("HGET", "h", "f") == "v"
    assert client.execute_command("EXISTS", "h") == 1


def test_a_direct_command_after_a_redis_restart_fails_once_then_connects_again(redis_server):
    client = ThreadClients(redis_server.url, connect_timeout=0.5, socket_timeout=0.5).get()
    before = client.client_id()
    redis_server.stop()
    redis_server.start()
    with pytest.raises(redis.ConnectionError):
        client.execute_command("EXISTS", "h")
    assert client.execute_command("EXISTS", "h") == 0
    assert client.client_id() != before


def test_a_client_shared_between_threads_gives_each_its_own_replies(redis_server):
    """``ThreadClients`` gives each thread a client, but a client shared
    between threads (as some tests share one) must not mix their commands
    on its one connection."""
    client = ThreadClients(redis_server.url).get()
    client.hset("h", mapping={f"f{n}": f"v{n}" for n in range(8)})
    wrong: list[object] = []

    def ask(n: int) -> None:
        for _ in range(300):
            try:
                answer = client.execute_command("HGET", "h", f"f{n}")
            except redis.RedisError as exc:
                answer = exc
            if answer != f"v{n}":
                wrong.append(answer)

    run_together(ask, [(n,) for n in range(8)])
    assert wrong == []
