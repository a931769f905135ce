"""Faults at scale: a worker SIGKILLed and the Redis SIGKILLed + restarted
in the middle of a 20,000-device publish.

Each scenario runs on its own whole stack (see `_harness.py`: redis-server,
the Node provider mock, gunicorn, two `python -m workers`); the Redis one
runs redis-server with AOF (appendfsync everysec). It publishes to 20,000
devices (half APNs, half FCM), waits until `--fault-at` of them are
delivered, then:

- worker-kill: SIGKILLs the first worker process;
- redis-kill: SIGKILLs redis-server and starts it again (same port and
  directory) after one second.

It prints, per scenario: devices delivered / targeted, duplicates (requests
the mock received beyond one per device), seconds from the fault until the
publish is done, and the final publish status.

    python bench/faults.py
    python bench/faults.py --devices 50000 --scenarios worker-kill

Exit status 1 when a scenario does not end "done" with every device delivered.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time

from _harness import Stack, add_devices, describe_code, half_and_half, ROOT

TIMEOUT = 120.0


def run(scenario: str, devices: int, fault_at: int) -> bool:
    with Stack(workers=2, aof=scenario == "redis-kill") as stack:
        tenant = stack.tenant()
        add_devices(stack.redis, tenant.id, half_and_half(devices), "faults")
        publish_id = stack.publish(tenant, {
            "interests": ["faults"], "apns": {"aps": {"alert": "hi"}}, "fcm": {"notification": {"title": "hi"}},
        })
        started = time.monotonic()
        record = {}
        while time.monotonic() - started < TIMEOUT:
            record = stack.publish_status(tenant, publish_id)
            if int(record["delivered"]) >= fault_at or record["status"] == "done":
                break
            time.sleep(0.01)
        delivered_at_fault = int(record["delivered"])
        if scenario == "worker-kill":
            stack.worker_procs[0].send_signal(signal.SIGKILL)
        else:
            stack.restart_redis(down_seconds=1.0)
        fault = time.monotonic()
        while time.monotonic() - fault < TIMEOUT:
            try:
                record = stack.publish_status(tenant, publish_id)
            except (AssertionError, OSError):
                record = {"status": "unavailable"}
            if record.get("status") == "done":
                break
            time.sleep(0.1)
        took = time.monotonic() - fault
        failed_jobs = stack.failed_jobs()
    counts = stack.mock_counts or {}
    sent = counts.get("apns", 0) + counts.get("fcm", 0)
    ok = record.get("status") == "done" and int(record.get("delivered", 0)) == devices
    print(f"{scenario}: fault after {delivered_at_fault:,} delivered; "
          f"delivered / targeted {int(record.get('delivered', 0)):,} / {int(record.get('targeted', 0)):,} "
          f"(of {devices:,} devices); duplicates {max(0, sent - devices):,}; "
          f"done {took:.1f} s after the fault; final status {record.get('status')}"
          f"{'' if record.get('stalled_since') is None else ', stalled since ' + str(record['stalled_since'])}")
    print(f"  counters: targeted {record.get('targeted')}, delivered {record.get('delivered')}, "
          f"failed {record.get('failed')}, retried {record.get('retried')}, removed {record.get('removed')}, "
          f"skipped {record.get('skipped')}; failed RQ jobs: {failed_jobs or 'none'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--fault-at", type=int, default=5_000, help="delivered devices before the fault")
    parser.add_argument("--scenarios", nargs="+", default=["worker-kill", "redis-kill"],
                        choices=["worker-kill", "redis-kill"])
    args = parser.parse_args()
    print(f"code: {describe_code(ROOT)}")
    results = [run(scenario, args.devices, args.fault_at) for scenario in args.scenarios]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
