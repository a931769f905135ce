"""The MPush blueprint and what every one of its requests goes through: the
``X-MPush-Token`` (which names the instance: the paths carry no instance id),
``X-MPush-Version: 2`` and a JSON object body."""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g, request

from pushlite import redis_clients
from pushlite.parsing import Blueprint
from pushlite.storage import instances
from pushlite.view_rules import View, current_view

from .errors import (
    BAD_CREDENTIALS,
    BAD_REQUEST,
    BAD_VERSION,
    CODES_DOC,
    SECRET_KEY_REQUIRED,
    MPushError,
    install_handlers,
)

blp = Blueprint(
    "mpush",
    __name__,
    url_prefix="/api",
    description="MPush topics: apps register device tokens and topics with the client token; app servers "
                "send to topics with the secret key. Every call carries `X-MPush-Token` and "
                "`X-MPush-Version: 2`. " + CODES_DOC,
)

install_handlers(blp)

VERSION = "2"
# Set on views that need the secret key; the others also accept the client token.
SECRET_ONLY = "mpush_secret_only"


def requires_token(*, secret: bool = False) -> Callable[[View], View]:
    """An MPush operation: it takes the client token or the secret key as
    ``X-MPush-Token`` (only the secret key when ``secret``), and the version
    header; documented so."""
    document = blp.doc(
        security=[{"MPushSecretKey" if secret else "MPushToken": []}],
        parameters=[{"in": "header", "name": "X-MPush-Version", "required": True,
                     "schema": {"type": "string", "enum": [VERSION]}}],
    )

    def decorate(view: View) -> View:
        view = document(view)
        setattr(view, SECRET_ONLY, secret)
        return view
    return decorate


@blp.before_request
def authenticate() -> None:
    token = request.headers.get("X-MPush-Token", "").strip()
    if not token:
        raise MPushError(BAD_CREDENTIALS, "Missing X-MPush-Token header.")
    found = instances.find_by_token(redis_clients.client(), token)
    if found is None:
        raise MPushError(BAD_CREDENTIALS, "Invalid X-MPush-Token.")
    instance, kind = found
    version = request.headers.get("X-MPush-Version")
    if version is None:
        raise MPushError(BAD_VERSION, f"Missing X-MPush-Version header; this server speaks version {VERSION}.")
    if version.strip() != VERSION:
        raise MPushError(BAD_VERSION,
                         f"Unsupported X-MPush-Version {version.strip()!r}; this server speaks version {VERSION}.")
    if kind != "secret" and getattr(current_view(current_app, request), SECRET_ONLY, False):
        raise MPushError(SECRET_KEY_REQUIRED,
                         "Sending needs the secret key as X-MPush-Token; the client token only registers devices.")
    if request.mimetype != "application/json":
        raise MPushError(4150, "Content-Type must be application/json.")
    if not isinstance(request.get_json(silent=True), dict):
        raise MPushError(BAD_REQUEST, "The body must be a JSON object.")
    g.mpush_instance_id = instance.id


def instance_id() -> str:
    """The instance the request's X-MPush-Token named."""
    return g.mpush_instance_id

