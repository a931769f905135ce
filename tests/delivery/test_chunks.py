"""A batch is sent in chunks of one sender window: the next chunk's devices
are loaded while the current chunk is in flight, and a chunk whose early
load failed is loaded again in its turn (real redis-server, FCM mock)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import redis

from tests.delivery.conftest import FCM, add_device, drain, publish
from workers import delivery


@pytest.fixture
def five_in_chunks_of_two(runtime, data, tenant) -> list[str]:
    """Five FCM devices in "news", and a sender window of 2: one batch of three chunks."""
    runtime.sender_settings = replace(runtime.sender_settings, max_concurrency=2)
    return [add_device(data, tenant["id"], "fcm", f"fcm-token-ok-chunk-{n}", ["news"]) for n in range(5)]


def watch_chunks(monkeypatch: pytest.MonkeyPatch, fail_loads: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    """("load", ids) when a chunk's devices are read, ("sent", ids) once its
    answers are in; the first ``fail_loads`` loads after the first fail."""
    events: list[tuple[str, tuple[str, ...]]] = []
    load_many, finish = delivery.devices.load_many, delivery.finish

    def loading(client: Any, instance_id: str, device_ids: Any) -> Any:
        events.append(("load", tuple(device_ids)))
        if 1 < len(events) <= 1 + fail_loads:
            raise redis.ConnectionError("Redis went away")
        return load_many(client, instance_id, device_ids)

    def finishing(rt: Any, chunk: delivery.Chunk, outcomes: Any) -> Any:
        events.append(("sent", tuple(sorted(i for outcome in outcomes for i in outcome.delivered))))
        return finish(rt, chunk, outcomes)

    monkeypatch.setattr(delivery.devices, "load_many", loading)
    monkeypatch.setattr(delivery, "finish", finishing)
    return events


def test_the_next_chunk_is_loaded_while_the_current_one_is_in_flight(
    web, runtime, tenant, fcm_mock, five_in_chunks_of_two, monkeypatch
):
    events = watch_chunks(monkeypatch)
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], fcm=FCM))
    assert (record["status"], record["delivered"]) == ("done", 5)
    assert [kind for kind, _ in events] == ["load", "load", "sent", "load", "sent", "sent"]
    loads = [ids for kind, ids in events if kind == "load"]
    assert sorted(i for ids in loads for i in ids) == sorted(five_in_chunks_of_two)
    assert [ids for kind, ids in events if kind == "sent"] == [tuple(sorted(ids)) for ids in loads]


def test_a_chunk_whose_early_load_failed_is_loaded_again_in_turn(
    web, runtime, tenant, fcm_mock, five_in_chunks_of_two, monkeypatch
):
    events = watch_chunks(monkeypatch, fail_loads=1)
    record = drain(runtime, web, tenant, publish(web, tenant, "interests", ["news"], fcm=FCM))
    assert (record["status"], record["delivered"], record["retried"]) == ("done", 5, 0)
    assert sorted(m["token"] for m in fcm_mock.messages) == sorted(f"fcm-token-ok-chunk-{n}" for n in range(5))
    # The failed early load of the second chunk, then that chunk again once the first is answered.
    assert [kind for kind, _ in events] == ["load", "load", "sent", "load", "load", "sent", "sent"]
    assert events[1][1] == events[3][1]
