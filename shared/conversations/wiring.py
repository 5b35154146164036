"""The container's conversation service and turn store, wired to its database and the agent
service (built on first use: nothing is imported or connected when a handler module loads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.conversations.service import ConversationService
    from shared.conversations.turns import ConversationTurns


def conversation_service() -> ConversationService:
    from shared.agents.wiring import agent_service
    from shared.conversations.service import ConversationService
    from shared.db.database import get_database

    return ConversationService(get_database(), agent_service)


def turn_store() -> ConversationTurns:
    from shared.conversations.turns import ConversationTurns
    from shared.db.database import get_database

    return ConversationTurns(get_database())
