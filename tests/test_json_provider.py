"""The app's JSON (orjson): what callers of flask.json and of the answers see."""
from __future__ import annotations

import datetime
import json

import flask
import pytest


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
