"""No private key, provider token or access token in any log record or exception text."""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.mocks.apns_mock import APNsMock
from tests.mocks.fcm_mock import FCMMock
from tests.senders.conftest import targets
from workers.senders import Sender, SenderSettings, build_sender

MOCK_THREADS = {"APNsMock", "FCMMock"}  # the mocks' own h2 decoder logs what it received


def secrets_of(*credentials: dict[str, Any]) -> list[str]:
    """Recognisable pieces of each private key: every full base64 line of its PEM body."""
    pieces = []
    for credential in credentials:
        pieces += [line for line in credential["private_key"].splitlines() if "-----" not in line and len(line) > 40]
    return pieces


def sender_records(caplog: pytest.LogCaptureFixture) -> str:
    texts = []
    for record in caplog.records:
        if record.threadName in MOCK_THREADS:
            continue
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(texts)


def test_no_secret_in_logs_or_outcomes(
    caplog: pytest.LogCaptureFixture, make_sender: Callable[..., Sender], run: Callable[[Any], Any],
    apns_mock: APNsMock, fcm_mock: FCMMock, apns_credential: dict[str, Any], fcm_credential: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    apns = make_sender("apns")
    apns_out = run(apns.send(targets("ok", "dead", "busy", "garbage", "expired", "staletoken"), {"aps": {"alert": "x"}}))
    fcm = make_sender("fcm")
    fcm_out = run(fcm.send(targets("ok", "invalid", "garbage", platform="fcm"), {"data": {"a": 1}}))
    fcm_mock.revoke_access_tokens()
    run(fcm.send(targets("again", platform="fcm"), {"data": {"a": 1}}))
    fcm_mock.token_endpoint_status = 400
    failing = make_sender("fcm")
    failed_out = run(failing.send(targets("z", platform="fcm"), {}))
    assert failed_out.failed == [("d-z", "fcm:oauth:400:invalid_grant")]

    tokens = list(apns_mock.provider_tokens) + list(fcm_mock.access_tokens) + [
        header.removeprefix("Bearer ") for header in fcm_mock.auth_headers
    ]
    assert len(apns_mock.provider_tokens) == 2 and fcm_mock.exchanges == 3
    visible = "\n".join([
        sender_records(caplog), repr(apns), repr(fcm), repr(apns.provider_token),  # type: ignore[attr-defined]
        repr(fcm.access_token), repr(apns_out), repr(fcm_out), repr(failed_out),  # type: ignore[attr-defined]
    ])
    # Debug capture was on for every logger but jh2's, which the senders hold
    # at WARNING: its Python HPACK logs header values, and bearer tokens are
    # ordinary (indexed) headers.
    assert not any(r.name.startswith("jh2") for r in caplog.records)
    for secret in secrets_of(apns_credential, fcm_credential) + tokens:
        assert secret not in visible
        # JWTs: their signature part alone is just as sensitive.
        assert secret.rsplit(".", 1)[-1] not in visible


def test_unreachable_token_endpoint_error_is_secret_free(
    caplog: pytest.LogCaptureFixture, run: Callable[[Any], Any], fcm_credential: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    credential = {**fcm_credential, "token_uri": f"http://127.0.0.1:{port}/token"}
    sender = build_sender("fcm", credential, SenderSettings(fcm_endpoint=f"http://127.0.0.1:{port}", timeout=2))
    outcome = run(sender.send(targets("n1", platform="fcm"), {}))
    run(sender.aclose())
    assert outcome.retry == [("d-n1", None)]
    visible = sender_records(caplog)
    for secret in secrets_of(fcm_credential):
        assert secret not in visible
