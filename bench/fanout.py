"""Fan-out of one publish to an interest of 1,000,000 devices, and worker memory.

Starts the whole stack on 127.0.0.1 (see `_harness.py`) with two workers,
stores 1,000,000 devices straight through the storage scripts (pipelines of
10,000; half APNs, half FCM, all in the interest "big"), then publishes once
and reads the publish record straight from Redis (`HGETALL {iid}:p:<id>`)
every 10 ms:

    fan-out time = publish request -> the fan-out job has finished
                   (`fanout_done` set, status past "fanning_out"), i.e. every
                   delivery job is enqueued

While it runs, VmRSS of each worker process (and of its RQ scheduler child) is
sampled every 100 ms; the kernel's own peak (VmHWM) is printed too. After
the fan-out it lets delivery run for `--deliver-seconds` more (20), prints how
far it got, and stops everything without waiting for the remaining deliveries.

    python bench/fanout.py
    python bench/fanout.py --devices 200000 --deliver-seconds 5
    python bench/fanout.py --code /path/to/other/checkout

Exit status: 0 targets met, 1 something broke (fan-out failed or stalled),
2 a target missed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _harness import (ROOT, RssSampler, Stack, add_devices, describe_code, half_and_half, machine_busy_seconds,
                      status_kb)
from rq import Queue

# Importable once _harness has put the repository on sys.path.
from pushlite.storage import keys
from workers.runtime import DELIVERY_QUEUE, FANOUT_QUEUE

TARGET_FANOUT_SECONDS = 2.0
TARGET_RSS_MB = 200.0
FANOUT_TIMEOUT = 120.0
DELIVERY_QUEUE_KEY = Queue.redis_queue_namespace_prefix + DELIVERY_QUEUE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deliver-seconds", type=float, default=20.0)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout that gunicorn and the workers run from")
    args = parser.parse_args()

    problems: list[str] = []
    with Stack(workers=args.workers, code=args.code) as stack:
        print(f"code: {describe_code(args.code)}; {args.workers} worker process(es), gunicorn -w 4, redis-server, Node mock; "
              f"load average: {os.getloadavg()[0]:.2f}")
        tenant = stack.tenant()
        started = time.perf_counter()

        def progress(done: int) -> None:
            if done % 100_000 == 0 or done == args.devices:
                elapsed = time.perf_counter() - started
                print(f"  stored {done:>9,} devices  {elapsed:6.1f} s  ({done / elapsed:,.0f}/s)", flush=True)

        add_devices(stack.redis, tenant.id, half_and_half(args.devices), "big", progress=progress)
        members = stack.redis.scard(keys.interest(tenant.id, "big"))
        memory = stack.redis.info("memory")["used_memory"]
        print(f"interest 'big' has {members:,} devices; redis used_memory {memory / 2**20:,.0f} MB")
        rss_before = {pid: status_kb(pid, "VmRSS") for pid in stack.worker_pids}

        with RssSampler(stack.worker_pids) as rss:
            stack.redis.config_resetstat()
            cpu_before, busy_before = stack.cpu(), machine_busy_seconds()
            started = time.time()
            publish_id = stack.publish(tenant, {
                "interests": ["big"], "apns": {"aps": {"alert": "hi"}}, "fcm": {"notification": {"title": "hi"}},
            })
            answered = time.time()
            key = keys.publish(tenant.id, publish_id)
            fanout_seconds = None
            max_queue = 0
            last_print = started
            while time.time() - started < FANOUT_TIMEOUT:
                with stack.redis.pipeline(transaction=False) as pipe:
                    pipe.hgetall(key)
                    pipe.llen(DELIVERY_QUEUE_KEY)
                    record, queued = pipe.execute()
                now = time.time()
                max_queue = max(max_queue, queued)
                if record.get("fanout_done") == "1":
                    fanout_seconds = now - started
                    cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in stack.cpu().items()}
                    busy = machine_busy_seconds() - busy_before
                    commands = stack.redis.info("commandstats")
                    break
                if now - last_print >= 1:
                    print(f"  {now - started:6.2f} s  status {record.get('status')}, delivery jobs queued {queued:,}, "
                          f"delivered so far {int(record.get('delivered', 0)):,}", flush=True)
                    last_print = now
                    failed = [job for job in stack.failed_jobs() if job.startswith(FANOUT_QUEUE)]
                    if failed:
                        problems.append("fan-out job failed: " + failed[0])
                        break
                time.sleep(0.01)
            else:
                problems.append(f"fan-out not finished after {FANOUT_TIMEOUT:.0f} s")
            fanned = stack.redis.hgetall(key)
            if fanout_seconds is not None:
                print(f"  fan-out finished after {fanout_seconds:.2f} s: {fanned['batches_total']} batches; "
                      f"delivering for {args.deliver_seconds:.0f} s more...", flush=True)
                delivered_at_fanout = int(fanned.get("delivered", 0))
                time.sleep(args.deliver_seconds)
            final = stack.redis.hgetall(key)
            final_queued = stack.redis.llen(DELIVERY_QUEUE_KEY)
            stopped = time.time()
            peak = {pid: status_kb(pid, "VmHWM") for pid in stack.worker_pids}

    print()
    print(f"publish to {members:,} devices: HTTP answer after {(answered - started) * 1000:.1f} ms")
    if fanout_seconds is not None:
        print(f"fan-out (publish request -> every delivery job enqueued): {fanout_seconds:.2f} s, "
              f"{fanned['batches_total']} delivery jobs  (target <= {TARGET_FANOUT_SECONDS:.0f} s: "
              f"{'met' if fanout_seconds <= TARGET_FANOUT_SECONDS else 'MISSED'})")
        print(f"  delivered while fanning out: {delivered_at_fanout:,}; most delivery jobs waiting at once: "
              f"{max_queue:,}")
        cores = os.cpu_count() or 1
        print("  CPU during the fan-out: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cpu.items())
              + f"; machine {busy:.1f} core-s busy of {cores * fanout_seconds:.1f} ({cores} cores), "
              f"other processes {max(0.0, busy - sum(cpu.values())):.1f}")
        top = sorted(commands.items(), key=lambda kv: -kv[1]["usec"])[:6]
        print("  Redis time by command during the fan-out (calls, ms; script commands counted inside FCALL too): "
              + ", ".join(f"{name.removeprefix('cmdstat_')} {stat['calls']:,} {stat['usec'] / 1000:,.0f}"
                          for name, stat in top))
        delivered = int(final.get("delivered", 0))
        window = stopped - started - fanout_seconds
        print(f"delivered by the end ({stopped - started:.1f} s after the publish): {delivered:,} "
              f"({(delivered - delivered_at_fanout) / window:,.0f}/s after the fan-out), "
              f"batches done {final.get('batches_done')} of {final.get('batches_total')}, "
              f"{final_queued:,} jobs still queued (not waited for)")
    else:
        print(f"fan-out did not finish: status {fanned.get('status')}, record {fanned}")
    worst = 0.0
    for i, pid in enumerate(stack.worker_pids):
        sampled, hwm = rss.max_kb[pid] / 1024, peak[pid] / 1024
        worst = max(worst, sampled, hwm)
        print(f"worker{i} (pid {pid}): RSS before publish {rss_before[pid] / 1024:.0f} MB, max sampled "
              f"{sampled:.0f} MB, kernel peak VmHWM {hwm:.0f} MB; its RQ scheduler child max "
              f"{rss.child_max_kb[pid] / 1024:.0f} MB  ({rss.samples} samples, every 100 ms)")
    print(f"max worker RSS: {worst:.0f} MB (target <= {TARGET_RSS_MB:.0f} MB: "
          f"{'met' if worst <= TARGET_RSS_MB else 'MISSED'})")
    print(f"mock counted: {stack.mock_counts}")
    if problems:
        print("PROBLEMS:")
        for problem in problems:
            print("  " + problem)
        return 1
    return 0 if fanout_seconds <= TARGET_FANOUT_SECONDS and worst <= TARGET_RSS_MB else 2


if __name__ == "__main__":
    sys.exit(main())
