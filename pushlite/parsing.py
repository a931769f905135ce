"""Request parsing shared by the families."""
from __future__ import annotations

import re
from typing import Any

import flask_smorest as smorest
import orjson
from flask import Flask, Response, current_app
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError, validate
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON on orjson: ~10x cheaper to parse and write than the json
    module (every request body and answer goes through here), and strict where
    pushlite needs it to be. It refuses as invalid JSON what the json module
    accepts but pushlite could not handle, so each family answers it as
    unreadable JSON in its own shape instead of with a 500:

    - a string with a lone UTF-16 surrogate ("\\ud800"), which I-JSON (RFC 7493)
      forbids and which can be neither stored in Redis nor sent to a provider;
    - nesting deeper than 1,024 levels (``[[[[...]]]]``);
    - NaN and Infinity, which are not JSON.

    Its errors are ``json.JSONDecodeError``s. Answers keep their keys' order;
    dates are written as Flask writes them (HTTP dates).
    """

    OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
    # Flask types the app as its sansio base, whose response class takes no body;
    # this provider is made for a Flask app (``create_app``).
    _app: Flask

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """``flask.json.dumps``: of the json module's options, ``sort_keys`` and
        ``indent`` (as two spaces) are kept; output is never ASCII-escaped."""
        option = self.OPTIONS
        if kwargs.get("sort_keys"):
            option |= orjson.OPT_SORT_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, default=self.default, option=option).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """``flask.jsonify``: one argument is the value, several a list, keyword arguments an object."""
        if args and kwargs:
            raise TypeError("app.json.response() takes either args or kwargs, not both")
        obj = args[0] if len(args) == 1 else (args or kwargs or None)
        body = orjson.dumps(obj, default=self.default, option=self.OPTIONS) + b"\n"
        # content_type, not mimetype: the same header ("application/json"
        # takes no charset) without werkzeug working it out on every answer.
        return self._app.response_class(body, content_type=self.mimetype)


def whole_value_pattern(regex: str) -> str:
    """A regex matched against a whole value, as OpenAPI states it: ECMA-262
    (what clients validate with) searches, and has no ``\\A``/``\\Z``."""
    return f"^(?:{regex})$"


class FullMatch(validate.Regexp):
    """A field validator: the whole value must match ``regex`` (marshmallow's
    Regexp only anchors at the start), documented by ``whole_value_pattern``."""

    regex: re.Pattern[str]

    def __init__(self, regex: str, *, error: str) -> None:
        super().__init__(whole_value_pattern(regex), error=error)

    # marshmallow's Regexp is not generic over str/bytes: it declares both
    # overloads; built from a str, this one validates str values only.
    def __call__(self, value: str) -> str:  # type: ignore[override]
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
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
