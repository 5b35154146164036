"""POST /coze/v1/conversation/message/list — a conversation's messages, paged by message ids
(``first_id``, ``last_id``, ``has_more`` beside ``data``, where cozepy reads them)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.chat import CozeMessage
from shared.facades.coze.conversations import CozeListMessages, coze_conversations
from shared.facades.coze.http import IdQuery, envelope_with
from shared.facades.coze.wire import CozeIdPageEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def message_list(conversation_id: IdQuery,
                 body: CozeListMessages | None = None) -> Response[CozeIdPageEnvelope[CozeMessage]]:
    listed: dict[str, Any] = coze_conversations().list_messages(current_principal(), conversation_id,
                                                                body or CozeListMessages())
    return envelope_with(listed)


handler = app.lambda_handler()
