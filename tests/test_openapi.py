"""/openapi.json describes every route the app serves, well enough for a client
generator, and /docs shows it from assets pushlite serves itself."""
from __future__ import annotations

import json
import re

import pytest

import config
from pushlite.app import create_app
from tests.conftest import FAMILY_ERROR_FIELDS, SKIP_ENDPOINTS

METHODS = {"get", "put", "post", "delete", "patch"}



@pytest.fixture(scope="module")
def app():
    return create_app(config.TestingConfig())


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return json.loads(response.get_data(as_text=True))


def openapi_path(rule: str) -> str:
    """``/x/<a>/<any(apns, fcm):platform>/<path:p>`` -> ``/x/{a}/{platform}/{p}``."""
    return re.sub(r"<(?:[^<>]*:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def family_rules(app) -> list:
    return [r for r in app.url_map.iter_rules() if not r.endpoint.startswith(SKIP_ENDPOINTS)]


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, item, operation


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target: object = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]  # type: ignore[index]
        node = target  # type: ignore[assignment]
    return node


def json_schema(spec: dict, response_or_body: dict) -> dict | None:
    content = resolve(spec, response_or_body).get("content", {})
    media = content.get("application/json")
    if not media or "schema" not in media:
        return None
    return resolve(spec, media["schema"])


def family_fields(path: str) -> set[str] | None:
    matches = [p for p in FAMILY_ERROR_FIELDS if path.startswith(p)]
    return FAMILY_ERROR_FIELDS[max(matches, key=len)] if matches else None


def test_openapi_json_is_valid(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["paths"]


def test_every_ref_resolves(spec):
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec))
    assert refs
    for ref in set(refs):
        resolve(spec, {"$ref": ref})


def test_every_route_is_documented_with_its_methods(app, spec):
    missing = []
    for rule in family_rules(app):
        path = openapi_path(rule.rule)
        item = spec["paths"].get(path)
        for method in sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}):
            if item is None or method not in item:
                missing.append(f"{method.upper()} {path}")
    assert not missing, "undocumented routes: " + ", ".join(missing)
    assert len(family_rules(app)) >= 3


def test_no_documented_path_without_a_route(app, spec):
    served = {openapi_path(rule.rule) for rule in family_rules(app)}
    assert set(spec["paths"]) <= served


def test_path_parameters_are_declared(spec):
    problems = []
    for path, method, item, operation in operations(spec):
        declared = {p["name"] for p in item.get("parameters", []) + operation.get("parameters", [])
                    if p.get("in") == "path"}
        for name in re.findall(r"{([^}]+)}", path):
            if name not in declared:
                problems.append(f"{method.upper()} {path}: {name}")
    assert not problems, problems


def test_every_operation_has_a_summary(spec):
    missing = [f"{m.upper()} {p}" for p, m, _, op in operations(spec) if not op.get("summary", "").strip()]
    assert not missing, "no summary: " + ", ".join(missing)


def test_every_operation_documents_its_success_body(spec):
    problems = []
    for path, method, _, operation in operations(spec):
        success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        if not success:
            problems.append(f"{method.upper()} {path}: no 2xx response")
        for code, response in success.items():
            if code != "204" and json_schema(spec, response) is None:
                problems.append(f"{method.upper()} {path}: {code} has no JSON schema")
    assert not problems, problems


def test_every_operation_documents_a_client_error(spec):
    missing = [
        f"{m.upper()} {p}"
        for p, m, _, op in operations(spec)
        if not any(code.startswith("4") for code in op["responses"])
    ]
    assert not missing, "no 4xx response documented: " + ", ".join(missing)


def test_admin_operations_document_401(spec):
    """Every admin call needs the admin token; a client should know it can get a 401."""
    missing = [f"{m.upper()} {p}" for p, m, _, op in operations(spec)
               if p.startswith("/admin/") and "401" not in op["responses"]]
    assert not missing, "no 401 documented: " + ", ".join(missing)


def test_error_responses_describe_the_family_error_body(spec):
    """A documented 4xx/5xx has a body schema with the fields the family really answers with."""
    problems = []
    for path, method, _, operation in operations(spec):
        for code, response in operation["responses"].items():
            if not code[0] in "45":
                continue
            schema = json_schema(spec, response)
            if schema is None:
                problems.append(f"{method.upper()} {path} {code}: no body schema")
                continue
            expected = family_fields(path)
            if expected and not expected <= set(schema.get("properties", {})):
                problems.append(
                    f"{method.upper()} {path} {code}: schema fields {sorted(schema.get('properties', {}))}, "
                    f"the family answers {sorted(expected)}"
                )
    assert not problems, "\n".join(problems)


def test_request_bodies_have_schemas(spec):
    problems = []
    for path, method, _, operation in operations(spec):
        if "requestBody" in operation and json_schema(spec, operation["requestBody"]) is None:
            problems.append(f"{method.upper()} {path}")
    assert not problems, "request body without a JSON schema: " + ", ".join(problems)


