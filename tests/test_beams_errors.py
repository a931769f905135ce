"""Beams Device API errors: every error row of the seed
(seeds/beams-device-api.txt), endpoint by endpoint, with its status and its
exact ``{"error": <title>, "description": <text>}`` body; and the errors no
route reaches (size limit, unknown path, wrong method, an unexpected failure)."""
from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest

APNS_TOKEN = "ab" * 32
FCM_TOKEN = "fcm-token-0123456789abcdef"
APNS_BODY = {"token": APNS_TOKEN, "bundleIdentifier": "com.example.app"}
FCM_BODY = {"token": FCM_TOKEN}
UNKNOWN_DEVICE = "0123456789ab"  # well formed, never registered
JSON = "application/json"

# Paths: {iid} is the test instance, {apns}/{fcm} its devices, {unknown} a
# valid UUID no instance has; "//" is an empty instance id.
A = "/device_api/v1/instances/{iid}/devices"
NO_IID_PATH = "/device_api/v1/instances//devices"
BAD_IID_PATH = "/device_api/v1/instances/not-a-uuid/devices"
U = "/device_api/v1/instances/{unknown}/devices"

CONTENT_TYPE = (400, "Invalid content type", "Only application/json is supported.")
NO_IID = (400, "Incomplete Request", "instance-id param is missing from path.")
BAD_IID = (400, "Bad Request", "instance-id given is not valid.")
NO_DEVICE_ID = (400, "Incomplete Request", "device-id param is missing from path.")
NOT_AN_OBJECT = (400, "Bad request", "Failed to read body as a JSON object.")
BUNDLE_CONTROL = (400, "Bad request", "bundleIdentifier must not contain control characters.")
NO_INSTANCE = (404, "Instance not found", "Could not find the instance.")
NO_DEVICE = (404, "Device not found", "Could not find the device.")
BAD_APNS_TOKEN = (401, "Unauthorized", "Incorrect APNs token supplied.")
BAD_FCM_TOKEN = (401, "Unauthorized", "Incorrect FCM token supplied.")
INVALID_NAME = (400, "Invalid interest name", "interest-name given is not valid.")
NO_NAME = (400, "Incomplete Request", "interest-name param is missing from path.")
TOO_MANY = (
    400,
    "Interest set too large",
    "Too many interests are being set for this device. Only 5000 interests per device are allowed.",
)
BAD_LIMIT = (400, "Bad Request", "limit given is not valid.")
BAD_CURSOR = (400, "Bad Request", "cursor given is not valid.")
HEADER_MISSING = (401, "Unauthorized", "Authorization header token is missing.")
HEADER_MALFORMED = (401, "Unauthorized", "Authorization header token is malformed.")
BEARER = {"Authorization": "Bearer {jwt}"}


def row(name, method, path, expected, **kwargs):
    return pytest.param(method, path, kwargs, expected, id=name)


def not_json_object_rows(name: str, method: str, path: str) -> list:
    return [
        row(f"{name}/invalid-json", method, path, NOT_AN_OBJECT, data="{", content_type=JSON),
        row(f"{name}/json-list", method, path, NOT_AN_OBJECT, json=[{"token": FCM_TOKEN}]),
        row(f"{name}/json-string", method, path, NOT_AN_OBJECT, json="token"),
        row(f"{name}/empty-body", method, path, NOT_AN_OBJECT, data="", content_type=JSON),
        # Python's json reads these; a lone surrogate cannot be stored, deep nesting overflows the
        # stack, NaN is not JSON (and no provider would take it).
        row(f"{name}/lone-surrogate", method, path, NOT_AN_OBJECT, content_type=JSON,
            data='{"token": "%s", "bundleIdentifier": "\\ud800", "interests": ["\\udc00"]}' % FCM_TOKEN),
        row(f"{name}/nested-too-deep", method, path, NOT_AN_OBJECT, data="[" * 100_000 + "]" * 100_000,
            content_type=JSON),
        row(f"{name}/nan", method, path, NOT_AN_OBJECT, data='{"token": "%s", "metadata": NaN}' % FCM_TOKEN,
            content_type=JSON),
    ]


def content_type_rows(name: str, method: str, path: str, body: dict, **kwargs) -> list:
    return [
        row(f"{name}/text-plain", method, path, CONTENT_TYPE, data=json.dumps(body), content_type="text/plain",
            **kwargs),
        row(f"{name}/form", method, path, CONTENT_TYPE, data=body, **kwargs),
        row(f"{name}/no-content-type", method, path, CONTENT_TYPE, data=json.dumps(body), **kwargs),
    ]


