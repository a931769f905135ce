"""Delivery end to end on a real redis-server: publish through the API, work
the RQ queues in this process (`drain`), and check what the local APNs and FCM
mocks received and what the publish record counted."""
from __future__ import annotations

import time

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from pushlite.storage import devices, keys, publishes
from tests import insights
from tests.conftest import ADMIN
from tests.delivery.conftest import ALERT, FCM, BurstWorker, add_device, drain, publish, status
from tests.mocks.providers import APNS_TOPIC
from workers import jobs
from workers.runtime import DELIVERY_QUEUE, FANOUT_QUEUE

APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-token-ok-000000000001"


def requests_for(mock, token: str) -> list:
    return [r for r in mock.requests if r.token == token]


def fcm_messages_for(mock, token: str) -> list[dict]:
    return [m for m in mock.messages if m["token"] == token]


def device_exists(data, instance_id: str, device_id: str) -> bool:
    return data.hget(keys.device_bucket(instance_id, device_id), device_id) is not None


# --- payload mapping, observed at the mocks ----------------------------------


def test_apns_request_headers_and_body(web, runtime, tenant, data, apns_mock):
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    payload = {
        "aps": {"alert": {"title": "Hello", "body": "World"}, "badge": 3, "sound": "default"},
        "deep_link": "app://inbox/7",
        "headers": {"apns-collapse-id": "inbox", "apns-priority": "5", "apns-expiration": "1900000000"},
    }
    pid = publish(web, tenant, "interests", ["news"], apns=payload)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 1, 1)

    [request] = requests_for(apns_mock, APNS_TOKEN)
    assert request.path == f"/3/device/{APNS_TOKEN}"
    assert request.headers["apns-topic"] == APNS_TOPIC
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-collapse-id"] == "inbox"
    assert request.headers["apns-priority"] == "5"
    assert request.headers["apns-expiration"] == "1900000000"
    assert request.headers["authorization"].startswith("bearer ")
    # The headers object is not part of the body APNs gets; the delivery
    # metadata the iOS SDK reports with is, in data.pusher.
    body, metadata = insights.split(request.body)
    assert body == {"aps": payload["aps"], "deep_link": "app://inbox/7"}
    assert metadata == insights.metadata(tenant["id"], pid)


def test_apns_background_push(web, runtime, tenant, data, apns_mock):
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["sync"])
    pid = publish(web, tenant, "interests", ["sync"], apns={"aps": {"content-available": 1}, "folder": "inbox"})
    assert drain(runtime, web, tenant, pid)["delivered"] == 1
    [request] = requests_for(apns_mock, APNS_TOKEN)
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    body, metadata = insights.split(request.body)
    assert body == {"aps": {"content-available": 1}, "folder": "inbox"}
    assert metadata == insights.metadata(tenant["id"], pid, displayable=False)


def test_fcm_v1_message(web, runtime, tenant, data, fcm_mock):
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    payload = {
        "notification": {"title": "Hello", "body": "World", "icon": "ic_bell", "sound": "ping"},
        "data": {"text": "hi", "count": 3, "flag": True, "nested": {"a": [1, 2]}, "none": None},
        "priority": "high",
        "time_to_live": 600,
        "collapse_key": "inbox",
    }
    pid = publish(web, tenant, "interests", ["news"], fcm=payload)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["delivered"], record["failed"]) == ("done", 1, 0), record

    [message] = fcm_messages_for(fcm_mock, FCM_TOKEN)
    assert message["notification"] == {"title": "Hello", "body": "World"}
    # v1 data values are strings: non-strings are sent as JSON, the delivery
    # metadata the Android SDK reads ("pusher") too.
    data, metadata = insights.split_fcm(message["data"])
    assert data == {"text": "hi", "count": "3", "flag": "true", "nested": '{"a":[1,2]}', "none": "null"}
    assert metadata == insights.metadata(tenant["id"], pid, has_data=True)
    assert message["android"]["priority"] == "high"
    assert message["android"]["ttl"] == "600s"
    assert message["android"]["collapse_key"] == "inbox"
    assert message["android"]["notification"] == {"icon": "ic_bell", "sound": "ping"}
    [auth] = set(fcm_mock.auth_headers)
    assert auth.startswith("Bearer ya29.mock-")


