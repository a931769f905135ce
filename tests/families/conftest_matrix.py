"""Helpers for the tests of the user-authenticated families (Discord-style
devices, Matrix pushers, channels): user JWTs and their Authorization headers.
(Imported by those test modules; not a pytest conftest.)"""
from __future__ import annotations

import time
from typing import Any

import jwt


def user_jwt(
    instance: dict[str, Any],
    user: str = "alice",
    *,
    issuer: str | None = None,
    expires_in: int = 600,
    secret: str | None = None,
    **claims: Any,
) -> str:
    body = {"sub": user, "iss": issuer or f"pushlite:{instance['id']}", "exp": int(time.time()) + expires_in}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret or instance["secret_key"],
                      algorithm="HS256")


def auth(instance: dict[str, Any], user: str = "alice", **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_jwt(instance, user, **kwargs)}"}


def fcm_token(n: int = 0) -> str:
    return f"fcm-token-{n:020d}"


def apns_token(n: int = 0) -> str:
    return f"{n:064x}"
