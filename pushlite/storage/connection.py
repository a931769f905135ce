"""Redis clients for the app and the workers, for each deployment a URL
names (``urls.py``): one Redis, a Redis Cluster, or a master Sentinel manages.

With no URL, pushlite runs embedded: an in-process fakeredis server, so the
service starts on a machine without Redis. Each ``connect(None)`` makes a new,
empty server, which is also what gives every test its own store.

RQ pickles its jobs, so queue clients do not decode responses; data clients
do. RQ does not support Redis Cluster: its queues need one Redis or a
Sentinel-managed one.

redis-py types every reply ``bytes | str`` whatever the client decodes, so
storage functions name a data client's replies ``str`` with ``typing.cast``
(no conversion; outside loops, to cost nothing per item).
"""
from __future__ import annotations

import os
import threading
from typing import Any

import hiredis
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode
from redis.connection import HiredisRespSerializer
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from . import sentinel, urls
from .breaker import Breaker
from .cluster import Cluster, DataClient


def connect(
    url: str | None,
    *,
    socket_timeout: float | None = 1.0,
    connect_timeout: float = 1.0,
) -> DataClient:
    """A data client (responses decoded to str)."""
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return _client(urls.parse(url), _settings(socket_timeout, connect_timeout, decode_responses=True))


def _settings(socket_timeout: float | None, connect_timeout: float, **extra: Any) -> dict[str, Any]:
    return {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout, **extra}


def _client(target: urls.RedisTarget, settings: dict[str, Any]) -> DataClient:
    if target.kind == urls.CLUSTER:
        return _cluster(target, settings)
    return _single(target, settings)


def _single(target: urls.RedisTarget, settings: dict[str, Any]) -> redis.Redis:
    """A client of one Redis, or of the master a Sentinel names."""
    if target.kind == urls.SENTINEL:
        return redis.Redis(connection_pool=sentinel.master_pool(target, health_check_interval=30, **settings))
    return redis.Redis.from_url(target.url, health_check_interval=30, **settings)


def _cluster(target: urls.RedisTarget, settings: dict[str, Any]) -> Cluster:
    """A cluster client; raises ConnectionError when no node answers."""
    try:
        return Cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
            require_full_coverage=False,
            # A retry follows a failover or a node that went away: a new slot
            # map, then the command again, twice at most.
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), retries=2),
            **{**target.options, **settings},
        )
    except RedisClusterException as exc:
        raise redis.ConnectionError(f"no node of the Redis Cluster answers: {exc}") from None


# How many forks this process is from the one that imported this module: a
# client made in a parent holds the parent's connection, which a forked child
# must not share. Counted at each fork rather than asking os.getpid() (a
# system call) on every request.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class CommandPacker:
    """Packs a command as redis-py's hiredis packer does, without its pass
    over every argument, which converts the bytearray and memoryview
    arguments pushlite never sends (1.7 us of the 2.9 us a registration's
    FCALL and its 16 arguments took to pack). What hiredis refuses goes to
    redis-py's packer, which converts it or raises DataError, as it did; so
    does a command name of two words ("CLIENT LIST"), which redis-py splits."""

    _redis_py = HiredisRespSerializer()

    def pack(self, *args: Any) -> list[bytes]:
        name = args[0]
        if type(name) is str and " " not in name:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        return self._redis_py.pack(*args)


PACKER = CommandPacker()


class HeldConnectionClient(redis.Redis):
    """A client that holds one connection of its pool (``ThreadClients``
    makes one per thread).

    A command given to ``execute_command`` as is, whose reply needs no
    conversion (no response callback, no options: the FCALLs of pushlite's
    Lua, a raw HGET or EXISTS; redis-py's own ``hget()`` passes options),
    goes straight to the connection. redis-py's command path around it does
    nothing for such a client but take its lock (kept: a client shared
    between threads must not mix their commands on its one connection): a
    retry loop (the pool's connections retry 0 times), maintenance and
    observability hooks (off), a response callback lookup. It cost a
    registration ~10 us of the ~165 us it takes in-process
    (``bench/register_throughput.py``). The connection still does what
    matters: it connects when it has no socket, checks its health after
    ``health_check_interval``, decodes replies, raises a reply's error, and
    disconnects on a timeout or a socket error, so the next command connects
    again.
    """

    def execute_command(self, *args: Any, **options: Any) -> Any:
        conn = self.connection
        if options or conn is None or args[0] in self.response_callbacks:
            return super().execute_command(*args, **options)
        with self.single_connection_lock:  # a client may be shared between threads (tests do)
            conn.send_packed_command(conn.pack_command(*args))
            return conn.read_response()