def test_one_publish_reaches_both_providers(web, runtime, tenant, data, apns_mock, fcm_mock):
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    pid = publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["targeted"], record["delivered"], record["skipped"], record["failed"]) == (2, 2, 0, 0)
    assert insights.split(requests_for(apns_mock, APNS_TOKEN)[0].body) == (ALERT, insights.metadata(tenant["id"], pid))
    assert fcm_messages_for(fcm_mock, FCM_TOKEN)[0]["notification"] == FCM["notification"]
    assert isinstance(record["finished_at"], int) and record["finished_at"] >= record["created_at"]


def test_status_moves_from_queued_to_done(web, runtime, tenant, data):
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    assert status(web, tenant, pid)["status"] == "queued"
    assert drain(runtime, web, tenant, pid)["status"] == "done"


# --- dead tokens ---------------------------------------------------------------


def test_dead_tokens_remove_the_device_everywhere(web, runtime, tenant, data, apns_mock, fcm_mock):
    iid = tenant["id"]
    dead = {
        "apns-410": add_device(data, iid, "apns", "dead" + "0" * 60, ["news", "sport"], user="alice"),
        "apns-bad-token": add_device(data, iid, "apns", "bad0" + "1" * 60, ["news", "weather"]),
        "fcm-unregistered": add_device(data, iid, "fcm", "dead-fcm-token-000000001", ["news", "sport"], user="bob"),
        "fcm-bad-token": add_device(data, iid, "fcm", "bad-fcm-token-0000000001", ["news"]),
    }
    alive = add_device(data, iid, "fcm", FCM_TOKEN, ["news", "sport"], user="alice")

    pid = publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["targeted"], record["delivered"], record["removed"], record["failed"]) == (5, 1, 4, 0), record

    gone = set(dead.values())
    for name, device_id in dead.items():
        assert not device_exists(data, iid, device_id), name
    for interest in ("news", "sport", "weather"):
        assert not data.smembers(keys.interest(iid, interest)) & gone, interest
    assert devices.user_device_ids(data, iid, "alice") == [alive]
    assert devices.user_device_ids(data, iid, "bob") == []
    assert device_exists(data, iid, alive)
    # Through the Device API they are gone too.
    assert web.get(f"/device_api/v1/instances/{iid}/devices/apns/{dead['apns-410']}").status_code == 404
    assert web.get(f"/device_api/v1/instances/{iid}/devices/fcm/{dead['fcm-unregistered']}").status_code == 404

    # A second publish does not try them again.
    apns_mock.reset()
    fcm_mock.reset()
    second = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news", "sport"], apns=ALERT, fcm=FCM))
    assert (second["targeted"], second["delivered"], second["removed"]) == (1, 1, 0)
    assert apns_mock.requests == []


# --- retries -------------------------------------------------------------------


def test_temporary_failures_are_retried_until_delivered(web, runtime, tenant, data, apns_mock):
    add_device(data, tenant["id"], "apns", "flaky2-token", ["news"])
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    pid = publish(web, tenant, "interests", ["news"], apns=ALERT)
    record = drain(runtime, web, tenant, pid)
    assert record["status"] == "done"
    assert (record["targeted"], record["delivered"], record["failed"]) == (2, 2, 0), record
    assert record["retried"] >= 2  # one retry per failed attempt of the flaky device
    assert record["failures"] == []
    assert apns_mock.seen["flaky2-token"] == 3
    assert apns_mock.seen[APNS_TOKEN] == 1  # the delivered device is not sent again


