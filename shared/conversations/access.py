"""Who may see which conversation: the tenant, then the end user, then the agent a token is
bound to. Each miss answers like a missing resource (404), except a bound token asking for
another agent by name (403: the caller already knows that agent exists)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.auth.principal import Principal
from shared.conversations.api import MEMBER_PREFIX
from shared.conversations.errors import AgentNotAllowed, ConversationNotFound
from shared.errors import Forbidden

if TYPE_CHECKING:
    from shared.agents.contract import AgentResolver, ChatAgent

AGENT_RESOURCE = "agent"


def end_user_of(principal: Principal, user: str | None) -> str:
    """The client's ``user``, else the token owner's own conversations."""
    return user if user else f"{MEMBER_PREFIX}{principal.user}"


def bound_agent(principal: Principal) -> uuid.UUID | None:
    """The one agent a token may use, when it is bound to one. A key bound to another kind of
    app (a workflow) is an app key too: its binding, which no agent's id matches, reaches no
    agent or conversation."""
    return principal.resource_id if principal.resource_type is not None else None


def check_agent_allowed(principal: Principal, agent_id: uuid.UUID) -> None:
    bound = bound_agent(principal)
    if bound is not None and bound != agent_id:
        raise AgentNotAllowed(details={"agent_id": str(agent_id)})


def check_draft_allowed(principal: Principal) -> None:
    """A draft (debug) chat runs an unpublished configuration: for the agent's builders, never
    for a key handed to an app (bound to one agent)."""
    from shared.auth.permissions import require

    if bound_agent(principal) is not None:
        raise Forbidden("A key bound to an agent chats with its published version only",
                        code="auth_draft_not_allowed")
    require(principal, "agent:write")


def chat_agent_for(principal: Principal, agents: AgentResolver, agent_id: str, draft: bool) -> ChatAgent:
    """The agent (and configuration) a caller may chat with: a bound token is checked before
    anything about another agent is revealed, a draft needs a builder, then the published
    version (or draft) is resolved and checked against the binding again (slugs, too)."""
    from shared.agents.contract import agent_ref

    ref = agent_ref(agent_id)
    if isinstance(ref, uuid.UUID):
        check_agent_allowed(principal, ref)
    if draft:
        check_draft_allowed(principal)
    chat_agent = agents.resolve_for_chat(principal.tenant, ref, draft)
    check_agent_allowed(principal, chat_agent.agent.id)
    return chat_agent


def visible_conversation(conn: Any, principal: Principal, conversation_id: uuid.UUID, user: str | None, *,
                         lock: bool = False) -> dict[str, Any]:
    """The end user's live conversation, of the token's agent when the token is bound to one;
    anything else answers like a missing conversation."""
    from shared.conversations import repository as repo

    row = repo.get_conversation(conn, principal.tenant, conversation_id, end_user_of(principal, user), lock=lock)
    bound = bound_agent(principal)
    if row is None or (bound is not None and row["agent_id"] != bound):
        raise ConversationNotFound(details={"conversation_id": str(conversation_id)})
    return row
