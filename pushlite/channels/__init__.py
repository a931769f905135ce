"""The channels family: per-device channel subscriptions (``/v1/devices/
<pushtoken>/channels``, ``/v1/channels``) for the caller named by a user JWT.
The device is a phone's push token or a Matrix pusher's pushkey. An enabled
channel is an interest of the device, so a Beams publish to interest ``X``
reaches every device with channel ``X`` enabled.

Its seed documents no error body; errors are ``{"code": <HTTP status>,
"message": <text>}``, the Discord-style shape.
"""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from pushlite.errors import Family, register_family

from .views import ChannelsErrorSchema, PushTokenConverter, blp, render


def init_app(app: Flask, api: Api) -> None:
    app.url_map.converters["pushtoken"] = PushTokenConverter
    register_family(app, Family("channels", ("/v1/devices/", "/v1/channels"), render, ChannelsErrorSchema), api)
    api.register_blueprint(blp)
