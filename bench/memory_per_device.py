"""Redis memory per device: a device with its token index entry, one interest
and one user, as stored by pushlite's own storage functions.

For each token kind (FCM: 163 chars; APNs: 64 hex), against a fresh throwaway
redis-server (127.0.0.1, no persistence, default config):

    instance created; Lua script loaded; used_memory "before"
    N x devices.register(...) + interests.add(..., ["news"]) +
        devices.add_user(..., "user-<n>", exclusive=True)
    used_memory "after"; (after - before) / N

then a breakdown over every key of the instance by kind (device buckets,
interest set, user buckets, token index): MEMORY USAGE summed and per device,
and the OBJECT ENCODING of each kind.

    python3 bench/memory_per_device.py                 # 100,000 devices, FCM then APNs
    python3 bench/memory_per_device.py --devices 20000 --kinds apns
    python3 bench/memory_per_device.py --kinds fcm --config-set hash-max-listpack-value=256
    python3 bench/memory_per_device.py --cluster       # a one-node Redis Cluster (all 16384 slots)

The storage functions run one script call each (they read the script's reply,
so they cannot be queued on a pipeline); --threads calls them from a few
threads to overlap round trips. With --cluster the server runs in cluster mode
(one node holding every slot) and pushlite talks to it as to a Cluster, which
shows what cluster mode itself costs per device. Exit status 2 when a kind
misses the target.
"""
from __future__ import annotations

import argparse
import collections
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pushlite.storage import devices, instances, interests, keys  # noqa: E402
from pushlite.storage.connection import connect  # noqa: E402
from pushlite.storage.errors import InstanceNotFound  # noqa: E402

# At most this many Redis bytes per device, by token kind.
TARGET_BYTES = {"fcm": 400, "apns": 260}
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def fcm_token(n: int) -> str:
    """163 chars shaped like an FCM registration token: <22>:APA91b<134>."""
    head = f"c{n:021d}"
    body = "".join(ALPHABET[(n * 7919 + i * 31) % len(ALPHABET)] for i in range(134))
    return f"{head}:APA91b{body}"


def apns_token(n: int) -> str:
    """64 hex chars, like an APNs device token."""
    return f"{n:016x}" + "".join("0123456789abcdef"[(n * 13 + i * 7) % 16] for i in range(48))


