"""An operator requeues the ``undelivered`` job of a publish (from /rq, or
with ``flask publishes requeue``): those devices are tried once more, the
job ends finished (not failed again), and the publish's counters and
failure list stay right."""
from __future__ import annotations

import redis
from rq.job import Job
from rq.registry import FailedJobRegistry

from tests.conftest import ADMIN
from tests.faults.conftest import assert_adds_up, wait_for
from workers.runtime import DELIVERY_QUEUE


def failed_job_ids(scene) -> list[str]:
    return FailedJobRegistry(DELIVERY_QUEUE, connection=_queue_redis(scene)).get_job_ids()


def _queue_redis(scene) -> redis.Redis:
    return redis.Redis.from_url(scene.app.config["REDIS_URL"])  # RQ pickles: no decoding


def publish_with_one_failure(scene, workers) -> tuple[str, list[str], str, str]:
    """A publish to 3 good devices and one the provider refuses (400
    TopicDisallowed: failed, not retried), done; and its undelivered job."""
    ok = scene.add_devices(3)
    (broken,) = scene.add_devices(1, prefix="disallowed")
    workers.start(1)
    pid = scene.publish()
    record = scene.wait_done(pid, 30)
    assert (record["delivered"], record["failed"], record["targeted"]) == (3, 1, 4), record
    assert [f["reason"] for f in record["failures"]] == ["apns:400:TopicDisallowed"]
    (job_id,) = wait_for(lambda: failed_job_ids(scene), 20, "the undelivered job in the failed registry")
    assert job_id.startswith(f"{pid}_undelivered_")
    return pid, ok, broken, job_id


def test_requeue_from_rq_dashboard_delivers_the_failed_devices_once(scene, workers, apns_mock):
    pid, ok, broken, job_id = publish_with_one_failure(scene, workers)
    apns_mock.all_ok = True  # the operator fixed the app's topic
    answer = scene.web.post(f"/rq/job/{job_id}/requeue", headers=ADMIN)
    assert answer.status_code == 200, answer.get_data(as_text=True)

    record = wait_for(lambda: (r := scene.status(pid))["delivered"] == 4 and r["status"] == "done" and r, 30,
                      "the requeued device to be delivered")
    assert (record["delivered"], record["failed"], record["targeted"]) == (4, 0, 4), record
    assert record["failures"] == []
    assert_adds_up(record)
    assert apns_mock.seen[broken] == 2 and all(apns_mock.seen[t] == 1 for t in ok)
    # The job ended finished (successful jobs are not kept): out of the
    # failed registry, and no new one stands there.
    wait_for(lambda: not failed_job_ids(scene) and not Job.exists(job_id, connection=_queue_redis(scene)), 20,
             "the requeued job to finish")


def test_requeue_from_the_cli_and_failing_again_leaves_one_new_undelivered_job(scene, workers, apns_mock):
    pid, ok, broken, job_id = publish_with_one_failure(scene, workers)
    cli = scene.app.test_cli_runner()
    result = cli.invoke(args=["publishes", "requeue", pid])
    assert result.exit_code == 0, result.output
    assert "requeued 1 undelivered job(s): 1 device(s)" in result.output

    # Not fixed: the device fails again, once, and gets a new undelivered job.
    (again,) = wait_for(lambda: [j for j in failed_job_ids(scene) if j != job_id], 30, "a new undelivered job")
    assert job_id not in failed_job_ids(scene) and not Job.exists(job_id, connection=_queue_redis(scene))
    record = scene.wait_done(pid, 30)
    assert (record["delivered"], record["failed"], record["targeted"]) == (3, 1, 4), record
    assert [f["reason"] for f in record["failures"]] == ["apns:400:TopicDisallowed"]
    assert_adds_up(record)
    assert apns_mock.seen[broken] == 2 and all(apns_mock.seen[t] == 1 for t in ok)

    # Fixed, then requeued with --all: delivered.
    apns_mock.all_ok = True
    result = cli.invoke(args=["publishes", "requeue", "--all"])
    assert result.exit_code == 0 and "requeued 1 undelivered job(s)" in result.output, result.output
    record = wait_for(lambda: (r := scene.status(pid))["delivered"] == 4 and r["status"] == "done" and r, 30,
                      "the requeued device to be delivered")
    assert (record["failed"], record["targeted"], record["failures"]) == (0, 4, []), record
    assert apns_mock.seen[broken] == 3
    # Nothing is left to requeue for that publish.
    result = cli.invoke(args=["publishes", "requeue", pid])
    assert result.exit_code != 0 and f"no undelivered devices to requeue for {pid}" in result.output
