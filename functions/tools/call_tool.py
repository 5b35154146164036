"""POST /api/v1/tools/{tool_id}/test — call one tool with sample arguments and show the result
(status, output truncated, elapsed): a failure of the tool is a result, not an error."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tools.api import TestTool, ToolResultOut
from shared.tools.paths import provider_ref
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def call_tool(tool_id: str, body: TestTool) -> Response[Envelope[ToolResultOut]]:
    return app.ok(tool_provider_service().test_tool(current_principal(), provider_ref(tool_id), body))


handler = app.lambda_handler()
