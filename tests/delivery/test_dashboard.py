"""RQ Dashboard at /rq behind the admin token (Bearer, or Basic with the token
as password), showing pushlite's queues and a failed delivery job that an
operator can requeue."""
from __future__ import annotations

import base64

import pytest
from rq import Queue

from tests.delivery.conftest import FCM, add_device, drain, publish
from workers.runtime import DELIVERY_QUEUE, FANOUT_QUEUE

TOKEN = "test-admin-token"


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, basic("admin", "wrong"), basic(TOKEN, ""), {"Authorization": TOKEN}],
    ids=["none", "wrong-bearer", "wrong-basic", "token-as-user", "bare-token"],
)
@pytest.mark.parametrize("path", ["/rq/", "/rq/0/data/queues.json", "/rq/0/view/workers"])
def test_the_dashboard_needs_the_admin_token(client, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_requeue_needs_the_admin_token(client):
    assert client.post("/rq/job/some-job/requeue").status_code == 401
    assert client.post(f"/rq/requeue/{DELIVERY_QUEUE}").status_code == 401


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {TOKEN}"}, basic("admin", TOKEN), basic("anyone", TOKEN)],
    ids=["bearer", "basic", "basic-any-user"],
)
def test_the_dashboard_opens_with_the_admin_token(client, headers):
    page = client.get("/rq/", headers=headers)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    queues = client.get("/rq/0/data/queues.json", headers=headers)
    assert queues.status_code == 200
    assert isinstance(queues.get_json()["queues"], list)


def test_pushlite_queues_are_listed(web, runtime, tenant, data):
    add_device(data, tenant["id"], "fcm", "fcm-token-ok-000000000001", ["news"])
    publish(web, tenant, "interests", ["news"], fcm=FCM)  # queued, not worked yet
    queues = web.get("/rq/0/data/queues.json", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()["queues"]
    by_name = {q["name"]: q for q in queues}
    assert FANOUT_QUEUE in by_name
    assert by_name[FANOUT_QUEUE]["count"] == 1


def test_a_failed_delivery_job_is_listed_and_can_be_requeued(web, runtime, tenant, data, settings, fcm_mock):
    settings.max_attempts = 2
    add_device(data, tenant["id"], "fcm", "down-fcm-token-000000001", ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["failed"] == 1
    auth = basic("ops", TOKEN)

    listing = web.get(f"/rq/0/data/jobs/{DELIVERY_QUEUE}/failed/10/asc/1.json", headers=auth)
    assert listing.status_code == 200
    jobs = listing.get_json()["jobs"]
    assert len(jobs) == 1
    job_id = jobs[0]["id"]
    detail = web.get(f"/rq/0/data/job/{job_id}.json", headers=auth)
    assert detail.status_code == 200
    assert "DeliveryFailed" in detail.get_json()["exc_info"]

    requeued = web.post(f"/rq/job/{job_id}/requeue", headers=auth)
    assert requeued.status_code == 200
    assert requeued.get_json()["status"] == "OK"
    queue = Queue(DELIVERY_QUEUE, connection=runtime.delivery_queue.connection)
    assert queue.failed_job_registry.count == 0
    assert queue.job_ids == [job_id]
    empty = web.get(f"/rq/0/data/jobs/{DELIVERY_QUEUE}/failed/10/asc/1.json", headers=auth).get_json()
    assert empty["jobs"] == []
