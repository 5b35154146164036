"""DELETE /api/v1/conversations/{conversation_id} — soft delete (a running turn finishes; the
conversation is gone for readers at once)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.paths import UserQuery
from shared.conversations.paths import conversation_id as parse_conversation
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_conversation(conversation_id: str, user: UserQuery = None) -> Response[None]:
    conversation_service().delete_conversation(current_principal(), parse_conversation(conversation_id), user)
    return app.no_content()


handler = app.lambda_handler()
