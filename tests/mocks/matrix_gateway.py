"""A local Matrix push gateway (HTTP/1.1): ``POST /_matrix/push/v1/notify``.

It records every request and answers by the pushkeys of the request's devices:

| a pushkey starting with | answer |
|-------------------------|--------|
| `reject`                | 200, that pushkey listed in `rejected` |
| `busy`                  | 429 with `Retry-After: 1` for the whole request |
| `down`                  | 503 for the whole request |
| `bad`                   | 400 for the whole request |
| otherwise               | 200 `{"rejected": []}` |
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOTIFY_PATH = "/_matrix/push/v1/notify"


@dataclass
class GatewayRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def notification(self) -> dict[str, Any]:
        return self.body["notification"]

    @property
    def pushkeys(self) -> list[str]:
        return [d["pushkey"] for d in self.notification["devices"]]


class MatrixGatewayMock:
    def __init__(self) -> None:
        self.requests: list[GatewayRequest] = []
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if self.path != NOTIFY_PATH:
                    return self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
                body = json.loads(raw)
                request = GatewayRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with mock._lock:
                    mock.requests.append(request)
                keys = request.pushkeys
                if any(k.startswith("busy") for k in keys):
                    return self._answer(429, {"errcode": "M_LIMIT_EXCEEDED"}, {"Retry-After": "1"})
                if any(k.startswith("down") for k in keys):
                    return self._answer(503, {"error": "down"})
                if any(k.startswith("bad") for k in keys):
                    return self._answer(400, {"error": "bad request"})
                self._answer(200, {"rejected": [k for k in keys if k.startswith("reject")]})

            def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{NOTIFY_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="matrix-gateway-mock", daemon=True)

    def __enter__(self) -> "MatrixGatewayMock":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
