"""The Matrix pushers family: ``/_matrix/client/v3/pushers`` and ``.../set``,
authenticated with a user JWT as the access token. Every path under
``/_matrix/`` answers errors in the Matrix shape."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from .errors import MatrixErrorSchema, render
from .views import blp


def init_app(app: Flask, api: Api) -> None:
    register_family(app, Family("matrix", ("/_matrix/",), render, MatrixErrorSchema), api)
    api.register_blueprint(blp)
