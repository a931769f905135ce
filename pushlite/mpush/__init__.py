"""The MPush family: device tokens and topics (client token), sends to topics
(secret key), all named by the ``X-MPush-Token`` header."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from . import devices, send  # noqa: F401  (routes register on the blueprint)
from .blueprint import blp
from .errors import MPushErrorSchema, render


def init_app(app: Flask, api: Api) -> None:
    # The family first: documenting the routes asks which family a path is.
    register_family(app, Family("mpush", ("/api/",), render, MPushErrorSchema), api)
    header = {"type": "apiKey", "in": "header", "name": "X-MPush-Token"}
    api.spec.components.security_scheme(
        "MPushToken", {**header, "description": "The instance's client token (or its secret key)."})
    api.spec.components.security_scheme("MPushSecretKey", {**header, "description": "The instance's secret key."})
    api.register_blueprint(blp)
