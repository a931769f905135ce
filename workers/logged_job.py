"""The RQ job class of pushlite's queues (``job_class``, RQ's own extension
point): a job carries the request id of whatever enqueued it, and runs with
its request, instance and publish ids in the log context.

So a publish request's id reaches its fan-out job, the batches that job
enqueues, and their retries: every line they log names it (``pushlite.logs``).
Each job logs one line when it ends, with its duration.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from rq.job import Job

from pushlite import logs

log = logging.getLogger(__name__)


class LoggedJob(Job):
    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Job:
        # RQ's Queue passes meta by keyword.
        meta = kwargs.get("meta") or {}
        request_id = logs.current().get("request_id")
        if request_id and not meta.get("request_id"):
            kwargs["meta"] = {**meta, "request_id": request_id}
        return super().create(*args, **kwargs)

    def perform(self) -> Any:
        # pushlite's jobs take (instance id, publish id, ...).
        ids = [a for a in self.args[:2] if isinstance(a, str)]
        name = (self.func_name or "").rpartition(".")[2]
        started = time.perf_counter()
        outcome = "done"
        with logs.bind(request_id=self.meta.get("request_id"), instance_id=ids[0] if ids else None,
                       publish_id=ids[1] if len(ids) > 1 else None, job=name):
            try:
                return super().perform()
            except Exception as exc:
                outcome = f"failed ({type(exc).__name__})"
                raise
            finally:
                log.info("job %s %s", name, outcome,
                         extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)})
