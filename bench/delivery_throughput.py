"""End-to-end delivery throughput: one publish to an interest of 100,000 devices.

Starts redis-server, the Node h2c provider mock, gunicorn (`-w 4 wsgi:app`)
and two `python -m workers` processes on 127.0.0.1 (see `_harness.py`), stores
100,000 devices straight through the storage scripts (half APNs with 64-hex
tokens, half FCM with 163-char tokens, all in the interest "bench"), then

    publish (Beams publish API) -> poll GET .../publishes/<id> until "done"

and prints delivered / (time from the publish request to "done"), next to the
mock's own ceiling measured by h2load in the same run (a second mock process,
so its counts stay apart), the mock's count of what it received (must equal
delivered), the CPU each part of the stack spent per notification and the
publish record.

    python bench/delivery_throughput.py
    python bench/delivery_throughput.py --devices 20000 --workers 1
    python bench/delivery_throughput.py --code /path/to/other/checkout   # web + workers from there

Exit status: 0 target met, 1 something broke (stalled or failed publish,
counts that disagree), 2 target missed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _harness import ROOT, Mock, Stack, add_devices, describe_code, half_and_half, machine_busy_seconds

from workers.runtime import FANOUT_QUEUE  # importable once _harness has put the repository on sys.path

TARGET = 5000  # notifications per second, end to end
APNS_BODY = {"aps": {"alert": "hi"}}
FCM_BODY = {"notification": {"title": "hi"}}
STALL_SECONDS = 30


def h2load(mock: Mock, path: str, body: bytes, requests: int, tmp: Path) -> str:
    """h2load against the mock: one connection, 100 streams in flight (what one worker's sender does)."""
    body_file = tmp / "h2load-body.json"
    body_file.write_bytes(body)
    out = subprocess.run(
        ["h2load", "-n", str(requests), "-c", "1", "-m", "100", "-d", str(body_file), mock.url + path],
        capture_output=True, text=True, timeout=300,
    ).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    done = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed", out)
    if not finished or not done:
        return f"h2load printed no summary: {out.strip()[-300:]}"
    return f"{float(finished[3]):8,.0f} req/s ({done[1]} succeeded, {done[2]} failed)"


def wait_done(stack: Stack, tenant, publish_id: str, started: float) -> tuple[dict, float | None]:
    """Poll the publish until "done"; (record, elapsed), elapsed None if it stalled
    (no progress for STALL_SECONDS, or its fan-out job failed)."""
    last, last_change, last_print = None, time.time(), time.time()
    while True:
        record = stack.publish_status(tenant, publish_id)
        now = time.time()
        if record["status"] == "done":
            return record, now - started
        progress = (record["status"], record["delivered"], record["failed"], record["retried"])
        if progress != last:
            last, last_change = progress, now
        elif now - last_change > STALL_SECONDS:
            return record, None
        elif now - last_change > 1 and any(job.startswith(FANOUT_QUEUE) for job in stack.failed_jobs()):
            return record, None
        if now - last_print >= 2:
            print(f"  {now - started:6.1f} s  {record['status']:12} delivered {record['delivered']:>7,}"
                  f"  ({record['delivered'] / (now - started):,.0f}/s so far)", flush=True)
            last_print = now
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--h2load-requests", type=int, default=100_000)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout that gunicorn and the workers run from")
    args = parser.parse_args()

    failures: list[str] = []
    with Stack(workers=args.workers, code=args.code) as stack:
        print(f"code: {describe_code(args.code)}; {args.workers} worker process(es), gunicorn -w 4, redis-server, "
              f"Node mock at {stack.mock.url}")

        ceiling_mock = Mock(stack.tmp)
        try:
            apns_ceiling = h2load(ceiling_mock, "/3/device/x", json.dumps(APNS_BODY).encode(),
                                  args.h2load_requests, stack.tmp)
            fcm_body = json.dumps({"message": {"token": "x" * 163, **FCM_BODY}}).encode()
            fcm_ceiling = h2load(ceiling_mock, "/v1/projects/bench/messages:send", fcm_body,
                                 args.h2load_requests, stack.tmp)
        finally:
            ceiling_mock.stop()
        print(f"mock ceiling (h2load -n {args.h2load_requests} -c 1 -m 100): APNs {apns_ceiling}; FCM {fcm_ceiling}")

        tenant = stack.tenant()
        started = time.perf_counter()
        add_devices(stack.redis, tenant.id, half_and_half(args.devices), "bench")
        print(f"stored {args.devices:,} devices (half APNs, half FCM) in {time.perf_counter() - started:.1f} s "
              f"through pipelined device.lua calls")

        cpu_before, busy_before = stack.cpu(), machine_busy_seconds()
        print("publishing...", flush=True)
        started = time.time()
        publish_id = stack.publish(tenant, {"interests": ["bench"], "apns": APNS_BODY, "fcm": FCM_BODY})
        record, elapsed = wait_done(stack, tenant, publish_id, started)
        cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in stack.cpu().items()}
        busy = machine_busy_seconds() - busy_before
        failed_jobs = stack.failed_jobs()
        worker_logs = [stack.log_tail(f"worker{i}.log", 8) for i in range(args.workers)]

    counts = stack.mock_counts or {}
    received = counts.get("apns", 0) + counts.get("fcm", 0)
    delivered = int(record["delivered"])
    print()
    if elapsed is None:
        failures.append(f"publish stalled in status {record['status']} (fan-out job failed, "
                        f"or no progress for {STALL_SECONDS} s)")
        elapsed = time.time() - started
    rate = delivered / elapsed
    print(f"delivered {delivered:,} in {elapsed:.2f} s (publish request -> status {record['status']}) "
          f"= {rate:,.0f} notifications/s end to end  (target >= {TARGET:,}/s: "
          f"{'met' if rate >= TARGET else 'MISSED'})")
    print(f"mock ceiling, same run: APNs {apns_ceiling.strip()}; FCM {fcm_ceiling.strip()}")
    print(f"mock received: {received:,} (APNs {counts.get('apns', 0):,}, FCM {counts.get('fcm', 0):,}, "
          f"OAuth token {counts.get('token', 0)}, other {counts.get('other', 0)}); "
          f"{'equals' if received == delivered else 'DIFFERS FROM'} delivered")
    if delivered:
        print("CPU per delivered notification: " + ", ".join(
            f"{name} {seconds * 1e6 / delivered:.0f} us" for name, seconds in cpu.items()
        ) + f"; total {sum(cpu.values()) * 1e6 / delivered:.0f} us "
            f"(= {os.cpu_count() * delivered / max(sum(cpu.values()), 1e-9):,.0f}/s with every core on it)")
    cores = os.cpu_count() or 1
    print(f"machine CPU during the publish: {busy:.1f} core-s busy of {cores * elapsed:.1f} "
          f"({cores} cores x {elapsed:.1f} s): this stack {sum(cpu.values()):.1f}, "
          f"other processes on the machine {max(0.0, busy - sum(cpu.values())):.1f}")
    print(f"publish record: {json.dumps(record)}")
    if received != delivered:
        failures.append(f"mock received {received}, publish record says delivered {delivered}")
    if delivered != args.devices:
        failures.append(f"delivered {delivered} of {args.devices} devices")
    if failed_jobs:
        failures.append("failed RQ jobs:\n      " + "\n      ".join(failed_jobs[:5]))
    if failures:
        print("PROBLEMS:")
        for failure in failures:
            print("  " + failure)
        for i, tail in enumerate(worker_logs):
            if tail:
                print(f"--- last lines of worker{i}'s log ---\n{tail}")
        return 1
    return 0 if rate >= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
