"""Cross-origin access for a family's paths, so that browser clients on
another origin can call them (an Element-style web client calling the Matrix
pushers API, the Beams Web SDK calling the Device and Reporting APIs).

A family opts in from its ``init_app`` with the headers its API document asks
for. Every response under its path prefixes then carries them (errors
included), and a browser's preflight (``OPTIONS``) is answered at once, before
authentication or any logic of the endpoint, as CORS requires: a preflight
carries no credentials.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask, Response, request


@dataclass(frozen=True)
class CorsPolicy:
    prefixes: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # on every response
    preflight_headers: tuple[tuple[str, str], ...]  # on preflight answers, besides


def allow(app: Flask, prefixes: tuple[str, ...], *, origin: str, methods: str, headers: str,
          max_age: int | None = None, preflight_only: bool = False) -> None:
    """Send these CORS headers on every response under ``prefixes``; with
    ``max_age``, browsers may cache a preflight's answer that many seconds.
    With ``preflight_only``, the methods, headers and max-age go on preflight
    answers only, where browsers read them (a hot path's answers then carry
    the one header they need, the allowed origin)."""
    policies: list[CorsPolicy] = app.extensions.setdefault("pushlite.cors", [])
    if not policies:
        _install(app, policies)
    for_preflights = (
        ("Access-Control-Allow-Methods", methods),
        ("Access-Control-Allow-Headers", headers),
        *((("Access-Control-Max-Age", str(max_age)),) if max_age is not None else ()),
    )
    origin_header = (("Access-Control-Allow-Origin", origin),)
    if preflight_only:
        policies.append(CorsPolicy(prefixes, origin_header, for_preflights))
    else:
        policies.append(CorsPolicy(prefixes, origin_header + for_preflights, ()))


def _policy(policies: Sequence[CorsPolicy], path: str) -> CorsPolicy | None:
    for policy in policies:
        if path.startswith(policy.prefixes):
            return policy
    return None


def _install(app: Flask, policies: list[CorsPolicy]) -> None:
    """The app's two hooks, over its list of policies (every response goes
    through them: they hold the list rather than look it up)."""

    def answer_preflight() -> Response | None:
        """A preflight under a CORS prefix: 204 with the headers (``add_headers``
        adds them), whatever the path, without running the endpoint."""
        req = request._get_current_object()  # type: ignore[attr-defined]
        if req.method == "OPTIONS" and _policy(policies, req.path) is not None:
            return Response(status=204)
        return None

    def add_headers(response: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]
        policy = _policy(policies, req.path)
        if policy is not None:
            for name, value in policy.headers:
                response.headers[name] = value
            if req.method == "OPTIONS":
                for name, value in policy.preflight_headers:
                    response.headers[name] = value
        return response

    app.before_request(answer_preflight)
    app.after_request(add_headers)
