"""The RQ worker of ``python -m workers``: RQ's SimpleWorker (no fork per
job, so connections and provider tokens live as long as the process), made
to die visibly and to outlive Redis outages.

- Heartbeats every few seconds, also while a job runs (a SimpleWorker runs
  its job in the main thread, so RQ itself would not; one thread does it for
  the worker's life), with a short TTL: a killed worker disappears from
  ``/rq`` and its job counts as abandoned within ``HEARTBEAT_TTL`` seconds
  instead of the job timeout plus a minute.
- SIGTERM (a deploy) sets ``Runtime.stopping``: the job in hand hands its
  batch back at its next step (``workers.jobs``), then RQ's warm shutdown
  ends the process.
- ``run`` starts the worker again when RQ's loop quits on a Redis error, so
  a restarted Redis is picked up without restarting the process.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from types import FrameType

import redis
from redis.client import Pipeline
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker

from workers.logged_job import LoggedJob
from workers.runtime import Runtime

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 3
HEARTBEAT_TTL = 15
MIN_BEAT_SECONDS = 1.0  # between two beats outside a pipeline (RQ asks for several per job)
WORKER_TTL = 20  # RQ blocks on the queues for WORKER_TTL - 15 seconds at a time
RESTART_BACKOFF_MAX = 5.0


class DeliveryWorker(SimpleWorker):
    max_connection_wait_time = RESTART_BACKOFF_MAX  # RQ's wait between reconnections (60 s by default)
    job_class = LoggedJob  # jobs log with their request, instance and publish ids
    _last_beat = -MIN_BEAT_SECONDS  # monotonic time of the last beat outside a pipeline

    def __init__(self, queues: Sequence[Queue], *, connection: redis.Redis, runtime: Runtime) -> None:
        super().__init__(queues, connection=connection, worker_ttl=WORKER_TTL, maintenance_interval=60)
        self.runtime = runtime
        self._beats = threading.Condition()
        self._beating: Job | None = None
        self._beater: threading.Thread | None = None
        self._closed = False

    def get_heartbeat_ttl(self, job: Job) -> int:
        return HEARTBEAT_TTL

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ beats several times a job, each beat outside a pipeline two
        round trips of its own: such a beat goes in one, and at most every
        ``MIN_BEAT_SECONDS`` (the worker's key lives ``HEARTBEAT_TTL``)."""
        if pipeline is not None:
            super().heartbeat(timeout or HEARTBEAT_TTL, pipeline)
            return
        if time.monotonic() - self._last_beat < MIN_BEAT_SECONDS:
            return
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout or HEARTBEAT_TTL, pipe)
            pipe.execute()
        self._last_beat = time.monotonic()

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._beat_for(job)
        try:
            super().execute_job(job, queue)
        finally:
            self._beat_for(None)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        self._beat_for(None)  # RQ is about to drop the job's execution: no beat may bring it back
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def close(self) -> None:
        """End the heartbeat thread (RQ's loop has quit)."""
        with self._beats:
            self._closed = True
            self._beats.notify_all()

    def _beat_for(self, job: Job | None) -> None:
        """Beat for ``job`` from now on (None: for no job). Returns once no
        beat for an earlier job is under way: beats hold ``_beats``."""
        with self._beats:
            self._beating = job
            if job is not None and self._beater is None:
                self._beater = threading.Thread(target=self._beat, name="rq-heartbeat", daemon=True)
                self._beater.start()
            self._beats.notify_all()

    def _beat(self) -> None:
        """One thread for the worker's life (not one per job): every
        HEARTBEAT_SECONDS of a job, the worker's and the execution's heartbeat."""
        with self._beats:
            while not self._closed:
                job = self._beating
                if job is None:
                    self._beats.wait()
                    continue
                # wait_for calls the predicate before this iteration ends: `job` is the one it means
                if self._beats.wait_for(lambda: self._beating is not job or self._closed, HEARTBEAT_SECONDS):  # noqa: B023
                    continue
                execution = self.execution
                try:
                    with self.connection.pipeline() as pipe:
                        self.heartbeat(pipeline=pipe)
                        if execution is not None:
                            execution.heartbeat(job.started_job_registry, HEARTBEAT_TTL, pipe)
                        pipe.execute()
                except redis.RedisError as exc:
                    log.warning("heartbeat failed: %s", type(exc).__name__)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.runtime.stopping.set()
        super().request_stop(signum, frame)


def run(runtime: Runtime, queues: list[Queue]) -> None:
    """Work until asked to stop; a Redis outage restarts the worker, not the process."""
    wait = 0.5
    while not runtime.stopping.is_set():
        worker = DeliveryWorker(queues, connection=queues[0].connection, runtime=runtime)
        started = time.monotonic()
        try:
            worker.work(with_scheduler=True, logging_level="WARNING")
        except StopRequested:
            return
        except redis.RedisError as exc:
            log.warning("worker stopped on a Redis error (%s); starting again", type(exc).__name__)
        finally:
            worker.close()
        if runtime.stopping.is_set():
            return
        wait = 0.5 if time.monotonic() - started > 30 else min(RESTART_BACKOFF_MAX, wait * 2)
        try:
            time.sleep(wait)
        except StopRequested:
            return
