"""Beams Device API for browsers, as the Beams Web SDK calls it
(`@pusher/push-notifications-web`, src/push-notifications.js): the instance's
VAPID key, registering a push subscription, and every device route for `web`
devices; the VAPID key pair's storage and rotation; CORS as browsers use it."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec

from pushlite.app import create_app
from pushlite.storage import keys, records
from tests.conftest import ADMIN
from tests.mocks.webpush_mock import Browser, b64url, unb64url
from tests.test_beams_devices import interest_members, set_user, stored, user_devices

FCM_ENDPOINT = "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91bH"
SDK_METADATA = {"sdkVersion": "2.1.0"}


def device_api(instance_id: str) -> str:
    return f"/device_api/v1/instances/{instance_id}"


def vapid_key(client, instance_id: str):
    return client.get(device_api(instance_id) + "/web-vapid-public-key")


def browser(n: int = 0, endpoint: str = FCM_ENDPOINT, key: str = "") -> Browser:
    return Browser(f"b{n}", f"{endpoint}{n:04d}", key)


def token_of(subscription: object) -> str:
    """``btoa(JSON.stringify(subscription))``."""
    return base64.b64encode(json.dumps(subscription, separators=(",", ":")).encode()).decode()


def register(client, instance_id: str, token: str, **body):
    return client.post(device_api(instance_id) + "/devices/web", json={"token": token, **body})


def registered(client, instance_id: str, token: str) -> str:
    response = register(client, instance_id, token, metadata=SDK_METADATA)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["id"]


def assert_error(response, status: int, title: str) -> str:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "description"} and body["error"] == title, body
    return body["description"]


# --- the VAPID public key -----------------------------------------------------


def test_the_vapid_public_key_is_an_uncompressed_p256_point(client, instance):
    response = vapid_key(client, instance["id"])
    assert response.status_code == 200
    assert set(response.get_json()) == {"vapidPublicKey"}
    key = response.get_json()["vapidPublicKey"]
    assert "=" not in key and "+" not in key and "/" not in key  # unpadded base64url, as browsers take it
    raw = unb64url(key)
    assert len(raw) == 65 and raw[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    assert vapid_key(client, instance["id"]).get_json() == response.get_json()


def test_each_instance_has_its_own_vapid_key_made_at_creation(client, instance, redis_client):
    assert redis_client.hexists(keys.credentials(instance["id"]), "web")
    other = client.post("/admin/v1/instances", json={"name": "other"}, headers=ADMIN).get_json()
    assert vapid_key(client, other["id"]).get_json() != vapid_key(client, instance["id"]).get_json()


def test_the_vapid_private_key_is_encrypted_at_rest(client, instance, redis_client):
    stored_pair = redis_client.hget(keys.credentials(instance["id"]), "web")
    assert "PRIVATE KEY" not in stored_pair
    pair = json.loads(Fernet(client.application.config["PUSHLITE_ENCRYPTION_KEY"]).decrypt(stored_pair.encode()))
    assert pair["public_key"] == vapid_key(client, instance["id"]).get_json()["vapidPublicKey"]
    assert pair["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    # Not shown with the provider credentials.
    assert client.get(f"/admin/v1/instances/{instance['id']}/credentials", headers=ADMIN).get_json() == {}


def test_an_instance_from_before_web_push_gets_a_key_on_first_use(client, instance, redis_client):
    redis_client.hdel(keys.credentials(instance["id"]), "web")
    first = vapid_key(client, instance["id"])
    assert first.status_code == 200
    assert redis_client.hexists(keys.credentials(instance["id"]), "web")
    assert vapid_key(client, instance["id"]).get_json() == first.get_json()


def test_the_vapid_key_of_an_unknown_or_malformed_instance(client):
    assert_error(vapid_key(client, "00000000-0000-4000-8000-000000000000"), 404, "Instance not found")
    assert_error(vapid_key(client, "not-an-instance"), 400, "Bad Request")


def test_rotating_the_vapid_key(client, instance, runner):
    before = vapid_key(client, instance["id"]).get_json()["vapidPublicKey"]
    assert client.post(f"/admin/v1/instances/{instance['id']}/vapid_key").status_code == 401
    rotated = client.post(f"/admin/v1/instances/{instance['id']}/vapid_key", headers=ADMIN)
    assert rotated.status_code == 200
    assert rotated.get_json() == {"id": instance["id"], "vapid_public_key": rotated.get_json()["vapid_public_key"]}
    after = vapid_key(client, instance["id"]).get_json()["vapidPublicKey"]
    assert after == rotated.get_json()["vapid_public_key"] != before
    # The CLI twin.
    result = runner.invoke(args=["instances", "rotate-vapid", instance["id"]])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == vapid_key(client, instance["id"]).get_json()["vapidPublicKey"] != after
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.post(f"/admin/v1/instances/{unknown}/vapid_key", headers=ADMIN).status_code == 404
    assert runner.invoke(args=["instances", "rotate-vapid", unknown]).exit_code != 0


def test_an_instance_made_from_the_cli_has_a_vapid_key(runner, redis_client):
    result = runner.invoke(args=["instances", "create", "cli-made"])
    assert result.exit_code == 0, result.output
    assert redis_client.hexists(keys.credentials(json.loads(result.output)["id"]), "web")


# --- registering a subscription -------------------------------------------------


def test_register_returns_an_id_and_the_same_token_the_same_device(client, instance, redis_client):
    token = browser(1).token
    response = register(client, instance["id"], token, metadata=SDK_METADATA)
    assert response.status_code == 200
    assert response.get_json() == {"id": response.get_json()["id"], "initialInterestSet": []}
    device_id = response.get_json()["id"]
    assert records.is_device_id(device_id)
    assert registered(client, instance["id"], token) == device_id
    assert registered(client, instance["id"], browser(2).token) != device_id
    device = stored(redis_client, instance["id"], device_id)
    assert (device.platform, device.token, device.metadata) == ("web", token, SDK_METADATA)


def test_a_url_safe_or_unpadded_token_is_a_subscription_too(client, instance):
    token = browser(3).token
    variant = token.replace("+", "-").replace("/", "_").rstrip("=")
    assert register(client, instance["id"], variant).status_code == 200


def _with(subscription: dict, **changes) -> dict:
    out = json.loads(json.dumps(subscription))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = out
        for parent in parents:
            node = node[parent]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return out


GOOD = browser(9).subscription()
BAD_TOKENS = [
    pytest.param("not base64 at all!", id="not-base64"),
    pytest.param(base64.b64encode(b"{not json").decode(), id="not-json"),
    pytest.param(token_of(["endpoint"]), id="not-an-object"),
    pytest.param(token_of(_with(GOOD, endpoint=None)), id="no-endpoint"),
    pytest.param(token_of(_with(GOOD, endpoint="http://fcm.googleapis.com/fcm/send/x")), id="http-endpoint"),
    pytest.param(token_of(_with(GOOD, endpoint=42)), id="endpoint-not-a-string"),
    pytest.param(token_of(_with(GOOD, keys=None)), id="no-keys"),
    pytest.param(token_of(_with(GOOD, keys__p256dh=None)), id="no-p256dh"),
    pytest.param(token_of(_with(GOOD, keys__p256dh=b64url(b"\x04" + b"\x01" * 63))), id="p256dh-64-bytes"),
    pytest.param(token_of(_with(GOOD, keys__p256dh=b64url(b"\x04" + b"\x01" * 64))), id="p256dh-not-on-curve"),
    pytest.param(token_of(_with(GOOD, keys__p256dh="%%%")), id="p256dh-not-base64"),
    pytest.param(token_of(_with(GOOD, keys__auth=None)), id="no-auth"),
    pytest.param(token_of(_with(GOOD, keys__auth=b64url(b"\x01" * 15))), id="auth-15-bytes"),
    pytest.param(token_of(_with(GOOD, endpoint="https://push.evil.example/x")), id="endpoint-not-allowed"),
    pytest.param(token_of(_with(GOOD, endpoint="https://evil.example/.notify.windows.com/w")), id="allowlist-glob-trick"),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_token_that_is_no_usable_subscription_is_refused(client, instance, redis_client, token):
    before = set(redis_client.scan_iter(match=keys.device_prefix(instance["id"]) + "*"))
    description = assert_error(register(client, instance["id"], token), 400, "Invalid web push token")
    assert description
    assert set(redis_client.scan_iter(match=keys.device_prefix(instance["id"]) + "*")) == before


def test_a_missing_token_and_other_bad_bodies(client, instance):
    assert assert_error(register(client, instance["id"], None), 400, "Bad request") == "Missing web push token."
    assert assert_error(client.post(device_api(instance["id"]) + "/devices/web", json={}), 400,
                        "Bad request") == "Missing web push token."
    assert_error(client.post(device_api(instance["id"]) + "/devices/web", data="x", content_type="text/plain"),
                 400, "Invalid content type")
    assert_error(register(client, "00000000-0000-4000-8000-000000000000", browser().token), 404, "Instance not found")
    assert_error(register(client, instance["id"], browser().token, metadata="2.1.0"), 400, "Bad request")


def test_the_endpoint_must_reach_public_addresses_under_a_wildcard_allowlist(deployment):
    app = create_app(deployment.config(PUSHLITE_WEBPUSH_ENDPOINT_ALLOWLIST="https://*"))
    client = app.test_client()
    instance = client.post("/admin/v1/instances", json={"name": "open"}, headers=ADMIN).get_json()
    for endpoint in ("https://10.0.0.1/push/", "https://169.254.169.254/latest/", "https://[::1]/push/"):
        description = assert_error(register(client, instance["id"], browser(endpoint=endpoint).token),
                                   400, "Invalid web push token")
        assert "non-public" in description
    assert register(client, instance["id"], browser(endpoint="https://1.1.1.1/push/").token).status_code == 200


def test_a_wrong_client_token_is_refused(client, instance):
    response = client.post(device_api(instance["id"]) + "/devices/web", json={"token": browser().token},
                           headers={"Authorization": "Bearer not-the-client-token"})
    assert_error(response, 401, "Unauthorized")
    ok = client.post(device_api(instance["id"]) + "/devices/web", json={"token": browser().token},
                     headers={"Authorization": f"Bearer {instance['client_token']}"})
    assert ok.status_code == 200


# --- every device route for web devices ------------------------------------------


@pytest.fixture
def web_device(client, instance) -> str:
    return registered(client, instance["id"], browser(5).token)


def test_get_metadata_and_delete(client, instance, redis_client, web_device):
    path = f"{device_api(instance['id'])}/devices/web/{web_device}"
    assert client.get(path).get_json() == {"id": web_device, "userId": "", "metadata": SDK_METADATA}
    assert client.put(path + "/metadata", json={"sdkVersion": "2.2.0", "androidVersion": "14"}).status_code == 200
    assert client.get(path).get_json()["metadata"] == {"sdkVersion": "2.2.0"}
    # The web device is not an FCM or APNs device.
    assert_error(client.get(f"{device_api(instance['id'])}/devices/fcm/{web_device}"), 404, "Device not found")
    assert client.delete(path).status_code == 200
    assert_error(client.get(path), 404, "Device not found")
    assert stored(redis_client, instance["id"], web_device) is None
    assert client.delete(path).status_code == 200


def test_interests_get_set_add_remove_and_paging(client, instance, redis_client, web_device):
    path = f"{device_api(instance['id'])}/devices/web/{web_device}/interests"
    assert client.put(path, json={"interests": ["news", "sport", "weather"]}).status_code == 200
    assert client.post(path + "/hello").status_code == 200
    assert client.delete(path + "/sport").status_code == 200
    assert client.get(path).get_json() == {"interests": ["hello", "news", "weather"], "responseMetadata": {}}
    first = client.get(path, query_string={"limit": 2}).get_json()
    assert first["interests"] == ["hello", "news"]
    rest = client.get(path, query_string={"limit": 2, "cursor": first["responseMetadata"]["nextCursor"]}).get_json()
    assert rest == {"interests": ["weather"], "responseMetadata": {}}
    assert web_device in interest_members(redis_client, instance["id"], "news")
    # The same subscription registered again brings its interests back.
    token = stored(redis_client, instance["id"], web_device).token
    again = register(client, instance["id"], token).get_json()
    assert again == {"id": web_device, "initialInterestSet": ["hello", "news", "weather"]}


def test_set_user_id_with_a_user_jwt(client, instance, redis_client, web_device):
    assert set_user(client, instance, "web", web_device, "alice").status_code == 200
    assert client.get(f"{device_api(instance['id'])}/devices/web/{web_device}").get_json()["userId"] == "alice"
    assert user_devices(redis_client, instance["id"], "alice") == [web_device]
    assert_error(set_user(client, instance, "web", web_device, "bob"), 400, "Bad Request")
    missing = client.put(f"{device_api(instance['id'])}/devices/web/{web_device}/user")
    assert_error(missing, 401, "Unauthorized")


# --- CORS: a page on another origin calling the Device and Reporting APIs ---------

ORIGIN = "https://shop.example.com"


def preflight(client, path: str, method: str, headers: str = ""):
    """What a browser sends before a cross-origin request that is not "simple"."""
    request_headers = {"Origin": ORIGIN, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=request_headers)


def allowed_by(response, method: str, headers: str = "") -> bool:
    """Whether a browser would let the request through after this preflight answer."""
    allow_methods = {m.strip() for m in response.headers.get("Access-Control-Allow-Methods", "").split(",")}
    allow_headers = {h.strip().lower() for h in response.headers.get("Access-Control-Allow-Headers", "").split(",")}
    wanted = {h.strip().lower() for h in headers.split(",") if h.strip()}
    return (200 <= response.status_code < 300
            and response.headers.get("Access-Control-Allow-Origin") in ("*", ORIGIN)
            and method in allow_methods and wanted <= allow_headers)


def test_every_web_sdk_call_passes_its_preflight(client, instance, web_device):
    iid = instance["id"]
    device = f"{device_api(iid)}/devices/web/{web_device}"
    calls = [
        (device_api(iid) + "/devices/web", "POST", "content-type"),
        (device + "/interests", "PUT", "content-type"),
        (device + "/interests/news", "POST", ""),
        (device + "/interests/news", "DELETE", ""),
        (device, "DELETE", ""),
        (device + "/metadata", "PUT", "content-type"),
        (device + "/user", "PUT", "authorization"),
        (f"/reporting_api/v2/instances/{iid}/events", "POST", "content-type"),
        # The mobile SDKs' header, should a hybrid app send it from a web view.
        (device_api(iid) + "/devices/fcm", "POST", "content-type,x-pusher-library"),
    ]
    for path, method, headers in calls:
        response = preflight(client, path, method, headers)
        assert response.status_code == 204, (path, response.status_code)
        assert allowed_by(response, method, headers), (path, dict(response.headers))
        assert response.get_data() == b""


def test_a_preflight_needs_no_auth_and_no_valid_ids(client):
    response = preflight(client, "/device_api/v1/instances/nope/devices/web/x/user", "PUT", "authorization")
    assert allowed_by(response, "PUT", "authorization")


def test_answers_and_errors_carry_the_allow_origin_header(client, instance):
    iid = instance["id"]
    for response in (
        vapid_key(client, iid),
        register(client, iid, browser(7).token),
        register(client, iid, "junk"),
        client.get(f"{device_api(iid)}/devices/web/000000000000"),
        client.post(f"/reporting_api/v2/instances/{iid}/events", json={}),
    ):
        assert response.headers.get("Access-Control-Allow-Origin") == "*", response.status_code


def test_the_server_side_apis_are_not_opened_to_browsers(client, instance):
    for path in (f"/publish_api/v1/instances/{instance['id']}/publishes/interests",
                 f"/customer_api/v1/instances/{instance['id']}/users/alice"):
        response = preflight(client, path, "POST", "authorization,content-type")
        assert not allowed_by(response, "POST", "authorization,content-type"), path
