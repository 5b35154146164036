"""GET /api/v1/openapi.json — the OpenAPI 3.1 document, generated from the catalog and the
handlers' pydantic models on the first request of a container."""

from aws_lambda_powertools.event_handler import Response

from shared.http.api import http_app
from shared.http.openapi import openapi_json

app = http_app(__name__)


@app.endpoint
def openapi_document() -> Response[str]:
    return Response(200, "application/json", openapi_json())


handler = app.lambda_handler()
