"""The console's session: log in with the admin token, then a cookie.

The cookie is Flask's signed session cookie, for ``/console`` only,
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
makes the browser send it), ``Secure`` when the page is served over https
(directly, or behind a proxy that says so in ``X-Forwarded-Proto``), and
valid 12 hours. It is signed with a key derived from the admin token, so
changing ``PUSHLITE_ADMIN_TOKEN`` logs everyone out.

Every form carries the session's CSRF token, and every POST without it is
refused (403), the login form's included.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import Flask, Request, abort, request, session
from flask.sessions import NullSession, SecureCookieSession, SecureCookieSessionInterface

PREFIX = "/console"
LIFETIME = timedelta(hours=12)
# What every request outside /console gets for a session: read-only and never
# saved, so one serves them all.
NO_SESSION = NullSession()


class ConsoleSessions(SecureCookieSessionInterface):
    """Sessions under ``/console`` only: every other request (the APIs) gets
    none, and pays nothing for them."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        path = request.path
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return NO_SESSION
        return super().open_session(app, request)

    def make_null_session(self, app: Flask) -> NullSession:
        return NO_SESSION

    def get_cookie_secure(self, app: Flask) -> bool:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return request.is_secure or forwarded == "https"


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Refuse a POST whose form does not carry the session's CSRF token."""
    if request.method != "POST":
        return
    sent, expected = request.form.get("csrf_token", ""), session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, description="The form has expired or did not come from this console: "
                               "reload the page and try again.")


def logged_in() -> bool:
    return bool(session.get("admin"))


def log_in() -> None:
    """A new session (and CSRF token), so that nothing chosen before login carries over."""
    session.clear()
    session["admin"] = True
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True


def log_out() -> None:
    session.clear()


def init_app(app: Flask) -> None:
    token = app.config["PUSHLITE_ADMIN_TOKEN"].encode()
    if not app.secret_key:
        app.secret_key = hmac.new(token, b"pushlite console session", hashlib.sha256).hexdigest()
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME="pushlite_console",
        SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=LIFETIME,
    )
