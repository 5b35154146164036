"""GET /coze/v1/conversation/retrieve — one conversation, by ``conversation_id``."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.conversations import CozeConversation, coze_conversations
from shared.facades.coze.http import IdQuery
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def conversation_retrieve(
        conversation_id: IdQuery) -> Response[CozeEnvelope[CozeConversation]]:
    return app.ok(coze_conversations().retrieve(current_principal(), conversation_id))


handler = app.lambda_handler()