REGISTER_APNS = [
    *content_type_rows("register-apns/content-type", "POST", A + "/apns", APNS_BODY),
    row("register-apns/no-instance-id", "POST", NO_IID_PATH + "/apns", NO_IID, json=APNS_BODY),
    row("register-apns/bad-instance-id", "POST", BAD_IID_PATH + "/apns", BAD_IID, json=APNS_BODY),
    *not_json_object_rows("register-apns/body", "POST", A + "/apns"),
    row("register-apns/missing-token", "POST", A + "/apns", (400, "Bad request", "Missing APNs token."),
        json={"bundleIdentifier": "com.example.app"}),
    row("register-apns/empty-token", "POST", A + "/apns", (400, "Bad request", "Missing APNs token."),
        json={"token": "", "bundleIdentifier": "com.example.app"}),
    row("register-apns/missing-bundle", "POST", A + "/apns", (400, "Bad request", "Missing App Bundle Identifier."),
        json={"token": APNS_TOKEN}),
    row("register-apns/empty-bundle", "POST", A + "/apns", (400, "Bad request", "Missing App Bundle Identifier."),
        json={"token": APNS_TOKEN, "bundleIdentifier": ""}),
    # The bundle is a field of the packed device record, whose separators are control characters.
    *[
        row(f"register-apns/bundle-with-{label}", "POST", A + "/apns", BUNDLE_CONTROL,
            json={"token": "cd" * 32, "bundleIdentifier": f"com.example{char}app"})
        for label, char in [("field-separator", "\x1f"), ("list-separator", "\x1e"), ("newline", "\n")]
    ],
    *[
        row(f"register-apns/bad-token-{label}", "POST", A + "/apns", BAD_APNS_TOKEN,
            json={"token": token, "bundleIdentifier": "com.example.app"})
        for label, token in [
            ("short", "abc"),
            ("62-digits", "ab" * 31),
            ("63-digits", "a" * 63),
            ("201-digits", "a" * 201),
            ("202-digits", "ab" * 101),
            ("not-hex", "zz" * 32),
            ("spaces", "ab" * 16 + " " + "ab" * 16),
            ("fcm-token", FCM_TOKEN),
        ]
    ],
    row("register-apns/unknown-instance", "POST", U + "/apns", NO_INSTANCE, json=APNS_BODY),
]

REGISTER_FCM = [
    *content_type_rows("register-fcm/content-type", "POST", A + "/fcm", FCM_BODY),
    row("register-fcm/no-instance-id", "POST", NO_IID_PATH + "/fcm", NO_IID, json=FCM_BODY),
    row("register-fcm/bad-instance-id", "POST", BAD_IID_PATH + "/fcm", BAD_IID, json=FCM_BODY),
    *not_json_object_rows("register-fcm/body", "POST", A + "/fcm"),
    row("register-fcm/missing-token", "POST", A + "/fcm", (400, "Bad request", "Missing FCM token."),
        json={"bundleIdentifier": "com.example.app"}),
    row("register-fcm/empty-token", "POST", A + "/fcm", (400, "Bad request", "Missing FCM token."),
        json={"token": ""}),
    row("register-fcm/bundle-with-field-separator", "POST", A + "/fcm", BUNDLE_CONTROL,
        json={"token": FCM_TOKEN + "-2", "bundleIdentifier": "com.example\x1fapp"}),
    *[
        row(f"register-fcm/bad-token-{label}", "POST", A + "/fcm", BAD_FCM_TOKEN, json={"token": token})
        for label, token in [
            ("19-chars", "a" * 19),
            ("4097-chars", "a" * 4097),
            ("space", "fcm token 0123456789abcdef"),
            ("slash", "fcm/token/0123456789abcdef"),
            ("plus", "fcm+token+0123456789abcdef"),
            ("equals", "fcm=token=0123456789abcdef"),
            ("non-ascii", "fcm-tokén-0123456789abcdef"),
        ]
    ],
    row("register-fcm/unknown-instance", "POST", U + "/fcm", NO_INSTANCE, json=FCM_BODY),
]


