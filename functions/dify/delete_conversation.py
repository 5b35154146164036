"""DELETE /dify/v1/conversations/{conversation_id} — delete a conversation of the key's agent."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.facades.dify.api import DifyResultOut, DifyUserBody
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_conversation(conversation_id: str, user: UserQuery = None,
                        body: DifyUserBody | None = None) -> Response[DifyResultOut]:
    # Dify's clients send the end user in the body; the query string takes it too.
    who = body.user if body is not None and body.user else user
    return app.ok(dify_service().delete_conversation(current_principal(), conversation_id, who))


handler = app.lambda_handler()
