"""The operator's admin API (`/admin/v1`) and its CLI twin (`flask instances ...`,
`flask credentials ...`, `flask publishes requeue`)."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from . import apps, cli, credentials, views  # noqa: F401  (apps and credentials routes register on views.blp)


def init_app(app: Flask, api: Api) -> None:
    api.register_blueprint(views.blp)
    app.cli.add_command(cli.instances)
    app.cli.add_command(cli.credentials)
    app.cli.add_command(cli.publishes)
