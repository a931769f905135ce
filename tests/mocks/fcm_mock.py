"""A local FCM HTTP v1 plus Google token endpoint, over HTTP/2 (h2c).

`POST /token` verifies the RS256 JWT-bearer assertion with the test public key
and hands out access tokens; `POST /v1/projects/<id>/messages:send` checks the
bearer token and the message shape (data values must be strings, as on the
real service) and answers by the message token's prefix:

| prefix      | answer                                                      |
|-------------|-------------------------------------------------------------|
| `dead`      | 404 NOT_FOUND, errorCode UNREGISTERED                       |
| `bad`       | 400 INVALID_ARGUMENT naming `message.token`                 |
| `invalid`   | 400 INVALID_ARGUMENT naming another field                   |
| `mismatch`  | 403 PERMISSION_DENIED, errorCode SENDER_ID_MISMATCH         |
| `busy`      | 429 RESOURCE_EXHAUSTED (QUOTA_EXCEEDED), `Retry-After: 1`    |
| `down`      | 503 UNAVAILABLE                                             |
| `garbage`   | 500 with a body that is not JSON                            |
| `unauth`    | 401 UNAUTHENTICATED whatever the access token               |
| otherwise   | 200 `{"name": "projects/<id>/messages/<n>"}`                |
"""
from __future__ import annotations

import itertools
import re
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.mocks.h2server import H2Server, Request, Response

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def _error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None,
           headers: list[tuple[str, str]] | None = None) -> Response:
    error = {"code": code, "message": message, "status": status, "details": details or []}
    return Response.json(code, {"error": error}, headers)


class FCMMock(H2Server):
    def __init__(self, public_key: rsa.RSAPublicKey, client_email: str, project_id: str) -> None:
        super().__init__()
        self.public_key = public_key
        self.client_email = client_email
        self.project_id = project_id
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.reset()

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def reset(self) -> None:
        with self._lock:
            self.exchanges = 0
            self.access_tokens: set[str] = set()
            self.messages: list[dict[str, Any]] = []  # the `message` objects accepted
            self.auth_headers: list[str] = []
            self.token_endpoint_status = 200  # set to 400 / 503 to make exchanges fail
            self.max_open_streams = 0

    def revoke_access_tokens(self) -> None:
        """Make every issued access token answer 401, as after a key rotation."""
        with self._lock:
            self.access_tokens.clear()

    async def handler(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        match = re.fullmatch(r"/v1/projects/([^/]+)/messages:send", request.path)
        if request.method == "POST" and match:
            return self._send(match.group(1), request)
        return _error(404, "NOT_FOUND", "no such method")

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.exchanges += 1
            if self.token_endpoint_status == 503:
                return Response(503, b"unavailable")
            if self.token_endpoint_status != 200:
                return Response.json(self.token_endpoint_status, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        form = parse_qs(request.body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or "assertion" not in form:
            return Response.json(400, {"error": "unsupported_grant_type"})
        try:
            # Leeway: tests move the sender's clock hours ahead to expire cached tokens.
            claims = jwt.decode(form["assertion"][0], self.public_key, algorithms=["RS256"], audience=self.token_uri,
                                options={"require": ["iss", "scope", "aud", "iat", "exp"]}, leeway=3 * 3600)
        except jwt.PyJWTError:
            return Response.json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if claims["iss"] != self.client_email or claims["scope"] != SCOPE or claims["exp"] - claims["iat"] > 3600:
            return Response.json(400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."})
        token = f"ya29.mock-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.access_tokens.add(token)
        return Response.json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _send(self, project_id: str, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        with self._lock:
            self.auth_headers.append(authorization)
            known = authorization.startswith("Bearer ") and authorization[7:] in self.access_tokens
        if not known:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if project_id != self.project_id:
            return _error(403, "PERMISSION_DENIED", "Permission denied on project.")
        try:
            message = request.json()["message"]
            token = message["token"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        data = message.get("data", {})
        if not all(isinstance(v, str) for v in data.values()):
            return _error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data' (TYPE_STRING)")
        with self._lock:
            self.messages.append(message)
        return self._answer(token)

    def _answer(self, token: str) -> Response:
        if token.startswith("dead"):
            return _error(404, "NOT_FOUND", "Requested entity was not found.", [{"@type": FCM_ERROR, "errorCode": "UNREGISTERED"}])
        if token.startswith("bad"):
            violation = {"field": "message.token", "description": "Invalid registration token"}
            return _error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                          [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"},
                           {"@type": BAD_REQUEST, "fieldViolations": [violation]}])
        if token.startswith("invalid"):
            violation = {"field": "message.android.ttl", "description": "Invalid duration"}
            return _error(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'",
                          [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"},
                           {"@type": BAD_REQUEST, "fieldViolations": [violation]}])
        if token.startswith("mismatch"):
            return _error(403, "PERMISSION_DENIED", "SenderId mismatch", [{"@type": FCM_ERROR, "errorCode": "SENDER_ID_MISMATCH"}])
        if token.startswith("busy"):
            return _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [{"@type": FCM_ERROR, "errorCode": "QUOTA_EXCEEDED"}],
                          [("retry-after", "1")])
        if token.startswith("down"):
            return _error(503, "UNAVAILABLE", "The service is currently unavailable.", [{"@type": FCM_ERROR, "errorCode": "UNAVAILABLE"}])
        if token.startswith("garbage"):
            return Response(500, b"<html>Internal error</html>", [("content-type", "text/html")])
        if token.startswith("unauth"):
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        return Response.json(200, {"name": f"projects/{self.project_id}/messages/{next(self._ids)}"})

