"""Apps: the app a registration names (its ``related`` link), whether it is
the default, and whether it has credentials of its own."""
from __future__ import annotations

from flask.views import MethodView

from pushlite import redis_clients
from pushlite.apidoc import document_errors
from pushlite.storage import apps

from .blueprint import blp, document_basic_auth, instance_id
from .errors import not_found
from .schemas import TwilioAppSchema


@blp.route("/PushNotifications/Apps/<app_name>")
class App(MethodView):
    @document_basic_auth
    @blp.response(200, TwilioAppSchema)
    @document_errors(401, 404, 503)
    def get(self, app_name: str) -> dict:
        """Get an app: whether it is the default (sends naming no app reach it), and its own credentials."""
        app = apps.get(redis_clients.client(), instance_id(), app_name)
        if app is None:
            raise not_found()
        return {"id": app.name, "name": app.name, "default": app.default, "credentials": app.credentials,
                "uri": f"/PushNotifications/Apps/{app.name}"}
