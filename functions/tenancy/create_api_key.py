"""POST /api/v1/api-keys — create an API key for the caller; the secret is shown once."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tenancy.models import ApiKeyCreated, CreateApiKey
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_api_key(body: CreateApiKey) -> Response[Envelope[ApiKeyCreated]]:
    return app.created(tenancy_service().create_api_key(current_principal(), body))


handler = app.lambda_handler()
