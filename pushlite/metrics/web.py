"""The web processes' own metrics and ``GET /metrics`` (Flask)."""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)

from pushlite.auth import is_admin
from pushlite.errors import ApiError

from .collectors import RedisCollector, scrape_registry

log = logging.getLogger(__name__)

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


if multiprocess_mode():
    # prometheus-client notices a fork by asking os.getpid() on every
    # increment: a system call each, three per request. The process id is
    # noted here at each fork instead (before any metric is made: values
    # made before would keep asking).
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: _pid)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

blp = Blueprint("metrics", __name__)


class WebMetrics:
    """What a web process counts itself. ``registry`` None: multiprocess mode
    (the values go to files, not to a registry).

    An answered request is only queued (``request``): prometheus-client's
    three writes for it (a counter, a histogram's sum and bucket; to files in
    multiprocess mode) cost a registration ~10 us of its ~330 us under
    gunicorn (``bench/register_throughput.py``), most of it in cold caches
    after the request's Redis round trip. ``flush`` makes them for the queue
    at once: a thread of the process does every ``FLUSH_SECONDS``, and a
    scrape of this process first (``registry_of``). So a request shows in
    ``/metrics`` within a second, at once when the process that answered it
    serves the scrape.
    """

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "pushlite_http_requests", "HTTP requests answered, by API family, route template, method and status",
            ["family", "route", "method", "status"], registry=registry)
        self.duration = Histogram(
            "pushlite_http_request_duration_seconds", "How long requests took to answer, by API family and route "
            "template", ["family", "route"], buckets=HTTP_BUCKETS, registry=registry)
        self.publishes = Counter(
            "pushlite_publishes", "Publishes created, by the API family that created them", ["family"],
            registry=registry)
        self.redis_errors = Counter(
            "pushlite_redis_errors", "Requests answered 503 because Redis was unavailable, by error "
            "(CircuitOpen: not tried, Redis failed moments ago)", ["error"], registry=registry)
        # Label lookups cost more than the increments: each combination's children, once.
        self._children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}
        self._lock = threading.Lock()
        # (family, route, method, status), seconds: deque's append and popleft
        # are atomic, so requests and flushes on several threads need no lock.
        self._answered: deque[tuple[tuple[str, str, str, int], float]] = deque()
        _FLUSHER.watch(self)

    def request(self, family: str, route: str, method: str, status: int, seconds: float) -> None:
        """Count an answered request (queued; see the class)."""
        self._answered.append(((family, route, method, status), seconds))
        if _FLUSHER.pid != _pid:  # a new process (a forked worker): its thread
            _FLUSHER.start()

    def flush(self) -> None:
        """Write every queued request to its metrics."""
        counts: dict[tuple[str, str, str, int], int] = {}
        answered = self._answered
        while answered:
            try:
                key, seconds = answered.popleft()
            except IndexError:  # another thread flushed the rest
                break
            counts[key] = counts.get(key, 0) + 1
            self._children_of(key)[1].observe(seconds)
        for key, count in counts.items():
            self._children_of(key)[0].inc(count)

    def _children_of(self, key: tuple[str, str, str, int]) -> tuple[Counter, Histogram]:
        children = self._children.get(key)
        if children is None:
            family, route, method, status = key
            with self._lock:
                children = self._children[key] = (
                    self.requests.labels(family, route, method, str(status)), self.duration.labels(family, route))
        return children


FLUSH_SECONDS = 1.0


class _Flusher:
    """The thread that flushes the process's ``WebMetrics`` (one per
    process, started by its first request: a gunicorn master that loads the
    app before forking its workers serves none, and forks no thread)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._lock = threading.Lock()
        self._watched: weakref.WeakSet[WebMetrics] = weakref.WeakSet()
        # Never forked while the thread holds the lock (the child would keep it held).
        os.register_at_fork(before=self._lock.acquire, after_in_parent=self._lock.release,
                            after_in_child=self._lock.release)

    def watch(self, metrics: WebMetrics) -> None:
        with self._lock:
            self._watched.add(metrics)

    def start(self) -> None:
        with self._lock:
            if self.pid == _pid:
                return
            self.pid = _pid
        threading.Thread(target=self._run, name="pushlite-metrics-flush", daemon=True).start()

    def flush_all(self) -> None:
        with self._lock:
            watched = list(self._watched)
        for metrics in watched:
            try:
                metrics.flush()
            except Exception:  # the thread must outlive a failed flush
                log.exception("could not write request metrics")

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush_all()


_FLUSHER = _Flusher()
# A process that exits (a gunicorn worker restarted) writes what it queued.
atexit.register(_FLUSHER.flush_all)


def current() -> WebMetrics:
    """The app's web metrics."""
    return current_app.extensions["pushlite.metrics"]


def registry_of(app: Flask) -> CollectorRegistry:
    """What a scrape reads: this process's registry, or in multiprocess mode
    a new one over every process's files."""
    app.extensions["pushlite.metrics"].flush()
    registry = app.extensions["pushlite.metrics_registry"]
    if registry is not None:
        return registry
    return scrape_registry(app.extensions["pushlite.metrics_collector"])


@blp.get("/metrics")
def metrics_view():
    """Prometheus text format; the admin token as bearer (or as the Basic password)."""
    if not is_admin(request, current_app.config["PUSHLITE_ADMIN_TOKEN"]):
        raise ApiError(401, "Unauthorized", "The admin token is required.")
    return Response(generate_latest(registry_of(current_app)), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    # No "<name>_created" series beside each counter: a publishes_created
    # gauge would read as a count of publishes, and nothing here needs them.
    disable_created_metrics()
    collector = RedisCollector(lambda: app.extensions["pushlite.redis"](),
                               lambda: app.extensions["pushlite.fanout_queue"].connection)
    registry = None if multiprocess_mode() else CollectorRegistry()
    if registry is not None:
        registry.register(collector)
    app.extensions["pushlite.metrics"] = WebMetrics(registry)
    app.extensions["pushlite.metrics_registry"] = registry
    app.extensions["pushlite.metrics_collector"] = collector
    app.register_blueprint(blp)
