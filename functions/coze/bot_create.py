"""POST /coze/v1/bot/create — a new bot (an agent's draft)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def bot_create(body: bots.CreateCozeBot) -> Response[CozeEnvelope[bots.CozeBotCreated]]:
    return app.ok(bots.create(current_principal(), body))


handler = app.lambda_handler()
