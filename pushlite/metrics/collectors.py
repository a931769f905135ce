"""What ``/metrics`` reads from Redis at scrape time, and the listener of
``PUSHLITE_METRICS_PORT`` (no Flask: gunicorn's master serves it).

- The workers' delivery counters (``pushlite.storage.stats``): notifications
  by provider and outcome, dead tokens removed, retries by reason, the
  provider request latency histogram.
- Gauges: each RQ queue's depth, the age of its oldest waiting job and the
  size of its started, scheduled and failed registries; the workers alive;
  the publishes not yet done.

About ten Redis commands in four round trips, whatever the traffic. When
Redis cannot be read, ``pushlite_redis_up`` is 0 and these are left out;
the web processes' own metrics are still there.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from wsgiref.simple_server import WSGIServer

import redis
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector
from rq import Queue
from rq.job import Job
from rq.utils import utcparse
from rq.worker_registration import REDIS_WORKER_KEYS

from config import Config
from pushlite.platforms import PROVIDERS
from pushlite.storage import keys, publishes, stats
from pushlite.storage.connection import DataClient, connect, connect_queue

QUEUES = ("pushlite-fanout", "pushlite-delivery")
# How many active publishes a scrape reads the status of; beyond, counted as not done.
PENDING_CHECKED = 1000



class RedisCollector(Collector):
    """The workers' counters and the queue gauges, read from the data Redis
    (``data``) and the queue Redis (``queue``: RQ's client, bytes)."""

    def __init__(self, data: Callable[[], DataClient], queue: Callable[[], redis.Redis]) -> None:
        self._data = data
        self._queue = queue

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pushlite_redis_up", "1 when this scrape could read Redis; when 0, the delivery "
                                                    "counters and queue gauges are left out")
        try:
            families = [*delivery_families(stats.totals(self._data())), *queue_families(self._queue()),
                        pending_family(self._data())]
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def delivery_families(totals: dict[str, dict[tuple[str, ...], float]]) -> list[Metric]:
    notifications = CounterMetricFamily(
        "pushlite_notifications", "Notifications the workers handled, by provider and outcome: delivered, "
        "removed (dead token), retried (temporary failure, tried again later), failed, skipped (no credential "
        "or no payload for the device)", labels=["provider", "outcome"])
    removed = CounterMetricFamily("pushlite_dead_tokens_removed", "Devices removed because their provider "
                                  "called the token dead", labels=["provider"])
    counted = totals["n"]
    providers = sorted(set(PROVIDERS) | {provider for provider, _ in counted})
    for provider in providers:
        for outcome in stats.OUTCOMES:
            notifications.add_metric([provider, outcome], counted.get((provider, outcome), 0.0))
        removed.add_metric([provider], counted.get((provider, "removed"), 0.0))
    retries = CounterMetricFamily("pushlite_retries", "Notifications to be tried again, by provider and reason "
                                  "(rate_limited, provider_error, auth, network, unexpected)",
                                  labels=["provider", "reason"])
    for (provider, reason), value in sorted(totals["r"].items()):
        retries.add_metric([provider, reason], value)
    latency = HistogramMetricFamily("pushlite_provider_request_duration_seconds", "How long provider "
                                    "requests took (answered or not), by provider", labels=["provider"])
    by_provider: dict[str, dict[str, float]] = {}
    for (provider, name), value in totals["l"].items():
        by_provider.setdefault(provider, {})[name] = value
    for provider, fields in sorted(by_provider.items()):
        cumulative, buckets = 0.0, []
        for bound in [str(b) for b in stats.LATENCY_BUCKETS] + ["+Inf"]:
            cumulative += fields.get(bound, 0.0)
            buckets.append((bound, cumulative))
        latency.add_metric([provider], buckets, fields.get("sum", 0.0))
    return [notifications, removed, retries, latency]


