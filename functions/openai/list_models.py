"""GET /openai/v1/models — the agents this key may chat with, as OpenAI models."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.openai.api import ModelList
from shared.facades.openai.models import openai_models
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def list_models() -> Response[ModelList]:
    return app.ok(openai_models().list(current_principal()))


handler = app.lambda_handler()
