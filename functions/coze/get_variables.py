"""GET /coze/v1/variables — an end user's values of a bot's variables (Coze's memory)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.facades.coze import variables
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def get_variables(connector_uid: Annotated[str, Query(min_length=1, max_length=255, description="The end user")],
                  bot_id: Annotated[str | None, Query(max_length=100, description="The agent's id")] = None,
                  app_id: Annotated[str | None, Query(max_length=100, description="Not supported")] = None,
                  connector_id: Annotated[str | None, Query(max_length=100, description="Ignored")] = None,
                  keywords: Annotated[str | None, Query(max_length=4000,
                                                        description="Comma-separated names (none: all)")] = None,
                  ) -> Response[CozeEnvelope[variables.CozeVariables]]:
    return app.ok(variables.retrieve(current_principal(), bot_id, app_id, connector_uid, keywords))


handler = app.lambda_handler()
