"""The shared interface: factory, provider lookup, outcome bookkeeping."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from workers.senders import (
    CredentialError,
    Outcome,
    SenderSettings,
    Target,
    UnknownProviderError,
    build_sender,
    sender_class,
)
from workers.senders.apns import APNsSender
from workers.senders.fcm import FCMSender
from workers.senders.wire import retry_after


def test_sender_class_by_provider_name() -> None:
    assert sender_class("apns") is APNsSender
    assert sender_class("fcm") is FCMSender


def test_unknown_provider_is_a_value_error_naming_the_choices() -> None:
    with pytest.raises(UnknownProviderError, match="apns.*fcm") as caught:
        sender_class("gcm")
    assert isinstance(caught.value, ValueError)


def test_build_sender_validates_the_credential_first() -> None:
    with pytest.raises(CredentialError):
        build_sender("apns", {"key_id": "short"}, SenderSettings())


def test_build_sender_returns_a_sender_with_the_normalized_credential(apns_credential: dict[str, Any]) -> None:
    del apns_credential["environment"]
    sender = build_sender("apns", apns_credential, SenderSettings())
    assert isinstance(sender, APNsSender)
    assert sender.environment == "production"
    assert "PRIVATE" not in repr(sender)


def test_target_is_frozen_and_outcome_counts() -> None:
    target = Target("d1", "tok", "apns", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.token = "other"  # type: ignore[misc]
    outcome = Outcome(delivered=["a"], dead=["b"], retry=[("c", 1.0)], failed=[("d", "why")])
    assert outcome.total == 4
    assert outcome.counts() == {"delivered": 1, "dead": 1, "retry": 1, "failed": 1}


def test_settings_defaults() -> None:
    settings = SenderSettings()
    assert settings.fcm_endpoint == "https://fcm.googleapis.com"
    assert settings.apns_endpoint is None
    assert settings.timeout == 10.0
    assert settings.max_concurrency == 500


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("soon", None),
     ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0)],
)
def test_retry_after_reads_seconds_and_http_dates(header: str | None, expected: float | None) -> None:
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert retry_after(header, now=lambda: now) == expected
