"""POST /api/v1/agents/{agent_id}/copy — a new draft of the tenant from any agent it sees,
built-ins included (name: the body's, else "<name> (copy)" made unique)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.api import AgentOut, CopyAgent
from shared.agents.paths import agent_ref
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def copy_agent(agent_id: str, body: CopyAgent | None = None) -> Response[Envelope[AgentOut]]:
    return app.created(agent_service().copy_agent(current_principal(), agent_ref(agent_id), body or CopyAgent()))


handler = app.lambda_handler()
