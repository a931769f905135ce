"""A local APNs: HTTP/2 (h2c), verifies provider tokens and headers, answers by magic tokens.

Device tokens drive the answer by their prefix:

| prefix         | answer                                               |
|----------------|------------------------------------------------------|
| `dead`         | 410 Unregistered                                     |
| `bad`          | 400 BadDeviceToken                                   |
| `notopic`      | 400 DeviceTokenNotForTopic                           |
| `disallowed`   | 400 TopicDisallowed (failed, not dead nor retried)   |
| `busy`         | 429 TooManyRequests, `Retry-After: 1`                |
| `down`         | 503 ServiceUnavailable                               |
| `garbage`      | 500 with a body that is not JSON                     |
| `expired`      | 403 ExpiredProviderToken the first time only         |
| `staletoken`   | 403 ExpiredProviderToken every time                  |
| `flaky<N>`     | 503 for the first N requests for that token, then 200|
| `wait<N>`      | 429 with `Retry-After: N` the first time, then 200   |
| `shutdown`     | 503 Shutdown, then GOAWAY (streams after it are lost)|
| `drop`         | the TCP connection is cut instead of an answer       |
| anything else  | 200 with an `apns-id`                                |

With ``all_ok`` set, every token gets 200, magic or not (what failed was
fixed: an operator's requeue then delivers).

Requests that real APNs would refuse are refused the same way: a provider
token that does not verify (403 InvalidProviderToken), a topic of no app the
key may push to (400 BadTopic), a token of another app than the topic names
(400 DeviceTokenNotForTopic: every token is the main topic's app's unless
`bind(token, topic)` gave it to another app), a missing or mismatched push
type (400 InvalidPushType), a background push at priority 10 (400
BadPriority).
"""
from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.mocks.h2server import H2Server, Request, Response

PUSH_TYPES = {"alert", "background", "voip"}


@dataclass
class Recorded:
    """One request the mock accepted (its provider token verified)."""

    path: str
    token: str
    headers: dict[str, str]
    body: Any


def _error(status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> Response:
    body: dict[str, Any] = {"reason": reason}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    return Response.json(status, body, headers)


class APNsMock(H2Server):
    def __init__(self, public_key: ec.EllipticCurvePublicKey, key_id: str, team_id: str, topic: str) -> None:
        super().__init__()
        self.public_key = public_key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: list[Recorded] = []
            self.provider_tokens: list[str] = []  # distinct verified tokens, in order of first use
            self.seen: Counter[str] = Counter()  # requests per device token
            self.max_open_streams = 0
            # Wall-clock times of each request's arrival and answer, per device token.
            self.arrived: dict[str, list[float]] = {}
            self.answered: dict[str, list[float]] = {}
            self.delay = 0.0  # seconds each accepted request waits before its answer
            self.all_ok = False  # 200 for every token, magic or not
            self.token_topics: dict[str, str] = {}  # device token -> the app (bundle id) it belongs to

    def bind(self, token: str, topic: str) -> None:
        """Make ``token`` a device token of the app ``topic`` (another app of the same team)."""
        with self._lock:
            self.token_topics[token] = topic

    def _verify(self, authorization: str | None) -> str | None:
        """The provider token if it verifies, else None."""
        if not authorization or not authorization.startswith("bearer "):
            return None
        token = authorization[len("bearer "):]
        if token in self.provider_tokens:
            return token
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError:
            return None
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return None
        if abs(time.time() - claims["iat"]) > 3600:
            return None
        self.provider_tokens.append(token)
        return token

    async def handler(self, request: Request) -> Response:
        match = re.fullmatch(r"/3/device/([^/]+)", request.path)
        if request.method != "POST" or not match:
            return _error(404 if request.method == "POST" else 405, "BadPath" if request.method == "POST" else "MethodNotAllowed")
        device = match.group(1)
        headers = request.headers
        with self._lock:
            provider_token = self._verify(headers.get("authorization"))
        if provider_token is None:
            return _error(403, "InvalidProviderToken" if headers.get("authorization") else "MissingProviderToken")
        topic, push_type = headers.get("apns-topic"), headers.get("apns-push-type")
        with self._lock:
            apps = {self.topic, *self.token_topics.values()}
            app_of_token = self.token_topics.get(device, self.topic)
        if not topic or topic.removesuffix(".voip") not in apps:
            return _error(400, "BadTopic" if topic else "MissingTopic")
        if push_type not in PUSH_TYPES or (push_type == "voip") != topic.endswith(".voip"):
            return _error(400, "InvalidPushType")
        if topic.removesuffix(".voip") != app_of_token:
            return _error(400, "DeviceTokenNotForTopic")
        if push_type == "background" and headers.get("apns-priority") != "5":
            return _error(400, "BadPriority")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "BadPayload")
        with self._lock:
            self.requests.append(Recorded(request.path, device, dict(headers), body))
            self.seen[device] += 1
            count = self.seen[device]
            self.arrived.setdefault(device, []).append(time.time())
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self._answer(device, count)
        with self._lock:
            self.answered.setdefault(device, []).append(time.time())
        return answer

    def _answer(self, device: str, count: int) -> Response:
        if self.all_ok:
            return Response(200, b"", [("apns-id", str(uuid.uuid4()))])
        if device.startswith("dead"):
            return _error(410, "Unregistered")
        if device.startswith("notopic"):
            return _error(400, "DeviceTokenNotForTopic")
        if device.startswith("disallowed"):
            return _error(400, "TopicDisallowed")
        if device.startswith("bad"):
            return _error(400, "BadDeviceToken")
        if device.startswith("busy"):
            return _error(429, "TooManyRequests", [("retry-after", "1")])
        if device.startswith("down"):
            return _error(503, "ServiceUnavailable")
        if device.startswith("garbage"):
            return Response(500, b"<html>upstream exploded</html>", [("content-type", "text/html")])
        if device.startswith("staletoken") or (device.startswith("expired") and count == 1):
            return _error(403, "ExpiredProviderToken")
        if device.startswith("shutdown"):
            return Response.json(503, {"reason": "Shutdown"}, then="goaway")
        if device.startswith("drop"):
            return Response(0, then="drop")
        wait = re.match(r"wait(\d+)", device)
        if wait and count == 1:
            return _error(429, "TooManyRequests", [("retry-after", wait.group(1))])
        flaky = re.match(r"flaky(\d+)", device)
        if flaky and count <= int(flaky.group(1)):
            return _error(503, "ServiceUnavailable")
        return Response(200, b"", [("apns-id", str(uuid.uuid4()))])
