"""GET /coze/v1/conversation/message/retrieve — one message of a conversation."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.chat import CozeMessage
from shared.facades.coze.conversations import coze_conversations
from shared.facades.coze.http import IdQuery
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def message_retrieve(conversation_id: IdQuery,
                     message_id: IdQuery) -> Response[CozeEnvelope[CozeMessage]]:
    return app.ok(coze_conversations().retrieve_message(current_principal(), conversation_id, message_id))


handler = app.lambda_handler()
