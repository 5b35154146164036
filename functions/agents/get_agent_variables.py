"""GET /api/v1/agents/{agent_id}/variables — an end user's values of the agent's variables."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.agents.api import AgentVariablesOut
from shared.agents.paths import agent_ref
from shared.agents.wiring import agent_variables
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))

UserQuery = Annotated[str | None, Query(min_length=1, max_length=255,
                                        description="The end user (default: the token owner, member:<id>)")]


@app.endpoint
def get_agent_variables(agent_id: str, user: UserQuery = None,
                        names: Annotated[str | None, Query(max_length=4000, pattern=r"^[A-Za-z0-9_,]*$",
                                                           description="Comma-separated names: only these")] = None,
                        ) -> Response[Envelope[AgentVariablesOut]]:
    wanted = [name for name in (names or "").split(",") if name]
    return app.ok(agent_variables().get_values(current_principal(), agent_ref(agent_id), user, wanted or None))


handler = app.lambda_handler()
