"""POST /coze/v1/bot/update — change a bot's draft (what is absent stays as it is)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def bot_update(body: bots.UpdateCozeBot) -> Response[CozeEnvelope[bots.CozeEmpty]]:
    return app.ok(bots.update(current_principal(), body))


handler = app.lambda_handler()
