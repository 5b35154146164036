"""Client-side tools through the whole local runtime over HTTP (docs/adr/0051-client-side-tools.md):
a smart-reasoning agent's client tool pauses the turn (``message.requires_action`` then ``done``,
the answer stored ``requires_action``), and ``POST /api/v1/chat/{message_id}/tool-outputs``
continues the same answer, streamed or not; wrong ids, a second submit, an expired offer and
another tenant are refused in the envelope. The model is the local server speaking OpenAI's
wire protocol, scripted per test; its tool calls arrive as streamed fragments."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from httpx_sse import connect_sse

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript

LOCATE = {"name": "locate", "description": "The user's city, from the device",
          "parameters": {"type": "object", "properties": {"precision": {"type": "string"}}}}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    # Offers expire after 10 s here, so the expiry is seen without waiting ten minutes.
    running = start_runtime(tmp_path_factory.mktemp("e2e-client-tools") / "state", CHAT_TOOL_OUTPUTS_TTL_S="10")
    yield running
    running.stop()


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, models=(("caller", ["chat", "function_calling"]),))
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def agent(self, **config: Any) -> str:
        agent = self.post("/api/v1/agents", {"name": f"agent {uuid.uuid4().hex[:8]}", "config": {
            "mode": "smart-reasoning", "model": {"name": "caller"}, "tools": ["current_time"],
            "client_tools": [LOCATE], **config}})
        self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return str(agent["id"])

    def stream(self, path: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        seen = []
        with connect_sse(self.http, "POST", path, json=body) as source:
            assert source.response.status_code == 200, source.response.read()
            for event in source.iter_sse():
                if event.event != "heartbeat":
                    seen.append((event.event, event.json()))
        return seen


@pytest.fixture(scope="module")
def tenant(runtime: RunningRuntime, fake: FakeOpenAI) -> Tenant:
    return Tenant(runtime, fake, "e2e-client-tools")


@pytest.fixture(scope="module")
def agent(tenant: Tenant) -> str:
    return tenant.agent()


def _types(seen: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [kind for kind, _ in seen]


def _of(seen: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    return next(data for k, data in seen if k == kind)


def _pause(tenant: Tenant, fake: FakeOpenAI, agent: str, *then: ChatScript) -> tuple[dict[str, Any], str]:
    """A chat that pauses on ``locate`` (with the built-in clock called in the same step)."""
    fake.reset()
    fake.enqueue(ChatScript(text=["Where are you?"], tool_calls=[
        ToolCallScript("locate", ['{"precis', 'ion": "city"}']), ToolCallScript("current_time", ["{}"])]), *then)
    seen = tenant.stream("/api/v1/chat", {"agent_id": agent, "message": "Weather here?"})
    assert _types(seen) == ["message.start", "agent.thought", "tool.call", "tool.call", "tool.result",
                            "message.requires_action", "done"], seen
    action = _of(seen, "message.requires_action")
    assert _of(seen, "done") == {"status": "requires_action"}
    return action, action["tool_calls"][0]["id"]


def test_a_client_tool_pauses_the_turn_and_its_output_continues_it(tenant: Tenant, fake: FakeOpenAI,
                                                                   agent: str) -> None:
    action, call_id = _pause(tenant, fake, agent, ChatScript(text=["Rain ", "in Brest."]))
    assert action["type"] == "submit_tool_outputs" and action["tool_calls"] == [
        {"id": call_id, "name": "locate", "arguments": '{"precision": "city"}'}]
    # Offered to the model like the agent's own tools; the built-in ran, locate did not.
    assert sorted(t["function"]["name"] for t in fake.chat_requests()[0]["tools"]) == ["current_time", "locate"]
    message_id, conversation_id = action["message_id"], action["conversation_id"]
    stored = tenant.http.get(f"/api/v1/conversations/{conversation_id}/messages").json()["data"][0]
    assert stored["id"] == message_id and stored["status"] == "requires_action"
    assert stored["required_action"]["tool_calls"][0]["id"] == call_id
    assert {c["name"]: c["status"] for c in stored["steps"][0]["tool_calls"]} == {"locate": "pending",
                                                                                   "current_time": "ok"}
    # The conversation takes no other turn meanwhile.
    busy = tenant.post("/api/v1/chat", {"agent_id": agent, "conversation_id": conversation_id, "message": "Hi",
                                        "stream": False}, expect=409)
    assert busy["code"] == "conversation_busy"

    seen = tenant.stream(f"/api/v1/chat/{message_id}/tool-outputs",
                         {"tool_outputs": [{"tool_call_id": call_id, "output": '{"city": "Brest"}'}]})
    assert _types(seen) == ["message.start", "tool.result", "message.delta", "message.complete", "done"], seen
    assert _of(seen, "tool.result")["output"] == '{"city": "Brest"}'
    complete = _of(seen, "message.complete")
    assert complete["id"] == message_id and complete["status"] == "completed"
    assert complete["content"] == "Rain in Brest." and len(complete["steps"]) == 2
    # The model got its step back and both results, the client's answering its call.
    tools = {m["tool_call_id"]: m["content"] for m in fake.chat_requests()[-1]["messages"] if m["role"] == "tool"}
    assert tools[call_id] == '{"city": "Brest"}' and len(tools) == 2
    # Answered once: a second submit is a conflict.
    again = tenant.post(f"/api/v1/chat/{message_id}/tool-outputs",
                        {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}, expect=409)
    assert again["code"] == "chat_not_awaiting_tool_outputs"


def test_outputs_not_streamed_answer_the_final_message(tenant: Tenant, fake: FakeOpenAI, agent: str) -> None:
    action, call_id = _pause(tenant, fake, agent, ChatScript(text=["Sunny."]))
    response = tenant.post(f"/api/v1/chat/{action['message_id']}/tool-outputs",
                           {"tool_outputs": [{"tool_call_id": call_id, "output": "Nice"}], "stream": False},
                           expect=200)
    assert response["id"] == action["message_id"] and response["content"] == "Sunny."
    assert response["status"] == "completed"


def test_wrong_ids_and_another_tenant_change_nothing(runtime: RunningRuntime, tenant: Tenant, fake: FakeOpenAI,
                                                     agent: str) -> None:
    action, call_id = _pause(tenant, fake, agent, ChatScript(text=["Fine."]))
    path = f"/api/v1/chat/{action['message_id']}/tool-outputs"
    missing = tenant.post(path, {"tool_outputs": [{"tool_call_id": "call_nope", "output": "x"}]}, expect=422)
    assert missing["code"] == "chat_tool_outputs_invalid" and missing["details"]["missing"] == [call_id]
    assert [f["type"] for f in missing["details"]["fields"]] == ["unknown_tool_call", "missing"]
    twice = tenant.post(path, {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}] * 2}, expect=422)
    assert [f["type"] for f in twice["details"]["fields"]] == ["duplicate"]
    stranger = Tenant(runtime, fake, "e2e-client-tools-stranger")
    other = stranger.post(path, {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}, expect=404)
    assert other["code"] == "message_not_found"
    # Still waiting: the right outputs continue it.
    done = tenant.post(path, {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}], "stream": False},
                       expect=200)
    assert done["content"] == "Fine."


def test_a_paused_answer_can_be_cancelled(tenant: Tenant, fake: FakeOpenAI, agent: str) -> None:
    action, call_id = _pause(tenant, fake, agent)
    cancelled = tenant.post(f"/api/v1/chat/{action['message_id']}/cancel", {}, expect=202)
    assert cancelled["status"] == "cancelled"
    stored = tenant.http.get(f"/api/v1/conversations/{action['conversation_id']}/messages").json()["data"][0]
    assert stored["status"] == "cancelled"
    late = tenant.post(f"/api/v1/chat/{action['message_id']}/tool-outputs",
                       {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}, expect=409)
    assert late["code"] == "chat_not_awaiting_tool_outputs"


def test_an_expired_offer_is_its_own_conflict_and_fails_the_answer(tenant: Tenant, fake: FakeOpenAI,
                                                                   agent: str) -> None:
    import time

    action, call_id = _pause(tenant, fake, agent)
    time.sleep(10.5)
    path = f"/api/v1/chat/{action['message_id']}/tool-outputs"
    expired = tenant.post(path, {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}, expect=409)
    assert expired["code"] == "chat_tool_outputs_expired"
    stored = tenant.http.get(f"/api/v1/conversations/{action['conversation_id']}/messages").json()["data"][0]
    assert stored["status"] == "failed" and stored["error"]["code"] == "chat_tool_outputs_expired"
    gone = tenant.post(path, {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}, expect=409)
    assert gone["code"] == "chat_not_awaiting_tool_outputs"


def test_publishing_refuses_a_client_tool_named_like_an_agent_tool(tenant: Tenant) -> None:
    agent = tenant.post("/api/v1/agents", {"name": f"clash {uuid.uuid4().hex[:6]}", "config": {
        "mode": "smart-reasoning", "model": {"name": "caller"}, "tools": ["current_time"],
        "client_tools": [{"name": "current_time"}]}})
    refused = tenant.post(f"/api/v1/agents/{agent['id']}/publish", {}, expect=422)
    assert refused["details"]["fields"][0]["field"] == "config.client_tools[0].name"


# Coze (docs/coze-api.md), through the official cozepy SDK ----------------------------------------
def _coze(tenant: Tenant) -> Any:
    from cozepy import Coze, TokenAuth

    return Coze(auth=TokenAuth(tenant.token), base_url=f"{tenant.runtime.url}/coze")


def _coze_pause(tenant: Tenant, fake: FakeOpenAI, agent: str, *then: ChatScript) -> tuple[Any, list[Any]]:
    from cozepy import ChatEventType, Message

    fake.reset()
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("locate", ['{"precision": "city"}'])]), *then)
    events = list(_coze(tenant).chat.stream(bot_id=agent, user_id="carol",
                                            additional_messages=[Message.build_user_question_text("Weather?")]))
    kinds = [e.event for e in events]
    # cozepy ends the stream at done (it yields no event for it).
    assert kinds[-1] == ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION, kinds
    return events[-1].chat, events


def test_coze_stream_requires_action_then_submit_tool_outputs_streams_the_rest(tenant: Tenant, fake: FakeOpenAI,
                                                                               agent: str) -> None:
    from cozepy import ChatEventType, ChatStatus, MessageType, ToolOutput

    chat, events = _coze_pause(tenant, fake, agent, ChatScript(text=["Rain ", "in Brest."], usage=(30, 4)))
    assert chat.status == ChatStatus.REQUIRES_ACTION and chat.required_action is not None
    assert chat.required_action.type == "submit_tool_outputs"
    calls = chat.required_action.submit_tool_outputs.tool_calls
    assert [(c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("function", "locate", '{"precision": "city"}')]
    # The call was told as Coze tells a function call, before the pause.
    assert any(e.message is not None and e.message.type == MessageType.FUNCTION_CALL for e in events)
    coze = _coze(tenant)
    polled = coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert polled.status == ChatStatus.REQUIRES_ACTION
    assert polled.required_action.submit_tool_outputs.tool_calls[0].id == calls[0].id
    rest = list(coze.chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id, stream=True,
                                              tool_outputs=[ToolOutput(tool_call_id=calls[0].id, output="Brest")]))
    kinds = [e.event for e in rest]
    assert kinds[0] == ChatEventType.CONVERSATION_CHAT_IN_PROGRESS
    assert kinds[-2:] == [ChatEventType.CONVERSATION_MESSAGE_COMPLETED, ChatEventType.CONVERSATION_CHAT_COMPLETED]
    assert "".join(e.message.content for e in rest if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA
                   and e.message is not None) == "Rain in Brest."
    completed = rest[-1].chat
    assert completed.id == chat.id and completed.status == ChatStatus.COMPLETED
    assert completed.usage.token_count >= 34
    tool_message = [m for m in fake.chat_requests()[-1]["messages"] if m["role"] == "tool"]
    assert tool_message == [{"role": "tool", "tool_call_id": calls[0].id, "content": "Brest"}]


def test_the_history_a_coze_client_sent_is_remembered_after_the_pause(tenant: Tenant, fake: FakeOpenAI,
                                                                       agent: str) -> None:
    """additional_messages before the question are history the conversation does not hold: the
    continuation sends them to the model again, and they never show in the chat's answers."""
    from cozepy import ChatEventType, Message, ToolOutput

    fake.reset()
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("locate", ['{}'])]),
                 ChatScript(text=["Rain in Brest."]))
    coze = _coze(tenant)
    events = list(coze.chat.stream(bot_id=agent, user_id="dana", additional_messages=[
        Message.build_user_question_text("I am packing for a trip."),
        Message.build_assistant_answer("Where to?"),
        Message.build_user_question_text("Weather?")]))
    chat = events[-1].chat
    assert events[-1].event == ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION
    assert "history" not in coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id).model_dump()
    call = chat.required_action.submit_tool_outputs.tool_calls[0]
    list(coze.chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id, stream=True,
                                       tool_outputs=[ToolOutput(tool_call_id=call.id, output="Brest")]))
    sent = [m.get("content") for m in fake.chat_requests()[-1]["messages"] if m["role"] in ("user", "assistant")]
    assert sent[:3] == ["I am packing for a trip.", "Where to?", "Weather?"], sent


