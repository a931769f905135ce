"""Matrix pushers are per user: each (user, app_id, pushkey) is its own pusher
with its own data, so no user can take over another's by setting the same
app_id + pushkey; ``append: false`` still removes the other users' pushers,
``kind: null`` only the caller's. Pushers stored as one shared record (before
pushers were per user) keep working and are split on first touch. Both
backends."""
from __future__ import annotations

import pytest

from pushlite.storage import devices, interests, keys, pushers, records
from tests.families.test_matrix_pushers import GATEWAY, assert_matrix_error, get_pushers, pusher, set_pusher

OTHER_GATEWAY = "https://8.8.8.8/_matrix/push/v1/notify"
APP_ID, PUSHKEY = pusher()["app_id"], pusher()["pushkey"]


def alices() -> dict:
    return pusher(lang="en", device_display_name="Alice's Phone", data={"url": GATEWAY, "owner": "alice"})


def bobs(**overrides) -> dict:
    return pusher(**{"lang": "de", "device_display_name": "Bob's Phone",
                     "data": {"url": OTHER_GATEWAY, "owner": "bob"}, **overrides})


def delete_body() -> dict:
    return {"kind": None, "app_id": APP_ID, "pushkey": PUSHKEY}


def shown(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "append"}


# --- no takeover ---------------------------------------------------------------------


def test_append_adds_a_pusher_beside_the_other_users_one(client, redis_client, instance):
    assert set_pusher(client, instance, alices(), "alice").status_code == 200
    assert set_pusher(client, instance, bobs(append=True), "bob").status_code == 200
    assert get_pushers(client, instance, "alice") == [shown(alices())]
    assert get_pushers(client, instance, "bob") == [shown(bobs())]

    iid = instance["id"]
    [alice_id] = devices.user_device_ids(redis_client, iid, "alice")
    [bob_id] = devices.user_device_ids(redis_client, iid, "bob")
    assert alice_id != bob_id
    found = devices.load_many(redis_client, iid, [alice_id, bob_id])
    assert found[alice_id].users == ["alice"] and found[alice_id].metadata["data"]["url"] == GATEWAY
    assert found[bob_id].users == ["bob"] and found[bob_id].metadata["data"]["url"] == OTHER_GATEWAY


def test_setting_again_changes_only_the_callers_pusher(client, instance):
    set_pusher(client, instance, alices(), "alice")
    set_pusher(client, instance, bobs(append=True), "bob")
    set_pusher(client, instance, bobs(append=True, lang="fr"), "bob")
    assert get_pushers(client, instance, "alice") == [shown(alices())]
    assert get_pushers(client, instance, "bob")[0]["lang"] == "fr"


def test_without_append_the_other_users_pushers_are_deleted(client, redis_client, instance):
    set_pusher(client, instance, alices(), "alice")
    set_pusher(client, instance, bobs(append=True), "bob")
    set_pusher(client, instance, pusher(append=True), "carol")
    assert set_pusher(client, instance, bobs(), "bob").status_code == 200
    assert get_pushers(client, instance, "alice") == get_pushers(client, instance, "carol") == []
    assert get_pushers(client, instance, "bob") == [shown(bobs())]
    iid = instance["id"]
    assert devices.user_device_ids(redis_client, iid, "alice") == []
    # Nothing is left of them: no record, no token index entry.
    assert redis_client.hget(keys.token_index(iid), pushers.shared_id(iid, APP_ID, PUSHKEY)) == \
        pushers.own_id(iid, "bob", APP_ID, PUSHKEY)


def test_kind_null_deletes_only_the_callers_pusher(client, instance):
    set_pusher(client, instance, bobs(), "bob")
    set_pusher(client, instance, alices() | {"append": True}, "alice")
    assert set_pusher(client, instance, delete_body(), "alice").status_code == 200
    assert get_pushers(client, instance, "alice") == []
    assert get_pushers(client, instance, "bob") == [shown(bobs())]


