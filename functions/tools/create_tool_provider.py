"""POST /api/v1/tools — add a tool provider: an OpenAPI tool set (its document read into tools,
problems named as 422) or a remote MCP server; secrets stored encrypted, never returned."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tools.api import CreateToolProvider, ToolProviderOut
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_tool_provider(body: CreateToolProvider) -> Response[Envelope[ToolProviderOut]]:
    return app.created(tool_provider_service().create_provider(current_principal(), body))


handler = app.lambda_handler()
