"""The instance index and the MPush token lookup are written one key at a
time (on a Cluster they live on other nodes than the instance): a create or
delete cut short at any step leaves something the next listing or a second
delete finishes, never an orphan; and ``flask instances reindex`` rebuilds
both from the instances."""
from __future__ import annotations

import time

import pytest

from pushlite.storage import devices, instances, keys

BACKENDS = ("fakeredis", "redis-server", "cluster", "sentinel")


class Crash(Exception):
    """The process died here."""


def crash_after(redis_client, monkeypatch, method: str, calls: int) -> None:
    """Make the ``calls``-th call of ``method`` on the client raise, as if the
    process died right after the previous step."""
    original = getattr(redis_client, method)
    seen = {"n": 0}

    def wrapper(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] == calls:
            raise Crash(method)
        return original(*args, **kwargs)

    monkeypatch.setattr(redis_client, method, wrapper)


def every_key(redis_client) -> dict[str, bytes]:
    """Every key and its serialized value."""
    return {key: redis_client.dump(key) for key in redis_client.scan_iter(match="*")}


@pytest.mark.parametrize("step", [("sadd", 1), ("set", 1), ("set", 2), ("hset", 2)])
def test_a_create_cut_short_is_removed_by_a_later_listing(redis_client, monkeypatch, step):
    kept = instances.create(redis_client, "kept")
    before = every_key(redis_client)
    crash_after(redis_client, monkeypatch, *step)
    with pytest.raises(Crash):
        instances.create(redis_client, "cut short")
    monkeypatch.undo()
    assert every_key(redis_client) != before  # it left something behind

    assert [i.id for i in instances.list_all(redis_client)] == [kept.id]  # still being created: not listed
    assert every_key(redis_client) != before
    listed = instances.list_all(redis_client, now=time.time() + instances.UNFINISHED_GRACE + 1)
    assert [i.id for i in listed] == [kept.id]
    assert every_key(redis_client) == before


@pytest.mark.parametrize("step", [("unlink", 1), ("delete", 1), ("delete", 2), ("srem", 1), ("unlink", 2)])
def test_a_delete_cut_short_is_finished_by_deleting_again_or_by_a_listing(redis_client, monkeypatch, step):
    kept = instances.create(redis_client, "kept")
    before = every_key(redis_client)
    doomed = instances.create(redis_client, "doomed")
    devices.register(redis_client, doomed.id, "fcm", "fcm-token-0123456789abcdef")
    crash_after(redis_client, monkeypatch, *step)
    with pytest.raises(Crash):
        instances.delete(redis_client, doomed.id)
    monkeypatch.undo()

    assert [i.id for i in instances.list_all(redis_client)] == [kept.id]  # the listing finishes it
    assert every_key(redis_client) == before
    with pytest.raises(instances.InstanceNotFound):
        instances.delete(redis_client, doomed.id)


def test_deleting_again_finishes_a_delete_cut_short(redis_client, monkeypatch):
    doomed = instances.create(redis_client, "doomed")
    crash_after(redis_client, monkeypatch, "delete", 1)
    with pytest.raises(Crash):
        instances.delete(redis_client, doomed.id)
    monkeypatch.undo()
    instances.delete(redis_client, doomed.id)
    assert every_key(redis_client) == {}


def test_a_rotation_cut_short_keeps_the_old_key_working_and_leaves_nothing_after_a_delete(
        redis_client, monkeypatch):
    instance = instances.create(redis_client, "rotating")
    crash_after(redis_client, monkeypatch, "eval", 1)
    with pytest.raises(Crash):
        instances.rotate_secret(redis_client, instance.id)
    monkeypatch.undo()
    assert instances.find_by_token(redis_client, instance.secret_key)[1] == "secret"
    instances.delete(redis_client, instance.id)
    assert every_key(redis_client) == {}


def test_reindex_rebuilds_the_list_and_the_token_lookup_and_drops_old_indexes(redis_client):
    a, b = instances.create(redis_client, "a"), instances.create(redis_client, "b")
    # As a version before this index left them: no index entries or token keys,
    # the old global set and hash instead.
    for instance in (a, b):
        redis_client.hdel(keys.INSTANCE_INDEX, instance.id)
        for digest in redis_client.smembers(keys.auth_digests(instance.id)):
            redis_client.delete(keys.instance_token(digest))
    redis_client.sadd(keys.LEGACY_INDEXES[0], a.id, b.id)
    redis_client.hset(keys.LEGACY_INDEXES[1], "digest", a.id)
    assert instances.list_all(redis_client) == [] and instances.find_by_token(redis_client, a.client_token) is None

    assert instances.reindex(redis_client) == 2
    assert instances.reindex(redis_client) == 2

    assert {i.id for i in instances.list_all(redis_client)} == {a.id, b.id}
    assert instances.find_by_token(redis_client, a.client_token)[0].id == a.id
    assert instances.find_by_token(redis_client, b.secret_key)[1] == "secret"
    assert not any(redis_client.exists(key) for key in keys.LEGACY_INDEXES)
