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


def current_view(app: Flask, request: Request) -> Any:
    """The function that answers ``request``: the method of a MethodView
    (``post``, ``put``...), or a plain view function. None for a request no
    route matched."""
    view = app.view_functions.get(request.endpoint) if request.endpoint else None
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    return getattr(view_class, request.method.lower(), None)

