"""GET /coze/v1/bot/get_online_info?bot_id= — the older retrieve: a bot's published version."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.http import IdQuery
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def bot_online_info(bot_id: IdQuery) -> Response[CozeEnvelope[bots.CozeBot]]:
    return app.ok(bots.retrieve(current_principal(), bot_id, True))


handler = app.lambda_handler()