def test_retry_after_is_honoured(web, runtime, tenant, data, fcm_mock):
    """``busy`` answers 429 with Retry-After: 1; the retry is scheduled at least
    a second later although the configured backoff is 50 ms."""
    add_device(data, tenant["id"], "fcm", "busy-fcm-token-000000001", ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    before = time.time()
    BurstWorker([runtime.fanout_queue], connection=runtime.fanout_queue.connection).work(burst=True)
    registry = ScheduledJobRegistry(DELIVERY_QUEUE, connection=runtime.delivery_queue.connection)
    [job_id] = registry.get_job_ids()
    scheduled_at = registry.connection.zscore(registry.key, job_id)
    assert scheduled_at >= int(before + 1)
    assert status(web, tenant, pid)["retried"] == 1
    assert jobs.backoff(runtime, 0, [1.0]) >= 1.0
    assert jobs.backoff(runtime, 0, [None]) <= 0.05


def test_exhausted_retries_fail_with_a_reason(web, runtime, tenant, data, settings, apns_mock, fcm_mock):
    settings.max_attempts = 2
    down_apns = add_device(data, tenant["id"], "apns", "down-apns-token", ["news"])
    down_fcm = add_device(data, tenant["id"], "fcm", "down-fcm-token-000000001", ["news"])
    ok = add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    pid = publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert record["status"] == "done"
    assert (record["targeted"], record["delivered"], record["failed"], record["removed"]) == (3, 1, 2, 0), record
    assert record["retried"] == 2
    reasons = {f["device_id"]: f["reason"] for f in record["failures"]}
    assert set(reasons) == {down_apns, down_fcm}
    assert all(reason for reason in reasons.values())
    assert apns_mock.seen["down-apns-token"] == 2
    assert len(fcm_messages_for(fcm_mock, "down-fcm-token-000000001")) == 2
    # The devices stay: a provider outage says nothing about the tokens.
    assert device_exists(data, tenant["id"], down_apns) and device_exists(data, tenant["id"], ok)

    failed = Queue(DELIVERY_QUEUE, connection=runtime.delivery_queue.connection).failed_job_registry
    failed_ids = failed.get_job_ids()
    assert len(failed_ids) == 1
    job = Job.fetch(failed_ids[0], connection=runtime.delivery_queue.connection)
    assert job.args[1] == pid
    assert "DeliveryFailed" in (job.latest_result().exc_string or "")


def test_a_single_attempt_failure_still_finishes_the_publish(web, runtime, tenant, data, settings):
    """With ``max_attempts=1`` a small publish's only attempt runs inside the
    fan-out job; its failure must still leave the publish done and counted."""
    settings.max_attempts = 1
    down = add_device(data, tenant["id"], "fcm", "down-fcm-token-000000001", ["news"])
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    record = drain(runtime, web, tenant, pid, timeout=3)
    assert (record["status"], record["delivered"], record["failed"]) == ("done", 1, 1), record
    assert [f["device_id"] for f in record["failures"]] == [down]
    registries = [Queue(name, connection=runtime.delivery_queue.connection).failed_job_registry
                  for name in (FANOUT_QUEUE, DELIVERY_QUEUE)]
    assert sum(r.count for r in registries) == 1


def test_permanent_failures_are_recorded_and_keep_the_device(web, runtime, tenant, data, fcm_mock):
    bad_payload = add_device(data, tenant["id"], "fcm", "invalid-fcm-token-000001", ["news"])
    mismatch = add_device(data, tenant["id"], "fcm", "mismatch-fcm-token-00001", ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["failed"], record["removed"], record["retried"]) == ("done", 2, 0, 0), record
    reasons = {f["device_id"]: f["reason"] for f in record["failures"]}
    assert reasons == {bad_payload: "fcm:400:INVALID_ARGUMENT", mismatch: "fcm:403:SENDER_ID_MISMATCH"}
    assert device_exists(data, tenant["id"], bad_payload) and device_exists(data, tenant["id"], mismatch)


# --- credentials ---------------------------------------------------------------


def test_a_provider_without_credential_is_skipped(web, runtime, tenant, data, apns_mock, fcm_mock):
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    add_device(data, tenant["id"], "fcm", "fcm-token-ok-000000000002", ["news"])
    assert web.delete(f"/admin/v1/instances/{tenant['id']}/credentials/fcm", headers=ADMIN).status_code == 204
    pid = publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"], record["skipped"]) == ("done", 3, 1, 2)
    assert record["failed"] == 0
    assert fcm_mock.messages == [] and fcm_mock.exchanges == 0
    assert len(apns_mock.requests) == 1


def test_no_credentials_at_all(web, runtime, tenant, data, apns_mock, fcm_mock):
    for provider in ("apns", "fcm"):
        web.delete(f"/admin/v1/instances/{tenant['id']}/credentials/{provider}", headers=ADMIN)
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM))
    assert (record["status"], record["targeted"], record["skipped"], record["delivered"]) == ("done", 2, 2, 0)
    assert apns_mock.requests == [] and fcm_mock.messages == []


