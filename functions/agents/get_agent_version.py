"""GET /api/v1/agents/{agent_id}/versions/{number} — one published version."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.api import AgentVersionOut
from shared.agents.paths import agent_ref, version_number
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def get_agent_version(agent_id: str, number: str) -> Response[Envelope[AgentVersionOut]]:
    return app.ok(agent_service().get_version(current_principal(), agent_ref(agent_id), version_number(number)))


handler = app.lambda_handler()
