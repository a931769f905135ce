"""/metrics itself: who may read it, what a Redis outage shows there, the
listener of PUSHLITE_METRICS_PORT, and request ids."""
from __future__ import annotations

import base64
import shutil
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import config
from pushlite.metrics import collectors, web
from pushlite.app import create_app
from tests.conftest import ADMIN, RedisServer, free_port


def samples_of(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200, response.data
    return samples_of(response.get_data(as_text=True))


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_the_admin_token(client):
    assert client.get("/metrics").status_code == 401
    refused = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert refused.status_code == 401
    assert refused.get_json() == {"code": 401, "status": "Unauthorized", "message": "The admin token is required."}
    assert client.get("/metrics", headers=ADMIN).status_code == 200
    basic = base64.b64encode(b"prometheus:test-admin-token").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_requests_are_counted_by_family_route_and_status(client, instance):
    iid = instance["id"]
    client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": "x" * 160})
    client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": 7})
    client.get("/no/such/path")
    samples = scrape(client)
    route = "/device_api/v1/instances/<instance_id>/devices/fcm"
    assert value(samples, "pushlite_http_requests_total", family="beams", route=route, method="POST",
                 status="200") == 1
    assert value(samples, "pushlite_http_requests_total", family="beams", route=route, method="POST",
                 status="400") == 1
    assert value(samples, "pushlite_http_requests_total", family="pushlite", route="<unmatched>", method="GET",
                 status="404") == 1
    assert value(samples, "pushlite_http_request_duration_seconds_count", family="beams", route=route) == 2
    # The admin API made the instance.
    assert value(samples, "pushlite_http_requests_total", family="pushlite", route="/admin/v1/instances",
                 method="POST", status="201") == 1


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_redis_outage_shows_as_503s_and_redis_errors():
    server = RedisServer()
    server.start()
    try:
        app = create_app(config.TestingConfig(server.url))
        client = app.test_client()
        assert client.get("/admin/v1/instances", headers=ADMIN).status_code == 200
        assert value(scrape(client), "pushlite_redis_up") == 1
        server.stop()
        for _ in range(3):
            assert client.get("/admin/v1/instances", headers=ADMIN).status_code == 503
        samples = scrape(client)  # /metrics itself still answers, without the figures read from Redis
        assert value(samples, "pushlite_redis_up") == 0
        assert ("pushlite_queue_depth", frozenset({("queue", "pushlite-fanout")})) not in samples
        assert value(samples, "pushlite_http_requests_total", family="pushlite", route="/admin/v1/instances",
                     method="GET", status="503") == 3
        errors = sum(v for (name, _), v in samples.items() if name == "pushlite_redis_errors_total")
        assert errors == 3
        assert value(samples, "pushlite_redis_errors_total", error="ConnectionError") >= 1
        server.start()
        # The breaker's probe runs every REDIS_BREAKER_RETRY_SECONDS; on a busy
        # machine a probe may still be connecting when the server comes back.
        deadline = time.monotonic() + app.config["REDIS_BREAKER_RETRY_SECONDS"] + 2.0
        while client.get("/admin/v1/instances", headers=ADMIN).status_code != 200:
            assert time.monotonic() < deadline, "still 503 two seconds after Redis came back"
            time.sleep(0.05)
        assert value(scrape(client), "pushlite_redis_up") == 1
    finally:
        server.stop()


def test_a_request_reaches_its_metrics_within_a_second_without_a_scrape(app, client):
    """Requests are queued and written by a thread of the process once a
    second (a scrape in another gunicorn worker reads only what was written)."""
    route = "/admin/v1/instances"
    registry = app.extensions["pushlite.metrics_registry"]  # read directly: registry_of would flush

    def counted() -> float:
        return registry.get_sample_value("pushlite_http_requests_total", {
            "family": "pushlite", "route": route, "method": "GET", "status": "200"}) or 0.0

    before = counted()
    for _ in range(3):
        assert client.get(route, headers=ADMIN).status_code == 200
    deadline = time.monotonic() + 3 * web.FLUSH_SECONDS
    while counted() < before + 3:
        assert time.monotonic() < deadline, f"counted {counted() - before} of 3 requests"
        time.sleep(0.05)
    time.sleep(web.FLUSH_SECONDS)
    assert counted() == before + 3  # written once
    assert registry.get_sample_value("pushlite_http_request_duration_seconds_count",
                                     {"family": "pushlite", "route": route}) >= 3


def test_the_metrics_port_serves_without_the_token(app, client):
    client.post("/admin/v1/instances", json={"name": "counted"}, headers=ADMIN)
    port = free_port()
    server = collectors.serve(f"127.0.0.1:{port}", lambda: web.registry_of(app))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            samples = samples_of(answer.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert value(samples, "pushlite_http_requests_total", family="pushlite", route="/admin/v1/instances",
                 method="POST", status="201") == 1
    assert value(samples, "pushlite_redis_up") == 1


# --- request ids ---------------------------------------------------------------


def test_a_request_id_is_answered_and_a_bad_one_replaced(client):
    given = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a:42.x"})
    assert given.headers["X-Request-Id"] == "lb-7f3a:42.x"
    made = client.get("/healthz")
    assert len(made.headers["X-Request-Id"]) == 32
    for bad in ("has space", "x" * 129, "<script>", "é", ""):
        answered = client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert answered != bad and len(answered) == 32
    assert made.headers["X-Request-Id"] != client.get("/healthz").headers["X-Request-Id"]


def test_a_publish_keeps_the_request_id(client, instance):
    auth = {"Authorization": f"Bearer {instance['secret_key']}", "X-Request-Id": "req-publish-1"}
    base = f"/publish_api/v1/instances/{instance['id']}/publishes"
    created = client.post(base + "/interests", json={"interests": ["news"], "fcm": {"notification": {"title": "Hi"}}},
                          headers=auth)
    assert created.status_code == 200 and created.headers["X-Request-Id"] == "req-publish-1"
    shown = client.get(f"{base}/{created.get_json()['publishId']}", headers={"Authorization": auth["Authorization"]})
    assert shown.get_json()["request_id"] == "req-publish-1"
    assert scrape(client)[("pushlite_publishes_total", frozenset({("family", "beams")}))] == 1
