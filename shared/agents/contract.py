"""What the agents domain offers the others (chat and conversations today, workflow nodes
next): the agent a chat runs, resolved to the configuration it uses, and the plain types and
pure helpers that go with it. Callers depend on :class:`AgentResolver`, never on the service."""

from __future__ import annotations

import uuid
from typing import NamedTuple, Protocol

from shared.agents.api import AgentOut
from shared.agents.config import AgentConfig, AgentMode, render_system_prompt, resolve_user_variables
from shared.agents.paths import AgentRef, agent_ref, is_builtin_slug

__all__ = ["AgentConfig", "AgentMode", "AgentOut", "AgentRef", "AgentResolver", "AgentVariableStore", "ChatAgent",
           "agent_ref", "is_builtin_slug", "render_system_prompt", "resolve_user_variables"]


class ChatAgent(NamedTuple):
    """What a chat turn runs: the agent, the configuration it uses, and the published version
    number (None for a draft chat, or a built-in, whose configuration never changes)."""

    agent: AgentOut
    config: AgentConfig
    version: int | None


class AgentResolver(Protocol):
    def resolve_for_chat(self, tenant_id: uuid.UUID, ref: AgentRef, draft: bool = False) -> ChatAgent:
        """The latest published version (409 ``agent_not_published`` if none), or the draft
        when asked; a built-in runs its fixed configuration. Unseen agents are 404."""
        ...

    def agent_id(self, tenant_id: uuid.UUID, ref: AgentRef) -> uuid.UUID:
        """The id of an agent the tenant sees (a built-in's slug resolved); 404 otherwise."""
        ...


class AgentVariableStore(Protocol):
    def stored_values(self, tenant_id: uuid.UUID, agent_id: uuid.UUID, user: str) -> dict[str, str]:
        """The values kept for the end user ``user`` of the agent, by name (declared or not)."""
        ...
