"""RQ Dashboard at /rq, behind the admin token: queues, jobs, failed jobs
(which an operator can requeue from there).

A browser cannot send a bearer header, so HTTP Basic with the admin token as
the password is accepted too (any user name).
"""
from __future__ import annotations

import rq_dashboard
from flask import Flask, Response, current_app, request

from pushlite.auth import is_admin


def require_admin() -> Response | None:
    # rq-dashboard's own hook (run just before this one) points the app at a
    # new client made from the URL; use pushlite's queue client instead.
    current_app.redis_conn = current_app.extensions["pushlite.fanout_queue"].connection  # type: ignore[attr-defined]
    if not is_admin(request, current_app.config["PUSHLITE_ADMIN_TOKEN"]):
        return Response(
            '{"code": 401, "status": "Unauthorized", "message": "The admin token is required."}',
            401,
            {"WWW-Authenticate": 'Basic realm="pushlite"', "Content-Type": "application/json"},
        )
    return None


def init_app(app: Flask) -> None:
    # rq-dashboard reads its connection from an attribute of the app object
    # (its interface, which Flask's types cannot know of).
    app.config["RQ_DASHBOARD_REDIS_URL"] = [app.config["PUSHLITE_QUEUE_URL"] or "redis://embedded"]
    app.redis_conn = app.extensions["pushlite.fanout_queue"].connection  # type: ignore[attr-defined]
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
    # Added to this app's hooks for the blueprint, after rq-dashboard's own;
    # the blueprint object itself is shared by every app and stays untouched.
    app.before_request_funcs.setdefault(rq_dashboard.blueprint.name, []).append(require_admin)
