"""OpenAPI documentation the families note on their views without wrapping
them (flask-smorest's ``response``, ``alt_response`` and ``doc`` each add a
call layer per decorator, on every request).

``document_errors`` and ``document_response`` only mark the view function;
``ViewDocsPlugin``, an apispec plugin, writes what they marked into the
OpenAPI document when flask-smorest documents the route, and gives every error
response of a path the error body of the family the path belongs to.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import Rule

from pushlite.errors import family_of
from pushlite.view_rules import View

# The attributes the decorators below set on a view function (functools.wraps,
# which flask-smorest's decorators use, carries them to the wrappers).
ERROR_STATUSES = "pushlite_error_statuses"
RESPONSE = "pushlite_response"


@dataclass(frozen=True)
class ResponseDoc:
    status: int
    schema: type[Schema]
    body: type[Schema] | None


def document_errors(*statuses: int) -> Callable[[View], View]:
    """Document the error statuses a view can answer (in its family's shape)."""
    def decorate(view: View) -> View:
        setattr(view, ERROR_STATUSES, (*getattr(view, ERROR_STATUSES, ()), *statuses))
        return view
    return decorate


def document_response(status: int, schema: type[Schema], *, body: type[Schema] | None = None) -> Callable[[View], View]:
    """Document a view's success response (and JSON request body) as
    ``blp.response``/``blp.arguments`` would: for the hot path, whose view
    loads its body and makes its response itself."""
    def decorate(view: View) -> View:
        setattr(view, RESPONSE, ResponseDoc(status, schema, body))
        return view
    return decorate


def json_body(schema: type[Schema]) -> dict[str, Any]:
    """An OpenAPI requestBody for a view that loads its JSON body itself."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


class ViewDocsPlugin(BasePlugin):
    """Writes what ``document_response`` and ``document_errors`` marked into
    each operation, and documents every error response of a family's paths
    with that family's error body (in place of flask-smorest's default error
    schema). Listed after apispec's marshmallow plugin (flask-smorest's
    ``extra_plugins``), it has that plugin resolve the schemas it adds."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.marshmallow: MarshmallowPlugin | None = None

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        self.marshmallow = next(p for p in spec.plugins if isinstance(p, MarshmallowPlugin))

    def operation_helper(self, path: str | None = None, operations: dict | None = None, *,
                         rule: Rule | None = None, **kwargs: Any) -> None:
        operations = operations if operations is not None else {}
        for method, operation in operations.items():
            view = self._view(rule, method)
            response = getattr(view, RESPONSE, None)
            if response is not None:
                self._document_response(method, operation, response)
            responses = operation.setdefault("responses", {})
            for status in getattr(view, ERROR_STATUSES, ()):
                if status not in responses and str(status) not in responses:
                    responses[status] = {"description": HTTPStatus(status).phrase}
        self._family_errors(path or "", operations)

    def _view(self, rule: Rule | None, method: str) -> Any:
        """The function that answers ``method`` on ``rule`` (a MethodView's method)."""
        view = self.app.view_functions.get(rule.endpoint) if rule is not None else None
        view_class = getattr(view, "view_class", None)
        return getattr(view_class, method, None) if view_class is not None else view

    def _document_response(self, method: str, operation: dict, response: ResponseDoc) -> None:
        operation.setdefault("responses", {})[response.status] = {
            "description": HTTPStatus(response.status).phrase,
            "content": {"application/json": {"schema": response.schema}},
        }
        if response.body is not None:
            operation["requestBody"] = json_body(response.body)
        assert self.marshmallow is not None and self.marshmallow.resolver is not None
        self.marshmallow.resolver.resolve_operations({method: operation})

    def _family_errors(self, path: str, operations: dict) -> None:
        family = family_of(self.app, re.sub(r"\{[^}]*\}", "x", path))
        if family.schema is None:
            return
        ref = {"$ref": "#/components/schemas/" + family.schema.__name__.removesuffix("Schema")}
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.pop("default", None)
            for status in list(responses):
                if str(status)[0] in "45":
                    description = HTTPStatus(int(status)).phrase
                    responses[status] = {"description": description, "content": {"application/json": {"schema": ref}}}
