"""The container's chat service, wired to the conversations' turn store, the agents, its cache,
the model gateway and retrieval.
Built on first use; nothing here does I/O at import time."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.chat.headless import AgentAnswerer
    from shared.chat.service import ChatDeps, ChatService


def _count_tokens(text: str) -> int:
    """The local tokenizer's count, never below a byte-based floor: its vocabulary is English,
    so scripts it does not know (Thai, emoji…) would otherwise count as almost nothing."""
    import math

    from shared.models.gateway import estimate_tokens

    return max(estimate_tokens([text]), math.ceil(len(text.encode()) / 4))


def chat_deps() -> ChatDeps:
    from shared.agents.wiring import agent_service, agent_variables
    from shared.cache.factory import get_event_stream, get_kv_store
    from shared.chat.service import ChatDeps, ChatSettings
    from shared.config import get_settings
    from shared.conversations.wiring import turn_store
    from shared.files.wiring import files_service
    from shared.knowledge.wiring import retrieval_service
    from shared.models.wiring import model_gateway, model_resolver

    settings = get_settings()
    return ChatDeps(
        conversations=turn_store, agents=agent_service, resolver=model_resolver, gateway=model_gateway,
        retrieval=retrieval_service, kv=get_kv_store, events=get_event_stream, count_tokens=_count_tokens,
        variables=agent_variables, files=files_service,
        settings=ChatSettings(checkpoint_s=settings.chat_checkpoint_s, events_ttl_s=settings.chat_events_ttl_s,
                              stuck_after_s=settings.chat_stuck_after_s,
                              tool_outputs_ttl_s=settings.chat_tool_outputs_ttl_s))


@cache
def chat_service() -> ChatService:
    from shared.chat.service import ChatService

    return ChatService(chat_deps())


@cache
def agent_answerer() -> AgentAnswerer:
    """Agents answering outside a conversation (workflow agent nodes), with the chat's own
    generation strategies."""
    from shared.chat.headless import AgentAnswerer

    return AgentAnswerer(chat_deps())


def reset_chat_service() -> None:
    chat_service.cache_clear()
    agent_answerer.cache_clear()
