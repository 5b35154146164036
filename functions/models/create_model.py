"""POST /api/v1/models — a tenant's own model; its API key is tested, then stored encrypted."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.models.api import CreateModel, ModelOut
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_model(body: CreateModel) -> Response[Envelope[ModelOut]]:
    return app.created(model_service().create(current_principal(), body))


handler = app.lambda_handler()
