"""The container's agent service, wired to its database and the model resolver (read-only:
publishing checks models without loading a provider SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.agents.service import AgentService


def agent_service() -> AgentService:
    from shared.agents.service import AgentService
    from shared.db.database import get_database
    from shared.models.wiring import model_resolver

    return AgentService(get_database(), model_resolver)
