"""What a Redis URL names: one Redis, a Redis Cluster, or a master that
Sentinel manages.

``redis://`` / ``rediss://``       one Redis (redis-py's own URL syntax)
``redis+cluster://h:p[,h:p...]``   a Redis Cluster, found from any of these
                                   nodes (``rediss+cluster://``: TLS)
``redis+sentinel://h:p[,h:p...]/<service>[/<db>]``
                                   the master Sentinel names ``<service>``
                                   (``rediss+sentinel://``: TLS to Redis)

User and password (``redis+cluster://user:secret@h:p``) and query options
(``?socket_timeout=2``, ``?ssl_cert_reqs=none``; redis-py's) apply to every
Redis node. A Sentinel that needs its own password takes
``?sentinel_password=...``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from redis.connection import SSLConnection, parse_url

SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"

_SCHEMES = {
    "redis": (SINGLE, False),
    "rediss": (SINGLE, True),
    "redis+cluster": (CLUSTER, False),
    "rediss+cluster": (CLUSTER, True),
    "redis+sentinel": (SENTINEL, False),
    "rediss+sentinel": (SENTINEL, True),
}


@dataclass(frozen=True)
class RedisTarget:
    kind: str  # SINGLE, CLUSTER or SENTINEL
    url: str = field(repr=False)  # may hold a password
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""  # Sentinel's name of the master
    # Connection settings for every Redis node (db, credentials, TLS, timeouts).
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    sentinel_options: dict[str, Any] = field(default_factory=dict, repr=False)


def parse(url: str) -> RedisTarget:
    """Read a REDIS_URL / PUSHLITE_QUEUE_URL; ValueError says what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            f"unsupported Redis URL scheme {scheme!r}: use redis://, rediss://, redis+cluster://, "
            "rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
        )
    kind, tls = _SCHEMES[scheme.lower()]
    if kind == SINGLE:
        return RedisTarget(SINGLE, url, options=parse_url(url))
    netloc, _, tail = _split_netloc(rest)
    userinfo, _, hostlist = netloc.rpartition("@")
    hosts = tuple(_host_port(h) for h in hostlist.split(",") if h.strip())
    if not hosts:
        raise ValueError(f"{scheme}:// needs at least one host:port")
    path, _, query = tail.partition("?")
    segments = [unquote(s) for s in path.split("/") if s]
    service, db = "", 0
    if kind == SENTINEL:
        if not segments or len(segments) > 2:
            raise ValueError(f"{scheme}://host:port[,host:port...]/<service name>[/<db>] (got path {path!r})")
        service = segments[0]
        db = _db(segments[1]) if len(segments) == 2 else 0
    elif segments:
        raise ValueError("a Redis Cluster has only database 0: no path after the hosts")
    # redis-py reads the credentials and query options of a one-host URL.
    single = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}{hosts[0][0]}:{hosts[0][1]}"
    options = parse_url(single + (f"?{query}" if query else ""))
    for name in ("host", "port"):
        options.pop(name, None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    if kind == CLUSTER and options.pop("db", 0):
        raise ValueError("a Redis Cluster has only database 0")
    sentinel_options: dict[str, Any] = {}
    if kind == SENTINEL:
        options.setdefault("db", db)
        if "sentinel_password" in options:
            sentinel_options["password"] = options.pop("sentinel_password")
    return RedisTarget(kind, url, hosts, service, options, sentinel_options)


def _split_netloc(rest: str) -> tuple[str, str, str]:
    """(hosts, separator, path and query) of what follows ``scheme://``."""
    for i, ch in enumerate(rest):
        if ch in "/?":
            return rest[:i], ch, rest[i:]
    return rest, "", ""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"every host of a Redis URL needs host:port (got {text.strip()!r})")
    return unquote(host.strip("[]")), int(port)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"the database after the Sentinel service name must be a number (got {text!r})")
    return int(text)
