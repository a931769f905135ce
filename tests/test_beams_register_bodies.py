"""Registration bodies: the short cut for plain bodies (``plain_registration``)
must never accept what the schema refuses, nor load a body differently."""
from __future__ import annotations

import itertools

import pytest
from marshmallow import ValidationError

from pushlite.beams.schemas import RegisterApnsSchema, RegisterFcmSchema, plain_registration

MISSING = object()
TOKENS = [MISSING, None, "", "a", "f" * 64, 5, ["a"], {"a": "b"}]
BUNDLES = [MISSING, None, "", "com.example.app", "a" * 255, "a" * 256, "com.\x00x", "com.\x7fx", "com.\u00e9x",
           "com.\nx", 5, True]
METADATA = [MISSING, None, {}, [], "x", {"sdkVersion": "2.0"}, {"sdkVersion": 2}, {"sdkVersion": None},
            {"unknown": 5}, {"iosVersion": "17", "androidVersion": "14", "macosVersion": "14", "sdkVersion": "1"},
            {"androidVersion": ["14"]}, {"iosVersion": {}}]
EXTRA = [{}, {"extra": 1}, {"interests": None}]


def bodies():
    for token, bundle, metadata, extra in itertools.product(TOKENS, BUNDLES, METADATA, EXTRA):
        body = dict(extra)
        for name, value in (("token", token), ("bundleIdentifier", bundle), ("metadata", metadata)):
            if value is not MISSING:
                body[name] = value
        yield body


@pytest.mark.parametrize("schema", [RegisterApnsSchema(), RegisterFcmSchema()], ids=["apns", "fcm"])
def test_the_short_cut_agrees_with_the_schema(schema):
    taken = 0
    for body in bodies():
        try:
            expected = schema.load(body)
        except ValidationError:
            expected = None
        loaded = plain_registration(schema, body)
        if loaded is not None:
            taken += 1
            assert loaded == expected, body
    # The short cut must also be taken, for the bodies the SDKs send at least.
    assert taken > 100
    sdk_body = {"token": "f" * 64, "bundleIdentifier": "com.example.app", "metadata": {"sdkVersion": "2.0"}}
    assert plain_registration(schema, sdk_body) == schema.load(sdk_body)
