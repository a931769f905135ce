"""One peer of bench/peers.py: `aioapns` (what Sygnal uses) sending APNs
notifications to the bench mock, in this one Python process.

    PYTHONPATH=<aioapns installed with pip --target> \
        python bench/peer_aioapns.py https://127.0.0.1:<port> CA_FILE N BATCH

Token auth with an EC (P-256) key made here. It sends 100 notifications
(connection, JWT), prints "ready", waits for "go" on stdin, sends N
notifications, BATCH at a time with `asyncio.gather` (aioapns opens a
connection per 1,000 streams in flight, up to `max_connections`, and keeps
to the server's SETTINGS_MAX_CONCURRENT_STREAMS), then prints
"done <delivered> <failed> <details as JSON>" and exits.

One thing differs from aioapns as shipped: the host and port (aioapns has
no endpoint option; its protocol classes hold api.push.apple.com:443), so a
subclass names the mock's. (aioapns matches a response to its request by the
`apns-id` APNs copies from the request; the bench mock copies it too.)
It also counts the requests aioapns had to resend because their body did not
fit the connection's flow-control window: aioapns then leaves the stream
open with its headers sent, sleeps a second and sends the notification again
on a new stream (a stream the server counts only when the connection closes).
The TLS context is aioapns's documented `ssl_context` argument: the mock's CA,
and ALPN h2 (the default context aioapns makes offers no ALPN, which Apple
accepts but Node's HTTP/2 server does not).
"""
from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any
from urllib.parse import urlsplit

from aioapns import APNs, NotificationRequest
from aioapns.connection import APNsProductionClientProtocol
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.exceptions import FlowControlError

WARMUP = 100
PAYLOAD = {"aps": {"alert": {"title": "Hello", "body": "Hello, world!"}}, "data": {"id": 42}}


flow_control_errors = 0  # requests whose body did not fit the connection's window (see the docstring)


def protocol_for(url: str) -> type[APNsProductionClientProtocol]:
    parts = urlsplit(url)

    class MockProtocol(APNsProductionClientProtocol):
        APNS_SERVER = parts.hostname or "127.0.0.1"
        APNS_PORT = parts.port or 443

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            send = self.conn.send_data

            def send_data(*args: Any, **kwargs: Any) -> None:
                global flow_control_errors
                try:
                    send(*args, **kwargs)
                except FlowControlError:
                    flow_control_errors += 1
                    raise

            self.conn.send_data = send_data  # type: ignore[method-assign]

    return MockProtocol


def requests(prefix: int, count: int) -> list[NotificationRequest]:
    return [NotificationRequest(f"{prefix:04x}{i:060x}", PAYLOAD) for i in range(count)]


async def send(apns: APNs, batch: list[NotificationRequest]) -> tuple[int, int]:
    results = await asyncio.gather(*(apns.send_notification(r) for r in batch), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException) or not r.is_successful]
    if failed:
        print(f"aioapns: {len(failed)} failed, the first: {failed[0]!r}", file=sys.stderr)
    return len(results) - len(failed), len(failed)


async def main() -> None:
    url, ca_file, total, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["h2"])
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    apns = APNs(key=key, key_id="BENCH12345", team_id="TEAM123456", topic="com.example.bench", ssl_context=context)
    apns.pool.protocol_class = protocol_for(url)
    ok, _ = await send(apns, requests(0xFFFF, WARMUP))
    if ok != WARMUP:
        raise SystemExit("aioapns: the warm-up notifications failed")
    batches = [requests(b, min(size, total - b * size)) for b in range((total + size - 1) // size)]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while (line := await loop.run_in_executor(None, sys.stdin.readline)) != "go\n":
        if not line:
            raise SystemExit(2)  # the bench went away
    delivered = failed = 0
    for batch in batches:
        ok, bad = await send(apns, batch)
        delivered += ok
        failed += bad
    details = {"connections": len(apns.pool.connections), "flow_control_retries": flow_control_errors}
    print(f"done {delivered} {failed} {json.dumps(details)}", flush=True)
    apns.pool.close()


if __name__ == "__main__":
    asyncio.run(main())
