"""Prometheus metrics: ``GET /metrics`` behind the admin token (``web.py``),
or without it on ``PUSHLITE_METRICS_PORT`` (``collectors.serve``).

A web process counts its HTTP requests, the publishes it created and the
Redis errors it answered 503 for (``WebMetrics``). Under gunicorn there are
several such processes: prometheus-client's multiprocess mode has each one
write its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (which
``gunicorn.conf.py`` sets up), and a scrape adds them up. The workers'
counters and the queue gauges are read from Redis at scrape time
(``collectors.py``), so one scrape target covers every process.
"""
