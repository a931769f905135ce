"""Shared parsing: the app's JSON (orjson), as callers of flask.json and the
answers see it, and the whole-value pattern validator."""
from __future__ import annotations

import datetime
import json

import flask
import pytest
from marshmallow import ValidationError

from pushlite.parsing import FullMatch


def test_answers_keep_key_order_and_utf8(app):
    with app.app_context():
        response = app.json.response({"b": 1, "a": "ü"})
    assert response.mimetype == "application/json"
    assert response.data == '{"b":1,"a":"ü"}\n'.encode()


def test_dumps_honours_sort_keys_and_indent_and_writes_dates_as_flask_does(app):
    with app.app_context():
        assert flask.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
        assert flask.json.dumps({"a": [1]}, indent=2) == '{\n  "a": [\n    1\n  ]\n}'
        assert flask.json.dumps(datetime.datetime(2026, 1, 1)) == '"Thu, 01 Jan 2026 00:00:00 GMT"'


@pytest.mark.parametrize("text", ['"\\ud800"', "[" * 2000 + "]" * 2000, "NaN", '{"a": Infinity}', "{"])
def test_loads_refuses_what_pushlite_cannot_keep_as_json_errors(app, text):
    with app.app_context(), pytest.raises(json.JSONDecodeError):
        flask.json.loads(text)


def test_full_match_takes_the_whole_value_only():
    check = FullMatch(r"[a-z]{1,3}", error="bad {input}")
    assert check("abc") == "abc"
    for value in ["abcd", "abc\n", "ab c", "", "0"]:  # "abc\n": where $ and re.match would let it through
        with pytest.raises(ValidationError, match="bad"):
            check(value)
    assert check.regex.pattern == "^(?:[a-z]{1,3})$"  # what OpenAPI states
