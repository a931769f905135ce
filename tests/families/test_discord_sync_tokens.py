"""Device sync tokens: signed and timestamped, naming the instance and the
user, valid for 30 days, refused when tampered with, expired, from the future
or from another instance. The clock is passed in (``now``)."""
from __future__ import annotations

import base64

import pytest

from pushlite.discord import sync_tokens
from pushlite.discord.sync_tokens import MAX_AGE_SECONDS

IID = "0b9e8d3c-1f2a-4b5c-8d7e-6f5a4b3c2d1e"
OTHER_IID = "11111111-2222-4333-8444-555555555555"
SECRET = "A" * 64
T0 = 1_800_000_000.0


def at(t: float):
    return lambda: t


def test_round_trip_names_the_user():
    token = sync_tokens.issue(IID, SECRET, "alice", now=at(T0))
    assert sync_tokens.verify(token, IID, SECRET, now=at(T0)) == "alice"


def test_user_ids_with_dots_and_unicode_round_trip():
    for user in ("a.b.c", "ümlaut user", "x" * 164):
        assert sync_tokens.verify(sync_tokens.issue(IID, SECRET, user, now=at(T0)), IID, SECRET, now=at(T0)) == user


def test_shape_is_account_timestamp_signature():
    account, timestamp, signature = sync_tokens.issue(IID, SECRET, "alice", now=at(T0)).split(".")
    decoded = base64.urlsafe_b64decode(account + "=" * (-len(account) % 4)).decode()
    assert decoded == f"{IID}\nalice"
    assert int.from_bytes(base64.urlsafe_b64decode(timestamp + "=" * (-len(timestamp) % 4)), "big") == int(T0)
    assert len(signature) >= 40


def test_valid_for_thirty_days_and_not_a_second_more():
    token = sync_tokens.issue(IID, SECRET, "alice", now=at(T0))
    assert sync_tokens.verify(token, IID, SECRET, now=at(T0 + MAX_AGE_SECONDS)) == "alice"
    assert sync_tokens.verify(token, IID, SECRET, now=at(T0 + MAX_AGE_SECONDS + 1)) is None
    assert MAX_AGE_SECONDS == 30 * 24 * 3600


def test_a_token_from_the_future_is_refused():
    token = sync_tokens.issue(IID, SECRET, "alice", now=at(T0 + 3600))
    assert sync_tokens.verify(token, IID, SECRET, now=at(T0)) is None


def test_another_instance_refuses_it_even_with_the_same_secret():
    token = sync_tokens.issue(IID, SECRET, "alice", now=at(T0))
    assert sync_tokens.verify(token, OTHER_IID, SECRET, now=at(T0)) is None


def test_another_secret_refuses_it():
    token = sync_tokens.issue(IID, SECRET, "alice", now=at(T0))
    assert sync_tokens.verify(token, IID, "B" * 64, now=at(T0)) is None


def _b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


@pytest.mark.parametrize("tamper", [
    lambda a, t, s: f"{_b64(IID + chr(10) + 'mallory')}.{t}.{s}",  # another user
    lambda a, t, s: f"{a}.{_b64('x')}.{s}",  # another timestamp
    lambda a, t, s: f"{a}.{t}.{s[:-1]}{'A' if s[-1] != 'A' else 'B'}",  # signature changed
    lambda a, t, s: f"{a}.{t}",  # signature dropped
    lambda a, t, s: f"{a}.{s}",  # timestamp dropped
    lambda a, t, s: f"{a}..{t}.{s}",
    lambda a, t, s: "",
    lambda a, t, s: "..",
    lambda a, t, s: f"{a}.{t}.{s}é",
], ids=["user", "timestamp", "signature", "no-signature", "no-timestamp", "extra-dot", "empty", "dots", "non-ascii"])
def test_tampering_is_refused(tamper):
    account, timestamp, signature = sync_tokens.issue(IID, SECRET, "alice", now=at(T0)).split(".")
    assert sync_tokens.verify(tamper(account, timestamp, signature), IID, SECRET, now=at(T0)) is None


@pytest.mark.parametrize("value", [None, 7, ["a.b.c"], {"token": "x"}])
def test_non_strings_are_refused(value):
    assert sync_tokens.verify(value, IID, SECRET, now=at(T0)) is None


def test_an_itsdangerous_signature_for_another_purpose_is_refused():
    from itsdangerous import TimestampSigner

    other_purpose = TimestampSigner(SECRET, salt="something-else").sign(_b64(f"{IID}\nalice")).decode()
    assert sync_tokens.verify(other_purpose, IID, SECRET, now=at(T0)) is None


def test_expiry_through_the_api(client, instance, monkeypatch):
    """The API uses the real clock: a token issued now is refused 31 days later."""
    from tests.families.conftest_matrix import auth, fcm_token

    token = client.get("/users/@me/devices/sync-token", headers=auth(instance, "bob")).get_json()["token"]
    real = sync_tokens.time.time
    monkeypatch.setattr(sync_tokens._Signer, "get_timestamp", lambda self: int(real()) + 31 * 24 * 3600)
    body = {"provider": "gcm", "token": fcm_token(), "push_sync_tokens": [token]}
    response = client.put("/users/@me/devices/sync", json=body, headers=auth(instance))
    assert response.get_json() == {"invalid_push_sync_tokens": [token]}