def device_rows(platform: str) -> list:
    device = A + f"/{platform}/{{{platform}}}"
    name = f"{platform}"
    rows = [
        row(f"get-{name}/no-instance-id", "GET", NO_IID_PATH + f"/{platform}/{{{platform}}}", NO_IID),
        row(f"get-{name}/bad-instance-id", "GET", BAD_IID_PATH + f"/{platform}/{{{platform}}}", BAD_IID),
        row(f"get-{name}/no-device-id", "GET", A + f"/{platform}/", NO_DEVICE_ID),
        row(f"get-{name}/unknown-instance", "GET", U + f"/{platform}/{{{platform}}}", NO_INSTANCE),
        row(f"get-{name}/unknown-device", "GET", A + f"/{platform}/{UNKNOWN_DEVICE}", NO_DEVICE),
        row(f"get-{name}/malformed-device", "GET", A + f"/{platform}/not-a-device", NO_DEVICE),
        row(f"delete-{name}/no-instance-id", "DELETE", NO_IID_PATH + f"/{platform}/{{{platform}}}", NO_IID),
        row(f"delete-{name}/bad-instance-id", "DELETE", BAD_IID_PATH + f"/{platform}/{{{platform}}}", BAD_IID),
        row(f"delete-{name}/no-device-id", "DELETE", A + f"/{platform}/", NO_DEVICE_ID),
        row(f"delete-{name}/unknown-instance", "DELETE", U + f"/{platform}/{{{platform}}}", NO_INSTANCE),
    ]
    metadata = {"sdkVersion": "1.0.0"}
    rows += [
        *content_type_rows(f"metadata-{name}/content-type", "PUT", device + "/metadata", metadata),
        row(f"metadata-{name}/no-instance-id", "PUT", NO_IID_PATH + f"/{platform}/{{{platform}}}/metadata", NO_IID,
            json=metadata),
        row(f"metadata-{name}/bad-instance-id", "PUT", BAD_IID_PATH + f"/{platform}/{{{platform}}}/metadata",
            BAD_IID, json=metadata),
        row(f"metadata-{name}/no-device-id", "PUT", A + f"/{platform}//metadata", NO_DEVICE_ID, json=metadata),
        *not_json_object_rows(f"metadata-{name}/body", "PUT", device + "/metadata"),
        row(f"metadata-{name}/unknown-device", "PUT", A + f"/{platform}/{UNKNOWN_DEVICE}/metadata", NO_DEVICE,
            json=metadata),
        row(f"metadata-{name}/malformed-device", "PUT", A + f"/{platform}/not-a-device/metadata", NO_DEVICE,
            json=metadata),
        row(f"metadata-{name}/unknown-instance", "PUT", U + f"/{platform}/{{{platform}}}/metadata", NO_INSTANCE,
            json=metadata),
    ]
    rows += [
        *content_type_rows(f"user-{name}/content-type", "PUT", device + "/user", {"x": 1}, headers=BEARER),
        row(f"user-{name}/no-instance-id", "PUT", NO_IID_PATH + f"/{platform}/{{{platform}}}/user", NO_IID,
            headers=BEARER),
        row(f"user-{name}/bad-instance-id", "PUT", BAD_IID_PATH + f"/{platform}/{{{platform}}}/user", BAD_IID,
            headers=BEARER),
        row(f"user-{name}/no-device-id", "PUT", A + f"/{platform}//user", NO_DEVICE_ID, headers=BEARER),
        row(f"user-{name}/malformed-device", "PUT", A + f"/{platform}/not-a-device/user",
            (400, "Bad Request", "Invalid device id."), headers=BEARER),
        row(f"user-{name}/unknown-device", "PUT", A + f"/{platform}/{UNKNOWN_DEVICE}/user", NO_DEVICE,
            headers=BEARER),
        row(f"user-{name}/unknown-instance", "PUT", U + f"/{platform}/{{{platform}}}/user", NO_INSTANCE,
            headers=BEARER),
        row(f"user-{name}/header-missing", "PUT", device + "/user", HEADER_MISSING),
        row(f"user-{name}/header-empty", "PUT", device + "/user", HEADER_MISSING, headers={"Authorization": ""}),
        row(f"user-{name}/header-basic", "PUT", device + "/user", HEADER_MALFORMED,
            headers={"Authorization": "Basic x"}),
        row(f"user-{name}/header-bearer-only", "PUT", device + "/user", HEADER_MALFORMED,
            headers={"Authorization": "Bearer"}),
        row(f"user-{name}/header-bearer-garbage", "PUT", device + "/user", HEADER_MALFORMED,
            headers={"Authorization": "Bearer garbage"}),
        row(f"user-{name}/header-bearer-dots", "PUT", device + "/user", HEADER_MALFORMED,
            headers={"Authorization": "Bearer a.b.c"}),
        row(f"user-{name}/header-two-tokens", "PUT", device + "/user", HEADER_MALFORMED,
            headers={"Authorization": "Bearer {jwt} {jwt}"}),
        row(f"user-{name}/header-raw-token", "PUT", device + "/user", HEADER_MALFORMED,
            headers={"Authorization": "{jwt}"}),
    ]
    return rows


