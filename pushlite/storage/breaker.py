"""Fail fast while a Redis does not answer: a per-process circuit breaker.

A hung Redis (SIGSTOP, a network partition) costs every command the client's
socket timeout. With a handful of sync web workers, requests queue behind
each other and callers wait several timeouts for their 503. The breaker
opens on the first error that means "unavailable" (timeout, refused
connection, READONLY after a failover, ...): from then on, commands fail at
once with ``CircuitOpen`` (a ``redis.ConnectionError``, so callers answer
503 as for any outage), and a thread of the process probes Redis every
``retry_after`` seconds (``probe``: a PING on a connection of its own)
until it answers, which closes the breaker. No request waits for a probe,
so a hung Redis costs each process the requests in flight when it hung,
and service comes back within ``retry_after`` of Redis answering again. (A
read-only Redis answers the probe: reads go through, and the next write
opens the breaker again, at once, since READONLY is not a timeout.)

``guard(client)`` wraps a client's ``execute_command`` and its pipelines'
``execute``, which every redis-py client (plain, cluster, sentinel-managed)
goes through, so any of them can be guarded.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from pushlite.storage.cluster import DataClient

from .errors import is_unavailable

T = TypeVar("T")
AnyClient = TypeVar("AnyClient", bound=DataClient)

log = logging.getLogger(__name__)

class CircuitOpen(redis.ConnectionError):
    """Redis failed moments ago; not tried again before the breaker's probe answers."""


class Breaker:
    def __init__(self, probe: Callable[[], object], retry_after: float = 0.5) -> None:
        self.probe = probe
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._open = False
        self._prober: int | None = None  # the pid whose thread probes (a forked child has none)

    @property
    def is_open(self) -> bool:
        return self._open

    def guarded(self, function: Callable[..., T]) -> Callable[..., T]:
        """``function`` through this breaker: refused while it is open, and
        opening it on an error that means "unavailable"."""
        def call(*args: Any, **kwargs: Any) -> T:
            if self._open:
                raise CircuitOpen("Redis did not answer moments ago; not trying again yet")
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                if is_unavailable(exc):
                    self._trip()
                raise
        return call

    def _trip(self) -> None:
        with self._lock:
            self._open = True
            if self._prober != os.getpid():
                self._prober = os.getpid()
                threading.Thread(target=self._probe_until_back, name="redis-breaker-probe", daemon=True).start()

    def _probe_until_back(self) -> None:
        while True:
            time.sleep(self.retry_after)
            try:
                self.probe()
            except Exception as exc:  # noqa: BLE001 - still unavailable, whatever the error says
                log.debug("redis still unavailable: %s", type(exc).__name__)
                continue
            with self._lock:
                self._open = False
                self._prober = None
            return

    def guard(self, client: AnyClient) -> AnyClient:
        """Route the client's commands and pipelines through this breaker (in place)."""
        make_pipeline = client.pipeline

        def guarded_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            pipe.execute = self.guarded(pipe.execute)  # type: ignore[method-assign]
            return pipe

        client.execute_command = self.guarded(client.execute_command)  # type: ignore[method-assign]
        client.pipeline = guarded_pipeline  # type: ignore[method-assign]
        return client
