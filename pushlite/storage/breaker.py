"""Fail fast while a Redis does not answer: a per-process circuit breaker.

A hung Redis (SIGSTOP, a network partition) costs every command the client's
socket timeout. With a handful of sync web workers, requests queue behind
each other and callers wait several timeouts for their 503. The breaker
opens on the first error that means "unavailable" (timeout, refused
connection, READONLY after a failover, ...): from then on, commands fail at
once with ``CircuitOpen`` (a ``redis.ConnectionError``, so callers answer
503 as for any outage). After ``retry_after`` seconds one command is let
through as a probe; its success closes the breaker, its failure opens it
again. So at most one request per process waits for a timeout at a time,
and service comes back within ``retry_after`` of Redis answering again.

``guard(client)`` wraps a client's ``execute_command`` and its pipelines'
``execute``, which every redis-py client (plain, cluster, sentinel-managed)
goes through, so any of them can be guarded.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, TypeVar

import redis

T = TypeVar("T")

# Redis errors that mean "not reachable right now" (down, hung, loading, a
# replica during failover); any other Redis error is a bug, answered as one.
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError, redis.exceptions.TryAgainError, redis.exceptions.BusyLoadingError,
)


class CircuitOpen(redis.ConnectionError):
    """Redis failed moments ago; not tried again before the breaker's next probe."""


class Breaker:
    def __init__(self, retry_after: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        probe = self._enter()
        try:
            result = function(*args, **kwargs)
        except UNAVAILABLE:
            self._trip()
            raise
        except BaseException:
            if probe:
                self._probing = False
            raise
        if probe:
            self._close()
        return result

    def _enter(self) -> bool:
        """Whether this call is the probe of an open breaker; raises CircuitOpen
        while the breaker is open and it is not."""
        if self._open_until is None:
            return False
        with self._lock:
            if self._open_until is None:
                return False
            if self._probing or self._clock() < self._open_until:
                raise CircuitOpen("Redis did not answer moments ago; not trying again yet")
            self._probing = True
            return True

    def _trip(self) -> None:
        with self._lock:
            self._open_until = self._clock() + self.retry_after
            self._probing = False

    def _close(self) -> None:
        with self._lock:
            self._open_until = None
            self._probing = False

    def guard(self, client: redis.Redis) -> redis.Redis:
        """Route the client's commands and pipelines through this breaker (in place)."""
        execute_command = client.execute_command
        make_pipeline = client.pipeline

        def guarded_command(*args: Any, **options: Any) -> Any:
            return self.call(execute_command, *args, **options)

        def guarded_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            execute = pipe.execute
            pipe.execute = lambda *a, **k: self.call(execute, *a, **k)  # type: ignore[method-assign]
            return pipe

        client.execute_command = guarded_command  # type: ignore[method-assign]
        client.pipeline = guarded_pipeline  # type: ignore[method-assign]
        return client