TOKENS = {"fcm": ("fcm", fcm_token), "apns": ("apns", apns_token)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(tmp: str, cluster: bool) -> tuple[subprocess.Popen, redis.Redis, redis.Redis]:
    """The server, a client of it, and the client pushlite's storage uses (a
    Cluster client when ``cluster``: the node then holds every slot)."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", tmp]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                 "--cluster-config-file", str(Path(tmp) / "nodes.conf")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, decode_responses=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            if not cluster:
                return proc, client, client
            if "cluster_state:ok" in client.execute_command("CLUSTER", "INFO"):
                return proc, client, connect(f"redis+cluster://127.0.0.1:{port}", socket_timeout=None)
            if not client.execute_command("CLUSTER", "SLOTS"):
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        except redis.RedisError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def populate(client: redis.Redis, iid: str, platform: str, make_token, start: int, stop_: int) -> None:
    for n in range(start, stop_):
        device_id, _ = devices.register(client, iid, platform, make_token(n))
        interests.add(client, iid, device_id, platform, ["news"])
        devices.add_user(client, iid, device_id, platform, f"user-{n}", exclusive=True)


def kind_of(key: str, iid: str) -> str:
    if key.startswith(keys.device_prefix(iid)):
        return "device buckets"
    if key.startswith(keys.interest_prefix(iid)):
        return "interest sets"
    if key.startswith(keys.user_prefix(iid)):
        return "user buckets"
    if key == keys.token_index(iid):
        return "token index"
    if key == keys.instance(iid):
        return "instance hash"
    return "other"


def measure(kind: str, count: int, threads: int, config_set: list[str], cluster: bool) -> float:
    platform, make_token = TOKENS[kind]
    with tempfile.TemporaryDirectory(prefix="pushlite-bench-") as tmp:
        proc, client, storage = start_redis(tmp, cluster)
        try:
            version = client.info("server")["redis_version"]
            for item in config_set:
                name, value = item.split("=", 1)
                client.config_set(name, value)
            iid = instances.create(storage, "bench-memory").id
            # Load device.lua into the script cache before "before": a call on an
            # instance that does not exist runs the script and stores nothing.
            try:
                devices.register(storage, "00000000-0000-4000-8000-000000000000", platform, make_token(0))
            except InstanceNotFound:
                pass
            # Open the threads' connections first: each client costs Redis memory too.
            clients = [storage if cluster else redis.Redis(connection_pool=client.connection_pool)
                       for _ in range(threads)]
            if not cluster:
                pool = client.connection_pool
                for conn in [pool.get_connection() for _ in range(threads)]:
                    pool.release(conn)
            before = used_memory(client)
            started = time.monotonic()
            step = -(-count // threads)
            workers = [
                threading.Thread(
                    target=populate,
                    args=(clients[i], iid, platform, make_token, i * step, min(count, (i + 1) * step)),
                )
                for i in range(threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.monotonic() - started
            after = used_memory(client)

            per_kind: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])  # keys, bytes
            encodings: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
            for key in client.scan_iter(match=keys.instance_pattern(iid), count=1000):
                k = kind_of(key, iid)
                per_kind[k][0] += 1
                per_kind[k][1] += client.memory_usage(key, samples=0) or 0
                encodings[k][client.object("encoding", key)] += 1
            stored = sum(client.hlen(key) for key in client.scan_iter(match=keys.device_prefix(iid) + "*"))
            members = client.scard(keys.interest(iid, "news"))
            users = sum(client.hlen(key) for key in client.scan_iter(match=keys.user_prefix(iid) + "*"))
            token_entries = client.hlen(keys.token_index(iid))
            config = client.config_get("hash-max-listpack-*")
            config.update(client.config_get("set-max-intset-entries"))
            sample_id, _ = devices.register(storage, iid, platform, make_token(1))
            record_len = client.hstrlen(keys.device_bucket(iid, sample_id), sample_id)
        finally:
            stop(proc)

    per_device = (after - before) / count
    print(f"== {kind.upper()} (token {len(make_token(1))} chars): redis {version}"
          f"{' in cluster mode' if cluster else ''}, {count:,} devices "
          f"in {elapsed:.0f} s ({count * 3 / elapsed:,.0f} storage calls/s, {threads} threads)")
    print(f"stored: {stored:,} devices, {members:,} in interest 'news', {users:,} users, "
          f"{token_entries:,} token index entries; packed device record {record_len} bytes")
    print(f"used_memory: before {before:,} after {after:,} -> {per_device:.1f} bytes/device "
          f"(target <= {TARGET_BYTES[kind]}: {'met' if per_device <= TARGET_BYTES[kind] else 'MISSED'})")
    print(f"  {'kind':15} {'keys':>6} {'MEMORY USAGE':>13} {'bytes/device':>12}  OBJECT ENCODING")
    total = 0
    for k in ("device buckets", "interest sets", "user buckets", "token index", "instance hash", "other"):
        if k not in per_kind and k != "token index":
            continue
        nkeys, nbytes = per_kind.get(k, [0, 0])
        total += nbytes
        enc = ", ".join(f"{e} x{n}" for e, n in encodings[k].most_common()) or "(no key)"
        print(f"  {k:15} {nkeys:6,} {nbytes:13,} {nbytes / count:12.1f}  {enc}")
    rest = after - before - total
    print(f"  {'keyspace etc.':15} {'':6} {rest:13,} {rest / count:12.1f}  "
          f"(used_memory delta not in MEMORY USAGE: main dict, allocator rounding)")
    print(f"  config: {', '.join(f'{k} {v}' for k, v in sorted(config.items()))}")
    return per_device


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--kinds", nargs="+", choices=sorted(TOKENS), default=["fcm", "apns"])
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument("--config-set", action="append", default=[], metavar="NAME=VALUE",
                        help="CONFIG SET on the fresh server first, e.g. hash-max-listpack-value=256 (default: none)")
    parser.add_argument("--cluster", action="store_true", help="the server in cluster mode (one node, every slot)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    results = {kind: measure(kind, args.devices, args.threads, args.config_set, args.cluster) for kind in args.kinds}
    print()
    for kind, per_device in results.items():
        print(f"{kind}: {per_device:.1f} bytes/device (target <= {TARGET_BYTES[kind]})")
    return 0 if all(v <= TARGET_BYTES[k] for k, v in results.items()) else 2


if __name__ == "__main__":
    sys.exit(main())