class ThreadClients:
    """Data clients for a process serving requests.

    One Redis (or one Sentinel-managed master): a client per thread, each
    holding one connection of a shared pool for as long as its thread lives.
    A pooled client takes a connection from its pool and gives it back on
    every command (a lock, a readiness poll of the socket, metrics hooks): 18
    us of the 331 us a registration cost a gunicorn worker on a 2-core machine
    (``bench/register_throughput.py``). A sync gunicorn worker has one thread,
    so one connection; a forked child makes its own.

    A Redis Cluster: one cluster client per process (it keeps a pool per
    node and is safe to share between threads), made on first use, and made
    again on a later call while no node answered.

    ``breaker`` guards the clients of one Redis or of a Sentinel-managed
    master. A Cluster's client is not guarded: one breaker for every node
    would turn one dead master into a 503 for every tenant, not just for its
    own slots.
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float | None = 1.0,
        connect_timeout: float = 1.0,
        breaker: Breaker | None = None,
    ) -> None:
        self.breaker = breaker
        self.target = urls.parse(url)
        self.settings = _settings(socket_timeout, connect_timeout, decode_responses=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cluster: tuple[int, Cluster] | None = None
        self.pool: redis.ConnectionPool | None = None
        if self.target.kind == urls.SENTINEL:
            self.pool = sentinel.master_pool(self.target, health_check_interval=30, command_packer=PACKER,
                                             **self.settings)
        elif self.target.kind == urls.SINGLE:
            self.pool = redis.ConnectionPool.from_url(url, health_check_interval=30, command_packer=PACKER,
                                                      **self.settings)

    def get(self) -> DataClient:
        """This thread's client (connecting it first: raises ConnectionError
        while Redis is unreachable, and tries again on the next call).

        The connecting goes through the breaker too: refused at once while
        it is open, and opening it when Redis does not answer. A thread that
        had not connected before Redis hung (a gunicorn worker that had
        served nothing yet) would otherwise wait the socket timeout on every
        request, since redis-py connects a held connection when the client
        is made, before any guarded command."""
        if self.pool is None:
            return self._shared_cluster()
        local = self._local
        client = getattr(local, "client", None)
        if client is None or local.forks != _forks:
            if self.breaker is None:
                client = self._connect()
            else:
                client = self.breaker.guard(self.breaker.guarded(self._connect)())
            local.client, local.forks = client, _forks
        return client

    def _connect(self) -> HeldConnectionClient:
        return HeldConnectionClient(connection_pool=self.pool, single_connection_client=True)

    def _shared_cluster(self) -> Cluster:
        made = self._cluster
        if made is not None and made[0] == os.getpid():
            return made[1]
        with self._lock:
            if self._cluster is None or self._cluster[0] != os.getpid():
                self._cluster = (os.getpid(), _cluster(self.target, self.settings))
            return self._cluster[1]


def connect_queue(
    url: str | None,
    data: DataClient | None,
    *,
    socket_timeout: float | None = 1.0,
    connect_timeout: float = 1.0,
) -> redis.Redis:
    """A client for RQ: on ``url``, or (embedded) on the same server as ``data``."""
    if url is None:
        import fakeredis

        if not isinstance(data, fakeredis.FakeRedis):
            raise ValueError("with no queue URL, the queue lives on the embedded data client's server")
        return fakeredis.FakeRedis(server=data.connection_pool.connection_kwargs["server"])
    target = urls.parse(url)
    if target.kind == urls.CLUSTER:
        raise ValueError(QUEUE_NOT_ON_CLUSTER)
    return _single(target, _settings(socket_timeout, connect_timeout))


QUEUE_NOT_ON_CLUSTER = (
    "RQ cannot keep its queues on a Redis Cluster: set PUSHLITE_QUEUE_URL to one Redis "
    "(redis://) or a Sentinel-managed one (redis+sentinel://)"
)
