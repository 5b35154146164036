"""POST /api/v1/models/refresh — load the shipped model catalog files into the database."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.envelope import Envelope
from shared.models.api import RefreshResult
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def refresh_catalog() -> Response[Envelope[RefreshResult]]:
    return app.ok(model_service().refresh())


handler = app.lambda_handler()
