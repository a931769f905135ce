"""The console through Flask's test client (fakeredis and a real redis-server):
login, the session cookie, CSRF on every POST, and what each page shows and does."""
from __future__ import annotations

import re

import pytest

import config
from pushlite.app import create_app
from pushlite.storage import census, devices, interests
from tests.conftest import ADMIN
from tests.console.conftest import ADMIN_TOKEN, csrf_of, log_in


def text(response) -> str:
    return response.get_data(as_text=True)


def console_posts(app) -> list[str]:
    """Every POST route of the console, with made-up path arguments."""
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("console.", "console_public.")) and "POST" in rule.methods:
            paths.append(re.sub(r"<[^>]+>", "00000000-0000-0000-0000-000000000000", rule.rule))
    return paths


# --- login and session -------------------------------------------------------------


def test_pages_need_a_login(client):
    answer = client.get("/console/")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/login?next=/console/"
    assert client.get("/console/login").status_code == 200


def test_a_wrong_token_is_refused(client):
    csrf = csrf_of(text(client.get("/console/login")))
    refused = client.post("/console/login", data={"token": "not-the-token", "csrf_token": csrf})
    assert refused.status_code == 401
    assert "That is not the admin token." in text(refused)
    assert client.get("/console/").status_code == 302  # still logged out


def test_login_leads_to_the_page_asked_for_and_never_elsewhere(client):
    csrf = csrf_of(text(client.get("/console/login?next=/console/")))
    answer = client.post("/console/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf,
                                                 "next": "/console/instances/x"})
    assert (answer.status_code, answer.headers["Location"]) == (303, "/console/instances/x")
    for elsewhere in ("https://evil.example/", "//evil.example/console/", "/console\\@evil.example"):
        client.post("/console/logout", data={"csrf_token": csrf_of(text(client.get("/console/")))})
        csrf = csrf_of(text(client.get("/console/login")))
        answer = client.post("/console/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf, "next": elsewhere})
        assert answer.headers["Location"] == "/console/", elsewhere


def session_cookie(response) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("pushlite_console=")]
    return header


