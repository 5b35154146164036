"""PATCH /api/v1/conversations/{conversation_id} — rename (with ``version``, stale → 409)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.api import ConversationOut, UpdateConversation
from shared.conversations.paths import conversation_id as parse_conversation
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def update_conversation(conversation_id: str, body: UpdateConversation) -> Response[Envelope[ConversationOut]]:
    return app.ok(conversation_service().update_conversation(current_principal(),
                                                             parse_conversation(conversation_id), body))


handler = app.lambda_handler()
