"""PUT /coze/v1/variables — set an end user's values of a bot's variables (all or none)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import variables
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def set_variables(body: variables.UpdateCozeVariables) -> Response[CozeEnvelope[variables.CozeEmpty]]:
    return app.ok(variables.update(current_principal(), body))


handler = app.lambda_handler()
