"""DELETE /api/v1/agents/{agent_id} — soft delete (built-ins → 403)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.agents.paths import agent_ref
from shared.agents.wiring import agent_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_agent(agent_id: str) -> Response[None]:
    agent_service().delete_agent(current_principal(), agent_ref(agent_id))
    return app.no_content()


handler = app.lambda_handler()
