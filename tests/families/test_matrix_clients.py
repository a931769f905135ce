"""Matrix clients other than the newest native ones: older clients (the
``access_token`` query parameter, the ``r0`` paths) and web clients on another
origin (CORS on every ``/_matrix/`` route, preflights without auth). Both
backends."""
from __future__ import annotations

import pytest

from tests.families.conftest_matrix import auth, user_jwt
from tests.families.test_matrix_pushers import PUSHERS, SET, assert_matrix_error, get_pushers, pusher

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
}
ELEMENT = "https://app.element.io"


def assert_cors(response) -> None:
    for name, value in CORS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


# --- the access token as a query parameter --------------------------------------------


def test_the_access_token_query_parameter_is_accepted(client, instance):
    token = user_jwt(instance)
    response = client.post(f"{SET}?access_token={token}", json=pusher())
    assert (response.status_code, response.get_json()) == (200, {})
    listed = client.get(PUSHERS, query_string={"access_token": token})
    assert listed.status_code == 200 and listed.get_json()["pushers"][0]["pushkey"] == pusher()["pushkey"]


def test_a_bad_access_token_parameter_is_m_unknown_token(client, instance):
    response = client.get(PUSHERS, query_string={"access_token": user_jwt(instance, secret="not the secret key of this instance at all")})
    assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")
    assert_matrix_error(client.get(PUSHERS, query_string={"access_token": ""}), 401, "M_MISSING_TOKEN")


def test_the_header_wins_over_the_parameter(client, instance):
    response = client.get(PUSHERS, query_string={"access_token": "junk"}, headers=auth(instance, "bob"))
    assert response.status_code == 200


# --- the r0 paths ------------------------------------------------------------------------


def test_the_r0_paths_work_like_v3(client, instance):
    response = client.post("/_matrix/client/r0/pushers/set", json=pusher(), headers=auth(instance))
    assert (response.status_code, response.get_json()) == (200, {})
    r0 = client.get("/_matrix/client/r0/pushers", headers=auth(instance))
    assert r0.status_code == 200 and r0.get_json()["pushers"] == get_pushers(client, instance)
    gone = {"kind": None, "app_id": pusher()["app_id"], "pushkey": pusher()["pushkey"]}
    assert client.post("/_matrix/client/r0/pushers/set", json=gone, headers=auth(instance)).status_code == 200
    assert get_pushers(client, instance) == []
    assert_matrix_error(client.get("/_matrix/client/r0/pushers"), 401, "M_MISSING_TOKEN")
    assert_matrix_error(client.get("/_matrix/client/r1/pushers", headers=auth(instance)), 404, "M_UNRECOGNIZED")


# --- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PUSHERS, SET, "/_matrix/client/r0/pushers", "/_matrix/client/r0/pushers/set",
                                  "/_matrix/client/v3/nothing", "/_matrix/push/v1/notify"])
def test_a_preflight_is_answered_without_auth(client, path):
    response = client.options(path, headers={
        "Origin": ELEMENT, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    assert_cors(response)


def test_a_preflight_runs_no_endpoint_logic(client, instance):
    response = client.options(SET, json=pusher(), headers={"Origin": ELEMENT, **auth(instance)})
    assert 200 <= response.status_code < 300
    assert get_pushers(client, instance) == []


def test_every_answer_carries_the_cors_headers(client, instance):
    answers = [
        client.get(PUSHERS, headers={"Origin": ELEMENT, **auth(instance)}),
        client.post(SET, json=pusher(), headers={"Origin": ELEMENT, **auth(instance)}),
        client.get(PUSHERS, headers={"Origin": ELEMENT}),  # 401
        client.post(SET, json=pusher(kind="email"), headers=auth(instance)),  # 400
        client.get("/_matrix/client/v3/nothing"),  # 404
        client.delete(PUSHERS, headers=auth(instance)),  # 405
    ]
    assert [r.status_code for r in answers] == [200, 200, 401, 400, 404, 405]
    for response in answers:
        assert_cors(response)


def test_other_families_are_not_opened_to_other_origins(client, instance):
    for path in ("/v1/channels", "/users/@me/devices", f"/publish_api/v1/instances/{instance['id']}/publishes/users"):
        response = client.options(path, headers={"Origin": ELEMENT, "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in response.headers, path
