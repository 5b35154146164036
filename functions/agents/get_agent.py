"""GET /api/v1/agents/{agent_id} — one agent with its draft configuration (id or built-in slug)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.api import AgentOut
from shared.agents.paths import agent_ref
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def get_agent(agent_id: str) -> Response[Envelope[AgentOut]]:
    return app.ok(agent_service().get_agent(current_principal(), agent_ref(agent_id)))


handler = app.lambda_handler()
