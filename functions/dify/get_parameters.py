"""GET /dify/v1/parameters — what the key's app takes."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.facades.dify.api import DifyParameters
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def get_parameters(user: UserQuery = None) -> Response[DifyParameters]:
    return app.ok(dify_service().parameters(current_principal()))


handler = app.lambda_handler()