TOKEN = A + "/fcm/{fcm}/token"
TOKEN_ROWS = [
    *content_type_rows("token/content-type", "PUT", TOKEN, {"token": FCM_TOKEN + "x"}),
    row("token/no-instance-id", "PUT", NO_IID_PATH + "/fcm/{fcm}/token", NO_IID, json={"token": FCM_TOKEN}),
    row("token/bad-instance-id", "PUT", BAD_IID_PATH + "/fcm/{fcm}/token", BAD_IID, json={"token": FCM_TOKEN}),
    row("token/no-device-id", "PUT", A + "/fcm//token", NO_DEVICE_ID, json={"token": FCM_TOKEN}),
    *not_json_object_rows("token/body", "PUT", TOKEN),
    row("token/missing-token", "PUT", TOKEN, (400, "Bad request", "Missing token field with the FCM Registration Id."),
        json={}),
    row("token/empty-token", "PUT", TOKEN, (400, "Bad request", "Missing token field with the FCM Registration Id."),
        json={"token": ""}),
    row("token/unknown-device", "PUT", A + f"/fcm/{UNKNOWN_DEVICE}/token", NO_DEVICE, json={"token": FCM_TOKEN}),
    row("token/malformed-device", "PUT", A + "/fcm/not-a-device/token", NO_DEVICE, json={"token": FCM_TOKEN}),
    row("token/unknown-instance", "PUT", U + "/fcm/{fcm}/token", NO_INSTANCE, json={"token": FCM_TOKEN}),
]

INTERESTS = A + "/fcm/{fcm}/interests"
GET_INTERESTS = [
    row("get-interests/no-instance-id", "GET", NO_IID_PATH + "/fcm/{fcm}/interests", NO_IID),
    row("get-interests/bad-instance-id", "GET", BAD_IID_PATH + "/fcm/{fcm}/interests", BAD_IID),
    row("get-interests/no-device-id", "GET", A + "/fcm//interests", NO_DEVICE_ID),
    *[
        row(f"get-interests/limit-{label}", "GET", INTERESTS, BAD_LIMIT, query_string={"limit": limit})
        for label, limit in [("0", "0"), ("101", "101"), ("abc", "abc"), ("-1", "-1"), ("1.5", "1.5"),
                             ("empty", "")]
    ],
    *[
        row(f"get-interests/cursor-{label}", "GET", INTERESTS, BAD_CURSOR, query_string={"cursor": cursor})
        for label, cursor in [("punctuation", "!!!"), ("not-utf8", "abc"), ("bad-name", "YSBi"),
                              ("empty", "")]
    ],
    row("get-interests/unknown-instance", "GET", U + "/fcm/{fcm}/interests", NO_INSTANCE),
    row("get-interests/unknown-device", "GET", A + f"/fcm/{UNKNOWN_DEVICE}/interests", NO_DEVICE),
]

SET_INTERESTS = [
    row("set-interests/no-instance-id", "PUT", NO_IID_PATH + "/fcm/{fcm}/interests", NO_IID, json={"interests": []}),
    row("set-interests/bad-instance-id", "PUT", BAD_IID_PATH + "/fcm/{fcm}/interests", BAD_IID,
        json={"interests": []}),
    row("set-interests/no-device-id", "PUT", A + "/fcm//interests", NO_DEVICE_ID, json={"interests": []}),
    *not_json_object_rows("set-interests/body", "PUT", INTERESTS),
    *[
        row(f"set-interests/invalid-name-{label}", "PUT", INTERESTS, INVALID_NAME,
            json={"interests": ["fine", name]})
        for label, name in [("empty", ""), ("165-chars", "n" * 165), ("space", "a b"), ("slash", "a/b"),
                            ("hash", "a#b"), ("star", "a*b"), ("non-ascii", "café"), ("number", 123),
                            ("null", None), ("list", ["a"])]
    ],
    row("set-interests/5001", "PUT", INTERESTS, TOO_MANY, json={"interests": [f"i{n:04d}" for n in range(5001)]}),
    row("set-interests/unknown-instance", "PUT", U + "/fcm/{fcm}/interests", NO_INSTANCE, json={"interests": []}),
    row("set-interests/unknown-device", "PUT", A + f"/fcm/{UNKNOWN_DEVICE}/interests", NO_DEVICE,
        json={"interests": []}),
]

