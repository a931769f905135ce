"""The Twilio-style family: device registrations, users, apps and sends to
users, authenticated with HTTP Basic ``<instance id>:<secret key>``."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from . import apps, notifications, registrations, users  # noqa: F401  (routes register on the blueprint)
from .blueprint import blp
from .errors import TwilioErrorSchema, render


def init_app(app: Flask, api: Api) -> None:
    # The family first: documenting the routes asks which family a path is.
    register_family(app, Family("twilio", ("/v1/PushNotifications", "/v1/Users"), render, TwilioErrorSchema), api)
    api.spec.components.security_scheme(
        "TwilioBasic", {"type": "http", "scheme": "basic", "description": "`<instance id>:<secret key>`"})
    api.register_blueprint(blp)
