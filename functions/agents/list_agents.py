"""GET /api/v1/agents — the built-in agents and the tenant's own (``?builtin=`` filters)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.agents.api import AgentOut
from shared.agents.repository import AGENT_SORTS
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request

app = http_app(function_for_module(__name__))


@app.endpoint
def list_agents(builtin: Annotated[bool | None, Query(description="Only built-ins (true) or only the "
                                                                  "tenant's agents (false)")] = None,
                page: PageQuery = 1, limit: LimitQuery = 20,
                sort: SortQuery = "-builtin,-created_at") -> Response[ListEnvelope[AgentOut]]:
    listed = agent_service().list_agents(current_principal(), builtin,
                                                    page_request(page, limit, sort, AGENT_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
