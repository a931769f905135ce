"""The application factory."""
from __future__ import annotations

from collections.abc import Callable
from types import FunctionType, MethodType
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, send_from_directory
from flask_smorest import Api

from config import Config
from pushlite import (
    access,
    admin,
    apidoc,
    beams,
    channels,
    console,
    dashboard,
    discord,
    encryption,
    errors,
    health,
    matrix,
    mpush,
    parsing,
    publishing,
    redis_clients,
    twilio,
)
from pushlite.metrics import web as web_metrics


class App(Flask):
    """Flask, asking once per function rather than on every request whether
    a hook or view is a coroutine function (Flask asks ``ensure_sync`` for
    each of a request's hooks and its view: about 10 per request)."""

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._sync_functions: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # A method is asked about through its function (a MethodView's
        # ``post`` is bound to a new view object on every request).
        key = func.__func__ if isinstance(func, MethodType) else func
        if key in self._sync_functions:
            return func
        wrapped = super().ensure_sync(func)
        if wrapped is func and isinstance(key, FunctionType):
            self._sync_functions.add(key)
        return wrapped


def create_app(config: object | None = None) -> Flask:
    """Build the app from a config object (default: `Config()` from the environment)."""
    config = config if config is not None else Config()
    if hasattr(config, "validate"):
        config.validate()
    app = App(__name__)
    app.json = parsing.JSONProvider(app)
    app.config.from_object(config)
    # "/instances//devices" must reach the Beams "missing param" errors, not a redirect.
    app.url_map.merge_slashes = False

    access.init_app(app)
    redis_clients.init_app(app)
    encryption.init_app(app)
    publishing.init_app(app)
    web_metrics.init_app(app)
    errors.init_app(app)
    api = Api(app, spec_kwargs={"info": {"description": "pushlite: a self-hosted push notification service."},
                                "extra_plugins": [apidoc.ViewDocsPlugin(app)]})
    api.spec.components.security_scheme("AdminToken", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("BeamsUserJWT", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("SecretKey", {"type": "http", "scheme": "bearer"})
    # flask-smorest registers its own HTTPException handler; pushlite's family-aware one wins.
    errors.init_app(app)

    admin.init_app(app, api)
    beams.init_app(app, api)
    for user_family in (discord, matrix, channels):
        user_family.init_app(app, api)
    mpush.init_app(app, api)
    twilio.init_app(app, api)
    app.register_blueprint(health.blp)
    dashboard.init_app(app)
    console.init_app(app)

    @app.get("/docs/assets/<path:filename>")
    def swagger_assets(filename: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    return app
