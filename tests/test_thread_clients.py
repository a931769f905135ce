"""The web process's Redis clients: one connection per thread, a new one in a
forked child, and a client that connects again after Redis comes back."""
from __future__ import annotations

import os
import threading

import pytest
import redis

from pushlite.storage.connection import ThreadClients


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
