"""Request parsing shared by the families."""
from __future__ import annotations

import json
import re
from typing import Any

import flask_smorest as smorest
from flask import current_app
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

SURROGATE = re.compile(r"[\ud800-\udfff]")


def has_lone_surrogate(value: Any) -> bool:
    """Whether a parsed JSON value holds a string (or key) with a lone UTF-16
    surrogate, which Python's json accepts ("\\ud800") but UTF-8 cannot encode."""
    if isinstance(value, str):
        return SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def _may_hold_surrogate(text: str | bytes) -> bool:
    """A cheap test that lets plain ASCII bodies without escapes skip the walk."""
    if isinstance(text, (bytes, bytearray)):
        return b"\\u" in text or b"\x00" in text or not text.isascii()
    return "\\u" in text or not text.isascii()


def _invalid(reason: str, text: str | bytes) -> json.JSONDecodeError:
    doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return json.JSONDecodeError(reason, doc or " ", 0)  # a non-empty doc: webargs' "Invalid JSON body"


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing as invalid JSON what the json module accepts but
    pushlite cannot handle, so each family answers it as unreadable JSON in its
    own shape instead of with a 500:

    - a string with a lone UTF-16 surrogate ("\\ud800"), which I-JSON (RFC 7493)
      forbids and which can be neither stored in Redis nor sent to a provider;
    - nesting deeper than Python's recursion limit (``[[[[...]]]]``).
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
            if _may_hold_surrogate(s) and has_lone_surrogate(value):
                raise _invalid("Invalid \\uXXXX escape: lone surrogate", s)
        except RecursionError:
            raise _invalid("JSON nested too deeply", s) from None
        return value


class JsonBodyParser(FlaskParser):
    """webargs' parser, reading JSON with the app's JSON provider (above)
    rather than the json module, so a body it refuses is a 400 "Invalid JSON body"."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        return current_app.json.loads(req.get_data(cache=True))


class StrictJsonBlueprint(smorest.Blueprint):
    """A blueprint whose views' JSON bodies webargs reads with ``JsonBodyParser``,
    for families that do not check the body in ``before_request`` (admin)."""

    ARGUMENTS_PARSER = JsonBodyParser()


class CachedJsonParser(FlaskParser):
    """Reads the JSON body Flask already parsed (and cached) for the request,
    instead of parsing it a second time. Used by families that check the body
    in ``before_request`` and answer an unreadable one in their own words."""

    def _raw_load_json(self, req):
        data = req.get_json(silent=True)
        return core.missing if data is None else data


class Blueprint(smorest.Blueprint):
    ARGUMENTS_PARSER = CachedJsonParser()
