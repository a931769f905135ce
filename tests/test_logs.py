"""Log lines: the JSON and text formats, and the request id that ties a
request to the publish and the jobs it caused."""
from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest

import config
from pushlite import logs
from pushlite.app import create_app
from tests.conftest import ADMIN

Lines = Callable[[], list[dict]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """Every line logged during the test, as the JSON format writes it, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_json_line_has_the_fields_and_the_context():
    record = logging.LogRecord("pushlite.test", logging.WARNING, __file__, 1, "sent %d of %s", (3, "x"), None)
    record.duration_ms = 12.5
    with logs.bind(request_id="r-1", instance_id="i-1", publish_id=None):
        logs.ContextFilter().filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line.pop("time")
    assert line == {"level": "WARNING", "logger": "pushlite.test", "message": "sent 3 of x",
                    "request_id": "r-1", "instance_id": "i-1", "duration_ms": 12.5}


def test_a_json_line_time_is_utc_iso_8601_and_tracebacks_are_one_field():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = logs.JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert "ValueError: boom" in line["exception"]


def test_text_lines_stay_readable():
    record = logging.LogRecord("pushlite.access", logging.INFO, __file__, 1, "GET /healthz 200", (), None)
    record.request_id, record.duration_ms = "abc", 0.5
    text = logs.TextFormatter().format(record)
    assert re.fullmatch(r"\S+ \S+ INFO pushlite.access: GET /healthz 200 \[request_id=abc duration_ms=0.5\]", text)


def test_an_unknown_format_or_level_is_refused():
    with pytest.raises(RuntimeError, match="PUSHLITE_LOG_FORMAT"):
        logs.configure("xml", "INFO")
    with pytest.raises(RuntimeError, match="PUSHLITE_LOG_LEVEL"):
        logs.configure("json", "LOUD")


@pytest.fixture
def logged(deployment):
    """A client of an app that logs access lines (PUSHLITE_ACCESS_LOG=1)."""
    return create_app(deployment.config(PUSHLITE_ACCESS_LOG=True)).test_client()


def test_each_request_logs_one_access_line_with_its_id_and_duration(logged, json_lines):
    client = logged
    client.get("/healthz", headers={"X-Request-Id": "probe-1"})
    client.post("/admin/v1/instances", json={"name": "x"}, headers=ADMIN)
    access = [line for line in json_lines() if line["logger"] == "pushlite.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/healthz", 200), ("POST", "/admin/v1/instances", 201)]
    assert access[0]["request_id"] == "probe-1"
    assert len(access[1]["request_id"]) == 32
    assert all(isinstance(a["duration_ms"], float) and a["time"] and a["level"] == "INFO" for a in access)


def test_lines_logged_during_a_request_carry_its_id_and_instance_id_and_later_lines_do_not(logged, json_lines):
    iid = logged.post("/admin/v1/instances", json={"name": "x"}, headers=ADMIN).get_json()["id"]
    answer = logged.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": "f" * 160},
                         headers={"X-Request-Id": "reg-1"})
    assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "reg-1"
    logged.get("/device_api/v1/instances/not-an-instance/devices/fcm/0123456789ab", headers={"X-Request-Id": "bad-1"})
    logging.getLogger("pushlite.test").warning("after the requests")
    lines = {line.get("request_id"): line for line in json_lines()}
    assert (lines["reg-1"]["route"], lines["reg-1"]["instance_id"]) == (
        "/device_api/v1/instances/<instance_id>/devices/fcm", iid)
    assert "instance_id" not in lines["bad-1"]  # not an instance id: not carried
    assert lines[None]["message"] == "after the requests"


def test_fields_bound_during_a_request_win_over_the_requests_own(json_lines):
    app = create_app(config.TestingConfig())
    with app.test_request_context("/healthz", headers={"X-Request-Id": "outer"}):
        app.preprocess_request()
        with logs.bind(request_id="inner", publish_id="p-1"):
            logging.getLogger("pushlite.test").warning("bound")
        logging.getLogger("pushlite.test").warning("unbound")
    assert [(line["message"], line["request_id"], line.get("publish_id")) for line in json_lines()] == [
        ("bound", "inner", "p-1"), ("unbound", "outer", None)]


def test_an_access_line_names_the_route_not_the_path(logged, json_lines):
    """A channels path holds a push token; the line names the route template."""
    token = "secret-push-token-in-the-path-0123456789"
    logged.get(f"/v1/devices/{token}/channels", headers={"Authorization": "Bearer nope"})
    logged.get(f"/nothing/{token}?access_token=also-secret")
    text = json.dumps(json_lines())
    assert token not in text and "also-secret" not in text
    assert "/v1/devices/<" in text and "<unmatched>" in text


def test_the_request_id_reaches_the_publish_and_its_jobs(json_lines):
    """Embedded: the fan-out and delivery run in the request; their lines carry its id."""
    app = create_app(config.TestingConfig())
    client = app.test_client()
    instance = client.post("/admin/v1/instances", json={"name": "x"}, headers=ADMIN).get_json()
    iid = instance["id"]
    device = client.post(f"/device_api/v1/instances/{iid}/devices/fcm", json={"token": "f" * 160}).get_json()
    client.post(f"/device_api/v1/instances/{iid}/devices/fcm/{device['id']}/interests/news")
    answer = client.post(f"/publish_api/v1/instances/{iid}/publishes/interests",
                         json={"interests": ["news"], "fcm": {"notification": {"title": "Hi"}}},
                         headers={"Authorization": f"Bearer {instance['secret_key']}", "X-Request-Id": "trace-77"})
    publish_id = answer.get_json()["publishId"]
    jobs = [line for line in json_lines() if line["logger"] == "workers.logged_job"]
    assert [line["job"] for line in jobs] == ["fan_out"]
    assert jobs[0]["message"] == "job fan_out done"
    assert (jobs[0]["request_id"], jobs[0]["instance_id"], jobs[0]["publish_id"]) == ("trace-77", iid, publish_id)
    assert jobs[0]["duration_ms"] >= 0


def test_access_lines_are_off_by_default(client, json_lines):
    answer = client.get("/healthz", headers={"X-Request-Id": "still-answered"})
    assert answer.headers["X-Request-Id"] == "still-answered"
    assert [line for line in json_lines() if line["logger"] == "pushlite.access"] == []
