"""GET /coze/v1/bots/{bot_id} — a bot's published version (``is_published``, the default) or its
draft."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.facades.coze import bots
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def bot_retrieve(bot_id: str, is_published: Annotated[bool, Query(
        description="true: the published version (a never published bot: 4015); false: the draft")] = True,
                 ) -> Response[CozeEnvelope[bots.CozeBot]]:
    return app.ok(bots.retrieve(current_principal(), bot_id, is_published))


handler = app.lambda_handler()
