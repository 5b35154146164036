"""PUT /coze/v1/conversations/{conversation_id} — rename a conversation."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.conversations import CozeConversation, CozeUpdateConversation, coze_conversations
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def conversation_update(conversation_id: str, body: CozeUpdateConversation) -> Response[CozeEnvelope[CozeConversation]]:
    return app.ok(coze_conversations().update(current_principal(), conversation_id, body))


handler = app.lambda_handler()
