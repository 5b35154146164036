"""POST /api/v1/agents — create an agent (its draft; missing configuration fields take defaults)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.api import AgentOut, CreateAgent
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def create_agent(body: CreateAgent) -> Response[Envelope[AgentOut]]:
    return app.created(agent_service().create_agent(current_principal(), body))


handler = app.lambda_handler()
