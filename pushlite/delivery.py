"""The web side of delivery: where a publish's fan-out job goes.

With Redis, the job goes to the RQ queue the workers listen on. Embedded, it
runs in-process at once (RQ's synchronous mode) on the app's own store, with
dry-run delivery unless configured otherwise.
"""
from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from flask import Flask, current_app, request
from rq import Queue

from pushlite import access, logs, store
from pushlite.metrics import web as web_metrics
from pushlite.storage import publishes
from pushlite.storage.connection import connect_queue
from workers import runtime as worker_runtime
from workers.jobs import enqueue_publish
from workers.logged_job import LoggedJob


def init_app(app: Flask) -> None:
    config = app.config
    app.extensions["pushlite.fernet"] = Fernet(config["PUSHLITE_ENCRYPTION_KEY"])
    if config["EMBEDDED"]:
        data = store.client_of(app)
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
        connection = store.breaker_for(app, config["PUSHLITE_QUEUE_URL"]).guard(connect_queue(
            config["PUSHLITE_QUEUE_URL"],
            None,
            socket_timeout=config["REDIS_SOCKET_TIMEOUT"],
            connect_timeout=config["REDIS_CONNECT_TIMEOUT"],
        ))
        queue = Queue(worker_runtime.FANOUT_QUEUE, connection=connection, job_class=LoggedJob)
    app.extensions["pushlite.fanout_queue"] = queue


def fernet() -> Fernet:
    return current_app.extensions["pushlite.fernet"]


def queue() -> Queue:
    return current_app.extensions["pushlite.fanout_queue"]


def publish(
    instance_id: str, kind: str, targets: list[str], payload: dict[str, Any], extra: dict[str, str] | None = None,
) -> str:
    """Store a publish for the request being served and enqueue its one
    fan-out job: how every family publishes. The publish keeps the request's
    id (which its jobs log with), and is counted by family in ``/metrics``."""
    fields = dict(extra or {})
    request_id = logs.current().get("request_id")
    if request_id:
        fields["request_id"] = request_id
    publish_id = publishes.create(store.client(), instance_id, kind, targets, payload, fields)
    enqueue_publish(queue(), instance_id, publish_id)
    web_metrics.current().publishes.labels(access.family_label(current_app, request.path)).inc()
    return publish_id