def test_coze_submit_not_streamed_answers_the_chat_in_progress_then_polls(tenant: Tenant, fake: FakeOpenAI,
                                                                          agent: str) -> None:
    import time

    from cozepy import ChatStatus, ToolOutput

    chat, _ = _coze_pause(tenant, fake, agent, ChatScript(text=["Sunny."]))
    call_id = chat.required_action.submit_tool_outputs.tool_calls[0].id
    coze = _coze(tenant)
    answered = coze.chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id, stream=False,
                                             tool_outputs=[ToolOutput(tool_call_id=call_id, output="Nice")])
    assert answered.id == chat.id and answered.status == ChatStatus.IN_PROGRESS
    deadline = time.monotonic() + 30
    while (polled := coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)).status \
            == ChatStatus.IN_PROGRESS and time.monotonic() < deadline:
        time.sleep(0.2)
    assert polled.status == ChatStatus.COMPLETED and polled.required_action is None
    listed = coze.chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert [m.type for m in listed][-3:] == ["function_call", "tool_response", "answer"]
    assert listed[-1].content == "Sunny." and listed[-2].content == "Nice"


def test_coze_refusals_are_coze_errors(runtime: RunningRuntime, tenant: Tenant, fake: FakeOpenAI,
                                       agent: str) -> None:
    from cozepy import CozeAPIError, ToolOutput

    chat, _ = _coze_pause(tenant, fake, agent, ChatScript(text=["Fine."]))
    coze = _coze(tenant)
    with pytest.raises(CozeAPIError) as wrong:
        coze.chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id, stream=False,
                                      tool_outputs=[ToolOutput(tool_call_id="call_nope", output="x")])
    assert wrong.value.code == 4000 and "call_nope" in (wrong.value.msg or "")
    stranger = Tenant(runtime, fake, "e2e-client-tools-coze-stranger")
    call_id = chat.required_action.submit_tool_outputs.tool_calls[0].id
    with pytest.raises(CozeAPIError) as other:
        _coze(stranger).chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id,
                                                 stream=False,
                                                 tool_outputs=[ToolOutput(tool_call_id=call_id, output="x")])
    assert other.value.code == 4002  # another tenant's conversation is not found
    rest = list(coze.chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id, stream=True,
                                              tool_outputs=[ToolOutput(tool_call_id=call_id, output="x")]))
    assert rest[-1].chat.status == "completed"
    with pytest.raises(CozeAPIError) as twice:
        coze.chat.submit_tool_outputs(conversation_id=chat.conversation_id, chat_id=chat.id, stream=False,
                                      tool_outputs=[ToolOutput(tool_call_id=call_id, output="x")])
    assert twice.value.code == 4000 and "not waiting" in (twice.value.msg or "")


def test_the_openai_facade_never_offers_client_tools(tenant: Tenant, fake: FakeOpenAI, agent: str) -> None:
    import openai

    fake.reset()
    fake.enqueue(ChatScript(text=["No tools of yours."]))
    client = openai.OpenAI(api_key=tenant.token, base_url=f"{tenant.runtime.url}/openai/v1")
    answer = client.chat.completions.create(model=agent, messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content == "No tools of yours."
    assert [t["function"]["name"] for t in fake.chat_requests()[0].get("tools", [])] == ["current_time"]
