"""Who may see which conversation: the tenant, then the end user, then the agent a token is
bound to. Each miss answers like a missing resource (404), except a bound token asking for
another agent by name (403: the caller already knows that agent exists)."""

from __future__ import annotations

import uuid

from shared.auth.principal import Principal
from shared.conversations.api import MEMBER_PREFIX
from shared.conversations.errors import AgentNotAllowed
from shared.errors import Forbidden

AGENT_RESOURCE = "agent"


def end_user_of(principal: Principal, user: str | None) -> str:
    """The client's ``user``, else the token owner's own conversations."""
    return user if user else f"{MEMBER_PREFIX}{principal.user}"


def bound_agent(principal: Principal) -> uuid.UUID | None:
    """The one agent a token may use, when it is bound to one."""
    return principal.resource_id if principal.resource_type == AGENT_RESOURCE else None


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
