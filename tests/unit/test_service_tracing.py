"""Every public entry point of the tenancy, models, agents, conversations, chat and retrieval
services and of the workflow interpreter is traced (an X-Ray subsegment per use case,
Powertools' ``tracer.capture_method``; the other knowledge services:
tests/unit/knowledge/test_tracing.py)."""

from __future__ import annotations

import inspect

import pytest

from shared.agents.service import AgentService
from shared.chat.service import ChatService
from shared.conversations.service import ConversationService
from shared.knowledge.retrieval import RetrievalService
from shared.models.service import ModelService
from shared.tenancy.service import TenancyService
from shared.workflows.interpreter import Interpreter


@pytest.mark.parametrize("service", [TenancyService, ModelService, AgentService, ConversationService, ChatService,
                                     RetrievalService, Interpreter], ids=lambda c: c.__name__)
def test_public_methods_are_traced(service: type) -> None:
    public = [name for name, member in vars(service).items()
              if inspect.isfunction(member) and not name.startswith("_")]
    assert public
    untraced = [name for name in public if not hasattr(getattr(service, name), "__wrapped__")]
    assert not untraced, f"{service.__name__}: not traced: {untraced}"
