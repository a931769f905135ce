"""A publish's work in ``publish.lua``, step by step (fakeredis and a real
redis-server): how a fan-out ends, what a walker is handed, the seen set,
a batch run finished with its last answers, and an operator's reopen."""
from __future__ import annotations

import pytest

from pushlite.storage import instances, keys, publishes, work
from pushlite.storage.work import FANOUT, BatchResult

OWNER = "test:1:worker"
LEASE_MS = 60_000
CHECK_MS = 10_000


@pytest.fixture
def iid(redis_client) -> str:
    return instances.create(redis_client, "work").id


def fan_out_claimed(client, iid: str, *targets: str, kind: str = "interests") -> str:
    publish_id = publishes.create(client, iid, kind, list(targets), {"fcm": {}})
    assert work.claim(client, iid, publish_id, FANOUT, OWNER, LEASE_MS).status == "ok"
    return publish_id


def walk(client, iid: str, publish_id: str, *interests: str, size: int = 1000) -> work.Step:
    return work.walk(client, iid, publish_id, [keys.interest(iid, name) for name in interests], OWNER,
                     LEASE_MS, size, CHECK_MS)


def record(client, iid: str, publish_id: str) -> dict:
    return publishes.get(client, iid, publish_id)


def test_a_walk_of_one_batch_ends_the_fan_out_and_hands_the_batch_to_the_walker(redis_client, iid):
    redis_client.sadd(keys.interest(iid, "news"), "a" * 12, "b" * 12)
    publish_id = fan_out_claimed(redis_client, iid, "news")
    step = walk(redis_client, iid, publish_id, "news")
    assert step.finished and step.ended and step.batches == []
    batch, claim = step.held
    assert sorted(claim.device_ids) == ["a" * 12, "b" * 12]
    assert record(redis_client, iid, publish_id)["status"] == "delivering"
    # The walker holds it: no one else can claim it, and the fan-out is over.
    assert work.claim(redis_client, iid, publish_id, batch, "other:2:x", LEASE_MS).status == "busy"
    assert work.claim(redis_client, iid, publish_id, FANOUT, "other:2:x", LEASE_MS).status == "done"
    assert not redis_client.exists(keys.publish_seen(iid, publish_id))


def test_a_walk_with_no_device_ends_the_publish(redis_client, iid):
    publish_id = fan_out_claimed(redis_client, iid, "nobody")
    step = walk(redis_client, iid, publish_id, "nobody")
    assert step.ended and step.held is None
    assert record(redis_client, iid, publish_id)["status"] == "done"


def test_a_walk_of_several_batches_leaves_enqueueing_to_the_walker(redis_client, iid):
    # SSCAN's COUNT is a hint (a small set, or one being rehashed, may come
    # back whole), so enough devices that no one reply can hold them all.
    ids = [f"{n:012x}" for n in range(40)]
    redis_client.sadd(keys.interest(iid, "news"), *ids)
    publish_id = fan_out_claimed(redis_client, iid, "news")
    steps = [walk(redis_client, iid, publish_id, "news", size=2)]
    while not steps[-1].finished:
        steps.append(walk(redis_client, iid, publish_id, "news", size=2))
    assert not any(step.ended for step in steps)
    batches = [batch for step in steps for batch in step.batches]
    assert len(batches) >= 2 and all(gen == 0 for _, gen in batches)
    stored = redis_client.hgetall(keys.publish_batches(iid, publish_id))
    assert sorted(x for n, _ in batches for x in stored[n].split(",")) == ids  # each device in one batch
    assert record(redis_client, iid, publish_id)["status"] == "fanning_out"
    assert work.fanned(redis_client, iid, publish_id, OWNER) is False  # batches wait: not done
    assert record(redis_client, iid, publish_id)["status"] == "delivering"


