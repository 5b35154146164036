"""The chat turn's lifecycle around a generation strategy, with in-memory ports (turn store,
event stream, cancel flags) and no database, model or knowledge base: a new agent mode is a
strategy registered for it, and the lifecycle gives it events, checkpoints, cancellation,
memory and the one final write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from shared.agents.contract import AgentConfig, AgentOut, ChatAgent
from shared.auth.principal import Principal
from shared.cache.memory import MemoryEventStream, MemoryKeyValueStore
from shared.chat.api import ChatBody
from shared.chat.events import stream_key
from shared.chat.generation import Generation, GenerationStrategy, TurnContext
from shared.chat.service import ChatDeps, ChatService, ChatSettings
from shared.conversations.errors import AgentModeUnavailable
from shared.errors import StratusError
from shared.knowledge.contract import Retrieval, RetrievalQuery
from tests.support.turns import InMemoryTurnStore

MODE = "smart-reasoning"  # a mode without a strategy today


@pytest.fixture(autouse=True)
def _no_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import reset_settings

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    reset_settings()


class Agents:
    def __init__(self, mode: str) -> None:
        now = datetime.now(UTC)
        config = AgentConfig.model_validate({"mode": mode, "model": {"name": "m"},
                                             "system_prompt": "You are {{who}}.",
                                             "variables": [{"name": "who", "default": "kind"}]})
        self.agent = AgentOut(id=uuid.uuid4(), slug=None, builtin=False, name="a", description="", avatar=None,
                              config=config, published_version=1, published_at=now, created_at=now,
                              updated_at=now, version=1)

    def resolve_for_chat(self, tenant_id: uuid.UUID, ref: Any, draft: bool = False) -> ChatAgent:
        return ChatAgent(self.agent, self.agent.config, 1)

    def agent_id(self, tenant_id: uuid.UUID, ref: Any) -> uuid.UUID:
        return self.agent.id


class Models:
    spec = SimpleNamespace(max_context_tokens=8000, max_output_tokens=1000)

    def default_name(self, tenant_id: uuid.UUID, capability: Any) -> str:
        return "m"

    def fallback_name(self, tenant_id: uuid.UUID) -> None:
        return None

    def get(self, tenant_id: uuid.UUID, name: str, capability: Any) -> Any:
        return SimpleNamespace(spec=self.spec, name=name, source="tenant", id=uuid.UUID(int=1), version=1)


class Retriever:
    def __init__(self) -> None:
        self.queries: list[RetrievalQuery] = []

    def retrieve(self, tenant_id: uuid.UUID, query: RetrievalQuery) -> Retrieval:
        self.queries.append(query)
        return Retrieval(query=query.text, mode="hybrid", reranked=False, passages=[])


class Echo:
    """A test mode: remembers, retrieves, publishes its own event, then answers in deltas."""

    def __init__(self, words: list[str], *, fail: StratusError | None = None, cancel_after: int | None = None,
                 kv: MemoryKeyValueStore | None = None) -> None:
        self.words = words
        self.fail = fail
        self.cancel_after = cancel_after
        self.kv = kv
        self.seen: dict[str, Any] = {}

    def generate(self, ctx: TurnContext) -> Generation:
        self.seen.update(question=ctx.question, system_prompt=ctx.system_prompt, memory=ctx.memory(5),
                         output_tokens=ctx.output_tokens)
        found = ctx.retriever.retrieve(ctx.tenant_id, RetrievalQuery(knowledge_base_ids=[], text=ctx.question))
        ctx.publish("test.step", {"passages": len(found.passages)})
        ctx.keep(model="echo-1", references=[])
        for n, word in enumerate(self.words):
            if self.cancel_after is not None and n == self.cancel_after:
                assert self.kv is not None
                self.kv.set(f"chat:{{msg:{ctx.answer_id}}}:cancel", "1")
            ctx.delta(word)
        if self.fail is not None:
            raise self.fail
        return Generation(stop_reason="stop", usage={"input_tokens": 1, "output_tokens": len(self.words),
                                                     "total_tokens": 1 + len(self.words), "estimated": True})


class Harness:
    def __init__(self, strategies: dict[str, GenerationStrategy], kv: MemoryKeyValueStore | None = None) -> None:
        self.store = InMemoryTurnStore()
        self.kv = kv or MemoryKeyValueStore()
        self.events = MemoryEventStream()
        self.agents = Agents(MODE)
        self.retriever = Retriever()
        self.principal = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(),
                                   user_id=uuid.uuid4(), role="owner", scopes=frozenset({"agent:run"}))
        self.service = ChatService(ChatDeps(
            conversations=lambda: self.store, agents=lambda: self.agents, resolver=lambda: Models(),  # type: ignore[arg-type,return-value]
            gateway=lambda: None, retrieval=lambda: self.retriever, kv=lambda: self.kv,  # type: ignore[arg-type,return-value]
            events=lambda: self.events, count_tokens=lambda text: len(text.split()),
            settings=ChatSettings(checkpoint_s=0), strategies=strategies))

    def body(self, message: str, **extra: Any) -> ChatBody:
        return ChatBody(agent_id=str(self.agents.agent.id), message=message, **extra)


def test_a_registered_mode_runs_through_the_lifecycle() -> None:
    echo = Echo(["Hel", "lo"])
    h = Harness({MODE: echo})
    turn = h.service.start(h.principal, h.body("Hi there", inputs={"who": "a parrot"}))
    seen: list[Any] = []
    final, error = h.service.run(turn, seen.append)
    assert error is None and final.status == "completed" and final.content == "Hello"
    assert [e.type for e in seen] == ["message.start", "test.step", "message.delta", "message.delta",
                                      "message.complete", "done"]
    assert seen[0].data["created_conversation"] is True and seen[1].data == {"passages": 0}
    assert seen[-2].data["model"] == "echo-1" and seen[-1].data == {"status": "completed"}
    # Every event is in the answer's stream, replayable by id.
    stored = h.events.read(stream_key(turn.answer_id), None, count=100, block_ms=0)
    assert [e.id for e in stored] == [e.id for e in seen]
    assert echo.seen["system_prompt"] == "You are a parrot." and echo.seen["question"] == "Hi there"
    assert final.usage is not None and final.usage["output_tokens"] == 2
    assert final.latency is not None and final.latency["total_ms"] >= final.latency["first_token_ms"] >= 0
    # Checkpoints saved the answer as it grew.
    assert h.store.checkpoints == ["Hel", "Hello"]


def test_memory_follows_the_conversation() -> None:
    echo = Echo(["answer"])
    h = Harness({MODE: echo})
    first, _ = h.service.run(h.service.start(h.principal, h.body("one")))
    h.service.run(h.service.start(h.principal, h.body("two", conversation_id=first.conversation_id)))
    assert echo.seen["memory"] == [("one", "answer")]


def test_a_mode_without_a_strategy_is_refused_before_anything_is_stored() -> None:
    h = Harness({"quick-answer": Echo([])})
    with pytest.raises(AgentModeUnavailable):
        h.service.start(h.principal, h.body("hi"))
    assert h.store.messages == {}


def test_a_cancel_ends_the_answer_with_what_it_holds() -> None:
    kv = MemoryKeyValueStore()
    h = Harness({MODE: Echo(["a ", "b ", "c ", "d "], cancel_after=2, kv=kv)}, kv=kv)
    turn = h.service.start(h.principal, h.body("count"))
    seen: list[Any] = []
    final, error = h.service.run(turn, seen.append)
    assert error is None and final.status == "cancelled" and final.stop_reason == "cancelled"
    assert final.content == "a b c " and final.model == "echo-1"
    assert [e.type for e in seen][-2:] == ["message.complete", "done"]


def test_a_strategy_error_fails_the_answer_and_is_reported() -> None:
    failure = StratusError("the model went away", code="model_unavailable")
    h = Harness({MODE: Echo(["partial"], fail=failure)})
    turn = h.service.start(h.principal, h.body("hi"))
    seen: list[Any] = []
    final, error = h.service.run(turn, seen.append)
    assert error is failure and final.status == "failed" and final.content == "partial"
    assert final.error is not None and final.error.code == "model_unavailable"
    assert [e.type for e in seen][-2:] == ["error", "done"] and seen[-2].data["code"] == "model_unavailable"


def test_a_reaped_answer_stops_generating_and_keeps_the_reapers_verdict() -> None:
    h = Harness({MODE: Echo(["never", "kept"])})
    turn = h.service.start(h.principal, h.body("slow"))
    assert h.service.reap() == 1
    seen: list[Any] = []
    final, error = h.service.run(turn, seen.append)
    assert final.status == "failed" and error is not None and error.code == "chat_turn_timed_out"
    assert [e.type for e in seen][-2:] == ["error", "done"]
    # The reaper closed the stream for followers before the generator came back.
    replayed = [e for batch in h.service.replay(h.principal, turn.answer_id, None, None, 0) for e in batch]
    assert [e.type for e in replayed][:2] == ["error", "done"]
