"""What every request leaves behind: its id, its log context, one access
line and its HTTP metrics.

The id is the caller's ``X-Request-Id`` when it is 1-128 characters of
``A-Z a-z 0-9 - _ . : + / =`` (a proxy's or a load balancer's), else a new
one; it is answered in ``X-Request-Id``, stored on any publish the request
creates and carried by that publish's jobs (``workers.logged_job``). Lines
logged during the request carry it, and the instance id of the path; they
are read from the request when a line is logged (``logs.add_source``), so
that the many requests that log nothing pay nothing for them.

Requests are labelled by their route template (``/device_api/v1/instances/
<instance_id>/devices/fcm``), never their path: a path may hold a push token
(channels), and templates keep the metrics' label sets small.
"""
from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Mapping

from flask import Flask, Request, current_app, has_request_context, request

from pushlite import logs
from pushlite.errors import family_of
from pushlite.storage.instances import is_instance_id

REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
STATE = "pushlite.access"  # the request's (id, start), in its WSGI environ

access_log = logging.getLogger("pushlite.access")


def family_label(app: Flask, path: str) -> str:
    """The API family of a path, as metrics label it ("pushlite" for the
    admin API, the probes, /rq and the rest)."""
    name = family_of(app, path).name
    return "pushlite" if name == "default" else name


def _begin() -> None:
    environ = request._get_current_object().environ  # type: ignore[attr-defined]
    given = environ.get("HTTP_X_REQUEST_ID")
    # A trace id, not a secret: from ``random`` (reseeded in each forked
    # process), as OpenTelemetry makes its trace ids, without a system call.
    environ[STATE] = (given if given and REQUEST_ID.fullmatch(given) else f"{random.getrandbits(128):032x}",
                      time.perf_counter())


def request_id() -> str | None:
    """The id of the request being served (None outside one)."""
    if not has_request_context():
        return None
    state = request.environ.get(STATE)
    return state[0] if state is not None else None


def log_fields() -> Mapping[str, str]:
    """What a line logged while a request is served carries: its id, and the
    instance id of its path when it is one."""
    given = request_id()
    if given is None:
        return {}
    instance_id = (request.view_args or {}).get("instance_id")
    if instance_id and is_instance_id(instance_id):
        return {"request_id": given, "instance_id": instance_id}
    return {"request_id": given}


def _labels(app: Flask, req: Request) -> tuple[str, str]:
    rule = req.url_rule
    if rule is None:
        return family_label(app, req.path), UNMATCHED
    cache = app.extensions["pushlite.route_labels"]
    labels = cache.get(rule.rule)
    if labels is None:
        labels = cache[rule.rule] = (family_label(app, rule.rule), rule.rule)
    return labels


def _end(response):
    req = request._get_current_object()  # type: ignore[attr-defined]
    state = req.environ.get(STATE)
    if state is None:  # the request failed before _begin (never, short of a bug)
        return response
    seconds = time.perf_counter() - state[1]
    response.headers["X-Request-Id"] = state[0]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    family, route = _labels(app, req)
    method = req.method if req.method in METHODS else "other"
    status = response.status_code
    app.extensions["pushlite.metrics"].request(family, route, method, status, seconds)
    if app.config["PUSHLITE_ACCESS_LOG"] and access_log.isEnabledFor(logging.INFO):
        access_log.info("%s %s %d", method, route, status, extra={
            "method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)})
    return response


def init_app(app: Flask) -> None:
    """Install the hooks; called first, so that ``_begin`` runs before any other."""
    app.extensions["pushlite.route_labels"] = {}
    app.before_request(_begin)
    app.after_request(_end)
    logs.add_source(log_fields)
