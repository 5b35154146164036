"""DELETE /api/v1/api-keys/{api_key_id} — revoke a key; effective at once."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.errors import NotFound
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.ids import path_id
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_api_key(api_key_id: str) -> Response[None]:
    key_id = path_id(api_key_id, NotFound("API key not found", code="api_key_not_found"))
    tenancy_service().delete_api_key(current_principal(), key_id)
    return app.no_content()


handler = app.lambda_handler()
