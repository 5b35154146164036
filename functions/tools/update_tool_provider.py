"""PATCH /api/v1/tools/{tool_id} — change a provider (stale version → 409; a secret left out
stays as stored)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tools.api import ToolProviderOut, UpdateToolProvider
from shared.tools.paths import provider_ref
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def update_tool_provider(tool_id: str, body: UpdateToolProvider) -> Response[Envelope[ToolProviderOut]]:
    return app.ok(tool_provider_service().update_provider(current_principal(), provider_ref(tool_id), body))


handler = app.lambda_handler()
