"""GET /coze/v1/space/published_bots_list — the older list: the space's (tenant's) published bots."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def published_bots_list(
        space_id: Annotated[str | None, Query(max_length=100, description="Accepted: the tenant is the space")] = None,
        page_index: Annotated[int | None, Query(ge=1, le=1_000_000, description="The page (cozepy)")] = None,
        page_num: Annotated[int | None, Query(ge=1, le=1_000_000, description="The page (Coze's docs)")] = None,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> Response[CozeEnvelope[bots.CozeSpaceBotList]]:
    return app.ok(bots.published_bots(current_principal(), page_index or page_num or 1, page_size))


handler = app.lambda_handler()
