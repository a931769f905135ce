"""Request parsing shared by the families."""
from __future__ import annotations

import flask_smorest as smorest
from webargs import core
from webargs.flaskparser import FlaskParser


class CachedJsonParser(FlaskParser):
    """Reads the JSON body Flask already parsed (and cached) for the request,
    instead of parsing it a second time. Used by families that check the body
    in ``before_request`` and answer an unreadable one in their own words."""

    def _raw_load_json(self, req):
        data = req.get_json(silent=True)
        return core.missing if data is None else data


class Blueprint(smorest.Blueprint):
    ARGUMENTS_PARSER = CachedJsonParser()
