"""Publish-to-provider latency: one device, 1,000 sequential publishes.

Starts the whole stack on 127.0.0.1 (see `_harness.py`; the mock with
`--seq`, so it prints the wall-clock time each request carrying a `seq`
arrived), stores one device in the interest "latency" and publishes to it
1,000 times, one at a time: each publish carries `seq` (APNs: top level of
the payload; FCM: `data.seq`), and the next one starts only once the mock has
received the previous one. Per publish:

    latency = mock receive time (Node: performance.timeOrigin + performance.now())
              - time just before the publish request (Python: time.time())

Both clocks are this machine's wall clock. Prints p50/p90/p99/max of that, and
of its two parts: the publish HTTP request (until the response is read) and
the rest (RQ job pick-up, fan-out, send).

    python bench/delivery_latency.py
    python bench/delivery_latency.py --tls              # APNs over TLS, as to Apple
    python bench/delivery_latency.py --provider fcm --publishes 300
    python bench/delivery_latency.py --code /path/to/other/checkout

Exit status: 0 targets met, 1 something broke (a publish never arrived),
2 a target missed.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from _harness import ROOT, Stack, add_devices, apns_token, describe_code, fcm_token, machine_busy_seconds

TARGET_P50_MS = 5.0
TARGET_P99_MS = 10.0
ARRIVAL_TIMEOUT = 10.0
WARMUP = 10  # publishes before the measured ones: the first builds the sender (key, connection, OAuth token)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    return (f"{name:34} p50 {percentile(ordered, 50):7.2f} ms   p90 {percentile(ordered, 90):7.2f} ms   "
            f"p99 {percentile(ordered, 99):7.2f} ms   max {ordered[-1]:7.2f} ms")


def body(provider: str, seq: int) -> dict:
    if provider == "apns":
        return {"interests": ["latency"], "apns": {"aps": {"alert": "x"}, "seq": seq}}
    return {"interests": ["latency"], "fcm": {"notification": {"title": "x"}, "data": {"seq": seq}}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", choices=("apns", "fcm"), default="apns")
    parser.add_argument("--publishes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout that gunicorn and the workers run from")
    parser.add_argument("--tls", action="store_true",
                        help="APNs and FCM over TLS (ALPN h2, a CA made for the run), as to Apple and Google; else h2c")
    args = parser.parse_args()

    total, response, rest = [], [], []
    missing: list[int] = []
    with Stack(workers=args.workers, seq=True, code=args.code, tls=args.tls) as stack:
        print(f"code: {describe_code(args.code)}; {args.workers} worker process(es), gunicorn -w 4, redis-server, "
              f"Node mock (--seq) at {stack.provider_url} ({'TLS' if args.tls else 'h2c'}); "
              f"load average before: {os.getloadavg()[0]:.2f}")
        tenant = stack.tenant()
        token = apns_token(0) if args.provider == "apns" else fcm_token(1)
        add_devices(stack.redis, tenant.id, [(args.provider, token)], "latency")
        mock = stack.mock
        assert mock is not None
        for seq in range(-WARMUP, args.publishes):
            if seq == 0:
                stack.redis.config_resetstat()
                cpu_before, busy_before, measured_from = stack.cpu(), machine_busy_seconds(), time.time()
            started = time.time()
            stack.publish(tenant, body(args.provider, seq))
            answered = time.time()
            arrived = mock.wait_for(seq, ARRIVAL_TIMEOUT)
            if arrived is None:
                missing.append(seq)
                print(f"publish seq={seq} did not reach the mock within {ARRIVAL_TIMEOUT:.0f} s; failed jobs: "
                      f"{stack.failed_jobs()[:3]}")
                if len(missing) >= 3:
                    break
                continue
            if seq >= 0:
                total.append((arrived - started) * 1000)
                response.append((answered - started) * 1000)
                rest.append((arrived - answered) * 1000)
            if seq > 0 and seq % 250 == 0:
                print(f"  {seq} publishes, p50 so far {percentile(sorted(total), 50):.2f} ms", flush=True)
        load = os.getloadavg()[0]
        cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in stack.cpu().items()}
        busy, measured = machine_busy_seconds() - busy_before, time.time() - measured_from
        commands = stack.redis.info("commandstats")

    counts = stack.mock_counts or {}
    print()
    print(f"{len(total)} sequential publishes to one {args.provider.upper()} device "
          f"(after {WARMUP} warm-up publishes), each waited for at the mock; load average after: {load:.2f}")
    if total:
        print(summary("publish request -> mock received", total))
        print(summary("  publish HTTP request (response)", response))
        print(summary("  response -> mock received", rest))
        ordered = sorted(total)
        p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
        print(f"target p50 <= {TARGET_P50_MS:.0f} ms: {'met' if p50 <= TARGET_P50_MS else 'MISSED'} ({p50:.2f} ms); "
              f"target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'} ({p99:.2f} ms)")
    if total:
        n = len(total)
        print("CPU per publish: " + ", ".join(f"{name} {seconds * 1e6 / n:.0f} us" for name, seconds in cpu.items())
              + f"; machine {busy:.1f} core-s busy of {(os.cpu_count() or 1) * measured:.1f}, "
              f"other processes {max(0.0, busy - sum(cpu.values())):.1f}")
        top = sorted(commands.items(), key=lambda kv: -kv[1]["calls"])
        print(f"Redis commands per publish (all clients, those inside scripts too): "
              f"{sum(stat['calls'] for _, stat in top) / n:.1f}: " + ", ".join(
                  f"{name.removeprefix('cmdstat_')} {stat['calls'] / n:.1f}" for name, stat in top[:14]))
    print(f"mock counted: {counts}")
    if missing:
        print(f"PROBLEM: {len(missing)} publish(es) never reached the mock: seq {missing}")
        return 1
    return 0 if total and percentile(sorted(total), 50) <= TARGET_P50_MS and \
        percentile(sorted(total), 99) <= TARGET_P99_MS else 2


if __name__ == "__main__":
    sys.exit(main())
