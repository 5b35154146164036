"""GET /api/v1/tools/{tool_id} — one provider with its tools and their argument schemas
(``builtin``: the built-in tools and the tenant's published workflows). An MCP server's list
comes from the cache unless ``?refresh=true``."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tools.api import ToolProviderOut
from shared.tools.paths import provider_ref
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_tool_provider(tool_id: str,
                      refresh: Annotated[bool, Query(description="mcp: list the server's tools again instead of "
                                                                 "using the cached list")] = False
                      ) -> Response[Envelope[ToolProviderOut]]:
    return app.ok(tool_provider_service().get_provider(current_principal(), provider_ref(tool_id), refresh=refresh))


handler = app.lambda_handler()
