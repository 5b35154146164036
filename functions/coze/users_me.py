"""GET /coze/v1/users/me — the member the token belongs to, as Coze's user."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze.users import CozeUser, me
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def users_me() -> Response[CozeEnvelope[CozeUser]]:
    return app.ok(me(current_principal()))


handler = app.lambda_handler()