def test_the_session_cookie_is_httponly_strict_and_console_only(client):
    csrf = csrf_of(text(client.get("/console/login")))
    header = session_cookie(client.post("/console/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf}))
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "expires"} <= attributes
    assert "Path=/console" in header and "SameSite=Strict" in header
    assert "secure" not in attributes  # plain http here


def test_the_session_cookie_is_secure_over_https(client):
    login = client.get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in session_cookie(login)
    direct = client.get("/console/login", base_url="https://console.example")
    assert "; Secure" in session_cookie(direct)


def test_the_apis_get_no_session_cookie(client, instance):
    answer = client.post(f"/device_api/v1/instances/{instance['id']}/devices/fcm", json={"token": "t" * 160})
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers


def test_changing_the_admin_token_ends_every_session(deployment):
    first = create_app(deployment.config())
    client = first.test_client()
    log_in(client)
    assert client.get("/console/").status_code == 200
    second = create_app(deployment.config(PUSHLITE_ADMIN_TOKEN="another-admin-token"))
    other = second.test_client()
    other.set_cookie("pushlite_console", client.get_cookie("pushlite_console", path="/console").value,
                     path="/console")
    assert other.get("/console/").status_code == 302


def test_logout(client):
    csrf = log_in(client)
    assert client.post("/console/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/console/").status_code == 302


# --- CSRF ------------------------------------------------------------------------------


def test_every_console_post_is_refused_without_a_valid_csrf_token(app, client, instance, redis_client):
    paths = console_posts(app)
    assert len(paths) == 6
    assert "/console/login" in paths and "/console/instances" in paths
    csrf = log_in(client)
    real = {path: path.replace("00000000-0000-0000-0000-000000000000", instance["id"]) for path in paths}
    for path in paths:
        for form in ({}, {"csrf_token": ""}, {"csrf_token": csrf[:-2] + "xy"}):
            form = {**form, "token": ADMIN_TOKEN, "name": "test", "confirm": "yes", "kind": "interest",
                    "target": "news", "title": "t"}
            answer = client.post(real[path], data=form)
            assert answer.status_code == 403, (path, form, answer.status_code)
            assert "did not come from this console" in text(answer)
    # Nothing happened: the instance and its secret key are as they were.
    listed = client.get("/admin/v1/instances", headers=ADMIN).get_json()
    assert [i["id"] for i in listed] == [instance["id"]]
    auth = {"Authorization": f"Bearer {instance['secret_key']}"}
    assert client.get(f"/publish_api/v1/instances/{instance['id']}/publishes/pubid-{'0' * 8}-0000-0000-0000-"
                      f"{'0' * 12}", headers=auth).status_code == 404  # the secret key still works
    # And a logged-out browser's POST is refused the same way.
    client.post("/console/logout", data={"csrf_token": csrf})
    assert client.post("/console/instances", data={"name": "x"}).status_code == 403


def test_a_csrf_token_of_another_session_is_refused(app, client):
    mine = log_in(client)
    other = app.test_client()
    theirs = log_in(other)
    assert mine != theirs
    assert client.post("/console/instances", data={"name": "x", "csrf_token": theirs}).status_code == 403
    assert client.post("/console/instances", data={"name": "x", "csrf_token": mine}).status_code == 201


# --- instances ------------------------------------------------------------------------------


def test_create_rotate_and_delete_an_instance(client):
    csrf = log_in(client)
    created = client.post("/console/instances", data={"name": "shop", "csrf_token": csrf})
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    page = text(created)
    iid = re.search(r"Instance id</dt><dd><code>([^<]+)", page).group(1)
    secret = re.search(r'id="secret-key">([^<]+)', page).group(1)
    listed = text(client.get("/console/"))
    assert "shop" in listed and iid in listed and secret not in listed

    rotated = client.post(f"/console/instances/{iid}/secret_key", data={"confirm": "yes", "csrf_token": csrf})
    new_secret = re.search(r'id="secret-key">([^<]+)', text(rotated)).group(1)
    assert new_secret != secret
    publish_api = f"/publish_api/v1/instances/{iid}/publishes/interests"
    body = {"interests": ["news"], "fcm": {"notification": {"title": "x"}}}
    assert client.post(publish_api, json=body, headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert client.post(publish_api, json=body, headers={"Authorization": f"Bearer {new_secret}"}).status_code == 200
    assert new_secret not in text(client.get(f"/console/instances/{iid}"))

    assert "Type the instance" in text(client.get(f"/console/instances/{iid}/delete"))
    kept = client.post(f"/console/instances/{iid}/delete", data={"name": "sho", "csrf_token": csrf})
    assert kept.status_code == 400
    assert client.get(f"/admin/v1/instances/{iid}", headers=ADMIN).status_code == 200
    gone = client.post(f"/console/instances/{iid}/delete", data={"name": "shop", "csrf_token": csrf})
    assert (gone.status_code, gone.headers["Location"]) == (303, "/console/")
    assert client.get(f"/admin/v1/instances/{iid}", headers=ADMIN).status_code == 404
    assert client.get(f"/console/instances/{iid}").status_code == 404


def test_a_name_is_required(client):
    csrf = log_in(client)
    refused = client.post("/console/instances", data={"name": "  ", "csrf_token": csrf})
    assert refused.status_code == 400 and "A name is 1-200 characters." in text(refused)


def test_unknown_instances_and_publishes_are_404_pages(client, instance):
    log_in(client)
    assert client.get("/console/instances/not-an-id").status_code == 404
    missing = client.get(f"/console/instances/{instance['id']}/publishes/pubid-nope")
    assert missing.status_code == 404 and "no such publish" in text(missing)


def test_credentials_status_per_provider_and_app(client, instance, apns_credential, service_account):
    iid = instance["id"]
    log_in(client)
    page = text(client.get(f"/console/instances/{iid}"))
    assert page.count("✗ none") == 2  # APNs and FCM; the VAPID pair is made with the instance
    client.put(f"/admin/v1/instances/{iid}/credentials/fcm", json={"service_account": service_account},
               headers=ADMIN)
    client.put(f"/admin/v1/instances/{iid}/apps/second-app/credentials/apns", json=apns_credential, headers=ADMIN)
    page = text(client.get(f"/console/instances/{iid}"))
    assert "pushlite-test" in page and "app <code>second-app</code>" in page
    assert "ABC123DEFG" in page  # the APNs key id, never the key
    assert "PRIVATE KEY" not in page and service_account["private_key"][40:80] not in page
    assert "FCM ✓" in text(client.get("/console/"))


# --- an instance's figures -------------------------------------------------------------------


def test_devices_users_and_interests_are_counted(client, instance, redis_client):
    iid = instance["id"]
    for n in range(5):
        device_id, _ = devices.register(redis_client, iid, "fcm", f"fcm-token-{n:020d}")
        interests.add(redis_client, iid, device_id, None, [f"topic-{n % 3}"])
        if n < 2:
            devices.add_user(redis_client, iid, device_id, None, f"user-{n}", exclusive=True)
    devices.register(redis_client, iid, "apns", "ab" * 32)
    log_in(client)
    page = text(client.get(f"/console/instances/{iid}"))
    assert re.search(r'id="devices-total">6<', page)
    assert re.search(r'id="users-total">2<', page)
    assert re.search(r'id="interests-total">3<', page)
    assert "Android (FCM)</td><td class=\"num\">5<" in page and "iOS (APNs)</td><td class=\"num\">1<" in page
    # Kept a minute: a device registered now shows later, not on every page view.
    devices.register(redis_client, iid, "fcm", "fcm-token-late-000000000")
    assert re.search(r'id="devices-total">6<', text(client.get(f"/console/instances/{iid}")))


def test_a_big_instance_is_sampled_and_capped(instance, redis_client):
    iid = instance["id"]
    for n in range(40):
        device_id, _ = devices.register(redis_client, iid, "fcm" if n % 4 else "apns", f"{n:064x}")
        interests.add(redis_client, iid, device_id, None, [f"topic-{n}"])
    counted = census.count(redis_client, iid, platform_sample=10, scan_calls=1)
    assert counted.devices == 40
    assert counted.platforms_estimated and sum(counted.platforms.values()) in range(38, 43)
    assert counted.interests_at_least or counted.interests == 40
    exact = census.count(redis_client, iid)
    assert (exact.platforms, exact.platforms_estimated, exact.interests, exact.interests_at_least) == (
        {"fcm": 30, "apns": 10}, False, 40, False)


# --- test notifications ----------------------------------------------------------------------


@pytest.mark.parametrize("form, problem", [
    ({"kind": "device", "target": "nope"}, "A device id is 12 hex digits"),
    ({"kind": "device", "target": "0123456789ab"}, "The instance has no device with this id."),
    ({"kind": "user", "target": "nobody"}, "This user has no devices."),
    ({"kind": "interest", "target": "quiet"}, "No device is subscribed to this interest."),
    ({"kind": "interest", "target": "bad name!"}, "An interest name is"),
    ({"kind": "somewhere", "target": "x"}, "Choose a device, a user or an interest."),
    ({"kind": "interest", "target": "news", "title": "", "body": ""}, "Give a title or a body."),
])
def test_a_test_notification_that_cannot_be_sent_says_why(client, instance, form, problem):
    csrf = log_in(client)
    form = {"title": "Hello", "body": "there", **form, "csrf_token": csrf}
    refused = client.post(f"/console/instances/{instance['id']}/test", data=form)
    assert refused.status_code == 400
    assert problem in text(refused)
    assert f'value="{form["target"]}"' in text(refused)  # the form keeps what was typed


def test_a_test_notification_to_a_user_is_a_publish_shown_with_its_progress():
    """Embedded: delivered at once, to the outbox, which the instance page shows."""
    app = create_app(config.TestingConfig())
    client = app.test_client()
    iid = client.post("/admin/v1/instances", json={"name": "embedded"}, headers=ADMIN).get_json()["id"]
    redis_client = app.extensions["pushlite.redis"]()
    device_id, _ = devices.register(redis_client, iid, "fcm", "fcm-token-user-0000000001")
    devices.add_user(redis_client, iid, device_id, None, "alice", exclusive=True)
    csrf = log_in(client)
    sent = client.post(f"/console/instances/{iid}/test",
                       data={"kind": "user", "target": "alice", "title": "Hi", "body": "Alice", "csrf_token": csrf})
    assert sent.status_code == 303
    publish_id = sent.headers["Location"].rsplit("/", 1)[1]
    page = text(client.get(sent.headers["Location"]))
    assert "users: alice" in page
    assert re.search(r'id="count-targeted">1<', page)
    assert re.search(r'id="publish-status">done<', page) and 'http-equiv="refresh"' not in page
    instance_page = text(client.get(f"/console/instances/{iid}"))
    assert publish_id in instance_page and "Alice" in instance_page and "Outbox (dry run)" in instance_page
    assert "fcm-token-user-0000000001" not in instance_page  # tokens are cut short
    # The publish is counted as the console's.
    assert 'pushlite_publishes_total{family="console"} 1.0' in text(client.get("/metrics", headers=ADMIN))


def test_console_pages_forbid_framing_and_caching(client):
    log_in(client)
    answer = client.get("/console/")
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_publish_waiting_for_a_worker_reloads_itself_and_links_its_job(redis_server):
    """With Redis and no worker running: queued, the page reloads, its fan-out job is linked in /rq."""
    import redis as redis_py

    redis_py.Redis.from_url(redis_server.url).flushall()
    app = create_app(config.TestingConfig(redis_server.url))
    client = app.test_client()
    iid = client.post("/admin/v1/instances", json={"name": "queued"}, headers=ADMIN).get_json()["id"]
    data = app.extensions["pushlite.redis"]()
    device_id, _ = devices.register(data, iid, "apns", "cd" * 32)
    csrf = log_in(client)
    sent = client.post(f"/console/instances/{iid}/test",
                       data={"kind": "device", "target": device_id, "title": "Hi", "csrf_token": csrf})
    publish_id = sent.headers["Location"].rsplit("/", 1)[1]
    page = text(client.get(sent.headers["Location"]))
    assert re.search(r'id="publish-status">queued<', page)
    assert '<meta http-equiv="refresh" content="2">' in page
    assert f'href="/rq/0/view/job/{publish_id}_fanout_0"' in page
    assert client.get(f"/rq/0/view/job/{publish_id}_fanout_0", headers=ADMIN).status_code == 200
    assert publish_id in text(client.get(f"/console/instances/{iid}"))
