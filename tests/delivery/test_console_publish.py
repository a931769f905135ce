"""The console's publish and instance pages after a real delivery (real
redis-server, the local mocks): failures with their reasons, the
undelivered devices' job in /rq, and the notifications per minute."""
from __future__ import annotations

import json
import re

from tests.conftest import ADMIN
from tests.console.conftest import log_in
from tests.delivery.conftest import FCM, add_device, drain, publish


def test_failures_their_jobs_and_the_chart(web, runtime, tenant, data, fcm_mock):
    iid = tenant["id"]
    add_device(data, iid, "fcm", "fcm-token-ok-000000000001", ["news"])
    add_device(data, iid, "fcm", "dead-fcm-token-000000001", ["news"])
    failing = add_device(data, iid, "fcm", "invalid-fcm-token-000001", ["news"])
    pid = publish(web, tenant, "interests", ["news"], fcm=FCM)
    assert drain(runtime, web, tenant, pid)["status"] == "done"

    log_in(web)
    page = web.get(f"/console/instances/{iid}/publishes/{pid}").get_data(as_text=True)
    assert re.search(r'id="count-delivered">1<', page) and re.search(r'id="count-removed">1<', page)
    assert f"<code>{failing}</code></td><td>fcm:400:INVALID_ARGUMENT</td>" in page
    [job_id] = re.findall(r'href="/rq/0/view/job/([^"]+)">undelivered: 1 device\(s\)', page)
    assert web.get(f"/rq/0/view/job/{job_id}", headers=ADMIN).status_code == 200
    assert 'http-equiv="refresh"' not in page

    instance_page = web.get(f"/console/instances/{iid}").get_data(as_text=True)
    chart = json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>',
                                 instance_page, re.S).group(1))
    assert len(chart["times"]) == 60
    assert chart["totals"] == {"delivered": 1, "removed": 1, "retried": 0, "failed": 1, "skipped": 0}
    assert sum(chart["series"]["failed"]) == 1
    row = re.search(r"<tr><td>\d\d:\d\d</td>(.*?)</tr>", instance_page, re.S).group(1)
    assert re.findall(r'class="num">(\d+)<', row) == ["1", "1", "0", "1", "0"]
