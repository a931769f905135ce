"""A publish's request id travels with its jobs through the queues: the
fan-out job's meta, the batch jobs it enqueues, and the lines each logs."""
from __future__ import annotations

import io
import json
import logging

from pushlite.logs import ContextFilter, JsonFormatter
from tests.delivery.conftest import FCM, BurstWorker, add_device, status
from workers.logged_job import LoggedJob


class LoggedBurstWorker(BurstWorker):
    job_class = LoggedJob


def test_batch_jobs_carry_the_request_id_and_log_it(web, runtime, settings, tenant, data, fcm_mock):
    # Twenty devices in batches of about two (SSCAN's COUNT is a hint: no
    # one reply holds them all): several batch jobs.
    settings.batch_size = 2
    for n in range(20):
        add_device(data, tenant["id"], "fcm", f"fcm-token-ok-0000000000{n:02d}", ["news"])
    answer = web.post(f"/publish_api/v1/instances/{tenant['id']}/publishes/interests",
                      json={"interests": ["news"], "fcm": FCM}, headers={**tenant["auth"], "X-Request-Id": "deploy-9"})
    publish_id = answer.get_json()["publishId"]
    [fan_out] = runtime.fanout_queue.jobs
    assert fan_out.meta["request_id"] == "deploy-9"

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        LoggedBurstWorker([runtime.fanout_queue, runtime.delivery_queue],
                          connection=runtime.fanout_queue.connection).work(burst=True, logging_level="WARNING")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert status(web, tenant, publish_id)["delivered"] == 20
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    jobs = [line for line in lines if line["logger"] == "workers.logged_job"]
    names = [line["job"] for line in jobs]
    assert names.count("fan_out") == 1 and names.count("deliver") >= 2  # the batches were jobs of their own
    for line in jobs:
        assert (line["request_id"], line["instance_id"], line["publish_id"]) == ("deploy-9", tenant["id"], publish_id)
        assert line["message"] == f"job {line['job']} done" and line["duration_ms"] >= 0
