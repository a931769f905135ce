"""The web processes' own metrics and ``GET /metrics`` (Flask)."""
from __future__ import annotations

import os
import threading

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
    (the values go to files, not to a registry)."""

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

    def request(self, family: str, route: str, method: str, status: int, seconds: float) -> None:
        key = (family, route, method, status)
        children = self._children.get(key)
        if children is None:
            with self._lock:
                children = self._children[key] = (
                    self.requests.labels(family, route, method, str(status)), self.duration.labels(family, route))
        children[0].inc()
        children[1].observe(seconds)


def current() -> WebMetrics:
    """The app's web metrics."""
    return current_app.extensions["pushlite.metrics"]


def registry_of(app: Flask) -> CollectorRegistry:
    """What a scrape reads: this process's registry, or in multiprocess mode
    a new one over every process's files."""
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
