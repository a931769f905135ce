"""MPush send: a notification to the devices of 1-100 topics, through the same
publish pipeline as every family (a Beams publish to those interest names
reaches the same devices)."""
from __future__ import annotations

from flask.views import MethodView

from pushlite import payloads, publishing
from pushlite.apidoc import document_errors

from .blueprint import blp, instance_id, requires_token
from .devices import check_topics
from .errors import BAD_REQUEST, OK, PAYLOAD_TOO_LARGE, TOO_MANY_TOPICS, MPushError
from .schemas import MPushSendResponseSchema, MPushSendSchema

MAX_TOPICS = 100


@blp.route("/send")
class Send(MethodView):
    @requires_token(secret=True)
    @blp.arguments(MPushSendSchema, error_status_code=400)
    @blp.response(200, MPushSendResponseSchema)
    @document_errors(400, 401, 403, 413, 415, 503)
    def post(self, body: dict) -> dict:
        """Send a notification to the devices registered to 1-100 topics (secret key only)."""
        names = check_topics(body["topics"])
        if not names:
            raise MPushError(BAD_REQUEST, "topics must name at least one topic.")
        if len(names) > MAX_TOPICS:
            raise MPushError(TOO_MANY_TOPICS, f"A send can target at most {MAX_TOPICS} topics.")
        if not (body["title"] or body["body"]):
            raise MPushError(BAD_REQUEST, "title and body cannot both be empty.")
        try:
            publish_id = publishing.publish(instance_id(), "interests", names,
                                            payloads.from_message(body["title"], body["body"], body.get("data")))
        except payloads.PayloadError as exc:
            raise MPushError(PAYLOAD_TOO_LARGE, str(exc)) from None
        return {"status_code": OK, "publish_id": publish_id}