def test_endpoints_reading_a_json_body_document_it(spec):
    for path in ("/admin/v1/instances", "/device_api/v1/instances/{instance_id}/devices/fcm",
                 "/device_api/v1/instances/{instance_id}/devices/apns"):
        assert "requestBody" in spec["paths"][path]["post"], path
    schema = json_schema(spec, spec["paths"]["/admin/v1/instances"]["post"]["requestBody"])
    assert "name" in schema["properties"] and "name" in schema.get("required", [])


def test_secret_key_only_in_create_and_rotate_responses(spec):
    def fields(response: dict) -> set[str]:
        schema = json_schema(spec, response) or {}
        schema = resolve(spec, schema.get("items", schema)) if schema.get("type") == "array" else schema
        return set(schema.get("properties", {}))

    ops = spec["paths"]
    assert "secret_key" in fields(ops["/admin/v1/instances"]["post"]["responses"]["201"])
    assert "secret_key" in fields(ops["/admin/v1/instances/{instance_id}/secret_key"]["post"]["responses"]["200"])
    assert "secret_key" not in fields(ops["/admin/v1/instances"]["get"]["responses"]["200"])
    assert "secret_key" not in fields(ops["/admin/v1/instances/{instance_id}"]["get"]["responses"]["200"])


def test_docs_page_is_served_locally(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/openapi.json" in html

    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        assert not re.match(r"(?:https?:)?//", asset), f"{asset} is not served by pushlite"
        got = client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.get_data()) > 1000, asset
        kind = "javascript" if asset.endswith(".js") else "css" if asset.endswith(".css") else None
        if kind:
            assert kind in got.mimetype, (asset, got.mimetype)


def test_docs_asset_path_does_not_escape_the_bundle(client):
    for path in ("/docs/assets/../../config/__init__.py", "/docs/assets/%2e%2e/%2e%2e/wsgi.py",
                 "/docs/assets/nothing-here.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "PUSHLITE" not in response.get_data(as_text=True)


def patterns(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "pattern" and isinstance(v, str)] + [
            p for v in node.values() for p in patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in patterns(v)]
    return []


def test_patterns_are_ecma_262_and_state_the_beams_token_and_interest_shapes(spec):
    found = patterns(spec)
    # Python-only regex syntax would make clients and validators read a different rule.
    assert not [p for p in found if re.search(r"\\[AZ]|\(\?P", p)]
    schemas = spec["components"]["schemas"]
    fcm = schemas["RegisterFcm"]["properties"]["token"]["pattern"]
    apns = schemas["RegisterApns"]["properties"]["token"]["pattern"]
    interest = schemas["Interests"]["properties"]["interests"]["items"]["pattern"]
    assert re.search(fcm, "c9x:APA91b" + "x" * 140) and not re.search(fcm, "short")
    assert re.search(apns, "ab" * 32) and not re.search(apns, "zz" * 32)
    assert re.search(interest, "news.sport@x") and not re.search(interest, "no spaces")


def properties(spec: dict, operation: dict, status: str = "200") -> set[str]:
    return set(json_schema(spec, operation["responses"][status]).get("properties", {}))


def test_the_matrix_pushers_routes_and_fields(spec):
    paths = spec["paths"]
    for version in ("v3", "r0"):
        for operation in (paths[f"/_matrix/client/{version}/pushers"]["get"],
                          paths[f"/_matrix/client/{version}/pushers/set"]["post"]):
            assert "access_token" in {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    body = json_schema(spec, paths["/_matrix/client/v3/pushers/set"]["post"]["requestBody"])
    assert body["properties"]["append"]["type"] == "boolean"
    assert "aes-hmac-sha256" in body["properties"]["encryption"]["description"]
    pushers = json_schema(spec, paths["/_matrix/client/v3/pushers"]["get"]["responses"]["200"])
    assert "encryption" in resolve(spec, pushers["properties"]["pushers"]["items"])["properties"]


def test_the_twilio_apps_users_and_tags(spec):
    paths = spec["paths"]
    app = paths["/v1/PushNotifications/Apps/{app_name}"]["get"]
    assert properties(spec, app) == {"id", "name", "default", "credentials", "uri"}
    assert "404" in app["responses"]
    listing = paths["/v1/Users/{user_id}/DeviceRegistrations"]["get"]
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == {"PageSize", "PageToken"}
    assert properties(spec, listing) == {"device_registrations", "meta"}
    assert "delete" in paths["/v1/Users/{user_id}"]
    body = json_schema(spec, paths["/v1/PushNotifications/DeviceRegistrations"]["post"]["requestBody"])
    assert "tags" in body["properties"]
    assert "default app" in json_schema(spec, paths["/v1/PushNotifications"]["post"]["requestBody"])[
        "properties"]["appName"]["description"]


def test_the_admin_default_app_and_app_credentials(spec):
    paths = spec["paths"]
    assert {"get", "put"} <= set(paths["/admin/v1/instances/{instance_id}/twilio/default_app"])
    app = "/admin/v1/instances/{instance_id}/apps/{app_name}/credentials"
    assert "get" in paths[app] and "delete" in paths[app + "/{provider}"]
    for provider in ("apns", "fcm"):
        assert "requestBody" in paths[f"{app}/{provider}"]["put"]
