"""GET /api/v1/openapi.json — the OpenAPI 3.1 document, generated from the catalog and the
handlers' pydantic models on the first request of a container."""

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response

from functions.catalog import FUNCTIONS, function_for_module
from shared.http.api import http_app
from shared.http.openapi import build_openapi

app = http_app(function_for_module(__name__))


@cache
def _document() -> dict[str, Any]:
    # Built once per container: it imports every HTTP function's module.
    return build_openapi(FUNCTIONS)


@app.endpoint
def openapi_document() -> Response[dict[str, Any]]:
    return Response(200, "application/json", _document())


handler = app.lambda_handler()