def queue_families(client: redis.Redis, now: Callable[[], float] = time.time) -> list[Metric]:
    depth = GaugeMetricFamily("pushlite_queue_depth", "Jobs waiting in each RQ queue", labels=["queue"])
    age = GaugeMetricFamily("pushlite_queue_oldest_job_age_seconds", "How long the oldest job waiting in each "
                            "RQ queue has waited (0 when none waits)", labels=["queue"])
    registries = GaugeMetricFamily("pushlite_queue_registry_jobs", "Jobs in each RQ queue's started, scheduled "
                                   "and failed registries (failed: devices not delivered, see /rq)",
                                   labels=["queue", "registry"])
    workers = GaugeMetricFamily("pushlite_workers_alive", "RQ worker processes alive (heartbeat not expired)")
    queues = [Queue(name, connection=client) for name in QUEUES]
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.lindex(queue.key, 0)
            for registry in (queue.started_job_registry, queue.scheduled_job_registry, queue.failed_job_registry):
                pipe.zcard(registry.key)
        pipe.smembers(REDIS_WORKER_KEYS)
        replies = pipe.execute()
    worker_keys = sorted(replies.pop())
    per_queue = [replies[i:i + 5] for i in range(0, len(replies), 5)]
    oldest = [_text(first) for _, first, *_ in per_queue]
    with client.pipeline(transaction=False) as pipe:
        for job_id in oldest:
            if job_id:
                pipe.hget(Job.key_for(job_id), "enqueued_at")
        for key in worker_keys:
            pipe.exists(key)
        found = iter(pipe.execute())
    for queue, (llen, _, started, scheduled, failed), job_id in zip(queues, per_queue, oldest, strict=True):
        depth.add_metric([queue.name], llen)
        enqueued = _text(next(found)) if job_id else ""
        age.add_metric([queue.name], max(0.0, now() - utcparse(enqueued).timestamp()) if enqueued else 0.0)
        for name, count in (("started", started), ("scheduled", scheduled), ("failed", failed)):
            registries.add_metric([queue.name, name], count)
    workers.add_metric([], sum(1 for alive in found if alive))
    return [depth, age, registries, workers]


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def pending_family(client: DataClient) -> Metric:
    """Publishes not yet done: those on the active list (which the sweep
    leaves a few seconds after they end) whose status is not done."""
    pending = GaugeMetricFamily("pushlite_publishes_pending", "Publishes not yet done")
    active = publishes.active(client, PENDING_CHECKED + 1)
    with client.pipeline(transaction=False) as pipe:
        for instance_id, publish_id in active[:PENDING_CHECKED]:
            pipe.hget(keys.publish(instance_id, publish_id), "status")
        found = pipe.execute()
    beyond = client.zcard(keys.ACTIVE_PUBLISHES) - PENDING_CHECKED if len(active) > PENDING_CHECKED else 0
    pending.add_metric([], sum(1 for status in found if status not in (None, "done")) + beyond)
    return pending


def scrape_registry(collector: RedisCollector) -> CollectorRegistry:
    """A registry adding up every web process's files (multiprocess mode), and Redis's figures."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(collector)
    return registry


def standalone(config: Config) -> Callable[[], CollectorRegistry]:
    """What gunicorn's master serves: every web worker's files, and Redis's
    figures through clients of its own."""
    data = connect(config.REDIS_URL)
    queue = connect_queue(config.PUSHLITE_QUEUE_URL, data)
    collector = RedisCollector(lambda: data, lambda: queue)
    return lambda: scrape_registry(collector)


def serve(address: str, registry: Callable[[], CollectorRegistry]) -> WSGIServer:
    """Serve ``registry()`` (made anew for each scrape) on ``[host:]port``
    (every interface when no host is given), without authentication, from a
    daemon thread; returns the server (``shutdown()`` stops it)."""
    host, _, port = address.rpartition(":")
    served = CollectorRegistry()
    served.register(_Each(registry))
    server, _ = start_http_server(int(port), addr=host or "0.0.0.0", registry=served)
    return server


class _Each(Collector):
    """Collects from a registry made for each scrape."""

    def __init__(self, make: Callable[[], CollectorRegistry]) -> None:
        self._make = make

    def collect(self) -> Iterable[Metric]:
        return self._make().collect()
