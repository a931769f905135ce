"""The Beams family: the Device API (mobile and web SDKs), the Reporting API
(what the SDKs report back), the Publish and Customer APIs (server SDKs).

The Device and Reporting APIs are called by the Web SDK from a page on
another origin: their responses carry CORS headers and a browser's preflight
is answered without authentication."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite import cors
from pushlite.errors import Family, register_family

from . import devices, interests  # noqa: F401  (routes register on the blueprint)
from .blueprint import blp, instance_blp
from .errors import BeamsErrorSchema, render
from .publish_api import customer_blp, publish_blp
from .reporting import reporting_blp

BROWSER_PREFIXES = ("/device_api/", "/reporting_api/")


def init_app(app: Flask, api: Api) -> None:
    # The family first: documenting the routes asks which family a path is.
    register_family(app, Family(
        "beams", ("/device_api/", "/reporting_api/", "/publish_api/", "/customer_api/"), render, BeamsErrorSchema,
    ), api)
    # The headers the SDKs send; never the publish and customer APIs: a secret key has no place in a browser.
    cors.allow(app, BROWSER_PREFIXES, origin="*", methods="GET, POST, PUT, DELETE, OPTIONS",
               headers="Content-Type, Authorization, X-Pusher-Library", max_age=86400, preflight_only=True)
    for blueprint in (blp, instance_blp, reporting_blp, publish_blp, customer_blp):
        api.register_blueprint(blueprint)