def test_a_platform_without_payload_is_skipped(web, runtime, tenant, data, apns_mock, fcm_mock):
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], fcm=FCM))
    assert (record["targeted"], record["delivered"], record["skipped"]) == (2, 1, 1)
    assert apns_mock.requests == []


def test_provider_tokens_are_reused_across_publishes(web, runtime, tenant, data, apns_mock, fcm_mock):
    add_device(data, tenant["id"], "apns", APNS_TOKEN, ["news"])
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    for _ in range(3):
        record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], apns=ALERT, fcm=FCM))
        assert record["delivered"] == 2
    assert len(apns_mock.requests) == 3 and len(fcm_mock.messages) == 3
    assert fcm_mock.exchanges == 1
    assert len(apns_mock.provider_tokens) == 1
    assert len(set(fcm_mock.auth_headers)) == 1


def test_a_new_credential_is_used_from_the_next_publish(web, runtime, tenant, data, fcm_mock, service_account):
    add_device(data, tenant["id"], "fcm", FCM_TOKEN, ["news"])
    drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], fcm=FCM))
    assert fcm_mock.exchanges == 1
    stored = web.put(f"/admin/v1/instances/{tenant['id']}/credentials/fcm",
                     json={"service_account": {**service_account, "private_key_id": "fedcba9876543210"}},
                     headers=ADMIN)
    assert stored.status_code == 200
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], fcm=FCM))
    assert record["delivered"] == 1
    assert fcm_mock.exchanges == 2


# --- targeting -----------------------------------------------------------------


def test_a_device_in_several_targeted_interests_gets_one_notification(web, runtime, tenant, data, apns_mock,
                                                                      fcm_mock):
    iid = tenant["id"]
    add_device(data, iid, "apns", APNS_TOKEN, ["a", "b", "c"])
    add_device(data, iid, "fcm", FCM_TOKEN, ["a", "c"])
    add_device(data, iid, "fcm", "fcm-token-ok-000000000002", ["b"])
    add_device(data, iid, "fcm", "fcm-token-untargeted-0001", ["z"])
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["a", "b", "c"], apns=ALERT, fcm=FCM))
    assert (record["targeted"], record["delivered"]) == (3, 3)
    assert apns_mock.seen[APNS_TOKEN] == 1
    assert len(fcm_messages_for(fcm_mock, FCM_TOKEN)) == 1
    assert fcm_messages_for(fcm_mock, "fcm-token-untargeted-0001") == []


def test_dedupe_across_interests_with_several_batches(web, runtime, tenant, data, settings, fcm_mock):
    """Over ``batch_size`` the fan-out enqueues one job per interest chunk;
    a device in several targeted interests still gets exactly one."""
    settings.batch_size = 4
    iid = tenant["id"]
    tokens = [f"fcm-dedupe-token-{n:08d}" for n in range(12)]
    for n, token in enumerate(tokens):
        # Every non-empty subset of {a, b, c}, several times over.
        add_device(data, iid, "fcm", token, [name for k, name in enumerate("abc") if (n % 7 + 1) >> k & 1])
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["a", "b", "c"], fcm=FCM))
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 12, 12), record
    seen = [m["token"] for m in fcm_mock.messages]
    assert sorted(seen) == sorted(tokens)


def test_publish_to_users(web, runtime, tenant, data, apns_mock, fcm_mock):
    iid = tenant["id"]
    add_device(data, iid, "apns", APNS_TOKEN, user="alice")
    add_device(data, iid, "fcm", FCM_TOKEN, user="alice")
    add_device(data, iid, "fcm", "fcm-token-ok-000000000002", user="bob")
    add_device(data, iid, "fcm", "fcm-token-carol-000000001", user="carol")
    record = drain(runtime, web, tenant, publish(web, tenant, "users", ["alice", "bob", "nobody"], apns=ALERT, fcm=FCM))
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 3, 3), record
    assert [r.token for r in apns_mock.requests] == [APNS_TOKEN]
    assert sorted(m["token"] for m in fcm_mock.messages) == [FCM_TOKEN, "fcm-token-ok-000000000002"]


