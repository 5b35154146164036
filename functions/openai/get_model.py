"""GET /openai/v1/models/{model} — one agent this key may chat with, as an OpenAI model."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.openai.api import Model
from shared.facades.openai.models import openai_models
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def get_model(model: str) -> Response[Model]:
    return app.ok(openai_models().get(current_principal(), model))


handler = app.lambda_handler()
