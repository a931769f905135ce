"""The Beams family: the Device API (mobile SDKs), the Publish and Customer
APIs (server SDKs)."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from . import devices, interests  # noqa: F401  (routes register on the blueprint)
from .blueprint import blp
from .errors import BeamsErrorSchema, render
from .publish_api import customer_blp, publish_blp


def init_app(app: Flask, api: Api) -> None:
    # The family first: documenting the routes asks which family a path is.
    register_family(
        app, Family("beams", ("/device_api/", "/publish_api/", "/customer_api/"), render, BeamsErrorSchema), api
    )
    for blueprint in (blp, publish_blp, customer_blp):
        api.register_blueprint(blueprint)
