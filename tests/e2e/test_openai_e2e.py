"""OpenAI's chat completions over Stratus's agents, driven by the official ``openai`` SDK against
the local runtime (``base_url=<stratus>/openai/v1``; docs/compatible-apis.md): an agent answers
as a model, streamed and not, with usage; the model list is the agents the key may use; errors
arrive as the SDK's own exceptions; a client that leaves mid-stream still gets its answer
stored. The upstream model is the local server speaking OpenAI's wire protocol."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.e2e.conftest import RunningRuntime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript

SYSTEM = "You answer questions about Stratus billing."


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, default_model="scripted")

    def agent(self, name: str, *, publish: bool = True, system_prompt: str = SYSTEM) -> str:
        agent = self.post("/api/v1/agents", {"name": name, "config": {"model": {"name": "scripted"},
                                                                      "system_prompt": system_prompt}})
        if publish:
            self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return str(agent["id"])

    def sdk(self, token: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.runtime.url}/openai/v1", api_key=token or self.token, max_retries=0,
                             timeout=60)


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    tenant = Tenant(runtime, fake, "e2e-openai")
    agent = tenant.agent("Billing helper")
    draft_only = tenant.agent("Work in progress", publish=False)
    stranger = Tenant(runtime, fake, "e2e-openai-stranger")
    return {"tenant": tenant, "agent": agent, "draft_only": draft_only, "stranger": stranger,
            "strangers_agent": stranger.agent("Not yours")}


def test_a_completion_answers_with_the_agent_and_the_client_s_history(setup: dict[str, Any],
                                                                      fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Invoices ", "go out ", "monthly."], usage=(120, 9)))
    completion = tenant.sdk().chat.completions.create(model=setup["agent"], user="alice", messages=[
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "Hi, I have a billing question."},
        {"role": "assistant", "content": "Sure, ask away."},
        {"role": "user", "content": [{"type": "text", "text": "When are invoices sent?"}]},
    ])
    assert completion.object == "chat.completion" and completion.model == setup["agent"]
    assert completion.id.startswith("chatcmpl-")
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == "Invoices go out monthly."
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        120, 9, 129)
    # The agent's model got the agent's prompt, then the client's, the history and the question.
    sent = fake.chat_requests()[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"].startswith(SYSTEM)
    assert sent[0]["content"].endswith("Answer in one sentence.")
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Hi, I have a billing question."), ("assistant", "Sure, ask away."),
        ("user", "When are invoices sent?")]
    # The answer is stored: a one-turn conversation of the end user, the completion's id its id.
    conversations = tenant.http.get("/api/v1/conversations", params={"user": "alice"},
                                    headers=tenant.headers).json()["data"]
    messages = tenant.http.get(f"/api/v1/conversations/{conversations[0]['id']}/messages",
                               params={"user": "alice"}, headers=tenant.headers).json()["data"]
    assert f"chatcmpl-{messages[0]['id']}" == completion.id and messages[0]["content"] == "Invoices go out monthly."


def test_a_streamed_completion_is_chunks_then_usage(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Twice ", "a ", "year."], usage=(50, 3)))
    stream = tenant.sdk().chat.completions.create(model=setup["agent"], stream=True,
                                                  stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "How often am I billed?"}])
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == setup["agent"] for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Twice a year."
    finishing = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert [chunk.choices[0].finish_reason for chunk in finishing] == ["stop"]
    # include_usage: one last chunk without choices, with the usage; the others carry none.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (50, 3)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    # Without the option, no usage chunk.
    fake.enqueue(ChatScript(text=["Yes."]))
    plain = list(tenant.sdk().chat.completions.create(model=setup["agent"], stream=True,
                                                      messages=[{"role": "user", "content": "Again?"}]))
    assert all(chunk.choices for chunk in plain) and "".join(c.choices[0].delta.content or "" for c in plain) == "Yes."


def test_a_built_in_agent_answers_by_its_slug(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Built in."]))
    completion = tenant.sdk().chat.completions.create(model="builtin-quick-answer",
                                                      messages=[{"role": "user", "content": "Who are you?"}])
    assert completion.choices[0].message.content == "Built in." and completion.model == "builtin-quick-answer"


def test_models_are_the_agents_the_key_may_use(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    models = {model.id: model for model in tenant.sdk().models.list()}
    assert setup["agent"] in models and "builtin-quick-answer" in models
    assert setup["draft_only"] not in models and setup["strangers_agent"] not in models
    assert models[setup["agent"]].object == "model" and models[setup["agent"]].owned_by == "tenant"
    assert tenant.sdk().models.retrieve(setup["agent"]).id == setup["agent"]
    # A key bound to one agent (a Dify-style app key) sees that one alone, and chats with it only.
    key = tenant.post("/api/v1/api-keys", {"name": "billing app", "resource_type": "agent",
                                           "resource_id": setup["agent"]})
    bound = tenant.sdk(key["token"])
    assert [model.id for model in bound.models.list()] == [setup["agent"]]
    with pytest.raises(openai.NotFoundError) as refused:
        bound.chat.completions.create(model="builtin-quick-answer", messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.code == "model_not_found"
    for model in (setup["strangers_agent"], setup["draft_only"], "no-such-model"):
        with pytest.raises(openai.NotFoundError):
            tenant.sdk().models.retrieve(model)


def test_errors_are_the_sdk_s_own(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    hello = [{"role": "user", "content": "Hello"}]
    with pytest.raises(openai.AuthenticationError) as bad_token:
        tenant.sdk("pat_not-a-real-token").chat.completions.create(model=setup["agent"], messages=hello)
    assert bad_token.value.status_code == 401 and bad_token.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        tenant.sdk("pat_not-a-real-token").models.list()
    with pytest.raises(openai.NotFoundError) as unknown:
        tenant.sdk().chat.completions.create(model="gpt-4o", messages=hello)
    assert unknown.value.code == "model_not_found" and "`gpt-4o`" in unknown.value.message
    assert unknown.value.body == {"message": unknown.value.body["message"],
                                  "type": "invalid_request_error", "param": "model", "code": "model_not_found"}
    with pytest.raises(openai.NotFoundError) as foreign:
        tenant.sdk().chat.completions.create(model=setup["strangers_agent"], messages=hello)
    assert foreign.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as streamed_foreign:
        tenant.sdk().chat.completions.create(model=setup["strangers_agent"], messages=hello, stream=True)
    assert streamed_foreign.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as empty:
        tenant.sdk().chat.completions.create(model=setup["agent"], messages=[])
    assert empty.value.status_code == 400 and empty.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as unknown_argument:
        tenant.sdk().chat.completions.create(model=setup["agent"], messages=hello,
                                             extra_body={"bogus": 1})
    assert "Unrecognized request argument supplied: bogus" in unknown_argument.value.message
    with pytest.raises(openai.BadRequestError) as last_not_user:
        tenant.sdk().chat.completions.create(model=setup["agent"], messages=[
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    assert last_not_user.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as tools:
        tenant.sdk().chat.completions.create(model=setup["agent"], messages=hello, tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    assert tools.value.param == "tools"
    # Unknown paths under /openai answer in OpenAI's shape too.
    with pytest.raises(openai.NotFoundError):
        tenant.sdk().embeddings.create(model=setup["agent"], input="x")


def _stored_answer(tenant: Tenant, user: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        conversations = tenant.http.get("/api/v1/conversations", params={"user": user},
                                        headers=tenant.headers).json()["data"]
        if conversations:
            (answer, _question) = tenant.http.get(f"/api/v1/conversations/{conversations[0]['id']}/messages",
                                                  params={"user": user}, headers=tenant.headers).json()["data"]
            if answer["status"] != "running":
                return dict(answer)
        assert time.monotonic() < deadline, "the answer was not stored"
        time.sleep(0.2)


def test_a_dropped_stream_still_stores_the_answer(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    words = [f"word{n} " for n in range(40)]
    fake.enqueue(ChatScript(text=words, chunk_delay_s=0.03))
    stream = tenant.sdk().chat.completions.create(model=setup["agent"], stream=True, user="leaver",
                                                  messages=[{"role": "user", "content": "Tell me everything"}])
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 4:
            break
    stream.close()
    answer = _stored_answer(tenant, "leaver")
    assert answer["status"] == "completed" and answer["content"] == "".join(words)
    assert seen[0].id == f"chatcmpl-{answer['id']}"


def test_the_agent_s_memory_limit_applies_to_the_client_s_history(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    agent = tenant.post("/api/v1/agents", {"name": "Short memory", "config": {"model": {"name": "scripted"},
                                                                             "memory": {"turns": 1}}})
    tenant.post(f"/api/v1/agents/{agent['id']}/publish", {})
    fake.reset()
    fake.enqueue(ChatScript(text=["Noted."]))
    tenant.sdk().chat.completions.create(model=agent["id"], messages=[
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "1"},
        {"role": "user", "content": "two"}, {"role": "assistant", "content": "2"},
        {"role": "user", "content": "three"}])
    sent = fake.chat_requests()[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [("user", "two"), ("assistant", "2"), ("user", "three")]


def test_a_smart_reasoning_agent_s_tool_steps_stay_out_of_openai_s_stream(setup: dict[str, Any],
                                                                        fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    tenant.post("/api/v1/models", {"name": "caller", "protocol": "openai", "provider_model": "gpt-caller",
                                   "base_url": fake.base_url, "api_key": "sk-e2e-" + "x" * 24, "test": False,
                                   "capabilities": ["chat", "function_calling"]})
    agent = tenant.post("/api/v1/agents", {"name": "Clock", "config": {
        "mode": "smart-reasoning", "model": {"name": "caller"}, "tools": ["current_time"]}})
    tenant.post(f"/api/v1/agents/{agent['id']}/publish", {})
    fake.reset()
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("current_time", ['{"timezone": "UTC"}'])]),
                 ChatScript(text=["It is ", "noon."]))
    chunks = list(tenant.sdk().chat.completions.create(
        model=agent["id"], stream=True, messages=[{"role": "user", "content": "What time is it?"}]))
    # The tool call and its result are the agent's business: the client sees the answer only.
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "It is noon."
    assert all(c.choices[0].delta.tool_calls is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert fake.chat_requests()[-1]["messages"][-1]["role"] == "tool"
