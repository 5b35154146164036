"""POST /coze/v1/bots/{bot_id}/unpublish — refused (4000): a Stratus agent's published version
answers until the agent is deleted (docs/adr/0050-coze-bots.md)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def bot_unpublish(bot_id: str, body: bots.UnpublishCozeBot) -> Response[CozeEnvelope[bots.CozeEmpty]]:
    raise bots.unpublish(current_principal(), bot_id)


handler = app.lambda_handler()
