"""POST /coze/v1/conversations/{conversation_id}/clear — refused (4000): Stratus keeps no context
sections; start a new conversation instead."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.conversations import CozeConversation, refuse_in
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def conversation_clear(conversation_id: str) -> Response[CozeEnvelope[CozeConversation]]:
    raise refuse_in(current_principal(), conversation_id, "Clearing a conversation's context")


handler = app.lambda_handler()
