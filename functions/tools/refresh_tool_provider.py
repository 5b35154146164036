"""POST /api/v1/tools/{tool_id}/refresh — list an MCP server's tools again (the cached list is
replaced) and answer the provider with them."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tools.api import ToolProviderOut
from shared.tools.paths import provider_ref
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def refresh_tool_provider(tool_id: str) -> Response[Envelope[ToolProviderOut]]:
    return app.ok(tool_provider_service().refresh_provider(current_principal(), provider_ref(tool_id)))


handler = app.lambda_handler()
