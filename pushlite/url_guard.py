"""Which URLs pushlite may call on a client's behalf (Matrix push gateways,
browsers' Web Push endpoints).

A Matrix client names the URL its notifications are POSTed to, and a browser's
push subscription names its push service's endpoint, so without a guard
pushlite would become a way into its own network. A URL is allowed when:

- it is ``http`` or ``https``, without user info, and matches one of the globs
  of the allowlist (``PUSHLITE_MATRIX_GATEWAY_ALLOWLIST``, default
  ``https://*``; ``PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST``, default the major
  browsers' push services; comma or space separated). A glob's host part
  matches the URL's host only (``https://*.push.apple.com/*`` does not match
  ``https://evil.example/.push.apple.com/``), and
- its host resolves, and every address it resolves to is public: not loopback,
  private, link-local (169.254.169.254, the cloud metadata address, included),
  multicast, reserved, unspecified or shared, in IPv4 or IPv6 (IPv4-mapped,
  6to4 and NAT64 addresses are judged by the IPv4 address inside).

A glob that names its host literally (``http://sygnal.internal:5000/*``, no
wildcard in the host) is the operator trusting that host, so its addresses are
not judged. The same check runs at registration and again before every
delivery, which then connects to the address that was checked (DNS can change
in between); ``allowed`` is the registration-time form that resolves a host
only when its addresses are to be judged.
"""
from __future__ import annotations

import fnmatch
import functools
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ALLOWLIST = "https://*"
NAT64 = ipaddress.ip_network("64:ff9b::/96")
WILDCARDS = re.compile(r"[*?\[]")

Resolver = Callable[..., list[tuple[Any, ...]]]


class UnsafeURL(ValueError):
    """A URL pushlite will not call; the message says why (client-safe)."""


@dataclass(frozen=True)
class Destination:
    """A checked URL and the addresses it may be reached at."""

    url: str
    scheme: str
    host: str
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]

    def pinned_url(self, address: str) -> str:
        """The URL with the host replaced by one of its checked addresses."""
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"

    @property
    def authority(self) -> str:
        """The Host header value."""
        literal = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return literal if self.port == default else f"{literal}:{self.port}"


def globs(allowlist: str) -> list[str]:
    return [g for g in re.split(r"[\s,]+", allowlist or "") if g]


def _authority(glob_or_url: str) -> str:
    """What lies between ``://`` and the next ``/`` (host and port)."""
    rest = glob_or_url.split("://", 1)[1] if "://" in glob_or_url else ""
    return rest.split("/", 1)[0]


def _names_host(glob: str) -> bool:
    """Whether the glob's host is literal (no wildcard in it)."""
    authority = _authority(glob)
    host = authority.rsplit("]", 1)[0] if authority.startswith("[") else authority.rsplit(":", 1)[0]
    return bool(host) and not WILDCARDS.search(host)


@dataclass(frozen=True)
class _Glob:
    url: re.Pattern[str]
    authority: re.Pattern[str] | None  # None: the glob names no scheme://authority
    names_host: bool

    def matches(self, normalized: str) -> bool:
        """The glob matches the whole URL, and its host part the URL's host
        part (a ``*`` in a glob's host must not reach into the URL's path)."""
        if not self.url.match(normalized):
            return False
        return self.authority is None or self.authority.match(_authority(normalized)) is not None


@functools.lru_cache(maxsize=32)
def _compiled(allowlist: str) -> tuple[_Glob, ...]:
    """An allowlist's globs, compiled once (it is checked for every URL of a batch)."""
    return tuple(
        _Glob(re.compile(fnmatch.translate(g)),
              re.compile(fnmatch.translate(_authority(g))) if "://" in g else None,
              _names_host(g))
        for g in globs(allowlist)
    )


def is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )


def _resolve(host: str, port: int, resolve: Resolver) -> tuple[str, ...]:
    try:
        ipaddress.ip_address(host)
        return (host,)
    except ValueError:
        pass
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"The host {host} cannot be resolved.") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeURL(f"The host {host} cannot be resolved.")
    return addresses


@dataclass(frozen=True)
class _Matched:
    url: str
    scheme: str
    host: str
    port: int
    target: str
    trusted: bool  # a matching glob names the host literally


def _match(url: object, allowlist: str) -> _Matched:
    if not isinstance(url, str) or not url.isascii() or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise UnsafeURL("The URL must be an ASCII http(s) URL.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("The URL is malformed.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("The URL must be an http(s) URL with a host.")
    if "@" in parts.netloc:
        raise UnsafeURL("The URL must not contain user info.")
    host = parts.hostname.rstrip(".").lower()
    port = port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    literal = f"[{host}]" if ":" in host else host
    normalized = f"{parts.scheme}://{literal}{f':{parts.port}' if parts.port else ''}{target}"
    matching = [g for g in _compiled(allowlist) if g.matches(normalized)]
    if not matching:
        raise UnsafeURL("The URL is not allowed by this server's allowlist.")
    return _Matched(normalized, parts.scheme, host, port, target, any(g.names_host for g in matching))


def _judge(matched: _Matched, addresses: tuple[str, ...]) -> None:
    if not matched.trusted:
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise UnsafeURL(f"The host {matched.host} resolves to a non-public address ({private[0]}).")


def check(url: object, allowlist: str = DEFAULT_ALLOWLIST, resolve: Resolver = socket.getaddrinfo) -> Destination:
    """The destination of an allowed URL; UnsafeURL otherwise."""
    matched = _match(url, allowlist)
    addresses = _resolve(matched.host, matched.port, resolve)
    _judge(matched, addresses)
    return Destination(matched.url, matched.scheme, matched.host, matched.port, matched.target, addresses)


def allowed(url: object, allowlist: str = DEFAULT_ALLOWLIST, resolve: Resolver = socket.getaddrinfo) -> None:
    """Raise UnsafeURL unless the URL would pass ``check``; the host is
    resolved only when its addresses are judged (a host the allowlist names
    literally is trusted as it is: nothing to look up)."""
    matched = _match(url, allowlist)
    if not matched.trusted:
        _judge(matched, _resolve(matched.host, matched.port, resolve))
