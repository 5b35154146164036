"""GET /api/v1/agents/{agent_id}/versions — published versions, newest first."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.api import AgentVersionOut
from shared.agents.paths import agent_ref
from shared.agents.repository import VERSION_SORTS
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request

app = http_app(function_for_module(__name__))


@app.endpoint
def list_agent_versions(agent_id: str, page: PageQuery = 1, limit: LimitQuery = 20,
                        sort: SortQuery = "-number") -> Response[ListEnvelope[AgentVersionOut]]:
    listed = agent_service().list_versions(current_principal(), agent_ref(agent_id),
                                                      page_request(page, limit, sort, VERSION_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
