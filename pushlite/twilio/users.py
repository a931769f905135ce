"""Users: a user (any user with a device, through any API), their
registrations page by page, and deleting a user."""
from __future__ import annotations

import base64
import binascii

from flask import url_for
from flask.views import MethodView

from pushlite import redis_clients
from pushlite.apidoc import document_errors
from pushlite.storage import twilio

from .blueprint import blp, document_basic_auth, instance_id
from .errors import invalid, not_found
from .registrations import shown
from .schemas import TwilioPageQuerySchema, TwilioRegistrationPageSchema, TwilioUserSchema


def registrations_of(user_id: str) -> list:
    found = twilio.of_user(redis_clients.client(), instance_id(), user_id)
    if found is None:
        raise not_found()
    return found


def page_token(created_at: int, registration_id: str) -> str:
    """Where a page ends: the last registration's place in the (created_at, id) order."""
    return base64.urlsafe_b64encode(f"{created_at}:{registration_id}".encode()).decode().rstrip("=")


def after(token: str) -> tuple[int, str]:
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created_at, _, registration_id = decoded.partition(":")
        return int(created_at), registration_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid('Invalid parameter "PageToken": not a page token of this list.') from None


@blp.route("/Users/<user_id>")
class User(MethodView):
    @document_basic_auth
    @blp.response(200, TwilioUserSchema)
    @document_errors(401, 404, 503)
    def get(self, user_id: str) -> dict:
        """Get a user (any user with a device, through any API) and their device registrations."""
        return {"id": user_id, "deviceRegistrations": [shown(r, d) for r, d in registrations_of(user_id)]}

    @document_basic_auth
    @blp.response(204)
    @document_errors(401, 404, 503)
    def delete(self, user_id: str) -> None:
        """Delete a user: detached from every device (a device nothing else holds is deleted), registrations gone."""
        if not twilio.delete_user(redis_clients.client(), instance_id(), user_id):
            raise not_found()


@blp.route("/Users/<user_id>/DeviceRegistrations")
class UserRegistrations(MethodView):
    @document_basic_auth
    @blp.arguments(TwilioPageQuerySchema, location="query", error_status_code=400)
    @blp.response(200, TwilioRegistrationPageSchema)
    @document_errors(400, 401, 404, 503)
    def get(self, query: dict, user_id: str) -> dict:
        """List a user's device registrations, oldest first, a page at a time (PageSize, PageToken)."""
        found = registrations_of(user_id)
        if "PageToken" in query:
            start = after(query["PageToken"])
            found = [(r, d) for r, d in found if (r.created_at, r.id) > start]
        size = query["PageSize"]
        page, rest = found[:size], found[size:]
        next_url = None
        if rest:
            last = page[-1][0]
            next_url = url_for(".UserRegistrations", user_id=user_id, PageSize=size,
                               PageToken=page_token(last.created_at, last.id), _external=True)
        return {"device_registrations": [shown(r, d) for r, d in page],
                "meta": {"page_size": size, "next_page_url": next_url}}
