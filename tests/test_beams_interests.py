"""Beams Device API: device interests (get with paging, set, add, remove), the
names allowed, and the interest sets they keep in Redis."""
from __future__ import annotations

import pytest

from pushlite.storage import keys

ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=@,.;"


def base(instance_id: str) -> str:
    return f"/device_api/v1/instances/{instance_id}/devices"


@pytest.fixture(params=["apns", "fcm"])
def device(request, client, instance) -> str:
    """The interests URL of a fresh device on either platform."""
    platform = request.param
    token = "ab" * 32 if platform == "apns" else "fcm-token-0123456789abcdef"
    body = {"token": token, "bundleIdentifier": "com.example.app"}
    response = client.post(f"{base(instance['id'])}/{platform}", json=body)
    assert response.status_code == 200
    return f"{base(instance['id'])}/{platform}/{response.get_json()['id']}/interests"


def device_id(url: str) -> str:
    return url.rsplit("/", 2)[-2]


def get_all(client, url: str, limit: int | None = None) -> tuple[list[str], int]:
    """Every interest by following nextCursor; and how many pages it took."""
    names: list[str] = []
    query: dict = {} if limit is None else {"limit": limit}
    pages = 0
    while True:
        response = client.get(url, query_string=query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages += 1
        assert len(body["interests"]) <= (limit or 100)
        names += body["interests"]
        cursor = body["responseMetadata"].get("nextCursor")
        if not cursor:
            return names, pages
        assert pages < 1000
        query = {**query, "cursor": cursor}


def get_all_from(client, url: str, limit: int, cursor: str) -> tuple[list[str], int]:
    names: list[str] = []
    pages = 0
    while cursor:
        body = client.get(url, query_string={"limit": limit, "cursor": cursor}).get_json()
        names += body["interests"]
        cursor = body["responseMetadata"].get("nextCursor")
        pages += 1
    return names, pages


def members(redis_client, instance_id: str, name: str) -> set[str]:
    return set(redis_client.smembers(keys.interest(instance_id, name)))


def test_a_new_device_has_no_interests(client, device):
    response = client.get(device)
    assert response.status_code == 200
    body = response.get_json()
    assert body["interests"] == []
    assert "nextCursor" not in body.get("responseMetadata", {})


def test_set_interests_replaces_the_set(client, redis_client, instance, device):
    assert client.put(device, json={"interests": ["news", "sport", "weather"]}).status_code == 200
    assert client.get(device).get_json()["interests"] == ["news", "sport", "weather"]
    assert members(redis_client, instance["id"], "news") == {device_id(device)}

    assert client.put(device, json={"interests": ["sport", "tech"]}).status_code == 200
    assert client.get(device).get_json()["interests"] == ["sport", "tech"]
    assert members(redis_client, instance["id"], "news") == set()
    assert members(redis_client, instance["id"], "weather") == set()
    assert members(redis_client, instance["id"], "tech") == {device_id(device)}


def test_set_interests_to_nothing_empties_the_set(client, redis_client, instance, device):
    client.put(device, json={"interests": ["news"]})
    assert client.put(device, json={"interests": []}).status_code == 200
    assert client.get(device).get_json()["interests"] == []
    assert members(redis_client, instance["id"], "news") == set()


def test_set_interests_with_duplicates_keeps_each_once(client, device):
    assert client.put(device, json={"interests": ["a", "b", "a", "a"]}).status_code == 200
    assert client.get(device).get_json()["interests"] == ["a", "b"]


def test_add_interest(client, redis_client, instance, device):
    assert client.put(device, json={"interests": ["news"]}).status_code == 200
    assert client.post(f"{device}/sport").status_code == 200
    assert client.post(f"{device}/sport").status_code == 200  # adding twice is not an error
    assert client.get(device).get_json()["interests"] == ["news", "sport"]
    assert members(redis_client, instance["id"], "sport") == {device_id(device)}


def test_remove_interest(client, redis_client, instance, device):
    client.put(device, json={"interests": ["news", "sport"]})
    assert client.delete(f"{device}/news").status_code == 200
    assert client.delete(f"{device}/news").status_code == 200  # removing twice is not an error
    assert client.delete(f"{device}/never-had-it").status_code == 200
    assert client.get(device).get_json()["interests"] == ["sport"]
    assert members(redis_client, instance["id"], "news") == set()
    assert members(redis_client, instance["id"], "sport") == {device_id(device)}


def test_two_devices_share_an_interest_set(client, redis_client, instance):
    ids = []
    for n in range(2):
        response = client.post(f"{base(instance['id'])}/fcm", json={"token": f"fcm-token-{n:020d}"})
        ids.append(response.get_json()["id"])
        assert client.post(f"{base(instance['id'])}/fcm/{ids[-1]}/interests/news").status_code == 200
    assert members(redis_client, instance["id"], "news") == set(ids)
    client.delete(f"{base(instance['id'])}/fcm/{ids[0]}/interests/news")
    assert members(redis_client, instance["id"], "news") == {ids[1]}


def test_interests_come_back_on_registering_again(client, instance, device):
    client.put(device, json={"interests": ["b", "a"]})
    platform = device.split("/")[-3]
    token = "ab" * 32 if platform == "apns" else "fcm-token-0123456789abcdef"
    response = client.post(f"{base(instance['id'])}/{platform}", json={"token": token, "bundleIdentifier": "x"})
    assert sorted(response.get_json()["initialInterestSet"]) == ["a", "b"]


# --- names ----------------------------------------------------------------------


def test_every_allowed_character_in_a_name(client, device):
    chunks = [ALLOWED[i:i + 20] for i in range(0, len(ALLOWED), 20)]
    assert client.put(device, json={"interests": [ALLOWED]}).status_code == 200
    for chunk in chunks:
        response = client.post(f"{device}/{chunk}")
        assert response.status_code == 200, (chunk, response.get_json())
    assert client.get(device).get_json()["interests"] == sorted([ALLOWED, *chunks])
    for chunk in chunks:
        assert client.delete(f"{device}/{chunk}").status_code == 200
    assert client.get(device).get_json()["interests"] == [ALLOWED]


@pytest.mark.parametrize("char", list("_-=@,.;"))
def test_each_punctuation_character_alone(client, device, char):
    assert client.post(f"{device}/{char}").status_code == 200
    assert client.get(device).get_json()["interests"] == [char]


def test_names_of_164_characters_are_allowed(client, device):
    long_name = "n" * 164
    assert client.put(device, json={"interests": [long_name]}).status_code == 200
    assert client.post(f"{device}/{'m' * 164}").status_code == 200
    assert client.get(device).get_json()["interests"] == ["m" * 164, long_name]
    assert client.delete(f"{device}/{long_name}").status_code == 200


INVALID = {"error": "Invalid interest name", "description": "interest-name given is not valid."}


def test_names_of_165_characters_are_refused(client, device):
    client.put(device, json={"interests": ["keep"]})
    response = client.put(device, json={"interests": ["n" * 165]})
    assert (response.status_code, response.get_json()) == (400, INVALID)
    response = client.post(f"{device}/{'n' * 165}")
    assert (response.status_code, response.get_json()) == (400, INVALID)
    assert client.get(device).get_json()["interests"] == ["keep"]


def test_a_refused_set_changes_nothing(client, device):
    client.put(device, json={"interests": ["keep"]})
    response = client.put(device, json={"interests": ["fine", "not fine"]})
    assert response.status_code == 400
    assert client.get(device).get_json()["interests"] == ["keep"]


# --- paging ---------------------------------------------------------------------


def test_default_limit_is_100(client, device):
    names = [f"interest-{n:04d}" for n in range(250)]
    assert client.put(device, json={"interests": names}).status_code == 200
    body = client.get(device).get_json()
    assert body["interests"] == names[:100]
    assert body["responseMetadata"]["nextCursor"]


def test_limit_100_is_allowed(client, device):
    names = [f"i{n:03d}" for n in range(150)]
    client.put(device, json={"interests": names})
    assert client.get(device, query_string={"limit": 100}).get_json()["interests"] == names[:100]


@pytest.mark.parametrize("limit, pages", [(7, 36), (1, 250), (100, 3), (50, 5), (None, 3)])
def test_paging_returns_every_interest_once_in_order(client, device, limit, pages):
    names = [f"interest-{n:04d}" for n in range(250)]
    assert client.put(device, json={"interests": names}).status_code == 200
    got, taken = get_all(client, device, limit)
    assert got == names
    assert taken == pages


def test_paging_orders_names_as_stored(client, device):
    names = ["zeta", "Alpha", "beta", "9", "_x", "-y", "a.b", "a,b", "a;b", "a=b", "a@b"]
    client.put(device, json={"interests": names})
    got, _ = get_all(client, device, 3)
    assert got == sorted(names)


def test_an_exact_multiple_of_the_limit_has_no_empty_last_page(client, device):
    client.put(device, json={"interests": [f"i{n:02d}" for n in range(14)]})
    first = client.get(device, query_string={"limit": 7}).get_json()
    second = client.get(device, query_string={"limit": 7, "cursor": first["responseMetadata"]["nextCursor"]})
    assert len(second.get_json()["interests"]) == 7
    assert "nextCursor" not in second.get_json()["responseMetadata"]


def test_a_cursor_survives_removal_of_its_last_interest(client, device):
    names = [f"i{n:02d}" for n in range(20)]
    client.put(device, json={"interests": names})
    first = client.get(device, query_string={"limit": 5}).get_json()
    assert first["interests"] == names[:5]
    client.delete(f"{device}/{names[4]}")
    rest, _ = get_all_from(client, device, 5, first["responseMetadata"]["nextCursor"])
    assert rest == names[5:]


# --- the 5,000 cap --------------------------------------------------------------


def test_5000_interests_are_allowed(client, redis_client, instance, device):
    names = [f"i{n:04d}" for n in range(5000)]
    assert client.put(device, json={"interests": names}).status_code == 200
    got, _ = get_all(client, device)
    assert got == names
    assert members(redis_client, instance["id"], "i4999") == {device_id(device)}
    # Adding one already there keeps the set at 5,000 and is fine.
    assert client.post(f"{device}/i0000").status_code == 200
    # A new one would be the 5,001st.
    response = client.post(f"{device}/one-more")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Interest set too large",
        "description": "Too many interests are being set for this device. Only 5000 interests per device are allowed.",
    }
    assert members(redis_client, instance["id"], "one-more") == set()
    # After removing one, there is room again.
    assert client.delete(f"{device}/i0000").status_code == 200
    assert client.post(f"{device}/one-more").status_code == 200
