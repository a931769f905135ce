"""Publishing: how every family (and the console's test form) publishes.

``publish`` checks the payloads, stores the publish and enqueues its one
fan-out job. With Redis, the job goes to the RQ queue the workers listen on.
Embedded, it runs in-process at once (RQ's synchronous mode) on the app's own
store, with dry-run delivery unless configured otherwise.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from rq import Queue

from pushlite import access, payloads, redis_clients
from pushlite.metrics import web as web_metrics
from pushlite.storage import publishes
from pushlite.storage.connection import connect_queue
from workers import runtime as worker_runtime
from workers.jobs import enqueue_publish
from workers.logged_job import LoggedJob


def init_app(app: Flask) -> None:
    """Make the app's fan-out queue (after ``encryption.init_app``: embedded,
    the in-process workers decrypt credentials with the app's Fernet)."""
    config = app.config
    if config["EMBEDDED"]:
        data = redis_clients.client_of(app)
        runtime = worker_runtime.Runtime(
            data,
            connect_queue(None, data),
            app.extensions["pushlite.fernet"],
            worker_runtime.sender_settings(config.__getitem__),
            dry_run=config["PUSHLITE_DRY_RUN"],
            is_async=False,
        )
        worker_runtime.install(runtime)
        queue = runtime.fanout_queue
    else:
        connection = redis_clients.breaker_for(app, config["PUSHLITE_QUEUE_URL"]).guard(connect_queue(
            config["PUSHLITE_QUEUE_URL"],
            None,
            socket_timeout=config["REDIS_SOCKET_TIMEOUT"],
            connect_timeout=config["REDIS_CONNECT_TIMEOUT"],
        ))
        queue = Queue(worker_runtime.FANOUT_QUEUE, connection=connection, job_class=LoggedJob)
    app.extensions["pushlite.fanout_queue"] = queue


def fanout_queue() -> Queue:
    return current_app.extensions["pushlite.fanout_queue"]


def publish(
    instance_id: str, kind: str, targets: list[str], payload: dict[str, Any], extra: dict[str, str] | None = None,
) -> str:
    """Publish ``payload`` (the provider payloads: ``apns``, ``fcm``, ``web``...)
    to ``targets`` (interest names, user ids or device ids, by ``kind``) for
    the request being served, and answer the publish id.

    The payloads are checked first (``payloads.check``: a
    ``payloads.PayloadError`` says why the providers would refuse them, which
    the caller answers in its own words), then the publish is stored and its
    one fan-out job enqueued. The publish keeps the request's id (which its
    jobs log with), and is counted by family in ``/metrics``.
    """
    content = payloads.check(payload)
    fields = dict(extra or {})
    request_id = access.request_id()
    if request_id:
        fields["request_id"] = request_id
    publish_id = publishes.create(redis_clients.client(), instance_id, kind, targets, content, fields)
    enqueue_publish(fanout_queue(), instance_id, publish_id)
    web_metrics.current().publishes.labels(access.family_label(current_app, request.path)).inc()
    return publish_id
