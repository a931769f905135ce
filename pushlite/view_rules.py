"""Rules a family's ``before_request`` applies to some of its views, set on
the view itself by a decorator (``beams.blueprint.json_body``,
``mpush.blueprint.requires_token(secret=True)``): renaming a view keeps its
rules, and a reader finds them where the view is."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Request

View = TypeVar("View", bound=Callable[..., Any])
"""A view function, as the rule decorators take and return it."""


_VIEWS = "pushlite.views"  # app.extensions: (endpoint, method) -> what current_view answers


def current_view(app: Flask, request: Request) -> Any:
    """The function that answers ``request``: the method of a MethodView
    (``post``, ``put``...), or a plain view function. None for a request no
    route matched.

    Looked up once per endpoint and method (a request that reaches a view
    was routed, so its method is one the endpoint takes): Flask takes no
    new routes once it serves requests."""
    endpoint = request.endpoint
    if endpoint is None:
        return None
    views = app.extensions.get(_VIEWS)
    if views is None:
        views = app.extensions[_VIEWS] = {}
    key = (endpoint, request.method)
    if key not in views:
        view = app.view_functions.get(endpoint)
        view_class = getattr(view, "view_class", None)
        views[key] = view if view_class is None else getattr(view_class, request.method.lower(), None)
    return views[key]