ADD_INTEREST = [
    row("add-interest/no-instance-id", "POST", NO_IID_PATH + "/fcm/{fcm}/interests/news", NO_IID),
    row("add-interest/bad-instance-id", "POST", BAD_IID_PATH + "/fcm/{fcm}/interests/news", BAD_IID),
    row("add-interest/no-device-id", "POST", A + "/fcm//interests/news", NO_DEVICE_ID),
    row("add-interest/malformed-device", "POST", A + "/fcm/not-a-device/interests/news",
        (400, "Bad Request", "device-id given is not valid.")),
    *[
        row(f"add-interest/invalid-name-{label}", "POST", INTERESTS + "/" + name, INVALID_NAME)
        for label, name in [("165-chars", "n" * 165), ("space", "a%20b"), ("star", "a*b"), ("bang", "a!b"),
                            ("non-ascii", "caf%C3%A9"), ("encoded-slash", "a%2Fb")]
    ],
    row("add-interest/no-name", "POST", INTERESTS + "/", NO_NAME),
    row("add-interest/unknown-instance", "POST", U + "/fcm/{fcm}/interests/news", NO_INSTANCE),
    row("add-interest/unknown-device", "POST", A + f"/fcm/{UNKNOWN_DEVICE}/interests/news", NO_DEVICE),
]

REMOVE_INTEREST = [
    row("remove-interest/no-instance-id", "DELETE", NO_IID_PATH + "/fcm/{fcm}/interests/news", NO_IID),
    row("remove-interest/bad-instance-id", "DELETE", BAD_IID_PATH + "/fcm/{fcm}/interests/news", BAD_IID),
    row("remove-interest/no-device-id", "DELETE", A + "/fcm//interests/news", NO_DEVICE_ID),
    row("remove-interest/malformed-device", "DELETE", A + "/fcm/not-a-device/interests/news",
        (400, "Incomplete Request", "device-id given is not valid.")),
    row("remove-interest/no-name", "DELETE", INTERESTS + "/", NO_NAME),
    row("remove-interest/unknown-instance", "DELETE", U + "/fcm/{fcm}/interests/news", NO_INSTANCE),
]

SEED_ROWS = [
    *REGISTER_APNS,
    *REGISTER_FCM,
    *device_rows("apns"),
    *device_rows("fcm"),
    *TOKEN_ROWS,
    *GET_INTERESTS,
    *SET_INTERESTS,
    *ADD_INTEREST,
    *REMOVE_INTEREST,
    # The seed lists this row for Get APNs device; a body the API cannot read is refused.
    row("get-apns/content-type", "GET", A + "/apns/{apns}", CONTENT_TYPE, data="hello", content_type="text/plain"),
]


@pytest.fixture
def ctx(client, instance) -> dict:
    apns = client.post(A.format(iid=instance["id"]) + "/apns", json=APNS_BODY)
    fcm = client.post(A.format(iid=instance["id"]) + "/fcm", json=FCM_BODY)
    assert apns.status_code == fcm.status_code == 200
    claims = {"sub": "alice", "iss": f"pushlite:{instance['id']}", "exp": int(time.time()) + 600}
    return {
        "iid": instance["id"],
        "apns": apns.get_json()["id"],
        "fcm": fcm.get_json()["id"],
        "unknown": str(uuid.uuid4()),
        "jwt": jwt.encode(claims, instance["secret_key"], algorithm="HS256"),
    }


def assert_beams_error(response, status: int, title: str, description: str) -> None:
    assert response.mimetype == "application/json", response.data[:200]
    assert (response.status_code, response.get_json()) == (status, {"error": title, "description": description})


