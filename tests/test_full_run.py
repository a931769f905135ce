"""A full run, as deployed: gunicorn (the Procfile's web line, two workers,
reading gunicorn.conf.py) and `python -m workers` against a real
redis-server, logging JSON at DEBUG, delivering to the local APNs, FCM, Web
Push and Matrix gateway mocks. Representative traffic goes through every API
family, the console and the admin API, right and wrong; then:

- every line either process wrote is one JSON object with its fields;
- no secret key, admin or encryption key, provider key, client token, push
  token, user JWT, VAPID private key or provider access token is in any line;
- /metrics adds up both gunicorn workers, on the admin-token route and on
  PUSHLITE_METRICS_PORT (served by gunicorn's master);
- a publish's request id is on the worker's lines for its jobs.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from pushlite.storage import vapid
from tests.conftest import RedisServer, free_port
from tests.mocks.matrix_gateway import MatrixGatewayMock
from tests.mocks.providers import (
    APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, FCM_EMAIL, FCM_PROJECT, VAPID_SUBJECT, pem,
)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "full-run-admin-token-5f1c2d9e8b7a"
ENCRYPTION_KEY = "nAvXMyYq1PtqcKUzldnnEQ5FINvJcmgB3-DbTq8cmtw="
PUBLISH_REQUEST_ID = "full-run-publish-1"
REGISTRATIONS = 12  # FCM devices registered through the Beams device API
REGISTERED_KEY = ("pushlite_http_requests_total", frozenset({
    ("family", "beams"), ("route", "/device_api/v1/instances/<instance_id>/devices/fcm"), ("method", "POST"),
    ("status", "200")}))


def wait_for(condition, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def user_jwt(iid: str, secret: str, user: str) -> str:
    return jwt.encode({"sub": user, "iss": f"pushlite:{iid}", "exp": int(time.time()) + 600}, secret, "HS256")


def key_lines(pem_text: str) -> list[str]:
    """The base64 lines of a PEM key: any of them in a log line would leak it."""
    return [line for line in pem_text.splitlines() if line and not line.startswith("-----")]


class Run:
    """What the fixture leaves for the tests: the lines, the secrets, the metrics."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.lines: dict[str, list[str]] = {}
        self.metrics: dict[tuple[str, frozenset], float] = {}
        self.port_metrics: dict[tuple[str, frozenset], float] = {}
        self.publish_id = ""
        self.instance_id = ""

    def secret(self, name: str, value: str) -> str:
        self.secrets[name] = value
        return value


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def stored_credentials(apns_key, fcm_key, _fcm_server) -> dict[str, dict[str, Any]]:
    """The provider credentials the run stores, by provider."""
    return {
        "fcm": {"type": "service_account", "project_id": FCM_PROJECT, "private_key_id": "0123456789abcdef",
                "private_key": pem(fcm_key), "client_email": FCM_EMAIL, "client_id": "1",
                "token_uri": _fcm_server.token_uri},
        "apns": {"key_id": APNS_KEY_ID, "team_id": APNS_TEAM_ID, "private_key": pem(apns_key),
                 "topic": APNS_TOPIC, "environment": "production"},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory, _apns_server, _fcm_server, _webpush_server, webpush_certificate, apns_key, fcm_key,
        stored_credentials):
    logs_dir = tmp_path_factory.mktemp("full-run")
    redis_server = RedisServer()
    redis_server.start()
    for mock in (_apns_server, _fcm_server):
        mock.reset()
    push = _webpush_server.service
    push.reset()
    metrics_port = free_port()
    web_port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "PUSHLITE_ADMIN_TOKEN": ADMIN_TOKEN,
        "PUSHLITE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PUSHLITE_APNS_ENDPOINT": _apns_server.url,
        "PUSHLITE_FCM_ENDPOINT": _fcm_server.url,
        "PUSHLITE_DRY_RUN": "0",
        "PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST": push.origin + "/*",
        "PUSHLITE_MATRIX_GATEWAY_ALLOWLIST": "http://127.0.0.1:*/*",
        "PUSHLITE_VAPID_SUBJECT": VAPID_SUBJECT,
        "PUSHLITE_LOG_FORMAT": "json",
        "PUSHLITE_LOG_LEVEL": "DEBUG",
        "PUSHLITE_ACCESS_LOG": "1",
        "PUSHLITE_METRICS_PORT": f"127.0.0.1:{metrics_port}",
        "SSL_CERT_FILE": webpush_certificate[0],
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    procs: dict[str, subprocess.Popen] = {}
    files = {name: (logs_dir / f"{name}.out", logs_dir / f"{name}.err") for name in ("web", "worker")}

    def start(name: str, args: list[str]) -> None:
        out, err = (open(path, "wb") for path in files[name])
        procs[name] = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err)
        out.close()
        err.close()

    result = Run()
    base = f"http://127.0.0.1:{web_port}"
    try:
        start("web", [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{web_port}", "wsgi:app"])
        wait_for(lambda: _answers(base + "/healthz"), 20, "gunicorn")
        start("worker", [sys.executable, "-m", "workers"])
        with MatrixGatewayMock() as gateway:
            traffic(result, base, push, gateway, stored_credentials)
            # Each worker writes its request metrics once a second (web.FLUSH_SECONDS):
            # scrape until both listeners show every registration (or 10 s have passed).
            deadline = time.monotonic() + 10
            while True:
                result.metrics = parse_metrics(requests.get(base + "/metrics", headers=admin(), timeout=10).text)
                result.port_metrics = parse_metrics(
                    requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text)
                counted = [m.get(REGISTERED_KEY, 0) for m in (result.metrics, result.port_metrics)]
                if min(counted) >= REGISTRATIONS or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        result.secrets.update(provider_secrets(_fcm_server, _apns_server, fcm_key, apns_key, redis_server.url,
                                               result.instance_id))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        redis_server.stop()
    for name, paths in files.items():
        result.lines[name] = [line for path in paths for line in path.read_text(errors="replace").splitlines()]
    return result


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def traffic(run: Run, base: str, push, gateway: MatrixGatewayMock, stored: dict[str, dict[str, Any]]) -> None:
    """Every family, the console and the admin API, with right and wrong credentials."""
    def call(method: str, path: str, expect: int | tuple[int, ...], **kwargs: Any) -> requests.Response:
        response = requests.request(method, base + path, timeout=10, **kwargs)
        allowed = expect if isinstance(expect, tuple) else (expect,)
        assert response.status_code in allowed, (method, path, response.status_code, response.text)
        return response

    run.secret("admin token", ADMIN_TOKEN)
    run.secret("encryption key", ENCRYPTION_KEY)
    instance = call("POST", "/admin/v1/instances", 201, json={"name": "full-run"}, headers=admin()).json()
    iid = run.instance_id = instance["id"]
    run.secret("first secret key", instance["secret_key"])
    run.secret("client token", instance["client_token"])
    secret = run.secret("secret key", call("POST", f"/admin/v1/instances/{iid}/secret_key", 200,
                                           headers=admin()).json()["secret_key"])
    call("GET", "/admin/v1/instances", 401, headers={"Authorization": "Bearer wrong-admin-token"})

    # Their private keys are among the secrets (provider_secrets).
    call("PUT", f"/admin/v1/instances/{iid}/credentials/fcm", 200, json={"service_account": stored["fcm"]},
         headers=admin())
    call("PUT", f"/admin/v1/instances/{iid}/credentials/apns", 200, json=stored["apns"], headers=admin())

    device_api = f"/device_api/v1/instances/{iid}"
    registered: list[tuple[str, str]] = []
    fcm_tokens = [f"fcm-token-ok-{n:020d}" for n in range(REGISTRATIONS - 2)] + [
        "dead-fcm-token-000000001", "invalid-fcm-token-000001"]
    apns_tokens = ["a1" * 32, "a2" * 32]
    for platform, tokens in (("fcm", fcm_tokens), ("apns", apns_tokens)):
        for token in tokens:
            run.secret(f"{platform} token {token[:8]}", token)
            body = {"token": token, **({"bundleIdentifier": APNS_TOPIC} if platform == "apns" else {})}
            device = call("POST", f"{device_api}/devices/{platform}", 200, json=body).json()
            registered.append((platform, device["id"]))
    vapid_key = call("GET", f"{device_api}/web-vapid-public-key", 200).json()["vapidPublicKey"]
    for name in ("fullrun-browser", "gone410-browser", "busy-browser"):
        browser = push.subscribe(name, vapid_key)
        run.secret(f"web token {name}", browser.token)
        registered.append(("web", call("POST", f"{device_api}/devices/web", 200,
                                       json={"token": browser.token}).json()["id"]))
    for platform, device_id in registered:
        call("POST", f"{device_api}/devices/{platform}/{device_id}/interests/news", (200, 201, 204))
    call("POST", f"{device_api}/devices/fcm", 400, data="{not json", headers={"Content-Type": "application/json"})

    alice = run.secret("alice JWT", user_jwt(iid, secret, "alice"))
    call("PUT", f"{device_api}/devices/fcm/{registered[0][1]}/user", 200, headers={"Authorization": f"Bearer {alice}"})
    bob = run.secret("bob JWT", user_jwt(iid, secret, "bob"))
    bob_token = run.secret("discord apns token", "b0" * 32)
    call("POST", "/users/@me/devices", 204, json={"provider": "apns", "token": bob_token},
         headers={"Authorization": f"Bearer {bob}"})
    call("GET", f"/v1/devices/{bob_token}/channels", 200, headers={"Authorization": f"Bearer {bob}"})
    carol = run.secret("carol JWT", user_jwt(iid, secret, "carol"))
    pushkey = run.secret("matrix pushkey", "pushkey-carol-0123456789abcdef")
    call("POST", f"/_matrix/client/v3/pushers/set?access_token={carol}", 200, json={
        "kind": "http", "app_id": "com.example.ios", "pushkey": pushkey, "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en", "data": {"url": gateway.url}})
    call("GET", "/_matrix/client/v3/pushers?access_token=not-a-valid-jwt-0000", 401)

    mpush = {"X-MPush-Version": "2", "X-MPush-Token": instance["client_token"]}
    mpush_token = run.secret("mpush fcm token", "fcm-token-mpush-0000000001")
    call("POST", "/api/tokens", 200, json={"token": mpush_token, "platform": "android", "device_id": "phone-1"},
         headers=mpush)
    call("POST", "/api/register", 200, json={"topics": ["news"], "device_id": "phone-1"}, headers=mpush)
    call("POST", "/api/send", 200, json={"topics": ["news"], "title": "MPush", "body": "hello"},
         headers={**mpush, "X-MPush-Token": secret})
    basic = {"Authorization": "Basic " + base64.b64encode(f"{iid}:{secret}".encode()).decode()}
    twilio_token = run.secret("twilio fcm token", "fcm-token-twilio-000000001")
    call("POST", "/v1/PushNotifications/DeviceRegistrations", 201, headers=basic,
         json={"userId": "dave", "token": twilio_token, "appName": "app1", "provider": "FCM"})
    call("POST", "/v1/PushNotifications", 202, headers=basic,
         json={"to": [{"userId": "dave"}], "content": {"title": "Twilio", "body": "hello"}})

    console = requests.Session()
    login = console.get(base + "/console/login", timeout=10)
    csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert console.post(base + "/console/login", data={"token": "not-it", "csrf_token": csrf}, timeout=10) \
        .status_code == 401
    assert console.post(base + "/console/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf}, timeout=10) \
        .status_code == 200  # followed to the instances page
    assert console.get(f"{base}/console/instances/{iid}", timeout=10).status_code == 200

    publish_api = f"/publish_api/v1/instances/{iid}/publishes"
    payloads = {"apns": {"aps": {"alert": {"title": "Hi", "body": "all"}}},
                "fcm": {"notification": {"title": "Hi", "body": "all"}},
                "web": {"notification": {"title": "Hi", "body": "all"}}}
    call("POST", publish_api + "/interests", 401, json={"interests": ["news"], **payloads},
         headers={"Authorization": f"Bearer {instance['secret_key']}"})  # the rotated-away key
    publish = call("POST", publish_api + "/interests", 200, json={"interests": ["news"], **payloads},
                   headers={"Authorization": f"Bearer {secret}", "X-Request-Id": PUBLISH_REQUEST_ID})
    run.publish_id = publish.json()["publishId"]
    to_users = call("POST", publish_api + "/users", 200, json={"users": ["alice", "bob", "carol"], **payloads},
                    headers={"Authorization": f"Bearer {secret}"}).json()["publishId"]
    for publish_id in (run.publish_id, to_users):
        wait_for(lambda: call("GET", f"{publish_api}/{publish_id}", 200,
                              headers={"Authorization": f"Bearer {secret}"}).json()["status"] == "done",
                 40, f"publish {publish_id} to be done")
    assert gateway.requests, "the Matrix pusher was sent to"


def provider_secrets(fcm_mock, apns_mock, fcm_key, apns_key, redis_url: str, iid: str) -> dict[str, str]:
    """The keys and tokens the run handed to or got from providers."""
    import redis as redis_py
    from cryptography.fernet import Fernet

    from pushlite.storage import credentials

    found = {f"fcm key line {n}": line for n, line in enumerate(key_lines(pem(fcm_key)))}
    found.update({f"apns key line {n}": line for n, line in enumerate(key_lines(pem(apns_key)))})
    found.update({f"fcm access token {n}": token for n, token in enumerate(fcm_mock.access_tokens)})
    found.update({f"apns provider token {n}": r.headers["authorization"].split()[1]
                  for n, r in enumerate(apns_mock.requests) if r.headers.get("authorization")})
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    stored = credentials.load(client, Fernet(ENCRYPTION_KEY), iid)
    vapid_pem = stored[("", vapid.PROVIDER)][1]["private_key"]
    found.update({f"vapid key line {n}": line for n, line in enumerate(key_lines(vapid_pem))})
    return found


# --- what the run shows ----------------------------------------------------------


def test_every_line_is_one_json_object_with_its_fields(run):
    for name in ("web", "worker"):
        lines = run.lines[name]
        assert lines, f"the {name} process logged nothing"
        for line in lines:
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            assert {"time", "level", "logger", "message"} <= entry.keys(), line
    access = [json.loads(line) for line in run.lines["web"] if '"pushlite.access"' in line]
    assert len(access) > 40
    for entry in access:
        assert {"request_id", "method", "route", "status", "duration_ms"} <= entry.keys(), entry
    assert any(e.get("instance_id") == run.instance_id for e in access)
    gunicorn = [json.loads(line) for line in run.lines["web"] if '"gunicorn.error"' in line]
    assert any("Booting worker" in e["message"] for e in gunicorn)


def test_no_secret_reaches_a_log_line(run):
    assert len(run.secrets) > 30
    everything = "\n".join(run.lines["web"] + run.lines["worker"])
    leaked = [name for name, value in run.secrets.items() if value in everything]
    assert leaked == []


def test_the_publish_request_id_is_on_its_jobs_lines(run):
    jobs = [json.loads(line) for line in run.lines["worker"] if '"workers.logged_job"' in line]
    mine = [j for j in jobs if j.get("publish_id") == run.publish_id]
    assert {j["job"] for j in mine} >= {"fan_out"}
    assert all(j["request_id"] == PUBLISH_REQUEST_ID and j["instance_id"] == run.instance_id for j in mine)
    access = [json.loads(line) for line in run.lines["web"] if PUBLISH_REQUEST_ID in line and "pushlite.access" in line]
    assert [(a["method"], a["status"]) for a in access] == [("POST", 200)]
    # The sender's lines, logged on its event loop's thread, carry the job's context too.
    senders = [json.loads(line) for line in run.lines["worker"] if '"workers.senders.' in line]
    assert any(s.get("publish_id") == run.publish_id and s.get("request_id") == PUBLISH_REQUEST_ID for s in senders)


def test_metrics_add_up_both_gunicorn_workers(run):
    # Every registration is counted whichever worker answered it, on both listeners.
    assert run.metrics[REGISTERED_KEY] == REGISTRATIONS
    assert run.port_metrics[REGISTERED_KEY] == REGISTRATIONS
    published = {labels: v for (name, labels), v in run.metrics.items() if name == "pushlite_publishes_total"}
    assert published == {frozenset({("family", "beams")}): 2, frozenset({("family", "mpush")}): 1,
                         frozenset({("family", "twilio")}): 1}
    delivered = sum(v for (name, labels), v in run.metrics.items()
                    if name == "pushlite_notifications_total" and ("outcome", "delivered") in labels)
    assert delivered >= REGISTRATIONS
    assert run.metrics[("pushlite_dead_tokens_removed_total", frozenset({("provider", "fcm")}))] == 1
    assert run.metrics[("pushlite_workers_alive", frozenset())] == 1
