"""GET /dify/v1/conversations — the end user's conversations with the key's agent after ``last_id``."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.facades.dify.api import DifyConversationList, DifyConversationsQuery
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))
SortBy = Literal["created_at", "-created_at", "updated_at", "-updated_at"]


@app.endpoint
def list_conversations(user: UserQuery = None, last_id: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20,
                       sort_by: Annotated[SortBy, Query()] = "-updated_at",
                       pinned: Annotated[bool | None, Query(description="Accepted; Stratus pins nothing")] = None,
                       ) -> Response[DifyConversationList]:
    query = DifyConversationsQuery.model_construct(user=user, last_id=last_id, limit=limit, sort_by=sort_by,
                                                   pinned=pinned)
    return app.ok(dify_service().conversations(current_principal(), query))


handler = app.lambda_handler()
