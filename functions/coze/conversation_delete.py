"""DELETE /coze/v1/conversations/{conversation_id} — delete a conversation (and its messages)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.conversations import CozeDeleted, coze_conversations
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def conversation_delete(conversation_id: str) -> Response[CozeEnvelope[CozeDeleted]]:
    return app.ok(coze_conversations().delete(current_principal(), conversation_id))


handler = app.lambda_handler()
