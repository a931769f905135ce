"""The app's Fernet, made from ``PUSHLITE_ENCRYPTION_KEY``: it encrypts the
provider credentials and VAPID key pairs at rest (``storage/credentials.py``,
``storage/vapid.py``)."""
from __future__ import annotations

from cryptography.fernet import Fernet
from flask import Flask, current_app


def init_app(app: Flask) -> None:
    app.extensions["pushlite.fernet"] = Fernet(app.config["PUSHLITE_ENCRYPTION_KEY"])


def fernet() -> Fernet:
    return current_app.extensions["pushlite.fernet"]
