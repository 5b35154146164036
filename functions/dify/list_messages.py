"""GET /dify/v1/messages — a conversation's turns before ``first_id``, oldest first."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.facades.dify.api import DifyMessageList, DifyMessagesQuery
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def list_messages(conversation_id: Annotated[str, Query(min_length=1, max_length=64)], user: UserQuery = None,
                  first_id: Annotated[str | None, Query(max_length=64)] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Response[DifyMessageList]:
    query = DifyMessagesQuery.model_construct(conversation_id=conversation_id, user=user, first_id=first_id,
                                              limit=limit)
    return app.ok(dify_service().messages(current_principal(), query))


handler = app.lambda_handler()
