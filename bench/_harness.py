"""What the delivery benchmarks share: a whole pushlite on 127.0.0.1.

`Stack` starts a throwaway redis-server, the Node provider mock
(`mock_providers.js`), gunicorn serving `wsgi:app` and N `python -m workers`
processes, all configured the way a deployment is (environment only), and
stops them all when its `with` block ends, however it ends (SIGTERM included).
`Stack.tenant()` makes an instance and stores APNs and FCM credentials through
the admin API; `add_devices` writes devices straight through the storage
scripts, pipelined, which is much faster than the device API. The mock also
plays a browser push service over TLS (a certificate made per run, which the
workers trust through SSL_CERT_FILE); `web_tokens` makes subscriptions to it.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from rq.job import Job
from rq.registry import FailedJobRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pushlite.storage import devices as storage_devices  # noqa: E402
from pushlite.storage.connection import connect  # noqa: E402
from pushlite.storage import interests as storage_interests  # noqa: E402
from workers.runtime import DELIVERY_QUEUE, FANOUT_QUEUE  # noqa: E402
from tests.redis_servers import RedisClusterServers  # noqa: E402
from register_throughput import PAD, TOKEN_LENGTH, cpu_seconds, free_port, stop, wait_until  # noqa: E402

ADMIN_TOKEN = "bench-admin-token"


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def describe_code(path: Path) -> str:
    """Which code a run used: the commit, and any uncommitted changes to the service's code."""
    git = ["git", "-C", str(path)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"{path} (not a git checkout)"
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "pushlite", "workers", "config", "wsgi.py"],
                           capture_output=True, text=True).stdout.splitlines()
    return f"{path} at {head.stdout.strip()}" + (
        f" + uncommitted changes to {len(dirty)} file(s) of pushlite/, workers/, config/" if dirty else ""
    )


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (not idle or waiting) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM`-style field of /proc/<pid>/status, in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def certificate(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for IP 127.0.0.1 (its own CA): (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushlite bench push service")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "mock-cert.pem", directory / "mock-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(pem(key).encode())
    return str(cert_file), str(key_file)


class Mock:
    """`node bench/mock_providers.js` on a free port (and its TLS twin, for web
    push, with `tls`); its stdout is read by a thread."""

    def __init__(self, tmp: Path, seq: bool = False, tls: tuple[str, str] | None = None) -> None:
        args = ["node", str(ROOT / "bench" / "mock_providers.js"), "0", *(["--seq"] if seq else []),
                *(["--tls", *tls] if tls else [])]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=tmp)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if first[:1] != ["listening"]:
            self.proc.kill()
            raise SystemExit("bench/mock_providers.js did not start (is node installed?)")
        self.port = int(first[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_url = f"https://127.0.0.1:{self.proc.stdout.readline().split()[1]}" if tls else None
        self.counts: dict[str, int] | None = None
        self.counts_seen = 0
        self.received: dict[int, float] = {}  # seq -> wall clock seconds (--seq)
        self.arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("seq "):
                _, seq, ms = line.split()
                with self.arrived:
                    self.received[int(seq)] = float(ms) / 1000
                    self.arrived.notify_all()
            elif line.startswith("{"):
                with self.arrived:
                    self.counts = json.loads(line)
                    self.counts_seen += 1
                    self.arrived.notify_all()

    def wait_for(self, seq: int, timeout: float) -> float | None:
        """When `seq` arrived (wall clock seconds), or None after `timeout`."""
        with self.arrived:
            self.arrived.wait_for(lambda: seq in self.received, timeout)
            return self.received.get(seq)

    def counts_now(self, timeout: float = 5.0) -> dict[str, int]:
        """The request counts so far (the mock prints them on SIGUSR2)."""
        with self.arrived:
            seen = self.counts_seen
            self.proc.send_signal(signal.SIGUSR2)
            self.arrived.wait_for(lambda: self.counts_seen > seen, timeout)
            return dict(self.counts or {})

    def stop(self) -> dict[str, int] | None:
        """Stop the mock; returns its request counts."""
        stop(self.proc)
        self._reader.join(timeout=5)
        return self.counts


@dataclass
class Tenant:
    id: str
    secret_key: str


class Stack:
    """redis-server, the mock, gunicorn and `workers` processes; use as a context manager."""

    def __init__(self, workers: int = 2, web_workers: int = 4, seq: bool = False, code: Path = ROOT,
                 aof: bool = False, cluster: bool = False, tls: bool = False) -> None:
        """`code`: the checkout gunicorn and the workers run from (another one to
        compare a change, e.g. a `git worktree`); the bench's own storage calls use this one.
        `cluster`: the data on a Redis Cluster (three masters, a replica each),
        the RQ queues on the redis-server. `tls`: APNs and FCM spoken over TLS
        (ALPN h2) to the mock's TLS port, as to Apple and Google; else h2c."""
        self.n_workers, self.n_web, self.seq, self.code, self.tls = workers, web_workers, seq, Path(code), tls
        self.aof = aof  # redis-server with appendonly yes / appendfsync everysec (restart_redis keeps the data)
        self.cluster: RedisClusterServers | None = RedisClusterServers() if cluster else None
        self.procs: list[subprocess.Popen] = []
        self.worker_procs: list[subprocess.Popen] = []
        self.mock: Mock | None = None
        self.mock_counts: dict[str, int] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="pushlite-bench-")
        self.tmp = Path(self._tmp.name)

    def __enter__(self) -> "Stack":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that __exit__ still runs
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, args: list[str], log: str, **kwargs: Any) -> subprocess.Popen:
        out = open(self.tmp / log, "wb")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.code, **kwargs)
        out.close()
        self.procs.append(proc)
        return proc

    def _start(self) -> None:
        redis_port, self.web_port = free_port(), free_port()
        self.redis_args = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "yes" if self.aof else "no", "--appendfsync", "everysec", "--dir", str(self.tmp)]
        self.redis_proc = self._spawn(self.redis_args, "redis.log")
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.queue = self.redis = redis.Redis(port=redis_port, decode_responses=True)
        wait_until(self.redis.ping, "redis-server", self.redis_proc)
        data_url = self.redis_url
        if self.cluster is not None:
            self.cluster.start()
            data_url = self.cluster.url
            self.redis = connect(data_url, socket_timeout=None)
        self.certificate = certificate(self.tmp)
        self.mock = Mock(self.tmp, seq=self.seq, tls=self.certificate)
        self.env = {
            **os.environ,
            "REDIS_URL": data_url,
            "PUSHLITE_QUEUE_URL": self.redis_url,
            "PUSHLITE_ADMIN_TOKEN": ADMIN_TOKEN,
            "PUSHLITE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PUSHLITE_APNS_ENDPOINT": self.provider_url,
            "PUSHLITE_FCM_ENDPOINT": self.provider_url,
            "PUSHLITE_DRY_RUN": "0",
            # Browsers' push endpoints: the mock's TLS port, a host the allowlist names.
            "PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST": f"{self.mock.tls_url}/*",
            "PUSHLITE_VAPID_SUBJECT": "mailto:bench@example.com",
            "SSL_CERT_FILE": self.certificate[0],
            "PYTHONPATH": str(self.code),
            "PUSHLITE_LOG_FORMAT": "json",  # each job's line (with its duration) is read by job_intervals
        }
        self.web_proc = self._spawn(
            [sys.executable, "-m", "gunicorn", "-w", str(self.n_web), "-b", f"127.0.0.1:{self.web_port}",
             "--log-level", "warning", "wsgi:app"],
            "gunicorn.log", env=self.env,
        )
        for i in range(self.n_workers):
            self.worker_procs.append(self._spawn([sys.executable, "-m", "workers"], f"worker{i}.log", env=self.env))
        wait_until(lambda: self.request("GET", "/healthz")[0] == 200, "gunicorn", self.web_proc)
        for proc in self.worker_procs:
            wait_until(lambda: self.queue.scard("rq:workers") >= self.n_workers, "workers", proc)

    def restart_redis(self, down_seconds: float = 1.0) -> None:
        """SIGKILL redis-server and start it again on the same port and directory (its AOF, if any)."""
        self.redis_proc.kill()
        self.redis_proc.wait(5)
        self.procs.remove(self.redis_proc)
        time.sleep(down_seconds)
        self.redis_proc = self._spawn(self.redis_args, "redis.log")
        wait_until(self.redis.ping, "redis-server", self.redis_proc)

    @property
    def provider_url(self) -> str:
        """Where the workers reach APNs and FCM: the mock's TLS port with `tls`, else its h2c one."""
        assert self.mock is not None and self.mock.tls_url is not None
        return self.mock.tls_url if self.tls else self.mock.url

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.worker_procs]

    def request(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> tuple[int, Any]:
        """One HTTP request to gunicorn (sync workers close the connection after each)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def tenant(self) -> Tenant:
        """A new instance with APNs and FCM credentials (keys made on the spot) pointing at the mock."""
        status, created = self.request("POST", "/admin/v1/instances", {"name": "bench"})
        assert status == 201, (status, created)
        iid = created["id"]
        apns = {
            "key_id": "BENCH12345", "team_id": "TEAM123456", "topic": "com.example.bench",
            "environment": "production", "private_key": pem(ec.generate_private_key(ec.SECP256R1())),
        }
        fcm = {"service_account": {
            "type": "service_account", "project_id": "bench", "private_key_id": "0123456789abcdef",
            "private_key": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "client_email": "bench@bench.iam.gserviceaccount.com", "token_uri": f"{self.provider_url}/token",
        }}
        for provider, body in (("apns", apns), ("fcm", fcm)):
            status, answer = self.request("PUT", f"/admin/v1/instances/{iid}/credentials/{provider}", body)
            assert status == 200, (provider, status, answer)
        return Tenant(iid, created["secret_key"])

    def publish(self, tenant: Tenant, body: dict[str, Any]) -> str:
        status, answer = self.request(
            "POST", f"/publish_api/v1/instances/{tenant.id}/publishes/interests", body, tenant.secret_key
        )
        assert status == 200, (status, answer)
        return answer["publishId"]

    def publish_status(self, tenant: Tenant, publish_id: str) -> dict[str, Any]:
        status, answer = self.request(
            "GET", f"/publish_api/v1/instances/{tenant.id}/publishes/{publish_id}", token=tenant.secret_key
        )
        assert status == 200, (status, answer)
        return answer

    def failed_jobs(self) -> list[str]:
        """One line per job in RQ's failed registries: queue, function, last line of its exception."""
        connection = redis.Redis.from_url(self.redis_url)  # RQ pickles: no decoding
        out = []
        for queue in (FANOUT_QUEUE, DELIVERY_QUEUE):
            registry = FailedJobRegistry(queue, connection=connection)
            for job in Job.fetch_many(registry.get_job_ids(), connection=connection):
                if job is None:
                    continue
                result = job.latest_result()
                error = (result.exc_string or "").strip().splitlines() if result else []
                out.append(f"{queue}: {job.func_name}: {error[-1] if error else '?'}")
        return out

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each part of the stack, children included
        (gunicorn's workers, a worker's RQ scheduler)."""
        parts = {f"worker{i}": p.pid for i, p in enumerate(self.worker_procs)}
        parts.update(gunicorn=self.web_proc.pid, redis=self.redis_proc.pid)
        if self.mock is not None:
            parts["mock"] = self.mock.proc.pid
        spent = {name: cpu_seconds(pid) for name, pid in parts.items()}
        if self.cluster is not None:  # "redis" holds the queues; the data is on the cluster's nodes
            live = [node for node in self.cluster.nodes if node.process]
            masters = {node.port for node in self.cluster.masters()}
            spent["cluster masters"] = sum(cpu_seconds(n.process.pid) for n in live if n.port in masters)
            spent["cluster replicas"] = sum(cpu_seconds(n.process.pid) for n in live if n.port not in masters)
        return spent

    def job_intervals(self, worker: int, publish_id: str) -> list[tuple[float, float]]:
        """(start, end) wall-clock seconds of each job a worker ran for a
        publish, from the line each job logs when it ends (``LoggedJob``: its
        time, to the millisecond, and its duration)."""
        path = self.tmp / f"worker{worker}.log"
        out = []
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("publish_id") != publish_id or "duration_ms" not in record:
                continue
            end = datetime.datetime.strptime(record["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            out.append((end - record["duration_ms"] / 1000, end))
        return sorted(out)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.tmp / name
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        """Workers and gunicorn first, then the mock, then Redis. (SIGTERM;
        SIGKILL after 15 s, as a warm RQ shutdown finishes the job in hand.)"""
        for proc in self.procs:
            if proc is not self.redis_proc and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not self.redis_proc:
                stop(proc)
        if self.mock is not None:
            self.mock_counts = self.mock.stop()
            self.mock = None
        if self.procs:
            stop(self.redis_proc)
        if self.cluster is not None:
            self.cluster.stop()
        self.procs = []
        self._tmp.cleanup()


def apns_token(i: int) -> str:
    return hashlib.sha256(b"bench-apns-%d" % i).hexdigest()  # 64 hex digits, like a real one


def fcm_token(i: int) -> str:
    token = "f%011d:APA91b%s" % (i, PAD)  # 163 chars of [A-Za-z0-9_-:], like a real registration token
    assert len(token) == TOKEN_LENGTH
    return token


def web_tokens(count: int, push_service: str, browsers: int = 64) -> Iterator[tuple[str, str]]:
    """(platform, token) pairs of browsers subscribed to the mock's push
    service: what the Beams Web SDK registers (base64 of the subscription's
    JSON), each with its own endpoint; `browsers` key pairs are shared round
    robin (the sender's work per message is the same: one ECDH with the
    browser's key, AES-GCM)."""
    keys_ = [ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint) for _ in range(browsers)]

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    for i in range(count):
        subscription = {"endpoint": f"{push_service}/wpush/bench-{i:08d}-{'x' * 120}", "expirationTime": None,
                        "keys": {"p256dh": b64url(keys_[i % browsers]), "auth": b64url(hashlib.md5(b"%d" % i).digest())}}
        yield "web", base64.b64encode(json.dumps(subscription, separators=(",", ":")).encode()).decode()


def half_and_half(count: int) -> Iterator[tuple[str, str]]:
    """(platform, token) pairs: even numbers APNs, odd numbers FCM."""
    for i in range(count):
        yield ("apns", apns_token(i)) if i % 2 == 0 else ("fcm", fcm_token(i))


def add_devices(
    client: redis.Redis,
    instance_id: str,
    devices_: Iterable[tuple[str, str]],
    interest: str,
    batch: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Register devices and subscribe them to `interest`, `batch` devices per
    round trip; returns how many.

    These are the commands `devices.register` and `interests.add` run
    (`register_command`, `add_command`), sent through `devices.call_many`,
    which pipelines them. Every answer is checked; a fresh token's device id
    is its derived id.
    """
    total = 0
    pending: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal total
        commands, derived_ids = [], []
        for platform, token in pending:
            register = storage_devices.register_command(instance_id, platform, token)
            derived_ids.append(register.devices[0])
            commands += [register, storage_interests.add_command(register.devices[0], None, [interest])]
        answers = storage_devices.call_many(client, instance_id, commands)
        for derived, registered, added in zip(derived_ids, answers[::2], answers[1::2]):
            if registered[:2] != ["ok", derived] or added != ["ok"]:
                raise SystemExit(f"storing device {derived} failed: {registered} / {added}")
        total += len(pending)
        pending.clear()
        if progress:
            progress(total)

    for device in devices_:
        pending.append(device)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return total


class RssSampler:
    """Samples VmRSS of some processes (and their children) every `interval` seconds in a thread."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.max_kb: dict[int, int] = {pid: 0 for pid in pids}
        self.child_max_kb: dict[int, int] = {pid: 0 for pid in pids}  # largest child (RQ's scheduler)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.max_kb[pid] = max(self.max_kb[pid], status_kb(pid, "VmRSS"))
                for child in children(pid):
                    self.child_max_kb[pid] = max(self.child_max_kb[pid], status_kb(child, "VmRSS"))
            self.samples += 1
            self._stop.wait(self.interval)
