"""PUT /api/v1/models/defaults — choose the tenant's default models (each checked for its capability)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.models.api import ModelDefaults, UpdateDefaults
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def set_defaults(body: UpdateDefaults) -> Response[Envelope[ModelDefaults]]:
    return app.ok(model_service().set_defaults(current_principal(), body))


handler = app.lambda_handler()