def test_a_user_at_the_device_cap_can_still_append_to_a_shared_pushkey(client, redis_client, instance):
    """Each user's pusher counts toward that user's cap only."""
    for n in range(devices.MAX_DEVICES_PER_USER - 1):
        devices.register_for_user(redis_client, instance["id"], "bob", [("fcm", None, f"fcm-token-{n:020d}")])
    set_pusher(client, instance, alices(), "alice")
    assert set_pusher(client, instance, bobs(append=True), "bob").status_code == 200
    assert_matrix_error(set_pusher(client, instance, bobs(append=True, pushkey="another"), "bob"), 400,
                        "M_LIMIT_EXCEEDED")
    assert len(get_pushers(client, instance, "alice")) == 1


# --- pushers stored as one shared record (before pushers were per user) -----------------


def store_shared_record(redis_client, instance: dict, users: list[str], body: dict, channels=()) -> str:
    """What the earlier pushlite stored: one record under the (app_id, pushkey)
    id, holding every user that set it and the data of the last one."""
    iid = instance["id"]
    device_id = pushers.shared_id(iid, APP_ID, PUSHKEY)
    metadata = {k: body[k] for k in pushers.FIELDS if body.get(k) is not None} | {"pushkey_ts": 1700000000}
    record = records.FIELD_SEP.join([
        "m", "", PUSHKEY, records.LIST_SEP.join(users), records.LIST_SEP.join(sorted(channels)), APP_ID,
        records.pack_metadata(metadata), "",
    ])
    redis_client.hset(keys.device_bucket(iid, device_id), device_id, record)
    for user in users:
        redis_client.hset(keys.user_bucket(iid, user), user, device_id)
    for name in channels:
        redis_client.sadd(keys.interest(iid, name), device_id)
    return device_id


def test_a_shared_record_still_serves_every_user_on_it(client, redis_client, instance):
    store_shared_record(redis_client, instance, ["alice", "bob"], alices())
    assert get_pushers(client, instance, "alice") == get_pushers(client, instance, "bob") == [shown(alices())]


def test_appending_splits_the_caller_off_a_shared_record(client, redis_client, instance):
    shared = store_shared_record(redis_client, instance, ["alice", "bob"], alices(), channels=["news"])
    assert set_pusher(client, instance, bobs(append=True), "bob").status_code == 200
    assert get_pushers(client, instance, "alice") == [shown(alices())]
    assert get_pushers(client, instance, "bob") == [shown(bobs())]

    iid = instance["id"]
    bob_id = pushers.own_id(iid, "bob", APP_ID, PUSHKEY)
    assert devices.user_device_ids(redis_client, iid, "bob") == [bob_id]
    assert devices.get(redis_client, iid, shared).users == ["alice"]
    # Bob's pusher keeps the channels the shared record had; Alice's keeps them too.
    assert devices.get(redis_client, iid, bob_id).interests == ["news"]
    assert interests.members(redis_client, iid, "news") == {shared, bob_id}


def test_setting_without_append_replaces_a_shared_record(client, redis_client, instance):
    shared = store_shared_record(redis_client, instance, ["alice", "bob"], alices(), channels=["news"])
    assert set_pusher(client, instance, bobs(), "bob").status_code == 200
    assert get_pushers(client, instance, "alice") == []
    assert get_pushers(client, instance, "bob") == [shown(bobs())]
    iid = instance["id"]
    assert devices.load_many(redis_client, iid, [shared]) == {}
    assert interests.members(redis_client, iid, "news") == {pushers.own_id(iid, "bob", APP_ID, PUSHKEY)}


def test_a_shared_record_with_one_user_is_updated_in_place(client, redis_client, instance):
    shared = store_shared_record(redis_client, instance, ["alice"], alices(), channels=["news"])
    assert set_pusher(client, instance, alices() | {"lang": "fr"}, "alice").status_code == 200
    assert devices.user_device_ids(redis_client, instance["id"], "alice") == [shared]
    device = devices.get(redis_client, instance["id"], shared)
    assert (device.metadata["lang"], device.interests) == ("fr", ["news"])


@pytest.mark.parametrize("users", [["alice", "bob"], ["bob"]])
def test_deleting_takes_only_the_caller_off_a_shared_record(client, redis_client, instance, users):
    shared = store_shared_record(redis_client, instance, users, alices())
    assert set_pusher(client, instance, delete_body(), "bob").status_code == 200
    assert get_pushers(client, instance, "bob") == []
    if users == ["alice", "bob"]:
        assert get_pushers(client, instance, "alice") == [shown(alices())]
    else:
        assert devices.load_many(redis_client, instance["id"], [shared]) == {}
