"""The Lua code runs as Redis functions: loaded when Redis does not have them
(first use, a restart, FUNCTION FLUSH), on every master of a Cluster, named
by version, and called the same way alone and in pipelines."""
from __future__ import annotations

import pytest
import redis

from pushlite.storage import devices, instances, interests, keys, publishes, scripts
from pushlite.storage.cluster import is_cluster
from pushlite.storage.errors import InstanceNotFound

BACKENDS = ("fakeredis", "redis-server", "cluster", "sentinel")
FCM_TOKEN = "fcm-token-0123456789abcdef"


@pytest.fixture
def iid(redis_client) -> str:
    return instances.create(redis_client, "scripts").id


def library_names(client: redis.Redis) -> set[str]:
    """The libraries Redis has (on a Cluster: those every master has)."""
    def names(libraries: list) -> set[str]:
        # RESP2: each library is a flat [name, value, name, value, ...] list.
        return {dict(zip(library[::2], library[1::2]))["library_name"] for library in libraries}

    if is_cluster(client):
        per_master = [names(client.execute_command("FUNCTION LIST", target_nodes=node))
                      for node in client.get_primaries()]
        return set.intersection(*per_master)
    return names(client.function_list())


def test_a_call_loads_its_library_when_redis_has_lost_it(redis_client, iid):
    first, _ = devices.register(redis_client, iid, "fcm", FCM_TOKEN)
    assert scripts.code("device.lua").function in library_names(redis_client)

    redis_client.function_flush()
    assert library_names(redis_client) == set()
    again, interests = devices.register(redis_client, iid, "fcm", FCM_TOKEN)

    assert (again, interests) == (first, [])
    assert scripts.code("device.lua").function in library_names(redis_client)


def test_calls_in_one_round_trip_load_the_library_and_each_runs_once(redis_client, iid):
    kept, _ = devices.register(redis_client, iid, "fcm", FCM_TOKEN)
    dead = [devices.register(redis_client, iid, "fcm", f"{FCM_TOKEN}-{i}")[0] for i in range(3)]
    redis_client.function_flush()

    devices.delete_many(redis_client, iid, dead)

    assert devices.load_many(redis_client, iid, [kept, *dead]).keys() == {kept}


def test_an_unknown_publish_command_is_an_error(redis_client, iid):
    publish_id = publishes.create(redis_client, iid, "interests", ["news"], {})
    with pytest.raises(redis.ResponseError, match="unknown publish.lua command"):
        scripts.run(redis_client, "publish.lua", publishes.publish_keys(iid, publish_id), ["fanout", 0])


def test_the_codes_outcomes_and_errors_reach_the_caller(redis_client, iid):
    with pytest.raises(InstanceNotFound):
        devices.register(redis_client, "00000000-0000-4000-8000-000000000000", "fcm", FCM_TOKEN)
    with pytest.raises(redis.ResponseError):  # a Lua error, not mistaken for a missing library
        scripts.run(redis_client, "device.lua", [keys.instance(iid), keys.token_index(iid)], ["no-such-command", "", "", "", ""])


def test_a_redis_without_functions_gets_a_clear_error():
    class Redis6:
        def execute_command(self, *args):
            raise redis.ResponseError("unknown command 'FCALL', with args beginning with: ")

    with pytest.raises(redis.ResponseError, match="pushlite needs Redis 7.0 or later"):
        scripts.run(Redis6(), "device.lua", ["k"], ["register"])


def test_names_change_with_the_code():
    device, publish = scripts.code("device.lua"), scripts.code("publish.lua")
    assert device.function.startswith("pushlite_device_") and publish.function.startswith("pushlite_publish_")
    assert f"#!lua name={device.function}\n" == device.library.splitlines(keepends=True)[0]
    assert device.function != publish.function


def count_calls(redis_client, monkeypatch) -> list[str]:
    """The commands the client sends one by one, by name."""
    sent: list[str] = []
    original = redis_client.execute_command

    def recording(*args, **options):
        sent.append(str(args[0]).upper())
        return original(*args, **options)

    monkeypatch.setattr(redis_client, "execute_command", recording)
    return sent


def test_registration_is_one_round_trip_and_a_delete_asks_for_the_keys_it_finds(redis_client, iid, monkeypatch):
    devices.register(redis_client, iid, "fcm", FCM_TOKEN + "-warm-up")  # Redis loads the library
    sent = count_calls(redis_client, monkeypatch)
    device_id, _ = devices.register(redis_client, iid, "fcm", FCM_TOKEN)
    assert sent == ["FCALL"]  # the derived id's bucket and the token index were all it needed

    interests.add(redis_client, iid, device_id, "fcm", ["news", "sport"])
    devices.add_user(redis_client, iid, device_id, "fcm", "alice", exclusive=True)
    sent.clear()
    devices.delete(redis_client, iid, device_id, "fcm")
    # The first call learns the record's interests and users, writes nothing and
    # asks for their keys; the second makes the change with them.
    assert sent == ["FCALL", "FCALL"]
    assert not redis_client.exists(keys.interest(iid, "news"), keys.interest(iid, "sport"))
    assert devices.user_device_ids(redis_client, iid, "alice") == []


def test_a_call_that_needs_keys_writes_nothing(redis_client, iid):
    device_id, _ = devices.register(redis_client, iid, "fcm", FCM_TOKEN)
    interests.add(redis_client, iid, device_id, "fcm", ["news"])
    before = {key: redis_client.dump(key) for key in redis_client.scan_iter(match=keys.tag(iid) + "*")}
    answer = scripts.run(redis_client, "device.lua", [keys.instance(iid), keys.token_index(iid),
                                                       keys.device_bucket(iid, device_id)],
                         ["delete", 1, "d" + device_id, device_id, ""])
    assert answer == ["need", "inews"]
    assert {key: redis_client.dump(key) for key in redis_client.scan_iter(match=keys.tag(iid) + "*")} == before
