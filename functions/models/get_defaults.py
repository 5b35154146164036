"""GET /api/v1/models/defaults — the tenant's default chat, embedding and rerank models."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.models.api import ModelDefaults
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_defaults() -> Response[Envelope[ModelDefaults]]:
    return app.ok(model_service().defaults(current_principal()))


handler = app.lambda_handler()