def test_add_puts_each_device_in_one_batch_however_often_it_is_given(redis_client, iid):
    publish_id = fan_out_claimed(redis_client, iid, "alice", "bob", kind="users")
    first = work.add(redis_client, iid, publish_id, OWNER, LEASE_MS, CHECK_MS, ["d1", "d2", "d1"], last=False)
    assert not first.finished and len(first.batches) == 1
    last = work.add(redis_client, iid, publish_id, OWNER, LEASE_MS, CHECK_MS, ["d2", "d3", "d3", "d1"], last=True)
    assert last.finished and not last.ended and len(last.batches) == 1
    stored = redis_client.hgetall(keys.publish_batches(iid, publish_id))
    assert stored[first.batches[0][0]].split(",") == ["d1", "d2"]
    assert stored[last.batches[0][0]].split(",") == ["d3"]


def test_finish_records_the_last_answers_and_ends_the_publish(redis_client, iid):
    redis_client.sadd(keys.interest(iid, "news"), "a" * 12, "b" * 12, "c" * 12)
    publish_id = fan_out_claimed(redis_client, iid, "news")
    batch, _ = walk(redis_client, iid, publish_id, "news").held
    work.answer(redis_client, iid, publish_id, batch, OWNER, LEASE_MS, BatchResult(delivered=["a" * 12]))
    last = BatchResult(removed=["b" * 12], failed=[("c" * 12, "apns:400:BadTopic")])
    finished = work.finish(redis_client, iid, publish_id, batch, OWNER, last, max_attempts=5, delay_ms=1000,
                           check_ms=CHECK_MS, reason="gave up")
    assert (finished.status, finished.publish_done) == ("done", True)
    got = record(redis_client, iid, publish_id)
    assert (got["status"], got["targeted"], got["delivered"], got["removed"], got["failed"]) == ("done", "3", "1", "1", "1")
    assert got["failures"] == [{"device_id": "c" * 12, "reason": "apns:400:BadTopic"}]


def test_a_reopen_counts_the_devices_afresh_and_takes_them_off_the_failures(redis_client, iid):
    redis_client.sadd(keys.interest(iid, "news"), "a" * 12, "b" * 12)
    publish_id = fan_out_claimed(redis_client, iid, "news")
    batch, _ = walk(redis_client, iid, publish_id, "news").held
    failed = BatchResult(failed=[("a" * 12, "apns:400:TopicDisallowed"), ("b" * 12, "apns:400:TopicDisallowed")])
    work.finish(redis_client, iid, publish_id, batch, OWNER, failed, max_attempts=5, delay_ms=0,
                check_ms=CHECK_MS, reason="gave up")
    reopened = work.reopen(redis_client, iid, publish_id, "job-1", CHECK_MS, ["a" * 12])
    assert reopened is not None and reopened[1] == 0
    got = record(redis_client, iid, publish_id)
    assert (got["status"], got["targeted"], got["failed"]) == ("delivering", "1", "1")
    assert [f["device_id"] for f in got["failures"]] == ["b" * 12]
    assert work.reopen(redis_client, iid, publish_id, "job-1", CHECK_MS, ["a" * 12]) is None  # once per job


def test_a_claim_can_read_what_the_publish_asks_for_in_the_same_call(redis_client, iid):
    publish_id = publishes.create(redis_client, iid, "interests", ["news", "sport"], {"fcm": {"data": {"a": 1}}},
                                  {"apps": '["ios"]'})
    plain = work.claim(redis_client, iid, publish_id, FANOUT, OWNER, LEASE_MS)
    claimed = work.claim(redis_client, iid, publish_id, FANOUT, OWNER, LEASE_MS, with_content=True)
    assert plain.status == claimed.status == "ok" and plain.content is None
    assert claimed.content == publishes.content(redis_client, iid, publish_id)
    assert claimed.content == publishes.Content("interests", ["news", "sport"], {"fcm": {"data": {"a": 1}}},
                                                frozenset({"ios"}))
