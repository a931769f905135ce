"""OpenAPI documentation helpers shared by the families.

They write flask-smorest's documentation onto a view without wrapping it
(``alt_response``/``response`` add a call layer per decorator, on every
request); ``FamilyErrorsPlugin`` then gives every error response of a path the
error body of the family the path belongs to.
"""
from __future__ import annotations

import re
from http import HTTPStatus

from apispec import BasePlugin
from flask import Flask

from pushlite.errors import family_of


def document_errors(*statuses: int):
    """Document the error statuses a view can answer (in its family's shape)."""
    def decorate(view):
        responses = view.__dict__.setdefault("_apidoc", {}).setdefault("response", {}).setdefault("responses", {})
        for status in statuses:
            responses.setdefault(status, []).append(
                {"description": HTTPStatus(status).phrase, "content_type": None}
            )
        return view
    return decorate


def documented(status: int, schema: type, *, body: type | None = None):
    """Document a view's success response (and JSON request body) the way
    ``blp.response``/``blp.doc`` would, without wrapping it: for the hot path,
    whose view makes its response itself."""
    def decorate(view):
        apidoc = view.__dict__.setdefault("_apidoc", {})
        apidoc.setdefault("response", {}).setdefault("responses", {}).setdefault(status, []).append(
            {"schema": schema, "description": HTTPStatus(status).phrase, "content_type": None}
        )
        apidoc.setdefault("success_status_codes", []).append(status)
        if body is not None:
            apidoc.setdefault("manual_doc", {})["requestBody"] = json_body(body)
        return view
    return decorate


def json_body(schema: type) -> dict:
    """An OpenAPI requestBody for a view that loads its JSON body itself."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


class FamilyErrorsPlugin(BasePlugin):
    """Documents every error response of a family's paths with that family's
    error body, replacing flask-smorest's default error schema there."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs):
        family = family_of(self.app, re.sub(r"\{[^}]*\}", "x", path or ""))
        if family.schema is None:
            return
        ref = {"$ref": "#/components/schemas/" + family.schema.__name__.removesuffix("Schema")}
        for operation in (operations or {}).values():
            responses = operation.get("responses", {})
            responses.pop("default", None)
            for status in list(responses):
                if str(status)[0] in "45":
                    description = HTTPStatus(int(status)).phrase
                    responses[status] = {"description": description, "content": {"application/json": {"schema": ref}}}
