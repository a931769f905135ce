"""The operator's admin API (`/admin/v1`) and its CLI twin (`flask instances ...`)."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from . import cli, views


def init_app(app: Flask, api: Api) -> None:
    api.register_blueprint(views.blp)
    app.cli.add_command(cli.instances)
