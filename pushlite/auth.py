"""Caller authentication shared by the families: the admin bearer token and
user JWTs (HS256, signed with the instance's secret key, DESIGN.md)."""
from __future__ import annotations

import hmac
from typing import Any

import jwt

USER_ID_MAX_LENGTH = 164


class AuthError(Exception):
    """Why a credential was refused: an HTTP status and a client-safe message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        raise AuthError(401, "Authorization header token is missing.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError(401, "Authorization header token is malformed.")
    return token


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def is_admin(request: Any, admin_token: str) -> bool:
    """Whether a request carries the admin token: as a bearer token, or as
    the HTTP Basic password (any user name), which is what a browser or a
    Prometheus ``basic_auth`` sends."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return same_secret(header[7:].strip(), admin_token)
    if request.authorization and request.authorization.password:
        return same_secret(request.authorization.password, admin_token)
    return False


def issuers(instance_id: str) -> tuple[str, str]:
    """The two `iss` values that name an instance: the Beams SDKs' and pushlite's."""
    return f"https://{instance_id}.pushnotifications.pusher.com", f"pushlite:{instance_id}"


def verify_user_token(token: str, instance_id: str, secret_key: str) -> str:
    """Check a user JWT for the instance and return its user id (`sub`).

    The signature is checked before any claim is trusted; then the claims in
    the order the Beams errors list them.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise AuthError(401, "Authorization header token is malformed.") from None
    if header.get("alg") != "HS256":
        raise AuthError(401, "Invalid JWT: only HS256 tokens signed with the instance secret are accepted.")
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iss": False, "verify_aud": False, "verify_iat": False,
                     "verify_nbf": False},
        )
    except jwt.InvalidSignatureError:
        raise AuthError(401, "Invalid JWT signature.") from None
    except jwt.InvalidTokenError:
        raise AuthError(401, "Authorization header token is malformed.") from None
    if "exp" not in claims:
        raise AuthError(400, "Missing expiration (exp) field in JWT")
    if "sub" not in claims:
        raise AuthError(400, "Missing subject (sub) field in JWT")
    sub = claims["sub"]
    if not isinstance(sub, str) or not 1 <= len(sub) <= USER_ID_MAX_LENGTH:
        raise AuthError(400, "JWT subject (sub) must be between 1-164 characters long")
    if any(ord(c) < 0x20 for c in sub):
        raise AuthError(400, "JWT subject (sub) must not contain control characters")
    if "iss" not in claims:
        raise AuthError(400, "Missing issuer (iss) field in JWT")
    if claims["iss"] not in issuers(instance_id):
        raise AuthError(403, "Invalid JWT issuer.")
    try:
        jwt.decode(token, secret_key, algorithms=["HS256"],
                   options={"verify_iss": False, "verify_aud": False, "require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "JWT has expired.") from None
    except jwt.InvalidTokenError:
        raise AuthError(401, "JWT has an invalid expiration (exp) or not-before (nbf) claim.") from None
    return sub
