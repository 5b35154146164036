"""GET /api/v1/openapi.json — the OpenAPI 3.1 document, generated from the catalog and the
handlers' pydantic models on the first request of a container."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from shared.http.api import http_app
from shared.http.openapi import build_openapi

app = http_app(__name__)


@app.endpoint
def openapi_document() -> Response[dict[str, Any]]:
    return Response(200, "application/json", build_openapi())


handler = app.lambda_handler()
