"""pushlite's APNs sender beside peer libraries, one process each, against one TLS mock.

    python bench/peers.py                          # ~1 minute: 20,000 notifications per contender
    python bench/peers.py --skip apns2,aioapns     # pushlite alone (no registry needed)

Starts `bench/mock_providers.js` once, serving HTTP/2 over TLS (ALPN h2) with
a certificate made for the run (its own CA), and sends N APNs notifications
to it from each contender in turn, token auth with an EC key made on the spot:

- pushlite's sender, in this process: `sender_throughput.measure` (batches of
  1,000, at most 500 in flight), the CA trusted through SSL_CERT_FILE;
- `apns2` (npm, pinned below), installed into a temporary directory, one Node
  process (`bench/peer_apns2.js`), the CA trusted through NODE_EXTRA_CA_CERTS;
- `aioapns` (PyPI, pinned below; what Sygnal uses), installed with
  `pip install --target` into a temporary directory (not a pushlite
  dependency), one Python process (`bench/peer_aioapns.py`), 400 at a time
  with asyncio.gather (`--aioapns-chunk`; from 500 its bodies outgrow the
  mock's 64 KiB HTTP/2 connection window and aioapns, instead of waiting,
  sleeps a second and resends: the run then fails on the mock's count).

Each peer sends 100 notifications first (connections, JWT), then waits; the
measured part is from "go" to its "done". It prints notifications/s (wall
clock), the CPU time per notification of the contender's process (pushlite:
`time.process_time()`, as `measure` prints it; a peer: utime + stime from
/proc), what the mock spent per notification, and what the mock counted.
Exit status 1 when a contender's notifications did not all succeed or the mock
did not count exactly what was sent; a peer that cannot be installed (no
registry) is reported and left out.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _harness import Mock, certificate, machine_busy_seconds
from register_throughput import cpu_seconds
from sender_throughput import measure

BENCH = Path(__file__).resolve().parent
APNS2_VERSION = "12.2.0"
AIOAPNS_VERSION = "4.0"
BATCH = 1000  # pushlite's batch of targets; apns2's sendMany and the peers' unit of work
CONCURRENCY = 500  # pushlite's max_concurrency: notifications in flight
# aioapns's asyncio.gather chunk: the most in flight whose bodies (~83 B) fit the mock's 64 KiB connection
# window. Past it, aioapns does not wait for a WINDOW_UPDATE: it sleeps a second and resends (see peer_aioapns.py).
AIOAPNS_CHUNK = 400
WARMUP = 100  # notifications each contender sends before it is measured (as `measure` does)
PEERS = ("apns2", "aioapns")


@dataclass
class Result:
    name: str
    sent: int
    seconds: float
    cpu: float
    mock_cpu: float
    others_cpu: float  # every other process on the machine meanwhile, core-seconds
    counted: int  # APNs requests the mock counted while the contender ran (its warm-up included)
    expected: int
    failed: int = 0
    details: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.counted == self.expected


def run(args: list[str], timeout: float, **kwargs: object) -> tuple[bool, str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def install_apns2(prefix: Path) -> str:
    """Installs apns2 under `prefix`; returns the versions installed (raises RuntimeError when it cannot)."""
    ok, out = run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--fetch-retries=1",
                   "--prefix", str(prefix), f"apns2@{APNS2_VERSION}"], timeout=180)
    if not ok:
        raise RuntimeError(out.splitlines()[-1] if out else "npm failed")
    modules = prefix / "node_modules"
    versions = {name: json.loads((modules / name / "package.json").read_text())["version"]
                for name in ("apns2", "undici", "fast-jwt")}
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def install_aioapns(target: Path) -> str:
    ok, out = run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--timeout", "30", "--retries", "1", "--target", str(target), f"aioapns=={AIOAPNS_VERSION}"],
                  timeout=180)
    if not ok:
        raise RuntimeError(out.splitlines()[-1] if out else "pip failed")
    versions = dict(re.match(r"(.+)-([^-]+)\.dist-info$", p.name).groups()  # type: ignore[union-attr]
                    for p in target.glob("*.dist-info"))
    return ", ".join(f"{name} {versions.get(name, '?')}" for name in ("aioapns", "h2", "pyjwt", "cryptography"))


def usage(mock: Mock) -> tuple[float, float, int]:
    """(mock CPU seconds, machine busy seconds, APNs requests the mock has counted)."""
    return cpu_seconds(mock.proc.pid), machine_busy_seconds(), mock.counts_now().get("apns", -1)


def measure_pushlite(mock: Mock, url: str, n: int) -> Result:
    mock0, busy0, count0 = usage(mock)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rate = asyncio.run(measure("apns", url, n // BATCH, BATCH, CONCURRENCY))
    mock1, busy1, count1 = usage(mock)
    line = out.getvalue().strip()
    print(f"  {line}")
    found = re.search(r"delivered in ([\d.]+)s .* CPU (\d+) us each", line)
    if found is None:
        raise SystemExit(f"could not read sender_throughput.measure's figures from: {line!r}")
    seconds, cpu = n / rate, int(found.group(2)) * n / 1e6  # measure delivers all or exits
    return Result("pushlite sender", n, seconds, cpu, mock1 - mock0, busy1 - busy0 - cpu - (mock1 - mock0),
                  count1 - count0, n + WARMUP)


class Peer:
    """A peer's process: "ready" after its warm-up, "go" on stdin, then "done <delivered> <failed> <json>"."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         text=True, env=env, cwd=BENCH)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # end of output

    def expect(self, word: str, timeout: float) -> list[str]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.startswith(word):
            self.stop()
            tail = "\n    ".join(self.log.read_text(errors="replace").splitlines()[-10:])
            raise RuntimeError(f"{self.name}: expected {word!r}, got {line!r} (exit status {self.proc.poll()})\n"
                               f"    {tail}")
        return line.split(" ", 3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


def measure_peer(name: str, args: list[str], env: dict[str, str], tmp: Path, mock: Mock, n: int) -> Result:
    before_warmup = mock.counts_now().get("apns", -1)
    peer = Peer(name, args, env, tmp / f"{name}.log")
    try:
        peer.expect("ready", timeout=60)
        mock0, busy0, _ = usage(mock)
        cpu0, started = cpu_seconds(peer.proc.pid), time.perf_counter()
        assert peer.proc.stdin is not None
        peer.proc.stdin.write("go\n")
        peer.proc.stdin.flush()
        _, delivered, failed, details = peer.expect("done", timeout=300)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(peer.proc.pid) - cpu0
        mock1, busy1, count1 = usage(mock)
    finally:
        peer.stop()
    print(f"  {name}: {delivered} delivered, {failed} failed in {seconds:.2f}s = {n / seconds:,.0f}/s; "
          f"CPU {cpu / n * 1e6:.0f} us each; {details}")
    return Result(name, n, seconds, cpu, mock1 - mock0, busy1 - busy0 - cpu - (mock1 - mock0),
                  count1 - before_warmup, n + WARMUP, int(failed), details)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=20_000, help=f"per contender, a multiple of {BATCH}")
    parser.add_argument("--aioapns-chunk", type=int, default=AIOAPNS_CHUNK,
                        help="notifications aioapns sends at once with asyncio.gather")
    parser.add_argument("--skip", default="", help=f"comma-separated peers to leave out: {','.join(PEERS)}")
    args = parser.parse_args()
    n = args.notifications
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    if n <= 0 or n % BATCH or skip - set(PEERS):
        parser.error(f"--notifications must be a positive multiple of {BATCH}; --skip takes {', '.join(PEERS)}")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: the finally blocks stop every process

    results: list[Result] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pushlite-peers-") as tmp_name:
        tmp = Path(tmp_name)
        installed: dict[str, str] = {}
        for name, install, where in (("apns2", install_apns2, tmp / "npm"), ("aioapns", install_aioapns, tmp / "py")):
            if name in skip:
                continue
            try:
                installed[name] = install(where)
                print(f"{name}: installed {installed[name]}")
            except RuntimeError as error:
                print(f"{name}: not installed, left out ({error})")
                skipped.append(f"{name} (not installed)")
        cert, _ = tls = certificate(tmp)
        os.environ["SSL_CERT_FILE"] = cert  # pushlite's senders read it at each connect
        mock = Mock(tmp, tls=tls)
        url = mock.tls_url
        assert url is not None
        print(f"mock: {url} (HTTP/2 over TLS, pid {mock.proc.pid}); {n:,} notifications per contender, "
              f"{WARMUP} more to warm up")
        try:
            print("pushlite sender (this process):")
            results.append(measure_pushlite(mock, url, n))
            if "apns2" in installed:
                print(f"apns2, one Node process: {installed['apns2']}")
                env = {**os.environ, "NODE_PATH": str(tmp / "npm" / "node_modules"), "NODE_EXTRA_CA_CERTS": cert}
                results.append(measure_peer(
                    "apns2", ["node", str(BENCH / "peer_apns2.js"), url, str(n), str(BATCH)], env, tmp, mock, n))
            if "aioapns" in installed:
                print(f"aioapns, one Python process: {installed['aioapns']}")
                env = {**os.environ, "PYTHONPATH": str(tmp / "py")}
                results.append(measure_peer(
                    "aioapns", [sys.executable, str(BENCH / "peer_aioapns.py"), url, cert, str(n),
                                str(args.aioapns_chunk)],
                    env, tmp, mock, n))
        except RuntimeError as error:
            print(f"FAILED: {error}")
            return 1
        finally:
            totals = mock.stop()
            print(f"mock counted in all: {json.dumps(totals)}")

    print()
    print("| contender | notifications/s | CPU per notification | mock CPU per notification | mock counted |")
    print("|---|---|---|---|---|")
    for r in results:
        counted = f"{r.counted:,}" + ("" if r.counted == r.expected else f" (expected {r.expected:,})")
        print(f"| {r.name} | {r.sent / r.seconds:,.0f} | {r.cpu / r.sent * 1e6:.0f} µs | "
              f"{r.mock_cpu / r.sent * 1e6:.0f} µs | {counted} |")
    for name in skipped:
        print(f"| {name} | - | - | - | - |")
    for r in results:
        print(f"{r.name}: other processes on the machine took {r.others_cpu:.1f} core-s in {r.seconds:.1f}s")
    bad = [r.name for r in results if not r.ok]
    if bad:
        print(f"FAILED: {', '.join(bad)}: notifications failed or the mock's count differs from what was sent")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted")
