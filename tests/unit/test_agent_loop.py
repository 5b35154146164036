"""The smart-reasoning loop (shared/chat/agent_loop.py) inside a chat turn's lifecycle, with
in-memory ports of our own: a scripted model gateway (streamed text and tool-call fragments), a
tool runtime whose tools are Python functions, the in-memory turn store, event stream and
cancel flags. Bounds (iterations, time, tokens), failures as observations, parallel calls,
cancel while a tool runs, and the ReAct protocol."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from shared.agents.contract import AgentConfig, AgentOut, ChatAgent
from shared.auth.principal import Principal
from shared.cache.memory import MemoryEventStream, MemoryKeyValueStore
from shared.chat.agent_loop import NO_ANSWER, SmartReasoning
from shared.chat.api import ChatBody
from shared.chat.events import cancel_key, stream_key
from shared.chat.service import ChatDeps, ChatService, ChatSettings
from shared.models.spec import Capability
from shared.models.types import ChatRequest, StreamEnd, TextDelta, ToolCallDelta, Usage
from shared.tools.contract import BUILTIN, CallContext, ToolRef, ToolResult, ToolSelection, ToolSpec
from tests.support.turns import InMemoryTurnStore
from tests.unit.test_chat_turn import Models, Retriever

PROVIDER = str(uuid.UUID(int=7))


@pytest.fixture(autouse=True)
def _no_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import reset_settings

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    reset_settings()


def text(*pieces: str, usage: tuple[int, int] = (10, 5)) -> list[Any]:
    return [*(TextDelta(p) for p in pieces), StreamEnd("stop", Usage(*usage))]


def calls(*items: tuple[str, dict[str, Any] | str], thought: str = "", usage: tuple[int, int] = (10, 5)) -> list[Any]:
    events: list[Any] = [TextDelta(thought)] if thought else []
    for index, (name, arguments) in enumerate(items):
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        events.append(ToolCallDelta(index=index, id=f"call_{uuid.uuid4().hex[:6]}", name=name))
        # Split the arguments as a stream does.
        events += [ToolCallDelta(index=index, arguments=raw[i:i + 4]) for i in range(0, len(raw), 4)]
    return [*events, StreamEnd("tool_calls", Usage(*usage))]


class Gateway:
    """Streams the scripted steps in order (an empty script: a plain answer)."""

    def __init__(self, steps: Sequence[list[Any]], *, function_calling: bool = True) -> None:
        self.steps = list(steps)
        self.requests: list[ChatRequest] = []
        self.function_calling = function_calling

    def target(self, tenant_id: uuid.UUID, name: str | None, capability: Capability) -> Any:
        capabilities = {Capability.CHAT} | ({Capability.FUNCTION_CALLING} if self.function_calling else set())
        return SimpleNamespace(spec=SimpleNamespace(has=lambda c: c in capabilities))

    def stream_chat(self, tenant_id: uuid.UUID, request: ChatRequest, model: str | None = None,
                    fallback_model: str | None = None) -> tuple[Iterator[Any], None, str]:
        self.requests.append(request)
        events = self.steps.pop(0) if self.steps else text("plain answer")
        return iter(events), None, "m"


def spec(name: str, source: str = PROVIDER, timeout_s: float = 30) -> ToolSpec:
    return ToolSpec(ref=ToolRef(source, name), name=name, description=f"The {name} tool",
                    parameters={"type": "object", "properties": {}}, kind="openapi", provider_name="P",
                    timeout_s=timeout_s)


class Tools:
    """ToolCatalog and ToolExecutor over Python functions (arguments -> output, or a ToolResult)."""

    def __init__(self, functions: dict[str, Callable[[dict[str, Any]], Any]], source: str = PROVIDER) -> None:
        self.functions = functions
        self.source = source
        self.calls: list[tuple[str, dict[str, Any], float | None, CallContext | None]] = []
        self.listed: list[Sequence[ToolSelection] | None] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def list(self, tenant_id: uuid.UUID, selections: Sequence[ToolSelection] | None = None, *,
             refresh: bool = False) -> list[ToolSpec]:
        self.listed.append(selections)
        return [spec(name, self.source) for name in self.functions]

    def call(self, tenant_id: uuid.UUID, ref: ToolRef | str, arguments: Any, timeout_s: float | None = None, *,
             context: CallContext | None = None) -> ToolResult:
        name = ToolRef.parse(ref).name
        with self._lock:
            self.calls.append((name, dict(arguments), timeout_s, context))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            answer = self.functions[name](dict(arguments))
        finally:
            with self._lock:
                self.running -= 1
        return answer if isinstance(answer, ToolResult) else ToolResult("ok", str(answer), 3)


class Loop:
    def __init__(self, gateway: Gateway, tools: Tools, *, kv: MemoryKeyValueStore | None = None,
                 **config: Any) -> None:
        self.gateway = gateway
        self.tools = tools
        self.store = InMemoryTurnStore()
        self.kv = kv or MemoryKeyValueStore()
        self.events = MemoryEventStream()
        now = datetime.now(UTC)
        agent_config = AgentConfig.model_validate({"mode": "smart-reasoning", "model": {"name": "m"},
                                                   "tools": [{"tool_id": PROVIDER}], **config})
        agent = AgentOut(id=uuid.uuid4(), slug=None, builtin=False, name="a", description="", avatar=None,
                         config=agent_config, published_version=1, published_at=now, created_at=now,
                         updated_at=now, version=1)
        self.agents = SimpleNamespace(resolve_for_chat=lambda *a, **k: ChatAgent(agent, agent_config, 1),
                                      agent_id=lambda *a: agent.id)
        self.agent = agent
        self.principal = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(),
                                   user_id=uuid.uuid4(), role="owner", scopes=frozenset({"agent:run"}))
        self.strategy = SmartReasoning(lambda: tools, poll_s=0.01)
        self.deps = ChatDeps(
            conversations=lambda: self.store, agents=lambda: self.agents, resolver=lambda: Models(),  # type: ignore[arg-type,return-value]
            gateway=lambda: gateway, retrieval=lambda: Retriever(), kv=lambda: self.kv,  # type: ignore[arg-type,return-value]
            events=lambda: self.events, count_tokens=lambda t: len(t.split()),
            settings=ChatSettings(checkpoint_s=0), strategies={"smart-reasoning": self.strategy})
        self.service = ChatService(self.deps)

    def run(self, message: str = "What is the weather in Brest?") -> tuple[Any, list[Any]]:
        turn = self.service.start(self.principal, ChatBody(agent_id=str(self.agent.id), message=message))
        self.turn = turn
        seen: list[Any] = []
        final, error = self.service.run(turn, seen.append)
        assert error is None, error
        return final, seen


def kinds(seen: list[Any]) -> list[str]:
    return [e.type for e in seen]


def test_a_tool_call_and_its_result_lead_to_the_answer() -> None:
    gateway = Gateway([calls(("forecast", {"city": "Brest"}), thought="Let me look."),
                       text("Rain ", "in Brest.")])
    tools = Tools({"forecast": lambda args: f"rain in {args['city']}"})
    final, seen = Loop(gateway, tools).run()
    assert kinds(seen) == ["message.start", "agent.thought", "tool.call", "tool.result", "message.delta",
                           "message.complete", "done"]
    assert seen[1].data == {"step": 1, "text": "Let me look."}
    assert seen[2].data["name"] == "forecast" and seen[2].data["arguments"] == {"city": "Brest"}
    assert seen[2].data["ref"] == f"{PROVIDER}/forecast"
    assert seen[3].data["status"] == "ok" and seen[3].data["output"] == "rain in Brest"
    assert seen[3].data["id"] == seen[2].data["id"]
    assert final.status == "completed" and final.content == "Rain in Brest." and final.stop_reason == "stop"
    # The model was given the tool and, next, the call and its result.
    first, second = gateway.requests
    assert [t.name for t in first.tools] == ["forecast"] and first.tool_choice == "auto"
    assert [m.role for m in second.messages][-2:] == ["assistant", "tool"]
    assert second.messages[-2].tool_calls[0].arguments == '{"city": "Brest"}'
    assert second.messages[-1].content == "rain in Brest"
    # Every step is kept with the answer.
    assert [s.index for s in final.steps] == [1, 2]
    assert final.steps[0].thought == "Let me look." and final.steps[0].tool_calls[0].output == "rain in Brest"
    assert final.steps[1].tool_calls == [] and final.steps[0].reasoning == "function_calling"
    assert final.usage == {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30, "estimated": False}
    assert final.context is not None and final.context["iterations"] == 1 and final.context["tools"] == ["forecast"]


def test_failures_go_back_to_the_model_and_the_answer_still_comes() -> None:
    def broken(args: dict[str, Any]) -> Any:
        raise RuntimeError("a bug in the runtime")

    gateway = Gateway([calls(("down", {}), ("nope", {}), ("forecast", "{not json"), ("crash", {})),
                       text("Sorry, the tools failed.")])
    tools = Tools({"down": lambda args: ToolResult("error", "HTTP 503: down", 5, error_code="tool_http_error"),
                   "forecast": lambda args: "never", "crash": broken})
    final, seen = Loop(gateway, tools).run()
    results = {e.data["name"]: e.data for e in seen if e.type == "tool.result"}
    assert results["down"]["status"] == "error" and results["down"]["error_code"] == "tool_http_error"
    assert results["nope"]["status"] == "not_found"
    assert results["forecast"]["status"] == "invalid_arguments"
    assert results["crash"]["status"] == "error" and results["crash"]["error_code"] == "tool_internal_error"
    assert [c[0] for c in tools.calls if c[0] != "crash"] == ["down"]  # bad calls never reached a tool
    observations = [m.content for m in gateway.requests[1].messages if m.role == "tool"]
    assert observations[0].startswith("[error: tool_http_error] HTTP 503")
    # History holds a JSON object where the model's arguments were not one.
    assert [c.arguments for c in gateway.requests[1].messages[-5].tool_calls][2] == "{}"
    assert final.status == "completed" and final.content == "Sorry, the tools failed."


def test_max_iterations_stop_a_model_that_loops() -> None:
    gateway = Gateway([calls(("forecast", {})) for _ in range(10)])
    tools = Tools({"forecast": lambda args: "again"})
    final, _seen = Loop(gateway, tools, max_iterations=3).run()
    assert len(tools.calls) == 3 and len(gateway.requests) == 4
    assert gateway.requests[-1].tool_choice == "none"
    assert final.status == "completed" and final.stop_reason == "max_iterations"
    # The last step called tools again (ignored): the answer says it could not finish.
    assert final.content == NO_ANSWER and final.context is not None and final.context["iterations"] == 3


def test_the_token_budget_ends_the_tool_calls() -> None:
    gateway = Gateway([calls(("forecast", {}), usage=(900, 200)), calls(("forecast", {})), text("Done.")])
    tools = Tools({"forecast": lambda args: "x"})
    final, _ = Loop(gateway, tools, budget={"turn_tokens": 1000}).run()
    assert len(tools.calls) == 1 and final.stop_reason == "turn_tokens"
    assert gateway.requests[1].tool_choice == "none"


def test_parallel_calls_of_one_step_run_at_once_within_the_bound() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def slow(args: dict[str, Any]) -> str:
        barrier.wait()  # all three must be running together, or this times out
        return f"done {args['n']}"

    gateway = Gateway([calls(*(("slow", {"n": n}) for n in range(3))), text("ok")])
    tools = Tools({"slow": slow})
    started = time.monotonic()
    _final, seen = Loop(gateway, tools, budget={"parallel_tool_calls": 3}).run()
    assert time.monotonic() - started < 5 and tools.most_at_once == 3
    assert sorted(e.data["output"] for e in seen if e.type == "tool.result") == ["done 0", "done 1", "done 2"]
    # The bound holds: two at a time.
    gateway = Gateway([calls(*(("nap", {"n": n}) for n in range(4))), text("ok")])
    def nap(args: dict[str, Any]) -> str:
        time.sleep(0.05)
        return "z"

    tools = Tools({"nap": nap})
    Loop(gateway, tools, budget={"parallel_tool_calls": 2}).run()
    assert tools.most_at_once == 2 and len(tools.calls) == 4


def test_each_call_is_bounded_by_the_tool_timeout_and_the_agent_context_is_given() -> None:
    gateway = Gateway([calls(("forecast", {})), text("ok")])
    tools = Tools({"forecast": lambda args: "x"})
    Loop(gateway, tools, budget={"tool_timeout_s": 7}, knowledge={"knowledge_base_ids": [str(uuid.UUID(int=9))]}).run()
    _name, _, timeout, context = tools.calls[0]
    assert timeout == 7 and context is not None and context.knowledge_base_ids == (uuid.UUID(int=9),)
    # An agent with knowledge bases always has knowledge_search.
    assert ToolSelection(BUILTIN, ("knowledge_search",)) in (tools.listed[0] or [])


def test_an_agent_without_knowledge_bases_lets_its_model_search_none() -> None:
    from shared.tools.builtins import ArgumentProblem, knowledge_base_ids

    gateway = Gateway([calls(("forecast", {})), text("ok")])
    tools = Tools({"forecast": lambda args: "x"})
    Loop(gateway, tools).run()
    context = tools.calls[0][3]
    assert context is not None and context.knowledge_base_ids == ()
    # Bound to none: the knowledge bases a model names (any of the tenant's) are not searched.
    other = str(uuid.UUID(int=11))
    with pytest.raises(ArgumentProblem, match="no knowledge base"):
        knowledge_base_ids({"query": "q", "knowledge_base_ids": [other]}, context.knowledge_base_ids)
    assert knowledge_base_ids({"knowledge_base_ids": [other]}, None) == [uuid.UUID(other)]


def test_a_tool_that_never_answers_is_given_up_as_a_timeout() -> None:
    release = threading.Event()
    gateway = Gateway([calls(("stuck", {})), text("It timed out.")])
    tools = Tools({"stuck": lambda args: release.wait(10) and "late"})
    loop = Loop(gateway, tools, budget={"tool_timeout_s": 0.2})
    final, seen = loop.run()
    release.set()
    result = next(e.data for e in seen if e.type == "tool.result")
    assert result["status"] == "timeout" and final.content == "It timed out."


def test_cancel_stops_waiting_for_a_running_tool() -> None:
    kv = MemoryKeyValueStore()
    release = threading.Event()
    loop: Loop

    def stuck(args: dict[str, Any]) -> str:
        kv.set(cancel_key(loop.turn.answer_id), "1")  # the user cancels while the tool runs
        release.wait(10)
        return "late"

    gateway = Gateway([calls(("stuck", {})), text("never")])
    loop = Loop(gateway, Tools({"stuck": stuck}), kv=kv)
    started = time.monotonic()
    final, seen = loop.run()
    assert time.monotonic() - started < 5
    release.set()
    assert final.status == "cancelled" and len(gateway.requests) == 1
    result = next(e.data for e in seen if e.type == "tool.result")
    assert result["status"] == "cancelled"
    assert final.steps[0].tool_calls[0].status == "cancelled"
    # The stream holds every event, for a replay.
    stored = loop.events.read(stream_key(loop.turn.answer_id), None, count=100, block_ms=0)
    assert [e.type for e in stored] == kinds(seen)


def test_react_for_a_model_without_function_calling() -> None:
    gateway = Gateway([text("Thought: I need the forecast.\nAction: forecast\nAction Input: {\"city\": \"Brest\"}\n"
                            "Observation: made up"),
                       text("Thought: I know.\nFinal ", "Answer: Rain ", "in Brest.")], function_calling=False)
    tools = Tools({"forecast": lambda args: f"rain in {args['city']}"})
    final, seen = Loop(gateway, tools).run()
    assert kinds(seen) == ["message.start", "agent.thought", "tool.call", "tool.result", "message.delta",
                           "message.delta", "message.complete", "done"]
    assert final.content == "Rain in Brest." and final.steps[0].reasoning == "react"
    first, second = gateway.requests
    assert first.tools == [] and "Action Input:" in first.messages[0].content and "forecast" in \
        first.messages[0].content and first.stop == ["\nObservation:"]
    assert second.messages[-1].content == "Observation: rain in Brest"
    assert tools.calls[0][1] == {"city": "Brest"}


def test_react_can_be_forced_and_a_bad_action_is_an_observation() -> None:
    gateway = Gateway([text("Action: forecast\nAction Input: city=Brest"), text("Final Answer: unknown")])
    tools = Tools({"forecast": lambda args: "x"})
    final, seen = Loop(gateway, tools, reasoning="react").run()
    result = next(e.data for e in seen if e.type == "tool.result")
    assert result["status"] == "invalid_arguments" and tools.calls == []
    assert final.content == "unknown"


def test_tool_choice_forces_only_the_first_step() -> None:
    gateway = Gateway([calls(("forecast", {})), text("ok")])
    Loop(gateway, Tools({"forecast": lambda args: "x"}), tool_choice="forecast").run()
    assert [r.tool_choice for r in gateway.requests] == ["forecast", "auto"]
    gateway = Gateway([text("no tools")])
    final, _ = Loop(gateway, Tools({"forecast": lambda args: "x"}), tool_choice="none").run()
    assert gateway.requests[0].tools == [] and final.content == "no tools"


def test_a_long_answer_streams_as_it_comes() -> None:
    pieces = [f"word{n} " * 20 for n in range(5)]
    gateway = Gateway([text(*pieces)])
    final, seen = Loop(gateway, Tools({"forecast": lambda args: "x"})).run()
    assert kinds(seen).count("message.delta") > 1 and final.content == "".join(pieces)


def test_a_workflow_agent_node_runs_the_loop_outside_a_conversation() -> None:
    from shared.chat.headless import AgentAnswerer

    gateway = Gateway([calls(("forecast", {"city": "Brest"})), text("Rain.")])
    tools = Tools({"forecast": lambda args: "rain"})
    loop = Loop(gateway, tools)
    pieces: list[str] = []
    answer = AgentAnswerer(loop.deps).answer(loop.principal.tenant, str(loop.agent.id), "Weather?", {},
                                                   user=None, cancelled=threading.Event(), on_text=pieces.append)
    assert answer.text == "Rain." and pieces == ["Rain."] and answer.tokens == 30
    assert tools.calls[0][3] is not None and tools.calls[0][3].principal is None
    assert [step["index"] for step in answer.kept["steps"]] == [1, 2]
