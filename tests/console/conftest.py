"""Console helpers: log in through the login form, and read a page's CSRF token."""
from __future__ import annotations

import re

ADMIN_TOKEN = "test-admin-token"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client) -> str:
    """Log the test client in; returns the session's CSRF token."""
    csrf = csrf_of(client.get("/console/login").get_data(as_text=True))
    answer = client.post("/console/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return csrf_of(client.get("/console/").get_data(as_text=True))
