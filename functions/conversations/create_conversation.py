"""POST /api/v1/conversations — start a conversation with an agent (id or built-in slug) for an
end user: its latest published version, or its draft with ``draft: true``; ``inputs`` fill the
system prompt's variables for the whole conversation."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.api import ConversationOut, CreateConversation
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def create_conversation(body: CreateConversation) -> Response[Envelope[ConversationOut]]:
    return app.created(conversation_service().create_conversation(current_principal(), body))


handler = app.lambda_handler()
