"""APNs sender against the local HTTP/2 mock: headers, classification, token reuse, concurrency."""
from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.mocks.apns_mock import APNsMock
from tests.mocks.providers import APNS_TOPIC
from tests.senders.conftest import targets
from workers.senders import Sender, SenderSettings, Target, build_sender
from workers.senders.apns import PRODUCTION_ORIGIN, SANDBOX_ORIGIN, classify, prepare
from workers.senders.apns_auth import TOKEN_LIFETIME

ALERT = {"aps": {"alert": {"title": "Hi", "body": "There"}}, "thread": "t1"}
MakeSender = Callable[..., Sender]
Run = Callable[[Any], Any]


def only_request(mock: APNsMock, token: str) -> Any:
    [request] = [r for r in mock.requests if r.token == token]
    return request


def test_alert_push_headers_and_body(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    outcome = run(make_sender("apns").send(targets("tok1"), ALERT))
    assert outcome.delivered == ["d-tok1"]
    request = only_request(apns_mock, "tok1")
    assert request.path == "/3/device/tok1"
    assert request.headers["apns-topic"] == APNS_TOPIC
    assert request.headers["apns-push-type"] == "alert"
    assert "apns-priority" not in request.headers
    assert request.body == ALERT


def test_background_push_gets_priority_5(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    payload = {"aps": {"content-available": 1}, "sync": "inbox", "priority": 10}
    outcome = run(make_sender("apns").send(targets("bg1"), payload))
    assert outcome.delivered == ["d-bg1"]
    request = only_request(apns_mock, "bg1")
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    assert request.body == {"aps": {"content-available": 1}, "sync": "inbox"}


def test_content_available_with_a_badge_is_still_an_alert() -> None:
    prepared = prepare({"aps": {"content-available": 1, "badge": 3}}, "com.x")
    assert prepared.headers["apns"]["apns-push-type"] == "alert"


def test_voip_uses_the_voip_topic(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    outcome = run(make_sender("apns").send(targets("call1", platform="apns_voip"), {"aps": {}, "caller": "Ann"}))
    assert outcome.delivered == ["d-call1"]
    request = only_request(apns_mock, "call1")
    assert request.headers["apns-topic"] == f"{APNS_TOPIC}.voip"
    assert request.headers["apns-push-type"] == "voip"


def test_beams_header_keys_become_request_headers(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    payload = {**ALERT, "collapse_id": "score-42", "priority": 5, "expiration": 1893456000, "data": {"k": "v"}}
    run(make_sender("apns").send(targets("h1"), payload))
    request = only_request(apns_mock, "h1")
    assert request.headers["apns-collapse-id"] == "score-42"
    assert request.headers["apns-priority"] == "5"
    assert request.headers["apns-expiration"] == "1893456000"
    assert request.body == {**ALERT, "data": {"k": "v"}}


def test_headers_dict_is_mapped_and_wins(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    payload = {
        **ALERT,
        "collapse_id": "beams",
        "headers": {"apns-collapse-id": "explicit", "APNs-Expiration": 0, "apns-id": "ignored", "x-other": "no"},
    }
    run(make_sender("apns").send(targets("h2"), payload))
    request = only_request(apns_mock, "h2")
    assert request.headers["apns-collapse-id"] == "explicit"
    assert request.headers["apns-expiration"] == "0"
    assert "apns-id" not in request.headers and "x-other" not in request.headers
    assert "headers" not in request.body


def test_unusable_header_value_fails_the_batch_without_sending(
    make_sender: MakeSender, run: Run, apns_mock: APNsMock
) -> None:
    outcome = run(make_sender("apns").send(targets("h3", "h4"), {**ALERT, "collapse_id": "a\nb"}))
    assert outcome.failed == [("d-h3", "apns:payload:bad-apns-collapse-id"), ("d-h4", "apns:payload:bad-apns-collapse-id")]
    assert apns_mock.requests == []


def test_body_is_serialized_once_per_batch(monkeypatch: pytest.MonkeyPatch, make_sender: MakeSender, run: Run) -> None:
    import workers.senders.apns as apns_module

    calls: list[Any] = []
    real = apns_module.dumps
    monkeypatch.setattr(apns_module, "dumps", lambda value: calls.append(value) or real(value))
    outcome = run(make_sender("apns").send(targets(*(f"once{i}" for i in range(20))), ALERT))
    assert len(outcome.delivered) == 20
    assert len(calls) == 1


def test_each_classification_branch(make_sender: MakeSender, run: Run) -> None:
    tokens = ["ok1", "dead1", "bad1", "notopic1", "busy1", "down1", "garbage1", "flaky1"]
    outcome = run(make_sender("apns").send(targets(*tokens), ALERT))
    assert outcome.delivered == ["d-ok1"]
    assert sorted(outcome.dead) == ["d-bad1", "d-dead1"]
    assert sorted(outcome.retry) == [("d-busy1", 1.0), ("d-down1", None), ("d-flaky1", None), ("d-garbage1", None)]
    assert outcome.failed == [("d-notopic1", "apns:400:DeviceTokenNotForTopic")]
    assert outcome.total == len(tokens)


def test_flaky_token_is_delivered_once_the_provider_recovers(make_sender: MakeSender, run: Run) -> None:
    sender = make_sender("apns")
    first = run(sender.send(targets("flaky2x"), ALERT))
    second = run(sender.send(targets("flaky2x"), ALERT))
    third = run(sender.send(targets("flaky2x"), ALERT))
    assert (first.retry, second.retry, third.delivered) == ([("d-flaky2x", None)], [("d-flaky2x", None)], ["d-flaky2x"])


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (200, "", "delivered"),
        (410, "ExpiredToken", "dead"),
        (400, "BadDeviceToken", "dead"),
        (400, "DeviceTokenNotForTopic", "failed"),  # the wrong credential, not a dead token
        (400, "TopicDisallowed", "failed"),
        (400, "BadTopic", "failed"),
        (400, "PayloadEmpty", "failed"),
        (413, "PayloadTooLarge", "failed"),
        (403, "InvalidProviderToken", "failed"),
        (403, "ExpiredProviderToken", "retry"),
        (429, "TooManyRequests", "retry"),
        (500, "unreadable", "retry"),
        (503, "Shutdown", "retry"),
    ],
)
def test_classify_table(status: int, reason: str, kind: str) -> None:
    assert classify(status, reason) == kind


def test_wrong_topic_is_a_permanent_failure(make_sender: MakeSender, run: Run) -> None:
    outcome = run(make_sender("apns", topic="com.example.other").send(targets("t1"), ALERT))
    assert outcome.failed == [("d-t1", "apns:400:BadTopic")]


def test_a_token_of_another_app_is_a_failure_not_a_dead_token(
    make_sender: MakeSender, run: Run, apns_mock: APNsMock
) -> None:
    """APNs answers DeviceTokenNotForTopic when the credential's topic is not
    the token's app: the token is fine, the credential is not the right one."""
    apns_mock.bind("second-app-token", "com.example.second")
    outcome = run(make_sender("apns").send(targets("second-app-token"), ALERT))
    assert (outcome.dead, outcome.failed) == ([], [("d-second-app-token", "apns:400:DeviceTokenNotForTopic")])
    outcome = run(make_sender("apns", topic="com.example.second").send(targets("second-app-token"), ALERT))
    assert outcome.delivered == ["d-second-app-token"]
    assert apns_mock.requests[-1].headers["apns-topic"] == "com.example.second"


def test_wrong_signing_key_is_a_permanent_failure(make_sender: MakeSender, run: Run, fcm_key: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.mocks.providers import pem

    other = pem(ec.generate_private_key(ec.SECP256R1()))
    outcome = run(make_sender("apns", private_key=other).send(targets("t2"), ALERT))
    assert outcome.failed == [("d-t2", "apns:403:InvalidProviderToken")]


def test_oversized_payload_fails_locally(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    payload = {"aps": {"alert": "x"}, "blob": "y" * 4500}
    batch = [*targets("big1"), *targets("big2", platform="apns_voip"), *targets("f1", platform="fcm")]
    outcome = run(make_sender("apns").send(batch, payload))
    assert outcome.delivered == ["d-big2"]  # VoIP allows 5 KB
    assert sorted(outcome.failed) == [("d-big1", "apns:413:PayloadTooLarge"), ("d-f1", "apns:unsupported-platform:fcm")]
    assert [r.token for r in apns_mock.requests] == ["big2"]


def test_one_provider_token_across_many_batches(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    sender = make_sender("apns")
    for batch in range(5):
        outcome = run(sender.send(targets(*(f"reuse{batch}-{i}" for i in range(10))), ALERT))
        assert len(outcome.delivered) == 10
    assert len(apns_mock.requests) == 50
    assert len(apns_mock.provider_tokens) == 1


def test_provider_token_is_regenerated_after_40_minutes(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    sender = make_sender("apns")
    clock = [1_000_000.0]
    sender.provider_token.clock = lambda: clock[0]  # type: ignore[attr-defined]
    first = sender.provider_token.value  # type: ignore[attr-defined]
    clock[0] += TOKEN_LIFETIME - 1
    assert sender.provider_token.value == first  # type: ignore[attr-defined]
    clock[0] += 1
    assert sender.provider_token.value != first  # type: ignore[attr-defined]


def test_expired_provider_token_is_refreshed_once_and_retried(
    make_sender: MakeSender, run: Run, apns_mock: APNsMock
) -> None:
    sender = make_sender("apns")
    run(sender.send(targets("warm"), ALERT))
    outcome = run(sender.send(targets("expired1", "expired2", "plain"), ALERT))
    assert sorted(outcome.delivered) == ["d-expired1", "d-expired2", "d-plain"]
    assert apns_mock.seen["expired1"] == 2 and apns_mock.seen["expired2"] == 2
    # Both streams saw the same stale token: only one new token was made.
    assert len(apns_mock.provider_tokens) == 2


def test_token_still_expired_after_refresh_goes_to_retry(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    outcome = run(make_sender("apns").send(targets("staletoken1"), ALERT))
    assert outcome.retry == [("d-staletoken1", None)]
    assert apns_mock.seen["staletoken1"] == 2


def test_big_batch_runs_many_streams_at_once(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    outcome = run(make_sender("apns").send(targets(*(f"many{i}" for i in range(500))), ALERT))
    assert len(outcome.delivered) == 500
    assert apns_mock.max_open_streams > 1
    assert len(apns_mock.provider_tokens) == 1


def test_max_concurrency_bounds_streams_in_flight(make_sender: MakeSender, run: Run, apns_mock: APNsMock) -> None:
    outcome = run(make_sender("apns", settings={"max_concurrency": 3}).send(targets(*(f"c{i}" for i in range(60))), ALERT))
    assert len(outcome.delivered) == 60
    assert apns_mock.max_open_streams <= 3


def test_unreachable_provider_means_retry(run: Run, apns_credential: dict[str, Any]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = build_sender("apns", apns_credential, SenderSettings(apns_endpoint=f"http://127.0.0.1:{port}", timeout=2))
    outcome = run(sender.send(targets("u1", "u2"), ALERT))
    run(sender.aclose())
    assert sorted(outcome.retry) == [("d-u1", None), ("d-u2", None)]


def test_environment_picks_the_apple_host(apns_credential: dict[str, Any]) -> None:
    sender = build_sender("apns", apns_credential, SenderSettings())
    assert sender.origin(Target("d", "t", "apns", None)) == PRODUCTION_ORIGIN  # type: ignore[attr-defined]
    assert sender.origin(Target("d", "t", "apns", "sandbox")) == SANDBOX_ORIGIN  # type: ignore[attr-defined]
    sandbox = build_sender("apns", {**apns_credential, "environment": "development"}, SenderSettings())
    assert sandbox.origin(Target("d", "t", "apns", None)) == SANDBOX_ORIGIN  # type: ignore[attr-defined]
    assert sandbox.origin(Target("d", "t", "apns", "production")) == PRODUCTION_ORIGIN  # type: ignore[attr-defined]
    local = build_sender("apns", apns_credential, SenderSettings(apns_endpoint="http://127.0.0.1:1/"))
    assert local.origin(Target("d", "t", "apns", "sandbox")) == "http://127.0.0.1:1"  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_sender_survives_a_new_event_loop(apns_mock: APNsMock, apns_credential: dict[str, Any]) -> None:
    """A caller that runs each job in a fresh loop still works; the old loop's connection is abandoned."""
    import asyncio
    import gc

    sender = build_sender("apns", apns_credential, SenderSettings(apns_endpoint=apns_mock.url))
    assert asyncio.run(sender.send(targets("loop1"), ALERT)).delivered == ["d-loop1"]
    assert asyncio.run(sender.send(targets("loop2"), ALERT)).delivered == ["d-loop2"]
    asyncio.run(sender.aclose())
    assert len(apns_mock.provider_tokens) == 1
    gc.collect()  # the abandoned connection's ResourceWarning belongs to this test


def test_cut_connection_means_retry_and_a_new_connection(make_sender: MakeSender, run: Run) -> None:
    sender = make_sender("apns", settings={"max_concurrency": 1})  # one stream at a time: only drop1 is hit
    outcome = run(sender.send(targets("before", "drop1", "after"), ALERT))
    assert outcome.delivered == ["d-before", "d-after"]
    assert outcome.retry == [("d-drop1", None)]


def test_goaway_is_survived(make_sender: MakeSender, run: Run) -> None:
    sender = make_sender("apns", settings={"max_concurrency": 1})
    outcome = run(sender.send(targets("before", "shutdown1", "after"), ALERT))
    assert outcome.delivered == ["d-before", "d-after"]
    assert outcome.retry == [("d-shutdown1", None)]


def test_goaway_and_cut_in_a_busy_batch_lose_nothing(make_sender: MakeSender, run: Run) -> None:
    sender = make_sender("apns")
    tokens = [f"n{i}" for i in range(200)]
    tokens[50], tokens[150] = "shutdown2", "drop2"
    outcome = run(sender.send(targets(*tokens), ALERT))
    assert outcome.total == 200 and not outcome.failed and not outcome.dead
    again = run(sender.send([t for t in targets(*tokens) if t.device_id in dict(outcome.retry)
                             and t.token not in ("shutdown2", "drop2")], ALERT))
    assert not again.retry and not again.failed


def test_https_endpoint_is_verified_tls(
    tls_files: tuple[str, str], apns_key: Any, apns_credential: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch, run: Run,
) -> None:
    import ssl

    from tests.mocks.providers import APNS_KEY_ID, APNS_TEAM_ID

    cert_file, key_file = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.set_alpn_protocols(["h2"])
    mock = APNsMock(apns_key.public_key(), APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC)
    mock.ssl_context = server_context
    with mock:
        settings = SenderSettings(apns_endpoint=mock.url, timeout=3)
        assert settings.apns_endpoint and settings.apns_endpoint.startswith("https://")
        untrusting = build_sender("apns", apns_credential, settings)
        refused = run(untrusting.send(targets("tls0"), ALERT))
        run(untrusting.aclose())
        monkeypatch.setenv("SSL_CERT_FILE", cert_file)
        trusting = build_sender("apns", apns_credential, settings)
        outcome = run(trusting.send(targets("tls1", "tls2"), ALERT))
        run(trusting.aclose())
    assert refused.retry == [("d-tls0", None)]  # unknown CA: nothing was sent
    assert sorted(outcome.delivered) == ["d-tls1", "d-tls2"]
    assert [r.token for r in mock.requests] in (["tls1", "tls2"], ["tls2", "tls1"])
