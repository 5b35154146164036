"""DELETE /api/v1/tools/{tool_id} — soft delete a provider (its tools go with it)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.tools.paths import provider_ref
from shared.tools.wiring import tool_provider_service

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_tool_provider(tool_id: str) -> Response[None]:
    tool_provider_service().delete_provider(current_principal(), provider_ref(tool_id))
    return app.no_content()


handler = app.lambda_handler()
