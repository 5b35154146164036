"""GET /coze/v1/conversations — the conversations with the agent ``bot_id``: the token owner's
own, or (Stratus's addition) the end user ``user_id``'s; paged by ``page_num``/``page_size``."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.facades.coze.conversations import CozeConversationPage, coze_conversations
from shared.facades.coze.http import IdQuery
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def conversations_list(bot_id: IdQuery, user_id: UserQuery = None,
                       page_num: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                       page_size: Annotated[int, Query(ge=1, le=50)] = 50,
                       ) -> Response[CozeEnvelope[CozeConversationPage]]:
    listed = coze_conversations().list_conversations(current_principal(), bot_id, user_id, page_num, page_size)
    return app.ok(listed)


handler = app.lambda_handler()
