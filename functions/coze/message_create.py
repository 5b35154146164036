"""POST /coze/v1/conversation/message/create — refused (4000): a conversation's messages are
written by chats (a question and its answer)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.chat import CozeMessage
from shared.facades.coze.conversations import CozeCreateMessage, refuse_in
from shared.facades.coze.http import IdQuery
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def message_create(conversation_id: IdQuery,
                   body: CozeCreateMessage) -> Response[CozeEnvelope[CozeMessage]]:
    raise refuse_in(current_principal(), conversation_id, "Adding a message outside a chat")


handler = app.lambda_handler()
