"""POST /dify/v1/conversations/{conversation_id}/name — rename a conversation of the key's agent."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.dify.api import DifyConversationOut, DifyRenameRequest
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def rename_conversation(conversation_id: str, body: DifyRenameRequest) -> Response[DifyConversationOut]:
    return app.ok(dify_service().rename_conversation(current_principal(), conversation_id, body))


handler = app.lambda_handler()
