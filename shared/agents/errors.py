"""Agent errors (mapped to the envelope by ``shared.http.api``)."""

from __future__ import annotations

from typing import Any

from shared.errors import Conflict, Forbidden, NotFound


class AgentNotFound(NotFound):
    code, default_message = "agent_not_found", "Agent not found"


class AgentVersionNotFound(NotFound):
    code, default_message = "agent_version_not_found", "Agent version not found"


class AgentNameTaken(Conflict):
    code, default_message = "agent_name_taken", "An agent with this name exists"


class AgentVersionConflict(Conflict):
    code, default_message = "agent_version_conflict", "The agent changed since it was read; read it again"


class AgentNotPublished(Conflict):
    code, default_message = ("agent_not_published",
                             "The agent has no published version: publish it, or send \"draft\": true to talk to its "
                             "draft (debug chat)")

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        # The request field that asks for the draft, for clients that act on details.
        super().__init__(message, details={**(details or {}), "field": "draft"})


class AgentBuiltinReadonly(Forbidden):
    code, default_message = ("agent_builtin_readonly",
                             "Built-in agents cannot be changed, published or deleted; copy one to edit it")
