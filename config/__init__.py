"""Configuration classes, read from the environment when instantiated (12-factor).

`create_app(Config())` reads the process environment at that moment, never at
import time, so tests build a `TestingConfig` with explicit values instead of
patching globals.
"""
from __future__ import annotations

import os
import secrets

from cryptography.fernet import Fernet

from pushlite.storage import urls
from pushlite.storage.connection import QUEUE_NOT_ON_CLUSTER
from pushlite.subscriptions import DEFAULT_ENDPOINT_ALLOWLIST


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Production settings: `REDIS_URL`, `PUSHLITE_ADMIN_TOKEN` and
    `PUSHLITE_ENCRYPTION_KEY` come from the environment."""

    API_TITLE = "pushlite"
    API_VERSION = "1.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    # Served by pushlite itself from the swagger-ui-bundle package, so the docs
    # page works on a machine without internet access.
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    MAX_CONTENT_LENGTH = 1024 * 1024

    # Redis client timeouts: a Redis that is down or hung must turn into a 503
    # within 2 seconds, not a hung request.
    REDIS_SOCKET_TIMEOUT = 1.0
    REDIS_CONNECT_TIMEOUT = 1.0
    # After a Redis error meaning "unavailable", a web process answers 503 at
    # once, and PINGs Redis in the background this often until it answers.
    REDIS_BREAKER_RETRY_SECONDS = 0.5
    # With PUSHLITE_REDIS_MIN_REPLICAS, how long a write waits for its replicas.
    REDIS_WAIT_TIMEOUT_MS = 500

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.REDIS_URL = env.get("REDIS_URL") or None
        self.PUSHLITE_QUEUE_URL = env.get("PUSHLITE_QUEUE_URL") or self.REDIS_URL
        self.EMBEDDED = self.REDIS_URL is None
        self.PUSHLITE_ADMIN_TOKEN = env.get("PUSHLITE_ADMIN_TOKEN") or None
        self.PUSHLITE_ENCRYPTION_KEY = env.get("PUSHLITE_ENCRYPTION_KEY") or None
        self.PUSHLITE_FCM_ENDPOINT = env.get("PUSHLITE_FCM_ENDPOINT") or "https://fcm.googleapis.com"
        self.PUSHLITE_APNS_ENDPOINT = env.get("PUSHLITE_APNS_ENDPOINT") or None
        self.PUSHLITE_DRY_RUN = _flag(env.get("PUSHLITE_DRY_RUN"), default=self.EMBEDDED)
        self.PUSHLITE_MATRIX_GATEWAY_ALLOWLIST = env.get("PUSHLITE_MATRIX_GATEWAY_ALLOWLIST") or "https://*"
        # URL globs a browser's Web Push endpoint may match (pushlite.url_guard).
        self.PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST = (
            env.get("PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST") or DEFAULT_ENDPOINT_ALLOWLIST
        )
        # The VAPID JWT's `sub`: how a push service reaches the operator
        # (mailto: or https:). Apple's push service refuses a JWT without one.
        self.PUSHLITE_VAPID_SUBJECT = env.get("PUSHLITE_VAPID_SUBJECT") or ""
        self.PORT = int(env.get("PORT") or 8000)
        # Log lines: "text" (readable) or "json" (one object per line), from this level up.
        self.PUSHLITE_LOG_FORMAT = (env.get("PUSHLITE_LOG_FORMAT") or "text").strip().lower()
        self.PUSHLITE_LOG_LEVEL = (env.get("PUSHLITE_LOG_LEVEL") or "INFO").strip().upper()
        # One line per request: off by default, it costs about 13% of a device
        # registration's CPU under gunicorn (bench/register_throughput.py).
        self.PUSHLITE_ACCESS_LOG = _flag(env.get("PUSHLITE_ACCESS_LOG"), default=False)
        # "[host:]port" of a listener serving /metrics without the admin token
        # (gunicorn's master or `python -m pushlite` opens it); unset: none.
        self.PUSHLITE_METRICS_PORT = env.get("PUSHLITE_METRICS_PORT") or None
        replicas = (env.get("PUSHLITE_REDIS_MIN_REPLICAS") or "0").strip()
        if not replicas.isdigit():
            raise RuntimeError("PUSHLITE_REDIS_MIN_REPLICAS must be a whole number of replicas (0: do not wait)")
        self.PUSHLITE_REDIS_MIN_REPLICAS = int(replicas)
        if self.EMBEDDED:
            # Embedded mode is for trying pushlite out: make what is missing.
            self.PUSHLITE_ADMIN_TOKEN = self.PUSHLITE_ADMIN_TOKEN or secrets.token_urlsafe(24)
            self.PUSHLITE_ENCRYPTION_KEY = self.PUSHLITE_ENCRYPTION_KEY or Fernet.generate_key().decode()

    def validate(self) -> None:
        """Refuse to start a shared deployment without its required secrets,
        or with Redis URLs it cannot use."""
        if self.EMBEDDED:
            return
        kinds: dict[str, str] = {}
        for name in ("REDIS_URL", "PUSHLITE_QUEUE_URL"):
            try:
                kinds[name] = urls.parse(getattr(self, name)).kind
            except ValueError as exc:
                raise RuntimeError(f"{name}: {exc}") from None
            if name == "PUSHLITE_QUEUE_URL" and kinds[name] == urls.CLUSTER:
                raise RuntimeError(f"{name}: {QUEUE_NOT_ON_CLUSTER}")
        if self.PUSHLITE_REDIS_MIN_REPLICAS and kinds["REDIS_URL"] == urls.CLUSTER:
            raise RuntimeError("PUSHLITE_REDIS_MIN_REPLICAS works with redis:// and redis+sentinel://, "
                               "not with a Redis Cluster")
        if not self.PUSHLITE_ADMIN_TOKEN:
            raise RuntimeError("PUSHLITE_ADMIN_TOKEN must be set when REDIS_URL is set")
        if not self.PUSHLITE_ENCRYPTION_KEY:
            raise RuntimeError("PUSHLITE_ENCRYPTION_KEY must be set when REDIS_URL is set")
        try:
            Fernet(self.PUSHLITE_ENCRYPTION_KEY)
        except ValueError:
            raise RuntimeError("PUSHLITE_ENCRYPTION_KEY is not a Fernet key "
                               "(make one: python -c 'from cryptography.fernet import Fernet; "
                               "print(Fernet.generate_key().decode())')") from None


class TestingConfig(Config):
    """Settings for tests: an explicit Redis (or the in-process fake) and a fixed token."""

    TESTING = True

    def __init__(self, redis_url: str | None = None, **overrides: object) -> None:
        environ = {
            "PUSHLITE_ADMIN_TOKEN": "test-admin-token",
            "PUSHLITE_ENCRYPTION_KEY": "nAvXMyYq1PtqcKUzldnnEQ5FINvJcmgB3-DbTq8cmtw=",
        }
        if redis_url:
            environ["REDIS_URL"] = redis_url
        super().__init__(environ)
        for name, value in overrides.items():
            setattr(self, name, value)
