"""GET /api/v1/tools — the tenant's tool providers (``?kind=`` filters; their tools: GET one)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.tools.api import ToolProviderOut
from shared.tools.repository import PROVIDER_SORTS
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_tool_providers(kind: Annotated[Literal["openapi", "mcp"] | None,
                                        Query(description="Only providers of this kind")] = None,
                        page: PageQuery = 1, limit: LimitQuery = 20,
                        sort: SortQuery = "-created_at") -> Response[ListEnvelope[ToolProviderOut]]:
    return app.page(tool_provider_service().list_providers(current_principal(), kind,
                                                           page_request(page, limit, sort, PROVIDER_SORTS)))


handler = app.lambda_handler()
