"""What every request leaves behind: its id, its log context, one access
line and its HTTP metrics.

The id is the caller's ``X-Request-Id`` when it is 1-128 characters of
``A-Z a-z 0-9 - _ . : + / =`` (a proxy's or a load balancer's), else a new
one; it is answered in ``X-Request-Id``, stored on any publish the request
creates and carried by that publish's jobs (``workers.logged_job``).

Requests are labelled by their route template (``/device_api/v1/instances/
<instance_id>/devices/fcm``), never their path: a path may hold a push token
(channels), and templates keep the metrics' label sets small.
"""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, current_app, g, request

from pushlite import logs, metrics
from pushlite.errors import family_of
from pushlite.storage.instances import is_instance_id

REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

access_log = logging.getLogger("pushlite.access")


def request_id() -> str | None:
    """The id of the request being served."""
    return g.get("request_id")


def family_label(app: Flask, path: str) -> str:
    """The API family of a path, as metrics label it ("pushlite" for the
    admin API, the console, the probes and the rest)."""
    name = family_of(app, path).name
    return "pushlite" if name == "default" else name


def _begin() -> None:
    given = request.headers.get("X-Request-Id")
    g.request_id = given if given and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.started = time.perf_counter()
    instance_id = (request.view_args or {}).get("instance_id")
    g.log_context = logs.push(request_id=g.request_id,
                              instance_id=instance_id if instance_id and is_instance_id(instance_id) else None)


def _labels(app: Flask) -> tuple[str, str]:
    rule = request.url_rule
    if rule is None:
        return family_label(app, request.path), UNMATCHED
    cache = app.extensions["pushlite.route_labels"]
    labels = cache.get(rule.rule)
    if labels is None:
        labels = cache[rule.rule] = (family_label(app, rule.rule), rule.rule)
    return labels


def _end(response):
    started = g.get("started")
    if started is None:  # the request failed before _begin (never, short of a bug)
        return response
    seconds = time.perf_counter() - started
    response.headers["X-Request-Id"] = g.request_id
    family, route = _labels(current_app)
    method = request.method if request.method in METHODS else "other"
    metrics.web().request(family, route, method, response.status_code, seconds)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("%s %s %d", method, route, response.status_code, extra={
            "method": method, "route": route, "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2)})
    return response


def _reset(_exc: BaseException | None) -> None:
    token = g.pop("log_context", None)
    if token is not None:
        logs.pop(token)


def init_app(app: Flask) -> None:
    """Install the hooks; called first, so that ``_begin`` runs before any other."""
    app.extensions["pushlite.route_labels"] = {}
    app.before_request(_begin)
    app.after_request(_end)
    app.teardown_request(_reset)
