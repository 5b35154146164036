"""POST /api/v1/conversations/{conversation_id}/messages/{message_id}/feedback — like or
dislike a finished answer, with an optional comment (``rating: null`` takes it back)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.api import MessageFeedback, MessageOut
from shared.conversations.paths import conversation_id as parse_conversation
from shared.conversations.paths import message_id as parse_message
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def message_feedback(conversation_id: str, message_id: str, body: MessageFeedback) -> Response[Envelope[MessageOut]]:
    return app.ok(conversation_service().message_feedback(current_principal(), parse_conversation(conversation_id),
                                                          parse_message(message_id), body))


handler = app.lambda_handler()
