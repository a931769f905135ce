"""Delivery statistics, kept in the data Redis by the processes that deliver.

Each chunk a worker sends adds its counts in one pipelined round trip:

- to the global counters (``keys.DELIVERY_STATS``), which ``/metrics``
  exposes as Prometheus counters: notifications by provider and outcome,
  retries by provider and reason, and the provider request latency
  histogram (one field per bucket, not cumulative, plus its sum and count);
- to the instance's count of the current minute (``keys.instance_minute``,
  expiring after two hours), which the console charts.

Counting in Redis rather than in each worker process means one scrape target
for any number of workers (on a PaaS, worker processes take no connections),
and counts that outlive the process that made them. A notification sent
twice (after a worker was lost) is counted twice: these count what was sent,
the publish record counts each device once.
"""
from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

from pushlite.storage.cluster import DataClient

from . import keys

OUTCOMES = ("delivered", "removed", "retried", "failed", "skipped")
# Upper bounds (seconds) of the provider request latency histogram.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MINUTE_TTL_SECONDS = 2 * 3600
SEP = "|"


@dataclass
class Tally:
    """What one chunk did, by provider, until ``record`` stores it."""

    notifications: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, outcome)
    retries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, reason)
    # provider -> [count per bucket (the last one is +Inf)..., sum of seconds]
    latency: dict[str, list[float]] = field(default_factory=dict)

    def count(self, provider: str, outcome: str, n: int = 1) -> None:
        if n:
            self.notifications[provider, outcome] += n

    def retry(self, provider: str, reason: str, n: int = 1) -> None:
        if n:
            self.retries[provider, reason] += n

    def observe(self, provider: str, seconds: list[float]) -> None:
        if not seconds:
            return
        counts = self.latency.setdefault(provider, [0.0] * (len(LATENCY_BUCKETS) + 2))
        for value in seconds:
            counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        counts[-1] += sum(seconds)

    def __bool__(self) -> bool:
        return bool(self.notifications or self.retries or self.latency)

    def fields(self) -> list[tuple[str, float]]:
        """The global counters' fields and increments."""
        out: list[tuple[str, float]] = [
            (SEP.join(("n", provider, outcome)), n) for (provider, outcome), n in self.notifications.items()
        ]
        out += [(SEP.join(("r", provider, reason)), n) for (provider, reason), n in self.retries.items()]
        for provider, counts in self.latency.items():
            bounds = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
            # counts ends with the sum, which has no bound: zip stops before it.
            out += [(SEP.join(("l", provider, le)), n) for le, n in zip(bounds, counts, strict=False) if n]
            out.append((SEP.join(("l", provider, "sum")), counts[-1]))
            out.append((SEP.join(("l", provider, "count")), sum(counts[:-1])))
        return out


def record(client: DataClient, instance_id: str, tally: Tally, now: float | None = None) -> None:
    """Add a chunk's counts, in one round trip."""
    if not tally:
        return
    minute = keys.instance_minute(instance_id, minute_of(time.time() if now is None else now))
    by_outcome: Counter[str] = Counter()
    for (_, outcome), n in tally.notifications.items():
        by_outcome[outcome] += n
    with client.pipeline(transaction=False) as pipe:
        for name, increment in tally.fields():
            if float(increment).is_integer():
                pipe.hincrby(keys.DELIVERY_STATS, name, int(increment))
            else:
                pipe.hincrbyfloat(keys.DELIVERY_STATS, name, increment)
        if by_outcome:
            for outcome, n in by_outcome.items():
                pipe.hincrby(minute, outcome, n)
            pipe.expire(minute, MINUTE_TTL_SECONDS)
        pipe.execute()


def minute_of(timestamp: float) -> int:
    return int(timestamp // 60) * 60


def totals(client: DataClient) -> dict[str, dict[tuple[str, ...], float]]:
    """The global counters: kind ("n", "r", "l") -> (provider, name) -> value."""
    out: dict[str, dict[tuple[str, ...], float]] = {"n": {}, "r": {}, "l": {}}
    stored = cast("dict[str, str]", client.hgetall(keys.DELIVERY_STATS))
    for name, value in stored.items():
        kind, *rest = name.split(SEP)
        if kind in out and len(rest) == 2:
            out[kind][tuple(rest)] = float(value)
    return out


def per_minute(client: DataClient, instance_id: str, minutes: int = 60,
               now: float | None = None) -> list[tuple[int, dict[str, int]]]:
    """The instance's counts for each of the last ``minutes`` minutes (the
    current one last), as (minute start, outcome -> count)."""
    last = minute_of(time.time() if now is None else now)
    starts = [last - 60 * i for i in range(minutes - 1, -1, -1)]
    with client.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(keys.instance_minute(instance_id, start))
        found = pipe.execute()
    return [(start, {o: int(counts.get(o, 0)) for o in OUTCOMES}) for start, counts in zip(starts, found, strict=True)]
