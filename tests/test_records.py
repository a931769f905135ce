"""The packed device record cannot be corrupted through the storage layer:
values holding its separators are refused before anything is written."""
from __future__ import annotations

import pytest

from pushlite.storage import devices, instances


@pytest.mark.parametrize("field", ["token", "bundle_id", "app"])
@pytest.mark.parametrize("separator", ["\x1f", "\x1e"])
def test_register_refuses_separators_and_stores_nothing(redis_client, field, separator):
    iid = instances.create(redis_client, "x").id
    values = {"token": "f" * 40, "bundle_id": "com.example", "app": "app"}
    values[field] += separator
    before = set(redis_client.keys("*"))
    with pytest.raises(ValueError):
        devices.register(redis_client, iid, "fcm", values.pop("token"), **values)
    assert set(redis_client.keys("*")) == before


def test_user_ids_with_separators_are_refused(redis_client):
    iid = instances.create(redis_client, "x").id
    device_id, _ = devices.register(redis_client, iid, "fcm", "f" * 40)
    with pytest.raises(ValueError):
        devices.add_user(redis_client, iid, device_id, "fcm", "al\x1eice", exclusive=True)
    assert devices.get(redis_client, iid, device_id).users == []
