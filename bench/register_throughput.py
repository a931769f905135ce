"""Register-FCM-device throughput, as a ratio to a minimal Flask JSON endpoint.

Starts a throwaway redis-server and two gunicorn servers with the same settings
(sync workers, 2 x `nproc` of them, 127.0.0.1 only): pushlite (`wsgi:app`) and
`bench/minimal_app.py`. Then, with wrk at 32 connections:

    warm-up 2 s each, then minimal, pushlite, minimal, pushlite (10 s each)

Every pushlite request registers a new FCM token (163 chars, distinct per
request) in an instance made for that run through the admin API, so after the
run the devices stored in that instance (HLEN over its `{iid}:d:*` buckets)
must match the 2xx responses wrk counted (give or take the requests still in
flight when wrk stopped). wrk's Lua `response()` hook counts every status.

    python3 bench/register_throughput.py
    python3 bench/register_throughput.py --duration 5 --connections 64
    python3 bench/register_throughput.py --code /path/to/other/checkout
    python3 bench/register_throughput.py --baseline /path/to/older/checkout --rounds 3

Prints requests/s and latency p50/p99 per run, the medians, the ratio and the
checks. With --baseline, a third gunicorn serves another checkout against the
same redis-server, measured in every round right before or after this one
(they take turns), and its ratio and CPU per registration are printed beside
(its stored devices are not counted: an older checkout may keep them in
another layout). Exit status: 0 target met and checks passed, 1 a check
failed (non-2xx responses, socket errors, device count mismatch), 2 target
missed.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.63  # issue 15
TOKEN_LENGTH = 163

# wrk script. Each wrk thread has its own Lua state: `tid` (set by setup) keeps
# the threads' tokens apart, `statuses` is read back by done() through
# thread:get, so both are globals. Thread n posts to path n (of `paths`, in turn).
WRK_SCRIPT = r"""
local paths, run, pad = {%(paths)s}, "%(run)s", "%(pad)s"
local threads = {}
local counter = 0
tid = 0
statuses = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  -- 12 + 7 + 144 = 163 chars, FCM-shaped: <prefix>:APA91b<payload>
  local token = string.format("%%s%%d%%09d", run, tid, counter) .. ":APA91b" .. pad
  return wrk.format("POST", paths[(tid - 1) %% #paths + 1], headers, '{"token":"' .. token .. '"}')
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%%d duration_us=%%d p50_us=%%d p90_us=%%d p99_us=%%d max_us=%%d " ..
    "connect=%%d read=%%d write=%%d status=%%d timeout=%%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      io.write(string.format("BENCH_STATUS %%d %%d\n", code, n))
    end
  end
end
"""

# Fixed payload for the tail of every token ([A-Za-z0-9_-], like FCM's).
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
PAD = "".join(ALPHABET[(i * 37 + 11) % len(ALPHABET)] for i in range(TOKEN_LENGTH - 12 - len(":APA91b")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} before answering (see its log above)")
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up within {timeout:.0f} s")


def http_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        pass  # any HTTP answer means a worker is serving
    return True


def admin_create_instance(base: str, token: str, name: str) -> str:
    req = urllib.request.Request(
        f"{base}/admin/v1/instances",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)["id"]


def stored_devices(client: redis.Redis, instance_id: str) -> int:
    total = 0
    for key in client.scan_iter(match="{%s}:d:*" % instance_id, count=1000):
        total += client.hlen(key)
    return total


def run_wrk(
    url: str, path: str, run: str, tmp: Path, args: argparse.Namespace, duration: float, pids: tuple[int, int]
) -> dict:
    """One wrk run; `pids` = (gunicorn master, redis-server), for CPU per request."""
    from _harness import machine_busy_seconds

    server_pid, redis_pid = pids
    server_cpu, redis_cpu = cpu_seconds(server_pid), cpu_seconds(redis_pid)
    busy, wrk_cpu = machine_busy_seconds(), children_cpu_seconds()
    script = tmp / f"{run}.lua"
    script.write_text(WRK_SCRIPT % {"paths": f'"{path}"', "run": run, "pad": PAD})
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    result: dict = {"statuses": {}}
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            result.update({k: int(v) for k, v in (f.split("=") for f in line.split()[1:])})
        elif line.startswith("BENCH_STATUS "):
            _, code, n = line.split()
            result["statuses"][int(code)] = result["statuses"].get(int(code), 0) + int(n)
    if "requests" not in result:
        raise SystemExit(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    server_cpu, redis_cpu = cpu_seconds(server_pid) - server_cpu, cpu_seconds(redis_pid) - redis_cpu
    wrk_cpu = children_cpu_seconds() - wrk_cpu
    # Busy CPU of the machine that neither the servers nor wrk account for:
    # other processes, or time the hypervisor gave to other machines (steal).
    result["others_cpu"] = max(0.0, machine_busy_seconds() - busy - server_cpu - redis_cpu - wrk_cpu)
    result["server_cpu_us"] = 1e6 * server_cpu / max(result["requests"], 1)
    result["redis_cpu_us"] = 1e6 * redis_cpu / max(result["requests"], 1)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["ok"] = sum(n for code, n in result["statuses"].items() if 200 <= code < 300)
    result["non2xx"] = {code: n for code, n in result["statuses"].items() if not 200 <= code < 300}
    result["socket_errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    return result


def cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) of a process and its children, from /proc (0 elsewhere)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
            fields = rest.rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        if int(pid) == root_pid or int(fields[1]) == root_pid:  # fields[1] = ppid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu_seconds() -> float:
    """CPU time of this process's children that have ended (wrk, once each run is over)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server (2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn workers (2 x nproc)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (2)")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="checkout that pushlite's gunicorn runs from (another worktree, to compare a change)")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout, served by a third gunicorn and measured in the same rounds "
                             "(its turn alternates with --code's), to compare the two on one machine state")
    args = parser.parse_args()
    # Here, not at the top: _harness imports this module's helpers.
    from _harness import describe_code

    # A SIGTERM must still run the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    procs: list[subprocess.Popen] = []
    tmpdir = tempfile.TemporaryDirectory(prefix="pushlite-bench-")
    tmp = Path(tmpdir.name)
    failures: list[str] = []
    try:
        redis_port, minimal_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL,
        ))
        client = redis.Redis(port=redis_port, decode_responses=True)
        wait_until(client.ping, "redis-server", procs[0])
        redis_version = client.info("server")["redis_version"]

        admin_token = "bench-admin-token"
        env = dict(os.environ)
        env.update({
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "PUSHLITE_ADMIN_TOKEN": admin_token,
            # A fixed, valid Fernet key: this bench stores no credentials.
            "PUSHLITE_ENCRYPTION_KEY": "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMDA=",
        })
        gunicorn = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--log-level", "warning"]
        procs.append(subprocess.Popen(
            [*gunicorn, "--bind", f"127.0.0.1:{minimal_port}", "bench.minimal_app:app"], cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
        ))
        minimal_url = f"http://127.0.0.1:{minimal_port}"
        wait_until(lambda: http_answers(minimal_url + "/"), "gunicorn (minimal app)", procs[1])
        minimal_pids = (procs[1].pid, procs[0].pid)
        # Each pushlite side: its gunicorn's URL and (master, redis-server) pids.
        sides: dict[str, tuple[str, tuple[int, int]]] = {}
        for side, code in (("pushlite", args.code), ("baseline", args.baseline)):
            if code is None:
                continue
            port = free_port()
            procs.append(subprocess.Popen(
                [*gunicorn, "--bind", f"127.0.0.1:{port}", "wsgi:app"], cwd=code,
                env={**env, "PYTHONPATH": str(code)},
            ))
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda url=url: http_answers(url + "/healthz"), f"gunicorn ({side})", procs[-1])
            sides[side] = url, (procs[-1].pid, procs[0].pid)

        def pushlite_path(side: str, name: str) -> tuple[str, str]:
            iid = admin_create_instance(sides[side][0], admin_token, name)
            return iid, f"/device_api/v1/instances/{iid}/devices/fcm"

        def measure_pushlite(side: str, rnd: int) -> dict:
            url, pids = sides[side]
            iid, path = pushlite_path(side, f"bench-run-{rnd}")
            res = run_wrk(url + path, path, f"{side[0]}{rnd}", tmp, args, args.duration, pids)
            time.sleep(0.5)  # let requests in flight when wrk stopped finish
            if side == "pushlite":
                res["devices"] = stored_devices(client, iid)
                res["token_index"] = client.hlen("{%s}:tokens" % iid)
            return res

        print(f"code: {describe_code(args.code)}")
        if args.baseline is not None:
            print(f"baseline: {describe_code(args.baseline)}")
        print(f"redis {redis_version}, gunicorn sync workers: {args.workers} (nproc {os.cpu_count()}), "
              f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
              f"FCM token {TOKEN_LENGTH} chars, one new token per request")

        # Warm-up (not reported): every server, every worker, Lua script loaded.
        run_wrk(minimal_url + "/register", "/register", "w0", tmp, args, args.warmup, minimal_pids)
        for side, (url, pids) in sides.items():
            _, warm_path = pushlite_path(side, "bench-warmup")
            run_wrk(url + warm_path, warm_path, f"w{side[0]}", tmp, args, args.warmup, pids)

        results: dict[str, list[dict]] = {"minimal": [], **{side: [] for side in sides}}
        for rnd in range(1, args.rounds + 1):
            res = run_wrk(minimal_url + "/register", "/register", f"m{rnd}", tmp, args, args.duration, minimal_pids)
            results["minimal"].append(res)
            # With a baseline, the two checkouts take turns going first.
            for side in (list(sides) if rnd % 2 else list(sides)[::-1]):
                results[side].append(measure_pushlite(side, rnd))

        for side in results:
            for rnd, res in enumerate(results[side], 1):
                line = (f"{side:8} run {rnd}: {res['rps']:8.0f} req/s  p50 {res['p50_us'] / 1000:6.2f} ms  "
                        f"p99 {res['p99_us'] / 1000:6.2f} ms  requests {res['requests']}  "
                        f"statuses {dict(sorted(res['statuses'].items()))}  socket errors {res['socket_errors']}  "
                        f"CPU/request: gunicorn {res['server_cpu_us']:.0f} us, redis {res['redis_cpu_us']:.0f} us  "
                        f"other processes {res['others_cpu']:.1f} core-s")
                if side == "pushlite":
                    line += f"  devices stored {res['devices']} (token index entries {res['token_index']})"
                print(line)
                if res["non2xx"]:
                    failures.append(f"{side} run {rnd}: non-2xx responses {res['non2xx']}")
                if res["socket_errors"]:
                    failures.append(f"{side} run {rnd}: {res['socket_errors']} socket errors")
                if side == "pushlite":
                    extra = res["devices"] - res["ok"]
                    # A request wrk gave up on at the end may still have been stored.
                    if not 0 <= extra <= args.connections:
                        failures.append(f"pushlite run {rnd}: {res['devices']} devices stored "
                                        f"for {res['ok']} 2xx responses")

        med = {
            side: {k: statistics.median(r[k] for r in results[side]) for k in ("rps", "p50_us", "p99_us", "server_cpu_us", "redis_cpu_us")}
            for side in results
        }
        ratio = med["pushlite"]["rps"] / med["minimal"]["rps"]
        print()
        for side in results:
            m = med[side]
            print(f"median {side:8}: {m['rps']:8.0f} req/s  p50 {m['p50_us'] / 1000:6.2f} ms  "
                  f"p99 {m['p99_us'] / 1000:6.2f} ms  CPU/request: gunicorn {m['server_cpu_us']:.0f} us, "
                  f"redis {m['redis_cpu_us']:.0f} us")
        cpu = {side: med[side]["server_cpu_us"] + med[side]["redis_cpu_us"] for side in med}
        print(f"CPU per request (gunicorn + redis) minimal/pushlite: {cpu['minimal'] / cpu['pushlite']:.2f} "
              f"(what the req/s ratio tends to when every core is busy)")
        if "baseline" in med:
            print(f"baseline: ratio baseline/minimal {med['baseline']['rps'] / med['minimal']['rps']:.3f}; "
                  f"CPU per registration (gunicorn + redis) {cpu['pushlite']:.0f} us against the baseline's "
                  f"{cpu['baseline']:.0f} us ({100 * (cpu['pushlite'] / cpu['baseline'] - 1):+.1f}%)")
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        others = sum(r["others_cpu"] for side in results for r in results[side])
        print(f"ratio pushlite/minimal: {ratio:.3f} (target >= {TARGET_RATIO}: {verdict}); other processes "
              f"took {others:.1f} core-s during the measured runs (more than ~1: a loaded machine, run again)")
        devices_total = sum(r["devices"] for r in results["pushlite"])
        ok_total = sum(r["ok"] for r in results["pushlite"])
        print(f"devices stored {devices_total} for {ok_total} 2xx register responses "
              f"({devices_total - ok_total:+d})")
        if failures:
            print("CHECKS FAILED:")
            for failure in failures:
                print("  " + failure)
            return 1
        print("checks: every response 2xx, no socket errors, devices stored match 2xx responses")
        return 0 if ratio >= TARGET_RATIO else 2
    finally:
        for proc in reversed(procs):
            stop(proc)
        tmpdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
