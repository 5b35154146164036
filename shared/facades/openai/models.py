"""OpenAI's models API over agents: a model is an agent the key may chat with — a built-in
(by its slug) or a published agent of the tenant (by its id); a key bound to one agent sees
that one alone. Anything else is OpenAI's 404 ``model_not_found``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.facades.openai.api import Model, ModelList
from shared.facades.openai.chat import ModelNotFound

if TYPE_CHECKING:
    from shared.agents.api import AgentOut
    from shared.agents.service import AgentService
    from shared.auth.principal import Principal

# OpenAI's list has no pages: a tenant's first agents up to this many.
MAX_MODELS = 1000


def _model(agent: AgentOut) -> Model:
    return Model(id=agent.slug if agent.builtin and agent.slug else str(agent.id),
                 created=int((agent.published_at or agent.created_at).timestamp()),
                 owned_by="stratus" if agent.builtin else "tenant", name=agent.name, description=agent.description)


class OpenAIModels:
    def __init__(self, agents: Callable[[], AgentService]) -> None:
        self._agents = agents

    def list(self, principal: Principal) -> ModelList:
        from shared.conversations.access import bound_agent

        found = self._agents().chat_agents(principal.tenant, bound_agent(principal), MAX_MODELS)
        return ModelList(data=[_model(agent) for agent in found])

    def get(self, principal: Principal, model: str) -> Model:
        from shared.agents.contract import agent_ref
        from shared.agents.errors import AgentNotFound
        from shared.conversations.access import bound_agent

        try:
            ref = agent_ref(model)
            agent = self._agents().get_agent(principal, ref)
        except AgentNotFound:
            raise ModelNotFound(model) from None
        bound = bound_agent(principal)
        if (bound is not None and agent.id != bound) or not (agent.builtin or agent.published_version):
            raise ModelNotFound(model)
        return _model(agent)


def openai_models() -> OpenAIModels:
    from shared.agents.wiring import agent_service

    return OpenAIModels(agent_service)
