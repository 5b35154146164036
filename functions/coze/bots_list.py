"""GET /coze/v1/bots — the space's (tenant's) bots by publish status, by page."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))
_Space = Annotated[str | None, Query(max_length=100, description="Accepted: the tenant is the space")]
_Page = Annotated[int | None, Query(ge=1, le=1_000_000)]


@app.endpoint
def bots_list(workspace_id: _Space = None, space_id: _Space = None,
              publish_status: Annotated[bots.PublishStatus, Query()] = "published_online",
              connector_id: Annotated[str | None, Query(max_length=100, description=(
                  "Accepted, ignored: Stratus has no publishing channels"))] = None,
              page_index: Annotated[int | None, Query(ge=1, le=1_000_000, description="The page (cozepy)")] = None,
              page_num: Annotated[int | None, Query(ge=1, le=1_000_000, description="The page (Coze's docs)")] = None,
              page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> Response[CozeEnvelope[bots.CozeBotList]]:
    return app.ok(bots.list_bots(current_principal(), publish_status, page_index or page_num or 1, page_size))


handler = app.lambda_handler()
