"""A worker process's leases: renewed by one thread while held, so an item
outlives its lease length while a job works on it; a lease found taken over
is marked lost; nothing is renewed once released."""
from __future__ import annotations

import time

from pushlite.storage import work
from pushlite.storage.work import FANOUT
from tests.delivery.conftest import publish
from workers.lease import Lease


def test_a_held_item_outlives_its_lease_and_is_free_soon_after_release(web, runtime, tenant, data, settings):
    settings.lease_seconds = 0.3
    pid = publish(web, tenant, "interests", ["news"], fcm={"notification": {"title": "x"}})
    lease_ms = int(settings.lease_seconds * 1000)
    assert work.claim(data, tenant["id"], pid, FANOUT, runtime.owner, lease_ms).status == "ok"
    with Lease(runtime, tenant["id"], pid, FANOUT) as lease:
        time.sleep(1.0)  # over three lease lengths
        assert work.claim(data, tenant["id"], pid, FANOUT, "other:1:x", lease_ms).status == "busy"
        assert not lease.lost
    time.sleep(0.5)  # no longer renewed: the lease runs out
    assert work.claim(data, tenant["id"], pid, FANOUT, "other:1:x", lease_ms).status == "ok"


def test_a_lease_taken_over_is_marked_lost(web, runtime, tenant, data, settings):
    settings.lease_seconds = 0.3
    pid = publish(web, tenant, "interests", ["news"], fcm={"notification": {"title": "x"}})
    assert work.claim(data, tenant["id"], pid, FANOUT, runtime.owner, 300).status == "ok"
    with Lease(runtime, tenant["id"], pid, FANOUT) as lease:
        # Another worker took it over while this one stalled.
        assert work.release(data, tenant["id"], pid, FANOUT, runtime.owner, 10_000) is not None
        assert work.claim(data, tenant["id"], pid, FANOUT, "other:1:x", 60_000).status == "ok"
        deadline = time.monotonic() + 2
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lease.lost