def test_users_over_several_batches_each_device_once(web, runtime, tenant, data, settings, fcm_mock):
    """A device signed in to several of the targeted users (Discord-style
    sync) gets one notification, whichever batch has it."""
    settings.batch_size = 2
    iid = tenant["id"]
    tokens = [f"fcm-users-token-{n:08d}" for n in range(5)]
    for n, token in enumerate(tokens):
        device_id = add_device(data, iid, "fcm", token)
        for user in {f"user-{n}", f"user-{(n + 1) % 5}", "everyone"}:
            devices.add_user(data, iid, device_id, None, user, exclusive=False)
    users = ["everyone", *[f"user-{n}" for n in range(5)]]
    pid = publish(web, tenant, "users", users, fcm=FCM)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 5, 5), record
    assert sorted(m["token"] for m in fcm_mock.messages) == tokens
    assert int(data.hget(keys.publish(iid, pid), "batches_total")) == 3


@pytest.mark.parametrize("devices_", [0, 1, 5])
def test_a_done_publish_leaves_the_sweeps_list_at_once(web, runtime, tenant, data, settings, fcm_mock, devices_):
    """No device, one batch delivered by the fan-out itself, or several
    batches: once done, the publish is off the active list without waiting
    for a sweep (which would otherwise look at every done publish again)."""
    settings.batch_size = 2
    iid = tenant["id"]
    for n in range(devices_):
        add_device(data, iid, "fcm", f"fcm-active-token-{n:08d}", ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    assert publishes.active_member(iid, pid) in data.zrange(keys.ACTIVE_PUBLISHES, 0, -1)
    record = drain(runtime, web, tenant, pid)
    assert (record["status"], record["delivered"]) == ("done", devices_), record
    assert data.zrange(keys.ACTIVE_PUBLISHES, 0, -1) == []


# --- VoIP ------------------------------------------------------------------------


def test_voip_devices_get_only_the_voip_payload(web, runtime, tenant, data, apns_mock):
    iid = tenant["id"]
    add_device(data, iid, "apns_voip", "c0" * 32, ["calls"])
    add_device(data, iid, "apns", APNS_TOKEN, ["calls"])
    voip = {"aps": {}, "caller": "Ann", "call_id": "42"}
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["calls"], apns=ALERT, apns_voip=voip))
    assert (record["targeted"], record["delivered"], record["skipped"]) == (2, 2, 0)
    [call] = requests_for(apns_mock, "c0" * 32)
    assert call.headers["apns-push-type"] == "voip"
    assert call.headers["apns-topic"] == f"{APNS_TOPIC}.voip"
    assert call.body == voip  # PushKit pushes reach no Beams SDK: no delivery metadata
    [alert] = requests_for(apns_mock, APNS_TOKEN)
    assert alert.headers["apns-push-type"] == "alert" and alert.headers["apns-topic"] == APNS_TOPIC
    assert insights.split(alert.body)[0] == ALERT


def test_voip_devices_are_skipped_without_a_voip_payload(web, runtime, tenant, data, apns_mock):
    iid = tenant["id"]
    add_device(data, iid, "apns_voip", "c0" * 32, ["calls"])
    add_device(data, iid, "apns", APNS_TOKEN, ["calls"])
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["calls"], apns=ALERT))
    assert (record["targeted"], record["delivered"], record["skipped"]) == (2, 1, 1)
    assert [r.token for r in apns_mock.requests] == [APNS_TOKEN]


# --- a large interest -----------------------------------------------------------


def test_a_large_interest_is_delivered_once_to_every_device(web, runtime, tenant, data, fcm_mock):
    iid = tenant["id"]
    tokens = [f"fcm-big-token-{n:010d}" for n in range(2500)]
    for token in tokens:
        add_device(data, iid, "fcm", token, ["big"])
    pid = publish(web, tenant, "interests", ["big"], fcm=FCM)
    record = drain(runtime, web, tenant, pid, timeout=40)
    assert record["status"] == "done"
    assert (record["targeted"], record["delivered"], record["failed"], record["skipped"]) == (2500, 2500, 0, 0)
    assert len(fcm_mock.messages) == 2500
    assert sorted(m["token"] for m in fcm_mock.messages) == tokens
    assert int(data.hget(keys.publish(iid, pid), "batches_total")) >= 3
