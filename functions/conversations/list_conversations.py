"""GET /api/v1/conversations — the end user's conversations, most recently active first
(``?agent_id=`` narrows to one agent; a token bound to an agent sees only that agent's)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.conversations.api import ConversationOut
from shared.conversations.paths import AgentFilterQuery, UserQuery, agent_filter
from shared.conversations.repository import CONVERSATION_SORTS
from shared.conversations.wiring import conversation_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request

app = http_app(function_for_module(__name__))


@app.endpoint
def list_conversations(user: UserQuery = None, agent_id: AgentFilterQuery = None, page: PageQuery = 1,
                       limit: LimitQuery = 20,
                       sort: SortQuery = "-updated_at") -> Response[ListEnvelope[ConversationOut]]:
    listed = conversation_service().list_conversations(
        current_principal(), user, agent_filter(agent_id), page_request(page, limit, sort, CONVERSATION_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
