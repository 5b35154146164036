"""POST /coze/v1/conversation/create — a conversation with the agent ``bot_id``, the token owner's own."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.conversations import CozeConversation, CozeCreateConversation, coze_conversations
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def conversation_create(body: CozeCreateConversation) -> Response[CozeEnvelope[CozeConversation]]:
    return app.ok(coze_conversations().create(current_principal(), body))


handler = app.lambda_handler()
