"""GET /api/v1/conversations/{conversation_id}/messages — newest first (``order=asc``: oldest
first), in the order the turns were asked (a question and its answer share a timestamp)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.api import MessageOut
from shared.conversations.paths import OrderQuery, UserQuery
from shared.conversations.paths import conversation_id as parse_conversation
from shared.conversations.repository import MESSAGE_SORTS
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, page_request

app = http_app(function_for_module(__name__))


@app.endpoint
def list_messages(conversation_id: str, user: UserQuery = None, order: OrderQuery = "desc", page: PageQuery = 1,
                  limit: LimitQuery = 20) -> Response[ListEnvelope[MessageOut]]:
    sort = "position" if order == "asc" else "-position"
    listed = conversation_service().list_messages(
        current_principal(), parse_conversation(conversation_id), user, page_request(page, limit, sort, MESSAGE_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
