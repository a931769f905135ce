"""The device storage keeps its indexes consistent: after any sequence of
changes, interest sets, user lists and the token index agree with the device
records, and a change that is refused leaves nothing behind."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

import pytest
from redis.exceptions import TryAgainError

from pushlite.storage import devices, instances, interests, keys, records
from pushlite.storage.devices import MAX_DEVICES_PER_USER, MAX_INTERESTS_PER_DEVICE
from pushlite.storage.errors import (
    DeviceNotFound,
    InstanceNotFound,
    InterestLimit,
    UserAlreadySet,
    UserDeviceLimit,
)
from tests.conftest import run_together

TOKENS = {
    "fcm": [f"fcm-token-{i:02d}-0123456789abcdef" for i in range(8)],
    "apns": [f"{i:02x}" * 32 for i in range(6)],
}
INTERESTS = ["news", "sport", "weather", "a-b", "x=y", "z@q", "long." * 10, "n1", "n2", "n3"]
USERS = ["alice", "bob", "carol", "dave", "ümlaut-user"]


@pytest.fixture
def iid(redis_client) -> str:
    return instances.create(redis_client, "atomicity").id


# --- reading the whole state back ----------------------------------------------


@dataclass
class State:
    devices: dict[str, records.Device] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    bucket_of: dict[str, str] = field(default_factory=dict)
    interest_sets: dict[str, set[str]] = field(default_factory=dict)
    users: dict[str, list[str]] = field(default_factory=dict)
    user_bucket_of: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, list[str]] = field(default_factory=dict)


def read_state(client, iid: str) -> State:
    state = State()
    for key in client.scan_iter(match=keys.device_prefix(iid) + "*"):
        for device_id, raw in client.hgetall(key).items():
            state.devices[device_id] = records.unpack(device_id, raw)
            parts = raw.split(records.FIELD_SEP)
            state.aliases[device_id] = parts[records.ALIAS] if len(parts) > records.ALIAS else ""
            state.bucket_of[device_id] = key
    for key in client.scan_iter(match=keys.interest_prefix(iid) + "*"):
        state.interest_sets[key[len(keys.interest_prefix(iid)):]] = set(client.smembers(key))
    for key in client.scan_iter(match=keys.user_prefix(iid) + "*"):
        for user_id, ids in client.hgetall(key).items():
            state.users[user_id] = ids.split(",") if ids else []
            state.user_bucket_of[user_id] = key
    state.tokens = {k: v.split(",") for k, v in client.hgetall(keys.token_index(iid)).items()}
    return state


def check_invariants(client, iid: str) -> State:
    s = read_state(client, iid)
    for device_id, device in s.devices.items():
        assert records.is_device_id(device_id)
        assert s.bucket_of[device_id] == keys.device_bucket(iid, device_id)
        assert device.interests == sorted(set(device.interests)), device
        assert len(device.users) == len(set(device.users)), device
        for name in device.interests:
            assert device_id in s.interest_sets.get(name, set()), (device_id, name)
        for user_id in device.users:
            assert device_id in s.users.get(user_id, []), (device_id, user_id)
        # The device is found from its token: by its id, or through the token index.
        derived = records.derive_id(iid, device.platform, device.token)
        if derived == device_id:
            assert s.aliases[device_id] == ""
        else:
            assert s.aliases[device_id] == derived
            assert device_id in s.tokens.get(derived, []), (device_id, derived)

    for name, members in s.interest_sets.items():
        assert members, name
        for device_id in members:
            assert device_id in s.devices, (name, device_id)
            assert name in s.devices[device_id].interests, (name, device_id)

    for user_id, ids in s.users.items():
        assert ids and len(ids) == len(set(ids)) and len(ids) <= MAX_DEVICES_PER_USER, (user_id, ids)
        assert s.user_bucket_of[user_id] == keys.user_bucket(iid, user_id)
        for device_id in ids:
            assert device_id in s.devices, (user_id, device_id)
            assert user_id in s.devices[device_id].users, (user_id, device_id)

    for derived, ids in s.tokens.items():
        assert ids and len(ids) == len(set(ids)), (derived, ids)
        for device_id in ids:
            assert device_id in s.devices, (derived, device_id)
            device = s.devices[device_id]
            assert records.derive_id(iid, device.platform, device.token) == derived, (derived, device_id)
            assert device_id != derived

    # At most one device per (platform, token).
    pairs = [(d.platform, d.token) for d in s.devices.values()]
    assert len(pairs) == len(set(pairs)), pairs
    return s


def snapshot(client) -> dict[str, bytes]:
    """Every key and its serialized value: equal snapshots mean nothing changed."""
    return {key: client.dump(key) for key in sorted(client.scan_iter())}


# --- a model of what each operation should do -----------------------------------


@dataclass
class ModelDevice:
    platform: str
    token: str
    interests: set[str] = field(default_factory=set)
    users: list[str] = field(default_factory=list)


class Model:
    def __init__(self) -> None:
        self.devices: dict[str, ModelDevice] = {}

    def by_token(self, platform: str, token: str) -> str | None:
        for device_id, d in self.devices.items():
            if (d.platform, d.token) == (platform, token):
                return device_id
        return None

    def user_devices(self, user_id: str) -> list[str]:
        return [i for i, d in self.devices.items() if user_id in d.users]


def compare(model: Model, state: State) -> None:
    assert set(state.devices) == set(model.devices)
    for device_id, expected in model.devices.items():
        got = state.devices[device_id]
        assert (got.platform, got.token) == (expected.platform, expected.token), device_id
        assert got.interests == sorted(expected.interests), device_id
        assert got.users == expected.users, device_id


def random_step(rng: random.Random, client, iid: str, model: Model) -> str:
    """Do one random operation through the storage API and the model; return its name."""
    live = sorted(model.devices)
    op = rng.choice(["register"] * 3 + ["add", "replace", "remove", "user", "token", "delete", "metadata",
                                         "missing"])
    if op == "register" or not live:
        platform = rng.choice(["fcm", "apns"])
        token = rng.choice(TOKENS[platform])
        device_id, initial = devices.register(client, iid, platform, token, bundle_id="com.example")
        known = model.by_token(platform, token)
        if known:
            assert device_id == known
            assert initial == sorted(model.devices[known].interests)
        else:
            assert device_id not in model.devices and initial == []
            model.devices[device_id] = ModelDevice(platform, token)
        return "register"

    device_id = rng.choice(live)
    device = model.devices[device_id]
    platform = device.platform if rng.random() < 0.9 else None
    names = rng.sample(INTERESTS, rng.randint(0, 4))
    if op == "add":
        interests.add(client, iid, device_id, platform, names)
        device.interests |= set(names)
    elif op == "replace":
        interests.replace(client, iid, device_id, platform, names)
        device.interests = set(names)
    elif op == "remove":
        interests.remove(client, iid, device_id, platform, names)
        device.interests -= set(names)
    elif op == "user":
        user_id = rng.choice(USERS)
        exclusive = rng.random() < 0.5
        if user_id in device.users:
            expected = None
        elif exclusive and device.users:
            expected = UserAlreadySet
        elif len(model.user_devices(user_id)) >= MAX_DEVICES_PER_USER:
            expected = UserDeviceLimit
        else:
            expected = None
        if expected:
            with pytest.raises(expected):
                devices.add_user(client, iid, device_id, platform, user_id, exclusive=exclusive)
        else:
            devices.add_user(client, iid, device_id, platform, user_id, exclusive=exclusive)
            if user_id not in device.users:
                device.users.append(user_id)
    elif op == "token":
        # Mostly a new token of the same platform; sometimes another platform's (MPush).
        moved_to = device.platform if rng.random() < 0.7 else rng.choice(["fcm", "apns"])
        token = rng.choice(TOKENS[moved_to])
        devices.set_token(client, iid, device_id, device.platform, token, new_platform=moved_to)
        if (moved_to, token) != (device.platform, device.token):
            other = model.by_token(moved_to, token)
            if other:
                del model.devices[other]
            device.platform, device.token = moved_to, token
    elif op == "delete":
        devices.delete(client, iid, device_id, platform)
        del model.devices[device_id]
    elif op == "metadata":
        devices.set_metadata(client, iid, device_id, platform, {"sdkVersion": str(rng.randint(1, 9))})
    elif op == "missing":
        # A device id that does not exist, or the right id on the wrong platform: refused, no change.
        before = snapshot(client)
        wrong = "apns" if device.platform == "fcm" else "fcm"
        target, on = rng.choice([("0" * 12, None), (device_id, wrong)])
        call = rng.choice([
            lambda: interests.add(client, iid, target, on, ["news"]),
            lambda: interests.replace(client, iid, target, on, ["news"]),
            lambda: interests.remove(client, iid, target, on, ["news"]),
            lambda: devices.add_user(client, iid, target, on, "alice", exclusive=True),
            lambda: devices.set_token(client, iid, target, on or "fcm", TOKENS["fcm"][0]),
            lambda: devices.delete(client, iid, target, on),
            lambda: devices.set_metadata(client, iid, target, on, {"sdkVersion": "1"}),
        ])
        with pytest.raises(DeviceNotFound):
            call()
        assert snapshot(client) == before
    return op


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_keep_indexes_consistent(redis_client, iid, seed):
    rng = random.Random(seed)
    model = Model()
    done = set()
    for _ in range(300):
        done.add(random_step(rng, redis_client, iid, model))
        compare(model, check_invariants(redis_client, iid))
    assert done >= {"register", "add", "replace", "remove", "user", "token", "delete", "missing"}
    # Every device is found again from its token, and gets back what it has.
    for device_id, expected in model.devices.items():
        again, initial = devices.register(redis_client, iid, expected.platform, expected.token)
        assert again == device_id and initial == sorted(expected.interests)
        assert devices.get(redis_client, iid, device_id).token == expected.token
    for user_id in USERS:
        assert sorted(devices.user_device_ids(redis_client, iid, user_id)) == sorted(model.user_devices(user_id))


def test_token_update_then_old_token_registers_a_new_device(redis_client, iid):
    first, _ = devices.register(redis_client, iid, "fcm", TOKENS["fcm"][0])
    interests.add(redis_client, iid, first, "fcm", ["news"])
    devices.set_token(redis_client, iid, first, "fcm", TOKENS["fcm"][1])
    # The old token's derived id is still taken by the moved device: a fresh id, indexed.
    second, initial = devices.register(redis_client, iid, "fcm", TOKENS["fcm"][0])
    assert second != first and initial == []
    assert devices.register(redis_client, iid, "fcm", TOKENS["fcm"][1]) == (first, ["news"])
    s = check_invariants(redis_client, iid)
    assert set(s.devices) == {first, second}
    # Moving the second device onto the first's token merges: the first device goes.
    devices.set_token(redis_client, iid, second, "fcm", TOKENS["fcm"][1])
    s = check_invariants(redis_client, iid)
    assert set(s.devices) == {second}
    assert s.interest_sets == {}
    assert devices.register(redis_client, iid, "fcm", TOKENS["fcm"][1])[0] == second


def test_delete_removes_the_device_from_every_index(redis_client, iid):
    device_id, _ = devices.register(redis_client, iid, "apns", TOKENS["apns"][0])
    interests.add(redis_client, iid, device_id, "apns", ["news", "sport"])
    devices.add_user(redis_client, iid, device_id, "apns", "alice", exclusive=False)
    devices.add_user(redis_client, iid, device_id, "apns", "bob", exclusive=False)
    devices.set_token(redis_client, iid, device_id, "apns", TOKENS["apns"][1])
    devices.delete(redis_client, iid, device_id, "apns")
    s = check_invariants(redis_client, iid)
    assert s.devices == {} and s.interest_sets == {} and s.users == {} and s.tokens == {}
    left = sorted(redis_client.scan_iter(match=keys.tag(iid) + "*"))
    assert left == sorted([keys.instance(iid), keys.auth_digests(iid)])


# --- refused changes leave nothing behind --------------------------------------------


def test_interest_cap_refuses_without_partial_state(redis_client, iid):
    device_id, _ = devices.register(redis_client, iid, "fcm", TOKENS["fcm"][0])
    full = [f"i{n:05d}" for n in range(MAX_INTERESTS_PER_DEVICE - 1)]
    interests.replace(redis_client, iid, device_id, "fcm", full)
    before = snapshot(redis_client)

    with pytest.raises(InterestLimit):
        interests.add(redis_client, iid, device_id, "fcm", ["zz-new-1", "zz-new-2"])
    assert snapshot(redis_client) == before
    with pytest.raises(InterestLimit):
        interests.replace(redis_client, iid, device_id, "fcm",
                          [f"j{n:05d}" for n in range(MAX_INTERESTS_PER_DEVICE + 1)])
    assert snapshot(redis_client) == before

    # Re-adding ones it has does not count twice; exactly the cap is allowed.
    interests.add(redis_client, iid, device_id, "fcm", full[:10] + ["zz-last"])
    assert len(devices.get(redis_client, iid, device_id).interests) == MAX_INTERESTS_PER_DEVICE
    assert redis_client.sismember(keys.interest(iid, "zz-last"), device_id)
    with pytest.raises(InterestLimit):
        interests.add(redis_client, iid, device_id, "fcm", ["zz-one-more"])
    assert not redis_client.exists(keys.interest(iid, "zz-one-more"))


def test_user_cap_refuses_without_partial_state(redis_client, iid):
    ids = [devices.register(redis_client, iid, "fcm", f"fcm-cap-token-{n:03d}-0123456789")[0]
           for n in range(MAX_DEVICES_PER_USER + 1)]
    for device_id in ids[:-1]:
        devices.add_user(redis_client, iid, device_id, "fcm", "alice", exclusive=True)
    before = snapshot(redis_client)
    with pytest.raises(UserDeviceLimit):
        devices.add_user(redis_client, iid, ids[-1], "fcm", "alice", exclusive=True)
    assert snapshot(redis_client) == before
    # Setting the same user again on a member is not a new device.
    devices.add_user(redis_client, iid, ids[0], "fcm", "alice", exclusive=True)
    assert snapshot(redis_client) == before
    check_invariants(redis_client, iid)


def test_exclusive_user_refuses_without_partial_state(redis_client, iid):
    device_id, _ = devices.register(redis_client, iid, "fcm", TOKENS["fcm"][0])
    devices.add_user(redis_client, iid, device_id, "fcm", "alice", exclusive=True)
    before = snapshot(redis_client)
    with pytest.raises(UserAlreadySet):
        devices.add_user(redis_client, iid, device_id, "fcm", "bob", exclusive=True)
    assert snapshot(redis_client) == before


def test_nothing_is_written_for_a_deleted_instance(redis_client, iid):
    device_id, _ = devices.register(redis_client, iid, "fcm", TOKENS["fcm"][0])
    instances.delete(redis_client, iid)
    assert list(redis_client.scan_iter(match=keys.tag(iid) + "*")) == []
    before = snapshot(redis_client)
    for call in (
        lambda: devices.register(redis_client, iid, "fcm", TOKENS["fcm"][1]),
        lambda: interests.add(redis_client, iid, device_id, "fcm", ["news"]),
        lambda: devices.add_user(redis_client, iid, device_id, "fcm", "alice", exclusive=True),
        lambda: devices.set_token(redis_client, iid, device_id, "fcm", TOKENS["fcm"][2]),
        lambda: devices.get(redis_client, iid, device_id),
    ):
        with pytest.raises(InstanceNotFound):
            call()
    assert snapshot(redis_client) == before


def test_user_cap_holds_under_concurrent_requests(redis_client, iid):
    extra = 30
    ids = [devices.register(redis_client, iid, "fcm", f"fcm-race-token-{n:03d}-0123456789")[0]
           for n in range(MAX_DEVICES_PER_USER + extra)]
    refused: list[str] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        for device_id in chunk:
            try:
                devices.add_user(redis_client, iid, device_id, "fcm", "crowd", exclusive=True)
            except UserDeviceLimit:
                with lock:
                    refused.append(device_id)

    run_together(worker, [(ids[n::10],) for n in range(10)])
    assert len(refused) == extra
    assert len(devices.user_device_ids(redis_client, iid, "crowd")) == MAX_DEVICES_PER_USER
    check_invariants(redis_client, iid)


def test_interest_cap_holds_under_concurrent_requests(redis_client, iid):
    device_id, _ = devices.register(redis_client, iid, "fcm", TOKENS["fcm"][0])
    interests.replace(redis_client, iid, device_id, "fcm",
                      [f"i{n:05d}" for n in range(MAX_INTERESTS_PER_DEVICE - 20)])
    refused: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for k in range(10):
            name = f"race-{n}-{k}"
            try:
                interests.add(redis_client, iid, device_id, "fcm", [name])
            except InterestLimit:
                with lock:
                    refused.append(name)

    run_together(worker, [(n,) for n in range(8)])
    assert len(refused) == 80 - 20
    assert len(devices.get(redis_client, iid, device_id).interests) == MAX_INTERESTS_PER_DEVICE
    check_invariants(redis_client, iid)


def test_a_command_that_keeps_needing_keys_gives_up_after_five_rounds(redis_client, iid, monkeypatch):
    """device.lua answers "need" when a change touches keys nobody could name
    beforehand; a device whose keys keep changing under it is given up on
    (TryAgainError, a 503), by one command as by a batch."""
    asked = []

    def always_needing(client, call):
        asked.append(call)
        return ["need", f"i{len(asked)}"]

    monkeypatch.setattr(devices, "run_call", always_needing)
    with pytest.raises(TryAgainError, match="kept changing"):
        devices.delete(redis_client, iid, "0123456789ab")
    assert len(asked) == 5
    assert asked[-1].args[1:7] == [5, "d0123456789ab", "i1", "i2", "i3", "i4"]  # every key it asked for
    asked.clear()
    with pytest.raises(TryAgainError, match="kept changing"):
        devices.call_many(redis_client, iid, [devices.Command("delete", ["0123456789ab", ""], ["0123456789ab"])])
    assert len(asked) == 5
