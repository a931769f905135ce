"""FCM sender against the local HTTP/2 mock: mapping on the wire, classification, OAuth reuse."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.mocks.fcm_mock import FCMMock
from tests.senders.conftest import targets
from workers.senders import Sender
from workers.senders.fcm import classify

PAYLOAD = {
    "notification": {"title": "Hello", "body": "World", "icon": "ic_bell"},
    "data": {"count": 3, "room": "lobby"},
    "priority": "high",
    "time_to_live": 60,
    "collapse_key": "lobby",
}
MakeSender = Callable[..., Sender]
Run = Callable[[Any], Any]


def fcm_targets(*tokens: str) -> list[Any]:
    return targets(*tokens, platform="fcm")


def test_message_on_the_wire(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    outcome = run(make_sender("fcm").send(fcm_targets("tok1"), PAYLOAD))
    assert outcome.delivered == ["d-tok1"]
    assert fcm_mock.messages == [{
        "token": "tok1",
        "notification": {"title": "Hello", "body": "World"},
        "data": {"count": "3", "room": "lobby"},
        "android": {"notification": {"icon": "ic_bell"}, "priority": "high", "ttl": "60s", "collapse_key": "lobby"},
    }]


def test_each_classification_branch(make_sender: MakeSender, run: Run) -> None:
    tokens = ["ok1", "dead1", "bad1", "invalid1", "mismatch1", "busy1", "down1", "garbage1"]
    outcome = run(make_sender("fcm").send(fcm_targets(*tokens), PAYLOAD))
    assert outcome.delivered == ["d-ok1"]
    assert sorted(outcome.dead) == ["d-bad1", "d-dead1"]
    assert sorted(outcome.retry) == [("d-busy1", 1.0), ("d-down1", None), ("d-garbage1", None)]
    assert sorted(outcome.failed) == [
        ("d-invalid1", "fcm:400:INVALID_ARGUMENT"), ("d-mismatch1", "fcm:403:SENDER_ID_MISMATCH"),
    ]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b"", ("dead", "fcm:404:unreadable")),
        (400, b'{"error": {"status": "INVALID_ARGUMENT", "message": "Invalid value at \'message.token\'"}}',
         ("dead", "fcm:400:INVALID_ARGUMENT")),
        (400, b'{"error": {"status": "INVALID_ARGUMENT", "message": "bad ttl"}}', ("failed", "fcm:400:INVALID_ARGUMENT")),
        (400, b'{"error": {"status": "FAILED_PRECONDITION", "details": [{"errorCode": "UNREGISTERED"}]}}',
         ("dead", "fcm:400:UNREGISTERED")),
        (500, b"not json", ("retry", "fcm:500:unreadable")),
        (502, b"[1, 2]", ("retry", "fcm:502:unreadable")),
        (403, b'{"error": "just a string"}', ("failed", "fcm:403:unreadable")),
        (400, b'{"error": {"details": "nope", "status": 7}}', ("failed", "fcm:400:unreadable")),
        (401, b'{"error": {"status": "UNAUTHENTICATED", "details": [{"errorCode": "THIRD_PARTY_AUTH_ERROR"}]}}',
         ("failed", "fcm:401:THIRD_PARTY_AUTH_ERROR")),
    ],
)
def test_classify_table(status: int, body: bytes, expected: tuple[str, str]) -> None:
    assert classify(status, body) == expected


def test_one_oauth_exchange_across_many_sends(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    sender = make_sender("fcm")
    for batch in range(5):
        outcome = run(sender.send(fcm_targets(*(f"reuse{batch}-{i}" for i in range(10))), PAYLOAD))
        assert len(outcome.delivered) == 10
    assert fcm_mock.exchanges == 1
    assert len(set(fcm_mock.auth_headers)) == 1 and len(fcm_mock.auth_headers) == 50


def test_concurrent_sends_share_one_exchange(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    import asyncio

    sender = make_sender("fcm")

    async def both() -> list[Any]:
        return await asyncio.gather(*(sender.send(fcm_targets(f"c{n}-a", f"c{n}-b"), PAYLOAD) for n in range(4)))

    outcomes = run(both())
    assert [len(o.delivered) for o in outcomes] == [2, 2, 2, 2]
    assert fcm_mock.exchanges == 1


def test_access_token_is_renewed_5_minutes_before_expiry(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    sender = make_sender("fcm")
    clock = [time.time()]
    sender.access_token.clock = lambda: clock[0]  # type: ignore[attr-defined]
    run(sender.send(fcm_targets("a"), PAYLOAD))
    clock[0] += 3600 - 301
    run(sender.send(fcm_targets("b"), PAYLOAD))
    assert fcm_mock.exchanges == 1
    clock[0] += 2
    run(sender.send(fcm_targets("c"), PAYLOAD))
    assert fcm_mock.exchanges == 2


def test_401_refreshes_the_token_once_for_the_whole_batch(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    sender = make_sender("fcm")
    run(sender.send(fcm_targets("warm"), PAYLOAD))
    fcm_mock.revoke_access_tokens()
    outcome = run(sender.send(fcm_targets(*(f"after{i}" for i in range(20))), PAYLOAD))
    assert len(outcome.delivered) == 20
    assert fcm_mock.exchanges == 2


def test_401_after_a_fresh_token_goes_to_retry(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    outcome = run(make_sender("fcm").send(fcm_targets("unauth1", "fine"), PAYLOAD))
    assert outcome.retry == [("d-unauth1", None)] and outcome.delivered == ["d-fine"]
    assert fcm_mock.exchanges == 2


def test_rejected_assertion_fails_the_batch(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    fcm_mock.token_endpoint_status = 400
    outcome = run(make_sender("fcm").send(fcm_targets("x1", "x2"), PAYLOAD))
    assert outcome.failed == [("d-x1", "fcm:oauth:400:invalid_grant"), ("d-x2", "fcm:oauth:400:invalid_grant")]
    assert fcm_mock.messages == []


def test_token_endpoint_down_means_retry(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    fcm_mock.token_endpoint_status = 503
    sender = make_sender("fcm")
    outcome = run(sender.send(fcm_targets("y1", "y2"), PAYLOAD))
    assert sorted(outcome.retry) == [("d-y1", None), ("d-y2", None)]
    # A failure is remembered briefly, so a storm of sends does not hammer the endpoint.
    run(sender.send(fcm_targets("y3"), PAYLOAD))
    assert fcm_mock.exchanges == 1


def test_big_batch_runs_many_streams_at_once(make_sender: MakeSender, run: Run, fcm_mock: FCMMock) -> None:
    outcome = run(make_sender("fcm").send(fcm_targets(*(f"many{i}" for i in range(500))), PAYLOAD))
    assert len(outcome.delivered) == 500
    assert fcm_mock.max_open_streams > 1
    assert fcm_mock.exchanges == 1


def test_wrong_project_is_a_permanent_failure(make_sender: MakeSender, run: Run) -> None:
    outcome = run(make_sender("fcm", project_id="someone-else").send(fcm_targets("p1"), PAYLOAD))
    assert outcome.failed == [("d-p1", "fcm:403:PERMISSION_DENIED")]
