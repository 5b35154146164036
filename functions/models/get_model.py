"""GET /api/v1/models/{model_name} — one model (credentials are never returned)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.models.api import ModelOut
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_model(model_name: str) -> Response[Envelope[ModelOut]]:
    return app.ok(model_service().get(current_principal(), model_name))


handler = app.lambda_handler()
