"""GET /dify/v1/info — the key's app: name, description, mode."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.facades.dify.api import DifyInfo
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def get_info(user: UserQuery = None) -> Response[DifyInfo]:
    return app.ok(dify_service().info(current_principal()))


handler = app.lambda_handler()
