"""DELETE /api/v1/models/{model_name} — remove a tenant model."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_model(model_name: str) -> Response[None]:
    model_service().delete(current_principal(), model_name)
    return app.no_content()


handler = app.lambda_handler()
