"""Probes, and what callers see while Redis is down or hung: a 503 in their
API's error shape within 2 seconds, and service again as soon as Redis is
back, without restarting pushlite."""
from __future__ import annotations

import shutil
import signal
import time

import pytest
from werkzeug.routing import AnyConverter
from werkzeug.routing.converters import NumberConverter

import config
from pushlite.app import create_app
from tests.conftest import ADMIN, FAMILY_ERROR_FIELDS, SKIP_ENDPOINTS, RedisServer

DEADLINE = 2.0
FCM_TOKEN = "fcm-token-0123456789abcdef"
APNS_TOKEN = "ab" * 32

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed (apt-get install redis-server)"
)


# --- probes -------------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_redis_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


# --- outages (real redis-server only) ----------------------------------------


@pytest.fixture
def server():
    server = RedisServer()
    server.start()
    yield server
    if server.process:
        server.process.send_signal(signal.SIGCONT)  # a stopped process cannot terminate
    server.stop()


@pytest.fixture
def live(server):
    """An app on its own redis-server, with an instance and a device in it."""
    app = create_app(config.TestingConfig(server.url))
    client = app.test_client()
    instance = client.post("/admin/v1/instances", json={"name": "outage"}, headers=ADMIN).get_json()
    device = client.post(
        f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": FCM_TOKEN}
    ).get_json()["id"]
    return app, client, instance["id"], device


def beams(body: dict) -> bool:
    return set(body) == {"error", "description"} and all(isinstance(v, str) and v for v in body.values())


def admin(body: dict) -> bool:
    return body.get("code") == 503 and isinstance(body.get("status"), str) and isinstance(body.get("message"), str)


def ready(body: dict) -> bool:
    return body.get("status") not in (None, "ok")


def family_requests(iid: str, dev: str) -> list[tuple[str, str, dict, object]]:
    """(method, path, request kwargs, shape check) for every Beams and admin endpoint."""
    base = f"/device_api/v1/instances/{iid}/devices"
    user = {"Authorization": "Bearer header.payload.signature"}
    return [
        ("post", f"{base}/fcm", {"json": {"token": FCM_TOKEN}}, beams),
        ("post", f"{base}/apns", {"json": {"token": APNS_TOKEN, "bundleIdentifier": "com.example"}}, beams),
        ("get", f"{base}/fcm/{dev}", {}, beams),
        ("delete", f"{base}/fcm/{dev}", {}, beams),
        ("put", f"{base}/fcm/{dev}/metadata", {"json": {"sdkVersion": "1.0"}}, beams),
        ("put", f"{base}/fcm/{dev}/token", {"json": {"token": "fcm-token-new-0123456789abcdef"}}, beams),
        ("put", f"{base}/fcm/{dev}/user", {"headers": user}, beams),
        ("get", f"{base}/fcm/{dev}/interests", {}, beams),
        ("put", f"{base}/fcm/{dev}/interests", {"json": {"interests": ["a", "b"]}}, beams),
        ("post", f"{base}/fcm/{dev}/interests/news", {}, beams),
        ("delete", f"{base}/fcm/{dev}/interests/news", {}, beams),
        ("get", "/admin/v1/instances", {"headers": ADMIN}, admin),
        ("post", "/admin/v1/instances", {"headers": ADMIN, "json": {"name": "new"}}, admin),
        ("get", f"/admin/v1/instances/{iid}", {"headers": ADMIN}, admin),
        ("delete", f"/admin/v1/instances/{iid}", {"headers": ADMIN}, admin),
        ("post", f"/admin/v1/instances/{iid}/secret_key", {"headers": ADMIN}, admin),
        ("get", "/readyz", {}, ready),
    ]


def timed(client, method: str, path: str, **kwargs):
    start = time.monotonic()
    response = getattr(client, method)(path, **kwargs)
    return response, time.monotonic() - start


def assert_clean_json(response, label: str) -> dict:
    text = response.get_data(as_text=True)
    assert response.mimetype == "application/json", (label, text)
    assert "<html" not in text.lower() and "Traceback" not in text and 'File "' not in text, (label, text)
    body = response.get_json()
    assert isinstance(body, dict), (label, text)
    return body


def assert_all_503(client, iid: str, dev: str) -> None:
    for method, path, kwargs, shape in family_requests(iid, dev):
        label = f"{method.upper()} {path}"
        response, elapsed = timed(client, method, path, **kwargs)
        assert elapsed < DEADLINE, (label, elapsed)
        assert response.status_code == 503, (label, response.status_code, response.get_data(as_text=True))
        body = assert_clean_json(response, label)
        assert shape(body), (label, body)
        if shape is admin:
            assert body["code"] == 503


def route_value(rule, argument: str, known: dict[str, str]) -> object:
    """A value the route's converter accepts: a known id, or the first choice of an ``any(...)``."""
    converter = rule._converters[argument]
    if isinstance(converter, AnyConverter):
        return known[argument] if known.get(argument) in converter.items else sorted(converter.items)[0]
    if isinstance(converter, NumberConverter):
        return 1
    return known.get(argument, "x")


