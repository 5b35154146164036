"""Path and query parameters of the conversation API. A malformed id answers like a missing
conversation or message (404); ``user`` in a query string follows the body's rules (the
``member:`` prefix is reserved for the token owner's own conversations)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query

from shared.agents.paths import AgentRef, is_builtin_slug
from shared.conversations.api import EndUser
from shared.conversations.errors import ConversationNotFound, MessageNotFound
from shared.errors import ValidationFailed
from shared.ids import parse_id, path_id

UserQuery = Annotated[EndUser | None, Query(description="The end user (default: the token owner)")]
AgentFilterQuery = Annotated[str | None, Query(min_length=1, max_length=100,
                                               description="Only this agent's conversations (id or built-in slug)")]
OrderQuery = Annotated[Literal["desc", "asc"], Query(description="desc: newest first; asc: oldest first")]

def conversation_id(value: str) -> uuid.UUID:
    return path_id(value, ConversationNotFound(details={"conversation_id": value}))


def message_id(value: str) -> uuid.UUID:
    return path_id(value, MessageNotFound(details={"message_id": value}))


def agent_filter(value: str | None) -> AgentRef | None:
    """``?agent_id=``: an id or a built-in's slug; anything else is a 422 (a filter, not a path)."""
    if value is None:
        return None
    parsed = parse_id(value)
    if parsed is not None:
        return parsed
    if is_builtin_slug(value):
        return value
    raise ValidationFailed(details={"fields": [{"field": "query.agent_id", "type": "agent_ref",
                                                "message": "agent_id must be an agent id or a built-in's slug"}]})
