"""Client-side tools (docs/adr/0051-client-side-tools.md): a smart-reasoning turn pauses when the
model calls a tool the client runs, and a submit of the outputs continues the same answer. Run
inside the chat turn's lifecycle with the in-memory ports of tests/unit/test_agent_loop.py: the
configuration's checks, the pause (server calls of the step run first, the answer stored
requires_action, the event, done), the resume (history rebuilt from the stored steps), the
refusals (ids, not waiting, twice, expired, another end user), the reaper, and APIs that
cannot answer client tools never being offered them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.agents.config import AgentConfig
from shared.agents.tooling import tool_problems
from shared.chat.api import ChatBody, ToolOutputsBody
from shared.conversations.errors import ChatNotAwaitingToolOutputs, ChatToolOutputsExpired, MessageNotFound
from shared.errors import ValidationFailed
from tests.unit.test_agent_loop import Gateway, Loop, Tools, calls, text

LOCATE = {"name": "locate", "description": "Where the user is (the client's GPS)",
          "parameters": {"type": "object", "properties": {"precision": {"type": "string"}}}}


@pytest.fixture(autouse=True)
def _no_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import reset_settings

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    reset_settings()


def _loop(gateway: Gateway, tools: Tools | None = None, **config: Any) -> Loop:
    return Loop(gateway, tools or Tools({"forecast": lambda args: f"rain in {args['city']}"}),
                client_tools=[LOCATE], **config)


def _start(loop: Loop, *, client_tools: bool = True) -> tuple[Any, list[Any]]:
    turn = loop.service.start(loop.principal, ChatBody(agent_id=str(loop.agent.id), message="Weather here?"),
                              client_tools=client_tools)
    seen: list[Any] = []
    final, error = loop.service.run(turn, seen.append)
    assert error is None, error
    return final, seen


def _submit(loop: Loop, message_id: uuid.UUID, outputs: dict[str, str]) -> tuple[Any, list[Any]]:
    body = ToolOutputsBody(tool_outputs=[{"tool_call_id": k, "output": v} for k, v in outputs.items()])
    turn = loop.service.resume(loop.principal, message_id, body)
    seen: list[Any] = []
    final, error = loop.service.run(turn, seen.append)
    assert error is None, error
    return final, seen


def _paused(loop: Loop) -> tuple[Any, list[Any]]:
    final, seen = _start(loop)
    assert final.status == "requires_action", final
    return final, seen


def test_a_client_tool_call_pauses_the_turn_after_the_steps_server_calls() -> None:
    gateway = Gateway([calls(("locate", {"precision": "city"}), ("forecast", {"city": "Brest"}), thought="Hm.")])
    tools = Tools({"forecast": lambda args: f"rain in {args['city']}"})
    final, seen = _paused(_loop(gateway, tools))
    assert [e.type for e in seen] == ["message.start", "agent.thought", "tool.call", "tool.call", "tool.result",
                                      "message.requires_action", "done"]
    # Offered to the model next to the agent's own tools; never run here.
    assert sorted(t.name for t in gateway.requests[0].tools) == ["forecast", "locate"]
    assert [c[0] for c in tools.calls] == ["forecast"]
    client_call = seen[2].data
    assert client_call["name"] == "locate" and client_call["ref"] == "client/locate"
    action = seen[5].data
    assert action["type"] == "submit_tool_outputs" and action["message_id"] == str(final.id)
    assert [(c["id"], c["name"], c["arguments"]) for c in action["tool_calls"]] == [
        (client_call["id"], "locate", '{"precision": "city"}')]
    assert seen[-1].data == {"status": "requires_action"}
    # Stored: the pending call in the step (with the server call's result), the action, its expiry.
    assert final.stop_reason == "requires_action" and final.finished_at is None
    statuses = {c.name: (c.status, c.output) for c in final.steps[0].tool_calls}
    assert statuses == {"locate": ("pending", ""), "forecast": ("ok", "rain in Brest")}
    assert final.required_action.tool_calls[0].id == client_call["id"]
    assert timedelta(seconds=590) < final.required_action.expires_at - datetime.now(UTC) <= timedelta(seconds=600)
    assert final.usage["total_tokens"] == 15


def test_the_outputs_continue_the_same_answer_from_where_it_paused() -> None:
    gateway = Gateway([calls(("locate", {"precision": "city"}), ("forecast", {"city": "Brest"}), thought="Hm."),
                       text("Rain ", "where you are.")])
    loop = _loop(gateway)
    paused, seen = _paused(loop)
    call_id = seen[2].data["id"]
    final, resumed = _submit(loop, paused.id, {call_id: '{"city": "Brest"}'})
    assert [e.type for e in resumed] == ["message.start", "tool.result", "message.delta", "message.complete",
                                         "done"]
    assert resumed[0].data["message_id"] == str(paused.id) and resumed[0].data["created_conversation"] is False
    assert resumed[1].data == {"step": 1, "id": call_id, "name": "locate", "status": "ok",
                               "output": '{"city": "Brest"}', "truncated": False, "elapsed_ms": 0,
                               "error_code": None}
    assert final.id == paused.id and final.status == "completed" and final.content == "Rain where you are."
    # The model got its own step back (thought, both calls) and both results, after the question.
    second = gateway.requests[1]
    assert [m.role for m in second.messages][-4:] == ["user", "assistant", "tool", "tool"]
    assistant = second.messages[-3]
    assert assistant.content == "Hm." and [c.name for c in assistant.tool_calls] == ["locate", "forecast"]
    assert {m.tool_call_id: m.content for m in second.messages[-2:]}[call_id] == '{"city": "Brest"}'
    assert second.messages[-4].content == "Weather here?"
    # One answer, every step, the whole turn's usage.
    assert [s.index for s in final.steps] == [1, 2]
    assert [c.status for c in final.steps[0].tool_calls] == ["ok", "ok"]
    assert final.usage["total_tokens"] == 30 and final.required_action is not None
    assert loop.store.messages[final.id]["status"] == "completed"


def test_a_resumed_turn_may_pause_again() -> None:
    gateway = Gateway([calls(("locate", {})), calls(("locate", {"precision": "street"})), text("Done.")])
    loop = _loop(gateway)
    first, seen = _paused(loop)
    second, again = _submit(loop, first.id, {seen[1].data["id"]: "Brest"})
    assert second.status == "requires_action" and [e.type for e in again][-2:] == ["message.requires_action",
                                                                                     "done"]
    call_id = second.required_action.tool_calls[0].id
    final, _ = _submit(loop, first.id, {call_id: "Rue de Siam"})
    assert final.status == "completed" and final.content == "Done." and len(final.steps) == 3


def _problem(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [p["type"] for p in exc.value.details["fields"]]


def test_every_pending_call_takes_one_output_and_bad_input_changes_nothing() -> None:
    loop = _loop(Gateway([calls(("locate", {}), ("locate", {"precision": "street"}))]))
    paused, _ = _paused(loop)
    first, second = (c.id for c in paused.required_action.tool_calls)
    for outputs, expected in (([(first, "a")], ["missing"]),
                              ([(first, "a"), (second, "b"), ("nope", "c")], ["unknown_tool_call"]),
                              ([(first, "a"), (first, "again"), (second, "b")], ["duplicate"])):
        body = ToolOutputsBody(tool_outputs=[{"tool_call_id": i, "output": o} for i, o in outputs])
        with pytest.raises(ValidationFailed) as exc:
            loop.service.resume(loop.principal, paused.id, body)
        assert exc.value.status == 422 and exc.value.code == "chat_tool_outputs_invalid"
        assert _problem(exc) == expected
        assert loop.store.messages[paused.id]["status"] == "requires_action"
    with pytest.raises(ValidationError):
        ToolOutputsBody(tool_outputs=[])


def test_only_a_waiting_answer_resumes_and_only_once() -> None:
    loop = _loop(Gateway([calls(("locate", {})), text("Done.")]))
    paused, seen = _paused(loop)
    call_id = seen[1].data["id"]
    body = ToolOutputsBody(tool_outputs=[{"tool_call_id": call_id, "output": "Brest"}])
    turn = loop.service.resume(loop.principal, paused.id, body)
    # Claimed: a second submit meanwhile is refused, and so is one after the end.
    with pytest.raises(ChatNotAwaitingToolOutputs) as exc:
        loop.service.resume(loop.principal, paused.id, body)
    assert exc.value.status == 409
    loop.service.run(turn)
    with pytest.raises(ChatNotAwaitingToolOutputs):
        loop.service.resume(loop.principal, paused.id, body)


def test_an_expired_offer_fails_the_answer() -> None:
    loop = _loop(Gateway([calls(("locate", {}))]))
    paused, seen = _paused(loop)
    loop.store.messages[paused.id]["action_expires_at"] = datetime.now(UTC) - timedelta(seconds=1)
    body = ToolOutputsBody(tool_outputs=[{"tool_call_id": seen[1].data["id"], "output": "Brest"}])
    with pytest.raises(ChatToolOutputsExpired) as exc:
        loop.service.resume(loop.principal, paused.id, body)
    assert exc.value.status == 409 and exc.value.code == "chat_tool_outputs_expired"
    row = loop.store.messages[paused.id]
    assert row["status"] == "failed" and row["error_code"] == "chat_tool_outputs_expired"


def test_the_reaper_fails_an_expired_pause_but_not_a_live_one() -> None:
    loop = _loop(Gateway([calls(("locate", {}))]))
    paused, _ = _paused(loop)
    assert loop.service.reap() == 0 and loop.store.messages[paused.id]["status"] == "requires_action"
    loop.store.messages[paused.id]["action_expires_at"] = datetime.now(UTC) - timedelta(seconds=1)
    assert loop.service.reap() == 1
    assert loop.store.messages[paused.id]["error_code"] == "chat_tool_outputs_expired"
    assert [e.type for e in loop.events.read(f"chat:{{msg:{paused.id}}}:events", None, count=100)][-2:] == [
        "error", "done"]


def test_another_end_users_answer_is_not_found() -> None:
    loop = _loop(Gateway([calls(("locate", {}))]))
    paused, seen = _paused(loop)
    body = ToolOutputsBody(tool_outputs=[{"tool_call_id": seen[1].data["id"], "output": "x"}], user="someone")
    with pytest.raises(MessageNotFound):
        loop.service.resume(loop.principal, paused.id, body)
    assert loop.store.messages[paused.id]["status"] == "requires_action"


def test_a_paused_conversation_takes_no_new_turn_until_it_ends() -> None:
    from shared.conversations.errors import ConversationBusy

    loop = _loop(Gateway([calls(("locate", {}))]))
    paused, _ = _paused(loop)
    body = ChatBody(agent_id=str(loop.agent.id), message="And now?", conversation_id=paused.conversation_id)
    with pytest.raises(ConversationBusy):
        loop.service.start(loop.principal, body, client_tools=True)
    loop.store.messages[paused.id]["action_expires_at"] = datetime.now(UTC) - timedelta(seconds=1)
    loop.service.start(loop.principal, body, client_tools=True)  # expired: the conversation goes on
    assert loop.store.messages[paused.id]["status"] == "failed"


def test_apis_that_cannot_answer_client_tools_never_offer_them() -> None:
    gateway = Gateway([text("No tools of yours.")])
    final, _ = _start(_loop(gateway), client_tools=False)
    assert final.status == "completed" and [t.name for t in gateway.requests[0].tools] == ["forecast"]


def test_a_client_tool_with_bad_arguments_goes_back_to_the_model() -> None:
    gateway = Gateway([calls(("locate", "{not json")), text("Sorry.")])
    final, seen = _start(_loop(gateway))
    assert final.status == "completed"
    assert [e.data["status"] for e in seen if e.type == "tool.result"] == ["invalid_arguments"]


def test_react_pauses_and_resumes_too() -> None:
    gateway = Gateway([text('Thought: where?\nAction: locate\nAction Input: {"precision": "city"}'),
                       text("Final Answer: Rain in Brest.")], function_calling=False)
    loop = _loop(gateway)
    paused, _ = _paused(loop)
    assert paused.steps[0].reasoning == "react"
    final, _ = _submit(loop, paused.id, {paused.required_action.tool_calls[0].id: "Brest"})
    assert final.content == "Rain in Brest."
    last = gateway.requests[1].messages
    assert last[-2].role == "assistant" and "Action: locate" in last[-2].content
    assert last[-1].role == "user" and "Brest" in last[-1].content


# Configuration ----------------------------------------------------------------------------------
@pytest.mark.parametrize("client_tools", [
    [{"name": "bad name"}],
    [{"name": "a"}, {"name": "a"}],
    [{"name": "a", "parameters": {"type": "string"}}],
    [{"name": "a", "parameters": {"type": "object", "properties": {"x": 1}}}],
    [{"name": "a", "parameters": {"type": "object", "properties": {}, "required": ["x"]}}],
    [{"name": "a", "description": "x" * 1001}],
])
def test_client_tools_are_validated(client_tools: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        AgentConfig.model_validate({"mode": "smart-reasoning", "client_tools": client_tools})


def test_publishing_refuses_a_client_tool_named_like_one_of_the_agents_tools() -> None:
    tools = Tools({"forecast": lambda args: ""})
    config = AgentConfig.model_validate({"mode": "smart-reasoning", "tools": [{"tool_id": tools.source}],
                                         "client_tools": [{"name": "forecast"}, LOCATE], "tool_choice": "locate"})
    problems = tool_problems(tools, uuid.uuid4(), config)  # type: ignore[arg-type]
    assert [(p["field"], p["type"]) for p in problems] == [("config.client_tools[0].name", "duplicate")]
    fine = config.model_copy(update={"client_tools": config.client_tools[1:]})
    assert tool_problems(tools, uuid.uuid4(), fine) == []  # type: ignore[arg-type]


# Coze's wire format -------------------------------------------------------------------------------
def test_coze_shows_a_pause_as_requires_action_with_its_tool_calls() -> None:
    import json

    from shared.cache.ports import StreamEvent
    from shared.facades.coze.chat import CozeChatStream, CozeTurn, answer_chat

    loop = _loop(Gateway([calls(("locate", {"precision": "city"}))]))
    paused, seen = _paused(loop)
    chat = answer_chat(paused, str(paused.agent_id))
    assert chat.status == "requires_action" and chat.required_action is not None
    wire = chat.model_dump(mode="json", exclude_none=True)["required_action"]
    assert wire == {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
        {"id": paused.required_action.tool_calls[0].id, "type": "function",
         "function": {"name": "locate", "arguments": '{"precision": "city"}'}}]}}
    action = next(e for e in seen if e.type == "message.requires_action")
    turn = CozeTurn(loop.service.start(loop.principal, ChatBody(agent_id=str(loop.agent.id), message="x")),
                    "bot", str(paused.conversation_id), 0, {})
    frame = CozeChatStream(turn).frames(StreamEvent(action.id, action.type, action.data))[0].decode()
    assert frame.startswith("event:conversation.chat.requires_action\n")
    data = json.loads(frame.split("data:", 1)[1])
    assert data["status"] == "requires_action" and data["required_action"] == wire
    # A continued chat only goes back in progress (it was created long ago).
    start = next(e for e in seen if e.type == "message.start")
    resumed = CozeChatStream(turn, resumed=True).frames(StreamEvent(start.id, start.type, start.data))
    assert [f.decode().split("\n", 1)[0] for f in resumed] == ["event:conversation.chat.in_progress"]


def test_a_paused_answer_is_cancelled_at_once_and_frees_its_conversation() -> None:
    loop = _loop(Gateway([calls(("locate", {}))]))
    paused, seen = _paused(loop)
    out = loop.service.cancel(loop.principal, paused.id, None)
    assert (out.status, out.cancel_requested) == ("cancelled", True)
    row = loop.store.messages[paused.id]
    assert row["status"] == "cancelled" and row["steps"][0]["tool_calls"][0]["status"] == "pending"
    body = ToolOutputsBody(tool_outputs=[{"tool_call_id": seen[1].data["id"], "output": "x"}])
    with pytest.raises(ChatNotAwaitingToolOutputs):
        loop.service.resume(loop.principal, paused.id, body)
    again = ChatBody(agent_id=str(loop.agent.id), message="Next", conversation_id=paused.conversation_id)
    loop.service.start(loop.principal, again, client_tools=True)


# Races (review) -----------------------------------------------------------------------------------
def test_a_cancel_that_loses_the_race_to_a_submit_still_stops_the_continued_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loop = _loop(Gateway([calls(("locate", {})), text("Never said.")]))
    paused, seen = _paused(loop)
    body = ToolOutputsBody(tool_outputs=[{"tool_call_id": seen[1].data["id"], "output": "Brest"}])
    turn = loop.service.resume(loop.principal, paused.id, body)  # the submit claims it first
    # The cancel read the answer while it was still paused.
    monkeypatch.setattr(loop.store, "visible_answer", lambda *a: paused)
    out = loop.service.cancel(loop.principal, paused.id, None)
    assert (out.status, out.cancel_requested) == ("running", True)
    final, _ = loop.service.run(turn)
    assert final.status == "cancelled"


def test_a_cancel_asked_while_the_step_ran_is_not_lost_to_the_pause() -> None:
    loop = _loop(Gateway([calls(("locate", {}), ("forecast", {"city": "Brest"}))]))
    asked: list[Any] = []

    def forecast(args: dict[str, Any]) -> str:
        # The client cancels while the step's server call runs: the answer is running then.
        answer_id = next(k for k, r in loop.store.messages.items() if r["role"] == "assistant")
        asked.append(loop.service.cancel(loop.principal, answer_id, None))
        return "rain"

    loop.tools = Tools({"forecast": forecast})
    loop.strategy._tools = lambda: loop.tools  # type: ignore[assignment]
    final, seen = _start(loop)
    assert asked[0].status == "running"
    assert final.status == "cancelled" and seen[-1].data == {"status": "cancelled"}
    assert loop.store.messages[final.id]["status"] == "cancelled"



def test_a_stale_submit_does_not_claim_the_next_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = _loop(Gateway([calls(("locate", {})), calls(("locate", {"precision": "street"})), text("Done.")]))
    first, seen = _paused(loop)
    old = ToolOutputsBody(tool_outputs=[{"tool_call_id": seen[1].data["id"], "output": "Brest"}])
    second, _ = _submit(loop, first.id, {seen[1].data["id"]: "Brest"})
    assert second.status == "requires_action"
    # A repeat of the first submit, checked against the first pause, claims after the second began.
    monkeypatch.setattr(loop.store, "visible_answer", lambda *a: first)
    with pytest.raises(ChatNotAwaitingToolOutputs):
        loop.service.resume(loop.principal, first.id, old)
    assert loop.store.messages[first.id]["status"] == "requires_action"


def test_a_tool_choice_naming_a_client_tool_is_not_sent_where_client_tools_are_not_offered() -> None:
    # Publishing lets tool_choice name a client tool; the OpenAI and Dify APIs never offer them,
    # so the model must not be told to call a tool it was not given (a provider refuses that).
    gateway = Gateway([text("No tools of yours.")])
    final, _ = _start(_loop(gateway, tool_choice="locate"), client_tools=False)
    assert final.status == "completed"
    request = gateway.requests[0]
    assert [t.name for t in request.tools] == ["forecast"] and request.tool_choice == "auto"
