"""Register and delivery throughput on a 3-master Redis Cluster beside one Redis, in the same run.

For each deployment, one after the other (`_harness.Stack`): one redis-server
(which also holds the RQ queues), or a Redis Cluster of three masters with a
replica each (the queues stay on the redis-server: RQ cannot use a Cluster);
the Node provider mock, `gunicorn -w 4 wsgi:app` and `python -m workers`.

- register: `wrk` registers a new 163-char FCM token per request
  (`POST /device_api/v1/instances/<id>/devices/fcm`) in --tenants instances,
  each wrk thread on its own instance, for --duration seconds;
- delivery: --devices devices (half APNs, half FCM) spread over --tenants
  instances, one publish to each at once; from the first publish request until
  every publish is "done".

Tenants are instances; on the Cluster each lives in one slot, so they spread
over the masters (the run prints how). Prints req/s and notifications/s for
both, the cluster/single ratio, and the CPU each part used per request or
notification (Redis: the masters, and the replicas apart).

    python3 bench/cluster.py                         # ~3 minutes
    python3 bench/cluster.py --devices 20000 --duration 5

On a machine with fewer cores than processes the ratio shows what the Cluster
costs, not what it adds: it adds Redis cores, and a 2-core machine has none
to spare (docs/scaling.md). Exit status 1: a check failed (non-2xx answers,
a publish that did not finish, counts that disagree).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter

from _harness import Stack, add_devices, half_and_half
from delivery_throughput import APNS_BODY, FCM_BODY, wait_done
from register_throughput import PAD, WRK_SCRIPT, stored_devices

from pushlite.storage import keys  # importable once _harness has put the repository on sys.path


def placement(stack: Stack, tenant_ids: list[str]) -> str:
    if stack.cluster is None:
        return "all on the one redis-server"
    per_master = Counter(stack.cluster.master_of(keys.instance(iid)).port for iid in tenant_ids)
    return "per master " + ", ".join(f":{port} {n}" for port, n in sorted(per_master.items()))


def redis_cpu(spent: dict[str, float]) -> tuple[float, float]:
    """CPU seconds of the Redis that holds the data: (masters, replicas)."""
    if "cluster masters" in spent:
        return spent["cluster masters"], spent["cluster replicas"]
    return spent["redis"], 0.0


def register(stack: Stack, tenants: list, args: argparse.Namespace) -> dict:
    paths = [f"/device_api/v1/instances/{t.id}/devices/fcm" for t in tenants]
    url = f"http://127.0.0.1:{stack.web_port}{paths[0]}"

    def wrk(run: str, seconds: float) -> str:
        """wrk for `seconds`; `run` keeps this run's tokens apart from every other run's."""
        script = stack.tmp / f"{run}.lua"
        script.write_text(WRK_SCRIPT % {"paths": ", ".join(f'"{p}"' for p in paths), "run": run, "pad": PAD})
        command = ["wrk", f"-t{len(tenants)}", f"-c{args.connections}", f"-d{seconds:g}s", "-s", str(script), url]
        return subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout

    wrk("cw", args.warmup)
    before = {t.id: stored_devices(stack.redis, t.id) for t in tenants}
    cpu_before = stack.cpu()
    out = wrk("cl", args.duration)
    spent = {name: value - cpu_before.get(name, 0.0) for name, value in stack.cpu().items()}
    result: dict = {"statuses": Counter()}
    for line in out.splitlines():  # what WRK_SCRIPT's done() prints
        if line.startswith("BENCH "):
            result.update({k: int(v) for k, v in (f.split("=") for f in line.split()[1:])})
        elif line.startswith("BENCH_STATUS "):
            _, code, n = line.split()
            result["statuses"][int(code)] += int(n)
    if "requests" not in result:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    time.sleep(0.5)
    result["stored"] = sum(stored_devices(stack.redis, t.id) - before[t.id] for t in tenants)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["web_us"] = 1e6 * spent["gunicorn"] / result["requests"]
    result["redis_us"], result["replica_us"] = (1e6 * seconds / result["requests"] for seconds in redis_cpu(spent))
    return result


def deliver(stack: Stack, tenants: list, args: argparse.Namespace) -> dict:
    per_tenant = args.devices // len(tenants)
    for n, tenant in enumerate(tenants):
        offset = n * per_tenant
        devices = ((platform, token) for platform, token in half_and_half(offset + per_tenant))
        add_devices(stack.redis, tenant.id, (d for i, d in enumerate(devices) if i >= offset), "bench")
    cpu_before = stack.cpu()
    started = time.time()
    publishes = [(t, stack.publish(t, {"interests": ["bench"], "apns": APNS_BODY, "fcm": FCM_BODY})) for t in tenants]
    records, elapsed = [], 0.0
    for tenant, publish_id in publishes:
        record, took = wait_done(stack, tenant, publish_id, started)
        records.append(record)
        elapsed = max(elapsed, took if took is not None else float("inf"))
    spent = {name: value - cpu_before.get(name, 0.0) for name, value in stack.cpu().items()}
    delivered = sum(int(r["delivered"]) for r in records)
    return {
        "delivered": delivered, "targeted": sum(int(r["targeted"]) for r in records), "elapsed": elapsed,
        "rate": delivered / elapsed if elapsed != float("inf") else 0.0,
        "statuses": [r["status"] for r in records],
        "redis_us": 1e6 * redis_cpu(spent)[0] / max(delivered, 1),
        "replica_us": 1e6 * redis_cpu(spent)[1] / max(delivered, 1),
        "workers_us": 1e6 * sum(v for k, v in spent.items() if k.startswith("worker")) / max(delivered, 1),
    }


def run(cluster: bool, args: argparse.Namespace) -> dict:
    with Stack(workers=args.workers, cluster=cluster) as stack:
        tenants = [stack.tenant() for _ in range(args.tenants)]
        where = placement(stack, [t.id for t in tenants])
        name = "cluster" if cluster else "single "
        print(f"{name}: {args.tenants} tenants, {where}", flush=True)
        registered = register(stack, tenants, args)
        print(f"{name}: register {registered['rps']:7.0f} req/s  p50 {registered['p50_us'] / 1000:5.1f} ms  "
              f"p99 {registered['p99_us'] / 1000:5.1f} ms  statuses {dict(registered['statuses'])}  "
              f"CPU/request: gunicorn {registered['web_us']:.0f} us, redis {registered['redis_us']:.0f} us"
              + (f" (+ replicas {registered['replica_us']:.0f} us)" if cluster else ""),
              flush=True)
        delivered = deliver(stack, tenants, args)
        print(f"{name}: delivery {delivered['rate']:7.0f} notifications/s  ({delivered['delivered']:,} in "
              f"{delivered['elapsed']:.1f} s)  CPU/notification: workers {delivered['workers_us']:.0f} us, "
              f"redis {delivered['redis_us']:.1f} us"
              + (f" (+ replicas {delivered['replica_us']:.1f} us)" if cluster else ""), flush=True)
    delivered["mock"] = sum((stack.mock_counts or {}).get(k, 0) for k in ("apns", "fcm"))
    return {"register": registered, "delivery": delivered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per deployment (10)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=6, help="instances the load is spread over (6)")
    parser.add_argument("--devices", type=int, default=60_000, help="devices to deliver to, over all tenants")
    parser.add_argument("--workers", type=int, default=2, help="python -m workers processes (2)")
    args = parser.parse_args()

    results = {"single": run(False, args), "cluster": run(True, args)}
    failures = []
    for name, result in results.items():
        reg, dlv = result["register"], result["delivery"]
        non2xx = {code: n for code, n in reg["statuses"].items() if not 200 <= code < 300}
        if non2xx:
            failures.append(f"{name}: register answered {non2xx}")
        ok = sum(n for code, n in reg["statuses"].items() if 200 <= code < 300)
        if not 0 <= reg["stored"] - ok <= args.connections:  # requests in flight when wrk stopped are stored too
            failures.append(f"{name}: {reg['stored']} devices stored for {reg['statuses']}")
        if set(dlv["statuses"]) != {"done"} or dlv["delivered"] != dlv["targeted"] or dlv["mock"] != dlv["delivered"]:
            failures.append(f"{name}: publishes {dlv['statuses']}, delivered {dlv['delivered']} of "
                            f"{dlv['targeted']}, mock received {dlv['mock']}")
    single, cluster = results["single"], results["cluster"]
    print()
    print(f"register: single {single['register']['rps']:.0f} req/s, cluster {cluster['register']['rps']:.0f} req/s, "
          f"cluster/single {cluster['register']['rps'] / single['register']['rps']:.2f}")
    print(f"delivery: single {single['delivery']['rate']:.0f}/s, cluster {cluster['delivery']['rate']:.0f}/s, "
          f"cluster/single {cluster['delivery']['rate'] / max(single['delivery']['rate'], 1):.2f}")
    print(f"Redis CPU per registration: single {single['register']['redis_us']:.0f} us, cluster masters "
          f"{cluster['register']['redis_us']:.0f} us + replicas {cluster['register']['replica_us']:.0f} us; "
          f"per notification: single {single['delivery']['redis_us']:.1f} us, cluster masters "
          f"{cluster['delivery']['redis_us']:.1f} us + replicas {cluster['delivery']['replica_us']:.1f} us")
    if failures:
        print("CHECKS FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("checks: every register answer 2xx and stored, every publish done, the mock received every notification")
    return 0


if __name__ == "__main__":
    sys.exit(main())
