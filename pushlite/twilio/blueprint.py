"""The Twilio-style blueprint and what every one of its requests goes
through: HTTP Basic ``<instance id>:<secret key>`` and, for a POST, a JSON
object body."""
from __future__ import annotations

from flask import g, request
from pushlite.parsing import Blueprint

from pushlite import redis_clients
from pushlite.auth import same_secret
from pushlite.storage import instances
from pushlite.storage.errors import InstanceNotFound

from . import errors
from .errors import TwilioError

blp = Blueprint(
    "twilio",
    __name__,
    url_prefix="/v1",
    description="Twilio-style Push Notifications: device registrations for users and apps, sends to users. "
                "HTTP Basic `<instance id>:<secret key>`. " + errors.CODES_DOC,
)

errors.install_handlers(blp)


@blp.before_request
def authenticate() -> None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not instances.is_instance_id(auth.username or ""):
        raise errors.authenticate()
    try:
        secret = instances.secret_key(redis_clients.client(), auth.username)
    except InstanceNotFound:
        raise errors.authenticate() from None
    if not same_secret(auth.password or "", secret):
        raise errors.authenticate()
    if request.method == "POST":
        if request.mimetype != "application/json":
            raise TwilioError(20415, 415, "Content-Type must be application/json.")
        if not isinstance(request.get_json(silent=True), dict):
            raise errors.invalid("The body must be a JSON object.")
    g.twilio_instance_id = auth.username


def instance_id() -> str:
    """The instance the request authenticated as."""
    return g.twilio_instance_id


def documented(view):
    return blp.doc(security=[{"TwilioBasic": []}])(view)
