"""The container's agent service, wired to its database, the model resolver (read-only:
publishing checks models without loading a provider SDK), the workflows (a chatflow agent's
chatflow) and the tools (a smart-reasoning agent's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.agents.service import AgentService
    from shared.agents.variables import AgentVariables


def agent_service() -> AgentService:
    from shared.agents.service import AgentService
    from shared.db.database import get_database
    from shared.models.wiring import model_resolver
    from shared.tools.wiring import tool_runtime
    from shared.workflows.wiring_api import workflow_service

    return AgentService(get_database(), model_resolver, workflow_service, tool_runtime)


def agent_variables() -> AgentVariables:
    from shared.agents.variables import AgentVariables
    from shared.db.database import get_database

    return AgentVariables(get_database())
