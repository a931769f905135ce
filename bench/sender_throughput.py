"""How many notifications per second one Python process pushes through a sender.

Starts `bench/mock_providers.js` (Node) on a free 127.0.0.1 port, builds one
sender against it with a key made on the spot, and sends N batches of M targets
through that same sender (connections and tokens reused, as in a worker):

    python bench/sender_throughput.py                      # APNs, 20 batches of 1,000
    python bench/sender_throughput.py --provider fcm
    python bench/sender_throughput.py --tls                # over TLS (ALPN h2), as to Apple and Google

With `--tls` the mock serves HTTP/2 over TLS with a certificate made on the
spot (its own CA), which the sender trusts through `SSL_CERT_FILE`; without
it, h2c (HTTP/2 with prior knowledge).

Prints delivered/s (wall clock) and the sender's CPU time per notification,
which is the steadier figure on a shared machine; exits non-zero if anything
was not delivered.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.senders import SenderSettings, Target, build_sender  # noqa: E402


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def start_mock(tls: tuple[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """The mock, and its h2c URL (with `tls`, a (cert, key) pair: its TLS one)."""
    proc = subprocess.Popen(
        ["node", str(ROOT / "bench" / "mock_providers.js"), "0", *(["--tls", *tls] if tls else [])],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if line[:1] != ["listening"]:
        proc.kill()
        raise SystemExit("mock_providers.js did not start (is node installed?)")
    if tls:
        return proc, f"https://127.0.0.1:{proc.stdout.readline().split()[1]}"
    return proc, f"http://127.0.0.1:{line[1]}"


def credential(provider: str, url: str) -> dict[str, str]:
    if provider == "apns":
        key = ec.generate_private_key(ec.SECP256R1())
        return {"key_id": "BENCH12345", "team_id": "TEAM123456", "private_key": _pem(key), "topic": "com.example.bench"}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "type": "service_account", "project_id": "bench", "private_key": _pem(rsa_key),
        "client_email": "bench@bench.iam.gserviceaccount.com", "token_uri": f"{url}/token",
    }


async def measure(provider: str, url: str, batches: int, size: int, concurrency: int) -> float:
    settings = SenderSettings(apns_endpoint=url, fcm_endpoint=url, max_concurrency=concurrency)
    payload = (
        {"aps": {"alert": {"title": "Hello", "body": "Hello, world!"}}, "data": {"id": 42}}
        if provider == "apns"
        else {"notification": {"title": "Hello", "body": "Hello, world!"}, "data": {"id": 42}}
    )
    platform = "apns" if provider == "apns" else "fcm"
    all_batches = [
        [Target(f"dev-{b}-{i}", f"{b:04x}{i:060x}", platform, None) for i in range(size)] for b in range(batches)
    ]
    async with build_sender(provider, credential(provider, url), settings) as sender:
        warm = await sender.send(all_batches[0][:100], payload)  # connect, token, first streams
        assert len(warm.delivered) == 100, warm.counts()
        delivered = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch in all_batches:
            outcome = await sender.send(batch, payload)
            delivered += len(outcome.delivered)
            if len(outcome.delivered) != len(batch):
                raise SystemExit(f"batch not fully delivered: {outcome.counts()}")
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    rate = delivered / elapsed
    print(f"{provider}: {delivered} delivered in {elapsed:.2f}s = {rate:,.0f}/s "
          f"({batches} batches x {size}, max_concurrency {concurrency}); "
          f"CPU {cpu / delivered * 1e6:.0f} us each = {delivered / cpu:,.0f}/s per busy core")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", choices=("apns", "fcm"), default="apns")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--tls", action="store_true", help="HTTP/2 over TLS to the mock (else h2c)")
    parser.add_argument("--url", help="use an already running mock instead of starting one")
    args = parser.parse_args()
    proc = None
    url = args.url
    tmp = tempfile.TemporaryDirectory(prefix="pushlite-bench-")
    if url is None:
        tls = None
        if args.tls:
            from _harness import certificate  # noqa: PLC0415 (imports the stack's dependencies)
            tls = certificate(Path(tmp.name))
            os.environ["SSL_CERT_FILE"] = tls[0]  # read by the senders' TLS context at each connect
        proc, url = start_mock(tls)
    print(f"mock: {url} ({'HTTP/2 over TLS' if url.startswith('https') else 'h2c'})")
    try:
        asyncio.run(measure(args.provider, url, args.batches, args.batch_size, args.concurrency))
    finally:
        if proc is not None:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
            print(f"mock counted: {out.strip()}")
        tmp.cleanup()


if __name__ == "__main__":
    main()
