"""The console's pages. ``public``: the login page and the static files;
``blp``: everything else, for a logged-in operator."""
from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisClusterException
from werkzeug.exceptions import HTTPException, InternalServerError

from pushlite import encryption, payloads, publishing, redis_clients
from pushlite.auth import same_secret
from pushlite.errors import note_unavailable
from pushlite.storage import census, devices, instances, interests, outbox, publishes, records, stats, vapid
from pushlite.storage.errors import DeviceNotFound, InstanceNotFound, is_unavailable
from pushlite.storage.publishes import PublishNotFound

from .data import chart, credentials_of, instance_rows, jobs, targets, title_and_body, when
from .session import PREFIX, check_csrf, csrf_token, log_in, log_out, logged_in

log = logging.getLogger(__name__)

public = Blueprint("console_public", __name__, url_prefix=PREFIX, template_folder="templates",
                   static_folder="static")
blp = Blueprint("console", __name__, url_prefix=PREFIX)

# The test form's target kinds, and the publish kind each makes.
TEST_KINDS = {"device": "devices", "user": "users", "interest": "interests"}
HEADERS = {
    # Scripts and styles from this console only; no framing; no form posting elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    # Pages may show a secret key once: never keep them in a cache.
    "Cache-Control": "no-store",
}


def _headers(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return render_template("console/error.html", code=exc.code, title=exc.name,
                           message=exc.description), exc.code or 500


def _redis_error(exc: Exception) -> ResponseReturnValue:
    if not is_unavailable(exc):
        return _unexpected(exc)
    note_unavailable(exc)
    return render_template("console/error.html", code=503, title="Redis unavailable",
                           message="The data store is unavailable; try again shortly."), 503


def _unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("console: unhandled error on %s", request.url_rule.rule if request.url_rule else "?")
    return _http_error(InternalServerError())


def _not_found(message: str) -> ResponseReturnValue:
    return render_template("console/error.html", code=404, title="Not Found", message=message), 404


for _blueprint in (public, blp):
    _blueprint.before_request(check_csrf)
    _blueprint.after_request(_headers)
    _blueprint.register_error_handler(HTTPException, _http_error)
    _blueprint.register_error_handler(redis.RedisError, _redis_error)
    _blueprint.register_error_handler(RedisClusterException, _redis_error)
    _blueprint.register_error_handler(Exception, _unexpected)
    _blueprint.register_error_handler(
        InstanceNotFound, lambda _: _not_found("There is no such instance (it may have been deleted)."))
    _blueprint.register_error_handler(
        PublishNotFound, lambda _: _not_found("There is no such publish (they are kept for 7 days)."))
    _blueprint.context_processor(lambda: {"csrf_token": csrf_token, "when": when,
                                          "targets": targets, "title_and_body": title_and_body})


@blp.before_request
def require_login():
    if logged_in():
        return None
    if request.method == "GET":
        return redirect(url_for("console_public.login", next=request.full_path.rstrip("?")))
    abort(401, description="Log in first.")


# --- login -------------------------------------------------------------------


def _next_page(value: str) -> str:
    """Where to go after login: a console page, never another site."""
    if value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for("console.instances_page")


@public.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        if same_secret(request.form.get("token", ""), current_app.config["PUSHLITE_ADMIN_TOKEN"]):
            log_in()
            return redirect(_next_page(request.form.get("next", "")), 303)
        log.warning("console: login refused (not the admin token)")
        return render_template("console/login.html", error="That is not the admin token.",
                               next=request.form.get("next", "")), 401
    return render_template("console/login.html", next=request.args.get("next", ""))


@public.post("/logout")
def logout():
    log_out()
    return redirect(url_for("console_public.login"), 303)


# --- instances ---------------------------------------------------------------


@blp.get("/")
def instances_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    return render_template("console/instances.html", instances=instance_rows(redis_clients.client()),
                           error=error), status


@blp.post("/instances")
def create_instance():
    name = request.form.get("name", "").strip()
    if not 1 <= len(name) <= 200:
        return instances_page(error="A name is 1-200 characters.", status=400)
    client = redis_clients.client()
    instance = instances.create(client, name)
    vapid.ensure(client, encryption.fernet(), instance.id)
    return render_template("console/secret.html", instance=instance, created=True), 201


def _instance(instance_id: str) -> instances.Instance:
    if not instances.is_instance_id(instance_id):
        raise InstanceNotFound(instance_id)
    return instances.get(redis_clients.client(), instance_id)


@blp.get("/instances/<instance_id>")
def instance_page(instance_id: str, form: dict[str, str] | None = None, error: str | None = None,
                  status: int = 200) -> ResponseReturnValue:
    instance = _instance(instance_id)
    client = redis_clients.client()
    dry_run = current_app.config["PUSHLITE_DRY_RUN"]
    minutes = stats.per_minute(client, instance_id)
    return render_template(
        "console/instance.html", instance=instance, census=census.get(client, instance_id),
        credentials=credentials_of(client, encryption.fernet(), instance_id),
        chart=chart(minutes), minutes=minutes,
        publishes=publishes.recent(client, instance_id, 20),
        outbox=outbox.latest(client, instance_id)[:20] if dry_run else None,
        form=form or {"kind": "device"}, error=error, outcomes=stats.OUTCOMES,
    ), status


@blp.route("/instances/<instance_id>/delete", methods=["GET", "POST"])
def delete_instance(instance_id: str) -> ResponseReturnValue:
    instance = _instance(instance_id)
    if request.method == "GET":
        return render_template("console/delete.html", instance=instance)
    if request.form.get("name", "") != instance.name:
        return render_template("console/delete.html", instance=instance,
                               error="Type the instance's name exactly to delete it."), 400
    instances.delete(redis_clients.client(), instance_id)
    log.warning("console: instance %s deleted", instance_id)
    return redirect(url_for(".instances_page"), 303)


@blp.post("/instances/<instance_id>/secret_key")
def rotate_secret(instance_id: str) -> ResponseReturnValue:
    _instance(instance_id)
    instance = instances.rotate_secret(redis_clients.client(), instance_id)
    return render_template("console/secret.html", instance=instance, created=False)


# --- test notifications and publishes ------------------------------------------


@blp.post("/instances/<instance_id>/test")
def send_test(instance_id: str) -> ResponseReturnValue:
    _instance(instance_id)
    form = {name: request.form.get(name, "").strip() for name in ("kind", "target", "title", "body")}
    problem = _test_problem(instance_id, form)
    if problem is None:
        try:
            publish_id = publishing.publish(instance_id, TEST_KINDS[form["kind"]], [form["target"]],
                                            payloads.from_message(form["title"] or None, form["body"] or None))
        except payloads.PayloadError as exc:
            problem = str(exc)
    if problem is not None:
        return instance_page(instance_id, form, problem, 400)
    return redirect(url_for(".publish_page", instance_id=instance_id, publish_id=publish_id), 303)


def _test_problem(instance_id: str, form: dict[str, str]) -> str | None:
    """Why the test form cannot be sent, or None."""
    kind, target, client = form["kind"], form["target"], redis_clients.client()
    if not (form["title"] or form["body"]):
        return "Give a title or a body."
    if kind == "device":
        if not records.is_device_id(target):
            return "A device id is 12 hex digits (as the device APIs answer it)."
        try:
            devices.get(client, instance_id, target)
        except DeviceNotFound:
            return "The instance has no device with this id."
    elif kind == "user":
        if not 1 <= len(target) <= 164 or any(ord(c) < 0x20 for c in target):
            return "A user id is 1-164 characters."
        if not devices.user_device_ids(client, instance_id, target):
            return "This user has no devices."
    elif kind == "interest":
        if not interests.is_interest_name(target):
            return "An interest name is 1-164 characters of A-Z a-z 0-9 _ - = @ , . ;"
        if not interests.sizes(client, instance_id, [target])[0]:
            return "No device is subscribed to this interest."
    else:
        return "Choose a device, a user or an interest."
    return None


@blp.get("/instances/<instance_id>/publishes/<publish_id>")
def publish_page(instance_id: str, publish_id: str) -> ResponseReturnValue:
    instance = _instance(instance_id)
    client = redis_clients.client()
    record = publishes.get(client, instance_id, publish_id)
    return render_template(
        "console/publish.html", instance=instance, publish_id=publish_id, record=record,
        jobs=jobs(client, publishing.fanout_queue().connection, instance_id, publish_id, record),
    )
