"""/metrics after known traffic, read back the way Prometheus reads it: a
publish to APNs and FCM devices of which the local mocks call some dead,
answer some 429 or 503 once, and fail one; and the console's per-minute counts
of the same publish."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from pushlite.storage import stats
from tests.conftest import ADMIN
from tests.delivery.conftest import ALERT, FCM, add_device, drain, publish
from workers.sweep import sweep


def scrape(web, headers=ADMIN) -> dict[tuple[str, frozenset], float]:
    response = web.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_publish_is_counted_by_provider_outcome_and_reason(web, runtime, tenant, data, apns_mock, fcm_mock):
    iid = tenant["id"]
    for token in ("a1" * 32, "a2" * 32, "a3" * 32, "dead" + "0" * 60, "wait1-" + "a" * 58, "flaky1-" + "a" * 57):
        add_device(data, iid, "apns", token, ["news"])
    add_device(data, iid, "apns_voip", "c0" * 32, ["news"])  # no apns_voip payload: skipped
    for token in ("fcm-token-ok-000000000001", "fcm-token-ok-000000000002", "dead-fcm-token-000000001",
                  "invalid-fcm-token-000001"):
        add_device(data, iid, "fcm", token, ["news"])

    before = scrape(web)
    assert value(before, "pushlite_notifications_total", provider="apns", outcome="delivered") == 0
    pid = publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"], record["removed"], record["failed"],
            record["skipped"], record["retried"]) == ("done", 11, 7, 2, 1, 1, 2)

    samples = scrape(web)
    expected = {
        ("apns", "delivered"): 5, ("apns", "removed"): 1, ("apns", "retried"): 2, ("apns", "failed"): 0,
        ("apns", "skipped"): 1,
        ("fcm", "delivered"): 2, ("fcm", "removed"): 1, ("fcm", "retried"): 0, ("fcm", "failed"): 1,
        ("fcm", "skipped"): 0,
    }
    for (provider, outcome), count in expected.items():
        assert value(samples, "pushlite_notifications_total", provider=provider, outcome=outcome) == count, \
            (provider, outcome)
    assert value(samples, "pushlite_dead_tokens_removed_total", provider="apns") == 1
    assert value(samples, "pushlite_dead_tokens_removed_total", provider="fcm") == 1
    assert value(samples, "pushlite_retries_total", provider="apns", reason="rate_limited") == 1
    assert value(samples, "pushlite_retries_total", provider="apns", reason="provider_error") == 1
    # Every request the mocks answered was timed: APNs 3 + dead + 2 answers each for wait1 and flaky1.
    assert value(samples, "pushlite_provider_request_duration_seconds_count", provider="apns") == 8
    assert value(samples, "pushlite_provider_request_duration_seconds_count", provider="fcm") == 4
    assert value(samples, "pushlite_provider_request_duration_seconds_bucket", provider="fcm", le="+Inf") == 4
    assert value(samples, "pushlite_provider_request_duration_seconds_sum", provider="fcm") > 0
    assert value(samples, "pushlite_publishes_total", family="beams") == 1
    route = "/publish_api/v1/instances/<instance_id>/publishes/interests"
    assert value(samples, "pushlite_http_requests_total", family="beams", route=route, method="POST",
                 status="200") == 1
    assert value(samples, "pushlite_http_request_duration_seconds_count", family="beams", route=route) == 1
    for queue in ("pushlite-fanout", "pushlite-delivery"):
        assert value(samples, "pushlite_queue_depth", queue=queue) == 0
    # The failed FCM device stands in RQ's failed registry (an "undelivered" job).
    assert value(samples, "pushlite_queue_registry_jobs", queue="pushlite-delivery", registry="failed") == 1
    assert value(samples, "pushlite_publishes_pending") == 0
    assert value(samples, "pushlite_redis_up") == 1

    # The instance's counts per minute (the console's chart) add up to the same.
    minutes = stats.per_minute(data, iid, minutes=5)
    totals = {outcome: sum(counts[outcome] for _, counts in minutes) for outcome in stats.OUTCOMES}
    assert totals == {"delivered": 7, "removed": 2, "retried": 2, "failed": 1, "skipped": 1}


def test_queue_gauges_while_work_waits(web, runtime, tenant, data):
    """No worker: the fan-out job waits in its queue and the publish is not done."""
    add_device(data, tenant["id"], "fcm", "fcm-token-ok-000000000001", ["news"])
    publish(web, tenant, "interests", ["news"], fcm=FCM)
    samples = scrape(web)
    assert value(samples, "pushlite_queue_depth", queue="pushlite-fanout") == 1
    assert 0 <= value(samples, "pushlite_queue_oldest_job_age_seconds", queue="pushlite-fanout") < 60
    assert value(samples, "pushlite_publishes_pending") == 1
    assert value(samples, "pushlite_workers_alive") == 0


def test_pending_publishes_leave_once_done(web, runtime, tenant, data):
    add_device(data, tenant["id"], "fcm", "fcm-token-ok-000000000001", ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["status"] == "done"
    assert value(scrape(web), "pushlite_publishes_pending") == 0
    sweep(runtime)  # takes the done publish off the active list
    assert value(scrape(web), "pushlite_publishes_pending") == 0
