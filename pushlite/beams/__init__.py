"""The Beams family: the Device API (this issue); publish and customer APIs
join it with delivery."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from . import devices, interests  # noqa: F401  (routes register on the blueprint)
from .blueprint import blp
from .errors import render


def init_app(app: Flask, api: Api) -> None:
    api.register_blueprint(blp)
    register_family(app, Family("beams", ("/device_api/", "/publish_api/", "/customer_api/"), render))
