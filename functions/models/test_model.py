"""POST /api/v1/models/{model_name}/test — one minimal real call with the stored settings."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.models.api import ModelTestResult
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def test_model(model_name: str) -> Response[Envelope[ModelTestResult]]:
    return app.ok(model_service().test(current_principal(), model_name))


handler = app.lambda_handler()
