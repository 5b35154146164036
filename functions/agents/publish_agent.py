"""POST /api/v1/agents/{agent_id}/publish — validate the draft and snapshot it as the next
immutable version (422 naming the field when a model or knowledge base does not fit)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.api import AgentVersionOut, PublishAgent
from shared.agents.paths import agent_ref
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def publish_agent(agent_id: str, body: PublishAgent | None = None) -> Response[Envelope[AgentVersionOut]]:
    version = agent_service().publish_agent(current_principal(), agent_ref(agent_id), body or PublishAgent())
    return app.created(version)


handler = app.lambda_handler()
