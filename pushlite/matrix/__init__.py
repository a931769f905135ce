"""The Matrix pushers family: ``/_matrix/client/v3/pushers`` and ``.../set``
(and their ``r0`` paths), authenticated with a user JWT as the access token.
Every path under ``/_matrix/`` answers errors in the Matrix shape and carries
the CORS headers the client-server API asks for, so web clients can call it."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite import cors
from pushlite.errors import Family, register_family

from .errors import MatrixErrorSchema, render
from .views import blp

PREFIXES = ("/_matrix/",)


def init_app(app: Flask, api: Api) -> None:
    register_family(app, Family("matrix", PREFIXES, render, MatrixErrorSchema), api)
    # The client-server API's "Web Browser Clients" headers, on every response.
    cors.allow(app, PREFIXES, origin="*", methods="GET, POST, PUT, DELETE, OPTIONS",
               headers="X-Requested-With, Content-Type, Authorization")
    api.register_blueprint(blp)
