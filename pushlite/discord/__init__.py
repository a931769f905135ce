"""The Discord-style device family: ``/users/@me/devices`` (register,
unregister, sync token, sync), authenticated with a user JWT."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from .errors import DiscordErrorSchema, render
from .views import blp


def init_app(app: Flask, api: Api) -> None:
    # The family first: documenting the routes asks which family a path is.
    register_family(app, Family("discord", ("/users/@me/",), render, DiscordErrorSchema), api)
    api.register_blueprint(blp)
