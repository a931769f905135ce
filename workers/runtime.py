"""What a worker process keeps for its whole life: Redis clients, the RQ
queues, one event loop in a background thread, and one sender per
(instance, app, provider) credential with its HTTP/2 connections and provider
tokens (app "" is the instance's own credential; the instance's VAPID pair is
its "web" credential).

Jobs call ``runtime()``; the first call builds it from the environment. The
embedded web app and the tests ``install`` their own.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from cryptography.fernet import Fernet
from rq import Queue

from config import Config
from pushlite import logs
from pushlite.storage import credentials
from pushlite.storage.cluster import DataClient
from pushlite.storage.connection import connect, connect_queue
from workers.lease import Leases
from workers.logged_job import LoggedJob
from workers.senders import CREDENTIAL_FREE_PROVIDERS, Sender, SenderSettings, build_sender

T = TypeVar("T")

FANOUT_QUEUE = "pushlite-fanout"
DELIVERY_QUEUE = "pushlite-delivery"


@dataclass
class DeliverySettings:
    batch_size: int = 1000
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    # A worker holds a lease on the fan-out or batch it works on and renews it
    # every third of this; a dead worker's item is taken over once it expires.
    lease_seconds: float = 10.0
    # How often a worker process runs the sweep (one worker at a time does).
    sweep_seconds: float = 2.0
    # A batch whose worker died this many times has its devices failed
    # instead of killing another worker.
    max_takeovers: int = 5


class Runtime:
    def __init__(
        self,
        data: DataClient,
        queue_connection: redis.Redis,
        fernet: Fernet,
        sender_settings: SenderSettings,
        *,
        dry_run: bool = False,
        is_async: bool = True,
        delivery: DeliverySettings | None = None,
        sender_factory: Callable[[str, dict[str, Any], SenderSettings], Sender] = build_sender,
    ) -> None:
        self.redis = data
        self.fernet = fernet
        self.sender_settings = sender_settings
        self.dry_run = dry_run
        self.delivery = delivery or DeliverySettings()
        self.sender_factory = sender_factory
        self.fanout_queue = Queue(FANOUT_QUEUE, connection=queue_connection, is_async=is_async, job_class=LoggedJob)
        self.delivery_queue = Queue(DELIVERY_QUEUE, connection=queue_connection, is_async=is_async, job_class=LoggedJob)
        self._senders: dict[tuple[str, str, str], tuple[str, Sender]] = {}
        self._credential_free: dict[str, Sender] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Names this process's leases; set when it is asked to stop (SIGTERM).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()
        self.leases = Leases(self)

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        if config.PUSHLITE_ENCRYPTION_KEY is None:  # Config.validate() refuses this too
            raise RuntimeError("PUSHLITE_ENCRYPTION_KEY must be set when REDIS_URL is set")
        data = connect(config.REDIS_URL, socket_timeout=None)
        return cls(
            data,
            connect_queue(config.PUSHLITE_QUEUE_URL, data, socket_timeout=None),
            Fernet(config.PUSHLITE_ENCRYPTION_KEY),
            sender_settings(lambda name: getattr(config, name)),
            dry_run=config.PUSHLITE_DRY_RUN,
            is_async=not config.EMBEDDED,
        )

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run a coroutine on the process's one event loop (from any thread),
        logging with the caller's log context."""
        return self.submit(coroutine).result()

    def submit(self, coroutine: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start a coroutine on the process's one event loop (from any thread),
        logging with the caller's log context; its result comes in the future."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="pushlite-senders", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(logs.carry(logs.current(), coroutine), self._loop)

    def senders(self, instance_id: str) -> dict[tuple[str, str], Sender]:
        """The instance's senders by (app, provider) (app "" for the instance's
        own credentials), each rebuilt when its credential changed (only
        those are decrypted)."""
        stored = credentials.ciphertexts(self.redis, instance_id)
        out = {}
        with self._lock:
            for (app, provider), version in stored.items():
                key = (instance_id, app, provider)
                cached = self._senders.get(key)
                if cached is None or cached[0] != version:
                    if cached is not None:
                        self._close_later(cached[1])
                    credential = credentials.decrypt(self.fernet, instance_id, app, provider, version)
                    cached = (version, self.sender_factory(provider, credential, self.sender_settings))
                    self._senders[key] = cached
                out[app, provider] = cached[1]
            for key in [k for k in self._senders if k[0] == instance_id and k[1:] not in stored]:
                self._close_later(self._senders.pop(key)[1])
        return out

    def credential_free_senders(self, providers: set[str]) -> dict[tuple[str, str], Sender]:
        """Senders that need no credential (Matrix gateways), built once per
        process on first use and shared by every instance; keyed like
        ``senders`` (app "")."""
        out = {}
        with self._lock:
            for provider in providers & set(CREDENTIAL_FREE_PROVIDERS):
                if provider not in self._credential_free:
                    self._credential_free[provider] = self.sender_factory(provider, {}, self.sender_settings)
                out["", provider] = self._credential_free[provider]
        return out

    def _close_later(self, sender: Sender) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(sender.aclose(), self._loop)

    def close(self) -> None:
        with self._lock:
            senders = [s for _, s in self._senders.values()] + list(self._credential_free.values())
            self._senders.clear()
            self._credential_free.clear()
        if self._loop is not None:
            for sender in senders:
                asyncio.run_coroutine_threadsafe(sender.aclose(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None


def sender_settings(setting: Callable[[str], Any]) -> SenderSettings:
    """The senders' settings from configuration (a Config object or app.config)."""
    return SenderSettings(
        fcm_endpoint=setting("PUSHLITE_FCM_ENDPOINT"),
        apns_endpoint=setting("PUSHLITE_APNS_ENDPOINT"),
        matrix_gateway_allowlist=setting("PUSHLITE_MATRIX_GATEWAY_ALLOWLIST"),
        webpush_endpoint_allowlist=setting("PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST"),
        vapid_subject=setting("PUSHLITE_VAPID_SUBJECT"),
    )


_runtime: Runtime | None = None


def install(runtime_: Runtime | None) -> None:
    global _runtime
    if _runtime is not None and _runtime is not runtime_:
        _runtime.close()
    _runtime = runtime_


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_config(Config())
    return _runtime
