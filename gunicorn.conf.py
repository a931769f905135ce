"""gunicorn's settings for pushlite, read by `gunicorn wsgi:app` (the
Procfile's web line) from the working directory, so that nothing more is
needed to run it.

- Metrics: gunicorn's workers are separate processes, and `/metrics` must
  add up all of them. prometheus-client's multiprocess mode does: each worker
  writes its values to files in PROMETHEUS_MULTIPROC_DIR, which is set here
  (before anything imports prometheus-client) to a new temporary directory
  unless the environment names one, emptied when gunicorn starts (values of
  an earlier run would be added to this one's) and removed when it exits if
  it was made here. With PUSHLITE_METRICS_PORT set, the master serves
  `/metrics` there, without the admin token.
- Logs: with PUSHLITE_LOG_FORMAT=json, gunicorn's own lines are JSON too.
"""
import os
import shutil
import tempfile

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_made_here = not _metrics_dir
if _made_here:
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pushlite-metrics-")


def on_starting(server):
    os.makedirs(_metrics_dir, exist_ok=True)
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, name))


def when_ready(server):
    address = os.environ.get("PUSHLITE_METRICS_PORT")
    if address:
        from config import Config
        from pushlite.metrics.collectors import serve, standalone

        serve(address, standalone(Config()))
        server.log.info("serving /metrics on %s", address)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_here:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


if os.environ.get("PUSHLITE_LOG_FORMAT", "").strip().lower() == "json":
    from gunicorn.glogging import Logger

    class JsonLogger(Logger):
        """gunicorn's own lines (workers booting, exiting, timing out) as JSON."""

        def setup(self, cfg):
            super().setup(cfg)
            from pushlite.logs import JsonFormatter

            for handler in self.error_log.handlers + self.access_log.handlers:
                handler.setFormatter(JsonFormatter())

    logger_class = JsonLogger
