"""PUT /api/v1/agents/{agent_id}/variables — set an end user's values (all or none)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.agents.api import AgentVariablesOut, SetAgentVariables
from shared.agents.paths import agent_ref
from shared.agents.wiring import agent_variables
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))

UserQuery = Annotated[str | None, Query(min_length=1, max_length=255,
                                        description="The end user (default: the token owner, member:<id>)")]


@app.endpoint
def set_agent_variables(agent_id: str, body: SetAgentVariables, user: UserQuery = None,
                        ) -> Response[Envelope[AgentVariablesOut]]:
    return app.ok(agent_variables().set_values(current_principal(), agent_ref(agent_id), user, body.values,
                                               field="body.values"))


handler = app.lambda_handler()
