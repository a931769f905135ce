"""End-to-end delivery throughput: one publish to an interest of 100,000
phones, then one to 20,000 browsers.

Starts redis-server, the Node provider mock (APNs and FCM over h2c, or with
`--tls` over TLS as Apple and Google speak them, with a CA made for the run
that the workers trust through SSL_CERT_FILE; it is also a browser push
service over TLS), gunicorn (`-w 4 wsgi:app`) and two `python -m workers` processes on
127.0.0.1 (see `_harness.py`), stores 100,000 devices straight through the
storage scripts (half APNs with 64-hex tokens, half FCM with 163-char tokens,
all in the interest "bench") and 20,000 web devices (push subscriptions to the
mock, in "bench-web"), then for each interest

    publish (Beams publish API) -> poll GET .../publishes/<id> until "done"

and prints delivered / (time from the publish request to "done"), next to the
mock's own ceiling measured by h2load in the same run (a second mock process,
so its counts stay apart), the mock's count of what it received (must equal
delivered), the CPU each part of the stack spent per notification and the
publish record, and for each worker the share of the time from its first
job's start to its last job's end that it spent in a job (from the line each
job logs with its duration; the rest it waited for work). Web deliveries include the work a browser's push costs: an
ECDH key pair and exchange and AES-GCM per message (RFC 8291), a VAPID JWT per
push service, and TLS to the push service.

    python bench/delivery_throughput.py --tls             # the README's figure
    python bench/delivery_throughput.py
    python bench/delivery_throughput.py --devices 20000 --web-devices 5000 --workers 1
    python bench/delivery_throughput.py --code /path/to/other/checkout   # web + workers from there

Exit status: 0 targets met, 1 something broke (stalled or failed publish,
counts that disagree), 2 a target missed.
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

from _harness import ROOT, Mock, Stack, add_devices, describe_code, half_and_half, machine_busy_seconds, web_tokens

from workers.runtime import FANOUT_QUEUE  # importable once _harness has put the repository on sys.path

TARGET = 10_000  # notifications per second, end to end
WEB_TARGET = 2000  # web deliveries per second, end to end
BUSY_TARGET = 0.95  # each worker's share of its time in a job, APNs+FCM publish
APNS_BODY = {"aps": {"alert": "hi"}}
FCM_BODY = {"notification": {"title": "hi"}}
WEB_BODY = {"notification": {"title": "hi", "body": "there", "deep_link": "https://example.com/"}, "data": {"n": 1}}
STALL_SECONDS = 30


def h2load(mock: Mock, path: str, body: bytes, requests: int, tmp: Path) -> str:
    """h2load against the mock (over TLS when it has a TLS port): one
    connection, 100 streams in flight (what one worker's sender does)."""
    body_file = tmp / "h2load-body.json"
    body_file.write_bytes(body)
    out = subprocess.run(
        ["h2load", "-n", str(requests), "-c", "1", "-m", "100", "-d", str(body_file),
         (mock.tls_url or mock.url) + path],
        capture_output=True, text=True, timeout=300,
    ).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    done = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed", out)
    if not finished or not done:
        return f"h2load printed no summary: {out.strip()[-300:]}"
    return f"{float(finished[3]):8,.0f} req/s ({done[1]} succeeded, {done[2]} failed)"


def in_jobs(intervals: list[tuple[float, float]]) -> tuple[float, float]:
    """How much of the time from its first job's start to its last job's end
    a worker spent in a job (the union of their intervals; the rest it waited
    for work: the fan-out's next batches, RQ): (share, window seconds)."""
    if not intervals:
        return 0.0, 0.0
    first, last = intervals[0][0], max(end for _, end in intervals)
    covered, reach = 0.0, first
    for start, end in intervals:
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    window = max(last - first, 1e-9)
    return covered / window, window


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


def measure(stack: Stack, tenant, body: dict, devices: int, received_of: tuple[str, ...], target: int,
            label: str, failures: list[str]) -> tuple[float, float]:
    """Publish `body`, wait for "done", print the figures; returns the rate
    and the least busy worker's share of its time in a job."""
    counts_before = stack.mock.counts_now() if stack.mock else {}
    cpu_before, busy_before = stack.cpu(), machine_busy_seconds()
    print(f"publishing to {devices:,} {label}...", flush=True)
    started = time.time()
    publish_id = stack.publish(tenant, body)
    record, elapsed = wait_done(stack, tenant, publish_id, started)
    cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in stack.cpu().items()}
    busy = machine_busy_seconds() - busy_before
    counts_after = stack.mock.counts_now() if stack.mock else {}
    received = sum(counts_after.get(k, 0) - counts_before.get(k, 0) for k in received_of)
    delivered = int(record["delivered"])
    if elapsed is None:
        failures.append(f"{label}: publish stalled in status {record['status']} (fan-out job failed, "
                        f"or no progress for {STALL_SECONDS} s)")
        elapsed = time.time() - started
    rate = delivered / elapsed
    print(f"{label}: delivered {delivered:,} in {elapsed:.2f} s (publish request -> status {record['status']}) "
          f"= {rate:,.0f}/s end to end  (target >= {target:,}/s: {'met' if rate >= target else 'MISSED'})")
    print(f"{label}: mock received {received:,} ({', '.join(received_of)}); "
          f"{'equals' if received == delivered else 'DIFFERS FROM'} delivered")
    if delivered:
        print(f"{label}: CPU per delivered notification: " + ", ".join(
            f"{name} {seconds * 1e6 / delivered:.0f} us" for name, seconds in cpu.items()
        ) + f"; total {sum(cpu.values()) * 1e6 / delivered:.0f} us "
            f"(= {os.cpu_count() * delivered / max(sum(cpu.values()), 1e-9):,.0f}/s with every core on it)")
    cores = os.cpu_count() or 1
    print(f"{label}: machine CPU during the publish: {busy:.1f} core-s busy of {cores * elapsed:.1f} "
          f"({cores} cores x {elapsed:.1f} s): this stack {sum(cpu.values()):.1f}, "
          f"other processes on the machine {max(0.0, busy - sum(cpu.values())):.1f}")
    busiest_idle = 1.0
    for i in range(stack.n_workers):
        intervals = stack.job_intervals(i, publish_id)
        share, window = in_jobs(intervals)
        busiest_idle = min(busiest_idle, share)
        print(f"{label}: worker{i} busy {share:.1%} of the {window:.2f} s from its first job's start to its "
              f"last's end ({len(intervals)} jobs; target >= {BUSY_TARGET:.0%}: "
              f"{'met' if share >= BUSY_TARGET else 'MISSED'}); its CPU "
              f"{cpu[f'worker{i}'] / max(window, 1e-9):.0%} of that time")
    print(f"{label}: publish record: {json.dumps(record)}")
    print()
    if received != delivered:
        failures.append(f"{label}: mock received {received}, publish record says delivered {delivered}")
    if delivered != devices:
        failures.append(f"{label}: delivered {delivered} of {devices} devices")
    return rate, busiest_idle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000, help="APNs and FCM devices (half each)")
    parser.add_argument("--web-devices", type=int, default=20_000, help="browsers (0: none)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--h2load-requests", type=int, default=100_000)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout that gunicorn and the workers run from")
    parser.add_argument("--tls", action="store_true",
                        help="APNs and FCM over TLS (ALPN h2, a CA made for the run), as to Apple and Google; else h2c")
    args = parser.parse_args()

    failures: list[str] = []
    with Stack(workers=args.workers, code=args.code, tls=args.tls) as stack:
        print(f"code: {describe_code(args.code)}; {args.workers} worker process(es), gunicorn -w 4, redis-server, "
              f"Node mock: APNs and FCM at {stack.provider_url} ({'TLS' if args.tls else 'h2c'}), "
              f"push service at {stack.mock.tls_url}")

        ceiling_mock = Mock(stack.tmp, tls=stack.certificate if args.tls else None)
        try:
            apns_ceiling = h2load(ceiling_mock, "/3/device/x", json.dumps(APNS_BODY).encode(),
                                  args.h2load_requests, stack.tmp)
            fcm_body = json.dumps({"message": {"token": "x" * 163, **FCM_BODY}}).encode()
            fcm_ceiling = h2load(ceiling_mock, "/v1/projects/bench/messages:send", fcm_body,
                                 args.h2load_requests, stack.tmp)
        finally:
            ceiling_mock.stop()
        print(f"mock ceiling (h2load -n {args.h2load_requests} -c 1 -m 100{', TLS' if args.tls else ''}): "
          f"APNs {apns_ceiling}; FCM {fcm_ceiling}")

        tenant = stack.tenant()
        started = time.perf_counter()
        add_devices(stack.redis, tenant.id, half_and_half(args.devices), "bench")
        print(f"stored {args.devices:,} devices (half APNs, half FCM) in {time.perf_counter() - started:.1f} s "
              f"through pipelined device.lua calls")
        if args.web_devices:
            started = time.perf_counter()
            add_devices(stack.redis, tenant.id, web_tokens(args.web_devices, stack.mock.tls_url), "bench-web")
            print(f"stored {args.web_devices:,} web devices (push subscriptions) in "
                  f"{time.perf_counter() - started:.1f} s")
        print()

        rate, busy = measure(stack, tenant, {"interests": ["bench"], "apns": APNS_BODY, "fcm": FCM_BODY},
                             args.devices, ("apns", "fcm"), TARGET, "APNs+FCM", failures)
        web_rate = WEB_TARGET
        if args.web_devices:
            web_rate, _ = measure(stack, tenant, {"interests": ["bench-web"], "web": WEB_BODY}, args.web_devices,
                                  ("web",), WEB_TARGET, "web", failures)
        failed_jobs = stack.failed_jobs()
        worker_logs = [stack.log_tail(f"worker{i}.log", 8) for i in range(args.workers)]

    counts = stack.mock_counts or {}
    print(f"mock ceiling, same run: APNs {apns_ceiling.strip()}; FCM {fcm_ceiling.strip()}")
    print(f"mock counts: {json.dumps(counts)}")
    print(f"summary: APNs+FCM {rate:,.0f}/s (target {TARGET:,}) over {'TLS' if args.tls else 'h2c'}, "
          f"least busy worker {busy:.1%} (target {BUSY_TARGET:.0%}), web {web_rate:,.0f}/s (target {WEB_TARGET:,}), "
          f"{args.workers} worker process(es)")
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
    return 0 if rate >= TARGET and busy >= BUSY_TARGET and web_rate >= WEB_TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
