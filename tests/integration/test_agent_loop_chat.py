"""Smart-reasoning chat turns through the local gateway (the chat function mounted as the local
runtime serves it), the embedded PostgreSQL and a scripted OpenAI-compatible server streaming
tool-call fragments: the built-in smart-reasoning agent calls a built-in tool and answers; the
steps are streamed (as documented), stored with the answer, returned by the messages API and
replayed; publishing checks the tools and the model's ability to call them."""

from __future__ import annotations

import uuid
from typing import Any

from shared.models.types import TOOL_CHOICES
from tests.integration.conftest import API_KEY
from tests.integration.test_chat import Tenant, chat_client, parse_sse, tenant
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript

__all__ = ["chat_client", "tenant"]  # the chat tests' fixtures, used here too


def _smart(tenant: Tenant, config: dict[str, Any], expect: int = 201) -> Any:
    body = {"name": f"smart {uuid.uuid4().hex[:6]}",
            "config": {"mode": "smart-reasoning", "model": {"name": "chatty"}, **config}}
    created = tenant.client.post("/api/v1/agents", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    agent = created.json()["data"]
    published = tenant.client.post(f"/api/v1/agents/{agent['id']}/publish", json={}, headers=tenant.headers)
    assert published.status_code == expect, published.text
    return agent if expect == 201 else published.json()


def test_the_builtin_smart_reasoning_agent_calls_a_tool_and_answers(tenant: Tenant, fake: FakeOpenAI) -> None:
    model = tenant.client.post("/api/v1/models", headers=tenant.headers, json={
        "name": "caller", "protocol": "openai", "provider_model": "gpt-caller", "base_url": fake.base_url,
        "api_key": API_KEY, "test": False, "capabilities": ["chat", "function_calling"]})
    assert model.status_code == 201, model.text
    defaults = tenant.client.put("/api/v1/models/defaults", json={"chat_model": "caller"}, headers=tenant.headers)
    assert defaults.status_code == 200, defaults.text
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("current_time", ['{"timez', 'one": "Europe/Paris"}'])]),
                 ChatScript(text=["It is ", "a fine day."]))
    events = tenant.stream({"agent_id": "builtin-smart-reasoning", "message": "What day is it?"})
    types = [e["type"] for e in events if e["type"] != "heartbeat"]
    assert types == ["message.start", "tool.call", "tool.result", "message.delta", "message.complete", "done"], types
    call, result = events[1]["data"], events[2]["data"]
    assert call["name"] == "current_time" and call["ref"] == "builtin/current_time"
    assert call["arguments"] == {"timezone": "Europe/Paris"}
    assert result["status"] == "ok" and '"timezone": "Europe/Paris"' in result["output"] and result["id"] == call["id"]
    complete = events[-2]["data"]
    assert complete["content"] == "It is a fine day." and complete["status"] == "completed"
    assert complete["steps"][0]["tool_calls"][0]["status"] == "ok" and len(complete["steps"]) == 2
    # The model was offered the built-in's tools, then given the call and its result.
    first, second = fake.chat_requests()[-2:]
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["current_time", "web_fetch"]
    assert first["stream"] is True and first["tool_choice"] == "auto"
    assert second["messages"][-2]["tool_calls"][0]["function"]["arguments"] == '{"timezone": "Europe/Paris"}'
    assert second["messages"][-1]["role"] == "tool" and "Europe/Paris" in second["messages"][-1]["content"]
    # Stored with the answer: the messages API returns the steps; a replay sends the same events.
    conversation_id, message_id = events[0]["data"]["conversation_id"], events[0]["data"]["message_id"]
    messages = tenant.client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=tenant.headers)
    stored = next(m for m in messages.json()["data"] if m["id"] == message_id)
    assert stored["steps"] == complete["steps"] and stored["steps"][0]["tool_calls"][0]["name"] == "current_time"
    question = next(m for m in messages.json()["data"] if m["role"] == "user")
    assert question["steps"] == []
    replay = tenant.client.get(f"/api/v1/chat/{message_id}/events", headers=tenant.headers)
    replayed = [e for e in parse_sse(replay.text) if e["type"] != "heartbeat"]
    assert [e["id"] for e in replayed] == [e["id"] for e in events if e["type"] != "heartbeat"]
    assert replayed[2]["data"] == result


def test_publish_checks_the_tools_and_the_model(tenant: Tenant) -> None:
    missing = str(uuid.uuid4())
    refused = _smart(tenant, {"tools": ["web_fetch", {"tool_id": missing}]}, expect=422)
    assert refused["code"] == "agent_config_invalid"
    assert refused["details"]["fields"][0]["field"] == "config.tools[1].tool_id"
    assert refused["details"]["fields"][0]["type"] == "tool_provider_not_found"
    # The tenant's model declares only chat: native function calling cannot be forced.
    native = _smart(tenant, {"tools": ["current_time"], "reasoning": "function_calling"}, expect=422)
    assert native["details"]["fields"][0]["field"] == "config.reasoning"
    assert native["details"]["fields"][0]["type"] == "model_capability_missing"
    _smart(tenant, {"tools": ["current_time"], "reasoning": "react"})
    _smart(tenant, {"tools": ["current_time"], "reasoning": "auto"})
    choice = _smart(tenant, {"tools": ["current_time"], "tool_choice": "forecast"}, expect=422)
    assert choice["details"]["fields"][0]["field"] == "config.tool_choice"
    _smart(tenant, {"tools": ["current_time"], "tool_choice": "current_time"})
    workflow = _smart(tenant, {"tools": [f"workflow/{uuid.uuid4()}"]}, expect=422)
    assert workflow["details"]["fields"][0]["field"] == "config.tools[0].operations[0]"
    # A name that is not a tool is refused when the draft is saved.
    bad = tenant.client.post("/api/v1/agents", json={"name": "bad tools", "config": {"tools": ["teleport"]}},
                             headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["details"]["fields"][0]["field"] == "body.config.tools.0"
    assert set(TOOL_CHOICES) == {"auto", "none", "required"}


def test_a_model_without_function_calling_reasons_with_react(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = _smart(tenant, {"tools": ["current_time"]})
    fake.enqueue(ChatScript(text=["Thought: I need the time.\nAction: current_time\n", "Action Input: {}"]),
                 ChatScript(text=["Thought: done\nFinal Answer: ", "Now."]))
    events = tenant.stream({"agent_id": agent["id"], "message": "Time?"})
    types = [e["type"] for e in events if e["type"] != "heartbeat"]
    assert types == ["message.start", "agent.thought", "tool.call", "tool.result", "message.delta",
                     "message.complete", "done"], types
    assert events[-2]["data"]["content"] == "Now." and events[-2]["data"]["steps"][0]["reasoning"] == "react"
    first = fake.chat_requests()[-2]
    assert "tools" not in first and first["stop"] == ["\nObservation:"]
    assert "Action Input:" in first["messages"][0]["content"]
