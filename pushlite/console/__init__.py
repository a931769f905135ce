"""The web console at ``/console``: what an operator opens first.

Server-rendered pages (Flask templates, no front-end build): instances and
their credentials, one instance's devices, publishes and notifications per
minute, one publish's progress, and a form that sends a test notification.
Everything works without JavaScript but the chart (uPlot, vendored under
``static/``). Pages are usable on a phone-sized screen.

Log in with the admin token (``session.py``); every POST carries a CSRF token.
"""
from __future__ import annotations

from flask import Flask

from pushlite.errors import Family, register_family, render_default

from . import session, views


def init_app(app: Flask) -> None:
    session.init_app(app)
    # Its requests are counted as the "console" family in /metrics; an error
    # outside its pages (an unknown path under /console) answers JSON.
    register_family(app, Family("console", (session.PREFIX,), render_default))
    app.register_blueprint(views.public)
    app.register_blueprint(views.blp)
