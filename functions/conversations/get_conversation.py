"""GET /api/v1/conversations/{conversation_id} — one of the end user's conversations."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.api import ConversationOut
from shared.conversations.paths import UserQuery
from shared.conversations.paths import conversation_id as parse_conversation
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def get_conversation(conversation_id: str, user: UserQuery = None) -> Response[Envelope[ConversationOut]]:
    return app.ok(conversation_service().get_conversation(current_principal(), parse_conversation(conversation_id),
                                                          user))


handler = app.lambda_handler()
