"""The Twilio-style blueprint and what every one of its requests goes
through: HTTP Basic ``<instance id>:<secret key>`` and, for a POST, a JSON
object body."""
from __future__ import annotations

from flask import g, request

from pushlite import redis_clients
from pushlite.auth import same_secret
from pushlite.parsing import Blueprint
from pushlite.storage import instances
from pushlite.storage.errors import InstanceNotFound
from pushlite.view_rules import View

from .errors import CODES_DOC, TwilioError, authenticate, install_handlers, invalid

blp = Blueprint(
    "twilio",
    __name__,
    url_prefix="/v1",
    description="Twilio-style Push Notifications: device registrations for users and apps, sends to users. "
                "HTTP Basic `<instance id>:<secret key>`. " + CODES_DOC,
)

install_handlers(blp)


@blp.before_request
def check_basic_auth() -> None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None or not instances.is_instance_id(auth.username):
        raise authenticate()
    try:
        secret = instances.secret_key(redis_clients.client(), auth.username)
    except InstanceNotFound:
        raise authenticate() from None
    if not same_secret(auth.password or "", secret):
        raise authenticate()
    if request.method == "POST":
        if request.mimetype != "application/json":
            raise TwilioError(20415, 415, "Content-Type must be application/json.")
        if not isinstance(request.get_json(silent=True), dict):
            raise invalid("The body must be a JSON object.")
    g.twilio_instance_id = auth.username


def instance_id() -> str:
    """The instance the request authenticated as."""
    return g.twilio_instance_id


def document_basic_auth(view: View) -> View:
    """Document the operation's HTTP Basic authentication (``check_basic_auth`` checks every request)."""
    return blp.doc(security=[{"TwilioBasic": []}])(view)