def assert_every_route_answers_json(app, client, iid: str, dev: str) -> None:
    """Every route of every family (including ones added later): JSON, no 500, in time."""
    values = {"instance_id": iid, "device_id": dev, "platform": "fcm", "interest_name": "news"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(SKIP_ENDPOINTS):
            continue
        path = rule.build({a: route_value(rule, a, values) for a in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            label = f"{method} {rule.rule}"
            response, elapsed = timed(client, method.lower(), path, json={}, headers=ADMIN)
            assert elapsed < DEADLINE, (label, elapsed)
            assert response.status_code != 500 and response.status_code < 600, (label, response.status_code)
            body = assert_clean_json(response, label)
            prefixes = [p for p in FAMILY_ERROR_FIELDS if path.startswith(p)]
            if response.status_code >= 400 and prefixes:
                expected = FAMILY_ERROR_FIELDS[max(prefixes, key=len)]
                assert expected <= set(body), (label, body)


def wait_ready(client) -> None:
    """Ready again within 2 s of Redis answering (the circuit breaker's next probe)."""
    deadline = time.monotonic() + DEADLINE
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready 2 s after Redis came back"
        time.sleep(0.05)


def assert_serving(client) -> None:
    """Reads and writes through both families work (the old data may be gone)."""
    wait_ready(client)
    created = client.post("/admin/v1/instances", json={"name": "after"}, headers=ADMIN)
    assert created.status_code == 201, created.get_data(as_text=True)
    iid = created.get_json()["id"]
    registered = client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": FCM_TOKEN})
    assert registered.status_code == 200, registered.get_data(as_text=True)
    dev = registered.get_json()["id"]
    assert client.post(f"/device_api/v1/instances/{iid}/devices/fcm/{dev}/interests/news").status_code == 200
    got = client.get(f"/device_api/v1/instances/{iid}/devices/fcm/{dev}/interests")
    assert got.status_code == 200 and got.get_json()["interests"] == ["news"]
    assert client.get("/admin/v1/instances", headers=ADMIN).status_code == 200


@needs_redis_server
def test_redis_down_gives_503_in_each_family_shape_then_recovers(server, live):
    app, client, iid, dev = live
    server.stop()

    assert_all_503(client, iid, dev)
    assert client.get("/healthz").status_code == 200  # the process itself is fine

    server.start()  # same port, empty data
    assert_serving(client)


@needs_redis_server
def test_every_route_answers_json_in_time_while_redis_is_down(server, live):
    app, client, iid, dev = live
    server.stop()
    assert_every_route_answers_json(app, client, iid, dev)


@needs_redis_server
def test_redis_down_at_startup(server):
    """An app built while Redis is away serves once Redis comes up."""
    server.stop()
    app = create_app(config.TestingConfig(server.url))
    client = app.test_client()
    response, elapsed = timed(client, "get", "/admin/v1/instances", headers=ADMIN)
    assert response.status_code == 503 and elapsed < DEADLINE
    assert client.get("/readyz").status_code == 503
    server.start()
    assert_serving(client)


@needs_redis_server
def test_repeated_outages(server, live):
    app, client, iid, dev = live
    for _ in range(3):
        server.stop()
        response, elapsed = timed(client, "get", "/readyz")
        assert response.status_code == 503 and elapsed < DEADLINE
        server.start()
        wait_ready(client)
        assert client.get("/admin/v1/instances", headers=ADMIN).status_code == 200


@needs_redis_server
def test_hung_redis_gives_503_in_time_then_recovers(server, live):
    app, client, iid, dev = live
    server.process.send_signal(signal.SIGSTOP)
    try:
        checks = [
            ("post", f"/device_api/v1/instances/{iid}/devices/fcm", {"json": {"token": FCM_TOKEN}}, beams),
            ("get", f"/device_api/v1/instances/{iid}/devices/fcm/{dev}", {}, beams),
            ("post", f"/device_api/v1/instances/{iid}/devices/fcm/{dev}/interests/news", {}, beams),
            ("get", "/admin/v1/instances", {"headers": ADMIN}, admin),
            ("post", f"/admin/v1/instances/{iid}/secret_key", {"headers": ADMIN}, admin),
            ("get", "/readyz", {}, ready),
        ]
        for method, path, kwargs, shape in checks:
            label = f"{method.upper()} {path}"
            response, elapsed = timed(client, method, path, **kwargs)
            assert elapsed < DEADLINE + 0.5, (label, elapsed)
            assert response.status_code == 503, (label, response.status_code)
            assert shape(assert_clean_json(response, label)), label
        assert client.get("/healthz").status_code == 200
    finally:
        server.process.send_signal(signal.SIGCONT)

    wait_ready(client)
    # Same data: the process was only paused.
    got = client.get(f"/device_api/v1/instances/{iid}/devices/fcm/{dev}")
    assert got.status_code == 200, got.get_data(as_text=True)
    assert got.get_json()["id"] == dev
    assert client.get(f"/admin/v1/instances/{iid}", headers=ADMIN).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert_serving(client)
