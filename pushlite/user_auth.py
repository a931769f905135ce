"""The caller of the user-authenticated families (Discord-style devices, Matrix
pushers, channels): ``Authorization: Bearer <user JWT>`` on paths that carry no
instance id.

The JWT's ``iss`` names the instance. It is read unverified only to find which
instance's secret key to verify the token with; ``verify_user_token`` then
checks the signature before trusting any claim, so a token can only reach the
instance whose key signed it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import jwt

from pushlite.auth import AuthError, bearer, verify_user_token
from pushlite.storage import instances
from pushlite.storage.cluster import DataClient
from pushlite.storage.errors import InstanceNotFound

ISSUER = re.compile(
    r"https://(?P<beams>[0-9a-f-]{36})\.pushnotifications\.pusher\.com|pushlite:(?P<pushlite>[0-9a-f-]{36})"
)


@dataclass(frozen=True)
class Caller:
    instance_id: str
    user_id: str
    secret_key: str = field(repr=False)


def instance_of(token: str) -> str:
    """The instance id the token's (unverified) ``iss`` names."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise AuthError(401, "Authorization header token is malformed.") from None
    issuer = claims.get("iss")
    if issuer is None:
        raise AuthError(401, "Missing issuer (iss) field in JWT")
    match = ISSUER.fullmatch(issuer) if isinstance(issuer, str) else None
    instance_id = match and (match["beams"] or match["pushlite"])
    if not instance_id or not instances.is_instance_id(instance_id):
        raise AuthError(401, "Invalid JWT issuer.")
    return instance_id


def authenticate(client: DataClient, header: str | None) -> Caller:
    """The caller named by a user JWT, or AuthError. Every refusal is a 401
    here: these families have no instance in the path to be "forbidden" from."""
    token = bearer(header)
    instance_id = instance_of(token)
    try:
        secret = instances.secret_key(client, instance_id)
    except InstanceNotFound:
        raise AuthError(401, "Invalid JWT issuer: no such instance.") from None
    try:
        user_id = verify_user_token(token, instance_id, secret)
    except AuthError as exc:
        raise AuthError(401, exc.message) from None
    return Caller(instance_id, user_id, secret)