@pytest.mark.parametrize("method, path, kwargs, expected", SEED_ROWS)
def test_seed_error_row(client, ctx, method, path, kwargs, expected):
    kwargs = dict(kwargs)
    if "headers" in kwargs:
        kwargs["headers"] = {k: v.format(**ctx) for k, v in kwargs["headers"].items()}
    response = client.open(path.format(**ctx), method=method, **kwargs)
    assert_beams_error(response, *expected)


def test_a_refused_request_changes_nothing(client, ctx):
    device = A.format(**ctx) + "/fcm/" + ctx["fcm"]
    client.put(device + "/interests", json={"interests": ["keep"]})
    client.put(device + "/interests", json={"interests": [f"i{n:04d}" for n in range(5001)]})
    client.put(device + "/interests", json={"interests": ["ok", "not ok"]})
    client.post(device + "/interests/" + "n" * 165)
    client.put(device + "/token", json={})
    client.put(device + "/metadata", data="{", content_type=JSON)
    assert client.get(device + "/interests").get_json()["interests"] == ["keep"]
    assert client.post(A.format(**ctx) + "/fcm", json=FCM_BODY).get_json()["id"] == ctx["fcm"]


def test_a_bundle_with_a_control_character_registers_nothing(client, ctx):
    body = {"token": FCM_TOKEN + "-2", "bundleIdentifier": "a\x1fb\x1fc"}
    assert client.post(A.format(**ctx) + "/fcm", json=body).status_code == 400
    registered = client.post(A.format(**ctx) + "/fcm", json={"token": FCM_TOKEN + "-2"}).get_json()["id"]
    device = client.get(A.format(**ctx) + "/fcm/" + registered)
    assert device.status_code == 200 and device.get_json()["metadata"] == {}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_is_accepted(client, ctx, content_type):
    response = client.post(A.format(**ctx) + "/fcm", data=json.dumps(FCM_BODY), content_type=content_type)
    assert response.status_code == 200
    assert response.get_json()["id"] == ctx["fcm"]


def test_unknown_fields_in_a_body_are_ignored(client, ctx):
    body = {**FCM_BODY, "future": {"x": 1}, "metadata": {"sdkVersion": "1", "later": "y"}}
    assert client.post(A.format(**ctx) + "/fcm", json=body).status_code == 200


# --- errors no view produces ----------------------------------------------------


def test_a_body_over_1_mib_is_413_in_the_beams_shape(client, ctx):
    body = {"token": FCM_TOKEN, "padding": "x" * (1024 * 1024 + 1)}
    response = client.post(A.format(**ctx) + "/fcm", json=body)
    assert response.status_code == 413
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert set(payload) == {"error", "description"}
    assert all(isinstance(v, str) and v for v in payload.values())


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/device_api/v1/nope"),
        ("GET", "/device_api/"),
        ("POST", "/device_api/v1/instances/{iid}/devices/wns"),
        ("GET", "/device_api/v1/instances/{iid}/devices/apns/{apns}/nope"),
        ("GET", "/device_api/v1/instances/{iid}"),
    ],
)
def test_an_unknown_path_is_404_in_the_beams_shape(client, ctx, method, path):
    response = client.open(path.format(**ctx), method=method, json={})
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert b"<html" not in response.data.lower()
    body = response.get_json()
    assert set(body) == {"error", "description"}
    assert body["error"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", "/device_api/v1/instances/{iid}/devices/fcm"),
        ("GET", "/device_api/v1/instances/{iid}/devices/apns"),
        ("POST", "/device_api/v1/instances/{iid}/devices/fcm/{fcm}"),
        ("GET", "/device_api/v1/instances/{iid}/devices/fcm/{fcm}/user"),
        ("PATCH", "/device_api/v1/instances/{iid}/devices/fcm/{fcm}/interests"),
    ],
)
def test_a_wrong_method_is_405_in_the_beams_shape(client, ctx, method, path):
    response = client.open(path.format(**ctx), method=method)
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "description"}
    assert body["error"]
    assert "Allow" in response.headers


def test_an_unexpected_failure_is_500_in_the_beams_shape(client, ctx, monkeypatch):
    from pushlite.storage import devices

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(devices, "get", boom)
    response = client.get(A.format(**ctx) + "/fcm/" + ctx["fcm"])
    assert_beams_error(response, 500, "Something went wrong", "Internal server error.")
    assert b"secret internals" not in response.data
