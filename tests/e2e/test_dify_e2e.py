"""Dify's service API over Stratus's agents and workflows, driven by the official Dify Python
client (``dify-client`` 0.1.10: ``ChatClient``, ``CompletionClient``, ``DifyClient``, pointed at
``<stratus>/dify/v1``) against the local runtime (docs/dify-api.md). The app key is a Stratus key
bound to an agent or a workflow. Routes the client has no method for (stop, delete, info, workflow
runs) are called with httpx, with the wire the client would send (its ``_send_request``: bearer
token, JSON body). The upstream model is the local server speaking OpenAI's wire protocol."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from dify_client import ChatClient, CompletionClient, DifyClient

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript

HEARTBEAT_S = 1
SYSTEM = "You answer questions about {{product}} billing."


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    # A short heartbeat: a quiet stream shows Dify's ping within the test.
    running = start_runtime(tmp_path_factory.mktemp("e2e-dify") / "state", CHAT_HEARTBEAT_S=str(HEARTBEAT_S))
    yield running
    running.stop()


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, models=(("scripted", ["chat"]), ("caller", ["chat", "function_calling"])),
                         default_model="scripted")

    def agent(self, name: str, **config: Any) -> str:
        agent = self.post("/api/v1/agents", {"name": name, "config": {"model": {"name": "scripted"}, **config}})
        self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return str(agent["id"])

    def workflow(self, name: str) -> str:
        """start(q) -> llm (the tenant's default model) -> end(answer)."""
        document = {"nodes": [
            {"id": "start", "type": "start", "config": {"variables": [{"variable": "q", "required": True}]}},
            {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#start.q#}}"}]}},
            {"id": "end", "type": "end", "config": {"outputs": [
                {"variable": "answer", "value_selector": ["llm", "text"]}]}}],
            "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "end"}]}
        workflow = self.post("/api/v1/workflows", {"name": name, "document": document})
        self.post(f"/api/v1/workflows/{workflow['id']}/publish", {})
        return str(workflow["id"])

    def app_key(self, resource_type: str, resource_id: str) -> str:
        key = self.post("/api/v1/api-keys", {"name": f"dify {resource_type} {resource_id}",
                                             "resource_type": resource_type, "resource_id": resource_id})
        return str(key["token"])

    def dify(self, client: type[DifyClient], key: str) -> Any:
        sdk = client(key)
        sdk.base_url = f"{self.runtime.url}/dify/v1"
        return sdk

    def wire(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        """What the Dify client's ``_send_request`` sends, for routes it has no method for."""
        return self.http.request(method, f"/dify/v1{path}", headers={"Authorization": f"Bearer {key}"}, **kwargs)


def stream_events(response: requests.Response, *, pings: list[str] | None = None,
                  stop_after: int | None = None) -> list[dict[str, Any]]:
    """Dify's stream as its clients read it: ``data: <json>`` lines; ``event: ping`` lines apart."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events: list[dict[str, Any]] = []
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            continue
        if line.startswith("event: "):
            if pings is not None:
                pings.append(line.removeprefix("event: "))
            continue
        assert line.startswith("data: "), line
        events.append(json.loads(line.removeprefix("data: ")))
        if stop_after is not None and len(events) == stop_after:
            response.close()
            break
    return events


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    tenant = Tenant(runtime, fake, "e2e-dify")
    agent = tenant.agent("Billing helper", system_prompt=SYSTEM, opening_message="Hi! Ask me about billing.",
                         suggested_questions=["When am I billed?"],
                         variables=[{"name": "product", "label": "Product", "required": True}])
    workflow = tenant.workflow("Answerer")
    stranger = Tenant(runtime, fake, "e2e-dify-stranger")
    strangers_agent = stranger.agent("Not yours")
    return {"tenant": tenant, "agent": agent, "agent_key": tenant.app_key("agent", agent), "workflow": workflow,
            "workflow_key": tenant.app_key("workflow", workflow), "stranger": stranger,
            "strangers_key": stranger.app_key("agent", strangers_agent)}


def _chat(setup: dict[str, Any]) -> Any:
    return setup["tenant"].dify(ChatClient, setup["agent_key"])


def test_a_blocking_chat_message_answers_and_its_conversation_goes_on(setup: dict[str, Any],
                                                                     fake: FakeOpenAI) -> None:
    fake.reset()
    fake.enqueue(ChatScript(text=["Invoices ", "go out ", "monthly."], usage=(120, 9)),
                 ChatScript(text=["On the 1st."], usage=(140, 4)))
    chat = _chat(setup)
    first = chat.create_chat_message(inputs={"product": "Stratus"}, query="When are invoices sent?", user="alice")
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["event"] == "message" and answer["mode"] == "chat"
    assert answer["answer"] == "Invoices go out monthly." and answer["id"] == answer["message_id"] == answer["task_id"]
    usage = answer["metadata"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (120, 9, 129)
    assert answer["metadata"]["retriever_resources"] == []
    # The agent's prompt got the inputs; the conversation keeps them and its history.
    assert fake.chat_requests()[-1]["messages"][0]["content"].startswith("You answer questions about Stratus")
    second = chat.create_chat_message(inputs={}, query="Which day?", user="alice",
                                      conversation_id=answer["conversation_id"]).json()
    assert second["conversation_id"] == answer["conversation_id"] and second["answer"] == "On the 1st."
    sent = fake.chat_requests()[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "When are invoices sent?"), ("assistant", "Invoices go out monthly."), ("user", "Which day?")]
    assert sent[0]["content"].startswith("You answer questions about Stratus")


def test_a_streaming_chat_message_sends_dify_s_events(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    fake.reset()
    # The model is quiet for a while first: Dify's ping keeps the stream open.
    fake.enqueue(ChatScript(text=["Twice ", "a ", "year."], usage=(50, 3), first_byte_delay_s=HEARTBEAT_S * 2.5))
    pings: list[str] = []
    events = stream_events(_chat(setup).create_chat_message(inputs={"product": "Stratus"}, query="How often?",
                                                            user="bob", response_mode="streaming"), pings=pings)
    assert pings and set(pings) == {"ping"}
    kinds = [event["event"] for event in events]
    assert kinds == ["message", "message", "message", "message_end"]
    assert "".join(event["answer"] for event in events[:-1]) == "Twice a year."
    assert len({(e["task_id"], e["message_id"], e["conversation_id"]) for e in events}) == 1
    end = events[-1]
    assert end["metadata"]["usage"]["prompt_tokens"] == 50 and end["metadata"]["usage"]["completion_tokens"] == 3
    # The conversation and its messages, as the client lists them.
    listed = _chat(setup).get_conversation_messages("bob", conversation_id=end["conversation_id"]).json()
    assert listed["has_more"] is False
    (turn,) = listed["data"]
    assert (turn["id"], turn["query"], turn["answer"]) == (end["message_id"], "How often?", "Twice a year.")
    assert turn["inputs"] == {"product": "Stratus"} and turn["feedback"] is None


def test_messages_page_back_with_first_id_and_feedback_shows(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    fake.reset()
    chat = _chat(setup)
    conversation = None
    for number in range(5):
        fake.enqueue(ChatScript(text=[f"answer {number}"]))
        answer = chat.create_chat_message(inputs={"product": "Stratus"}, query=f"question {number}", user="carol",
                                          conversation_id=conversation).json()
        conversation = answer["conversation_id"]
    newest = chat.get_conversation_messages("carol", conversation_id=conversation, limit=2).json()
    assert newest["has_more"] is True and newest["limit"] == 2
    assert [m["query"] for m in newest["data"]] == ["question 3", "question 4"]
    older = chat.get_conversation_messages("carol", conversation_id=conversation, first_id=newest["data"][0]["id"],
                                           limit=2).json()
    assert [m["query"] for m in older["data"]] == ["question 1", "question 2"] and older["has_more"] is True
    oldest = chat.get_conversation_messages("carol", conversation_id=conversation, first_id=older["data"][0]["id"],
                                            limit=2).json()
    assert [m["query"] for m in oldest["data"]] == ["question 0"] and oldest["has_more"] is False
    unknown = chat.get_conversation_messages("carol", conversation_id=conversation, first_id=str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["message"] == "First Message Not Exists."
    # Feedback on an answer, then taken back.
    liked = chat.message_feedback(newest["data"][1]["id"], "like", "carol")
    assert liked.status_code == 200 and liked.json() == {"result": "success"}
    again = chat.get_conversation_messages("carol", conversation_id=conversation, limit=1).json()
    assert again["data"][0]["feedback"] == {"rating": "like"}
    assert chat.message_feedback(newest["data"][1]["id"], None, "carol").status_code == 200
    assert chat.get_conversation_messages("carol", conversation_id=conversation, limit=1).json()["data"][0][
        "feedback"] is None
    # Another end user's message: Dify's not found.
    other = chat.message_feedback(newest["data"][1]["id"], "like", "mallory")
    assert other.status_code == 404 and other.json() == {"code": "not_found", "message": "Message Not Exists.",
                                                         "status": 404}


def test_conversations_list_rename_and_delete(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    fake.reset()
    chat = _chat(setup)
    ids = []
    for number in range(3):
        fake.enqueue(ChatScript(text=["ok"]))
        ids.append(chat.create_chat_message(inputs={"product": "Stratus"}, query=f"topic {number}",
                                            user="dave").json()["conversation_id"])
    listed = chat.get_conversations("dave").json()
    assert [c["id"] for c in listed["data"]] == ids[::-1] and listed["has_more"] is False
    assert all(c["status"] == "normal" and c["inputs"] == {"product": "Stratus"} for c in listed["data"])
    first_page = chat.get_conversations("dave", limit=2).json()
    assert [c["id"] for c in first_page["data"]] == ids[:0:-1] and first_page["has_more"] is True
    rest = chat.get_conversations("dave", last_id=first_page["data"][-1]["id"], limit=2).json()
    assert [c["id"] for c in rest["data"]] == [ids[0]] and rest["has_more"] is False
    unknown = chat.get_conversations("dave", last_id=str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["message"] == "Last Conversation Not Exists."
    renamed = chat.rename_conversation(ids[0], "Billing dates", "dave")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Billing dates"
    # Another end user sees none of them.
    assert chat.get_conversations("erin").json()["data"] == []
    assert chat.rename_conversation(ids[0], "Mine now", "erin").status_code == 404
    # Delete (no client method: the client's wire), then it is gone.
    deleted = setup["tenant"].wire("DELETE", f"/conversations/{ids[0]}", setup["agent_key"], json={"user": "dave"})
    assert deleted.status_code == 200 and deleted.json() == {"result": "success"}
    gone = chat.get_conversation_messages("dave", conversation_id=ids[0])
    assert gone.status_code == 404 and gone.json() == {"code": "not_found", "message": "Conversation Not Exists.",
                                                       "status": 404}
    assert [c["id"] for c in chat.get_conversations("dave").json()["data"]] == ids[:0:-1]


def _stored_answer(tenant: Tenant, user: str, message_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        conversations = tenant.http.get("/api/v1/conversations", params={"user": user},
                                        headers=tenant.headers).json()["data"]
        for conversation in conversations:
            messages = tenant.http.get(f"/api/v1/conversations/{conversation['id']}/messages",
                                       params={"user": user}, headers=tenant.headers).json()["data"]
            for message in messages:
                if message["id"] == message_id and message["status"] != "running":
                    return dict(message)
        assert time.monotonic() < deadline, "the answer was not stored"
        time.sleep(0.2)


def test_stop_ends_a_streaming_answer_with_what_it_had(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    fake.reset()
    fake.enqueue(ChatScript(text=[f"word{n} " for n in range(200)], chunk_delay_s=0.05))
    response = _chat(setup).create_chat_message(inputs={"product": "Stratus"}, query="Tell me everything",
                                                user="frank", response_mode="streaming")
    first = stream_events(response, stop_after=2)
    task_id = first[0]["task_id"]
    stopped = setup["tenant"].wire("POST", f"/chat-messages/{task_id}/stop", setup["agent_key"],
                                   json={"user": "frank"})
    assert stopped.status_code == 200 and stopped.json() == {"result": "success"}
    answer = _stored_answer(setup["tenant"], "frank", task_id)
    assert answer["status"] == "cancelled" and 0 < len(answer["content"]) < len("word0 " * 200)
    # Stopping it again: over already, still success (as Dify answers).
    again = setup["tenant"].wire("POST", f"/chat-messages/{task_id}/stop", setup["agent_key"], json={"user": "frank"})
    assert again.status_code == 200
    # Another end user's task: not found.
    other = setup["tenant"].wire("POST", f"/chat-messages/{task_id}/stop", setup["agent_key"], json={"user": "x"})
    assert other.status_code == 404 and other.json()["code"] == "not_found"


def test_a_dropped_stream_still_stores_the_answer(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    fake.reset()
    words = [f"word{n} " for n in range(40)]
    fake.enqueue(ChatScript(text=words, chunk_delay_s=0.03))
    response = _chat(setup).create_chat_message(inputs={"product": "Stratus"}, query="Tell me everything",
                                                user="leaver", response_mode="streaming")
    seen = stream_events(response, stop_after=3)
    answer = _stored_answer(setup["tenant"], "leaver", seen[0]["message_id"])
    assert answer["status"] == "completed" and answer["content"] == "".join(words)


def test_completion_messages_answer_once(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    fake.reset()
    fake.enqueue(ChatScript(text=["A summary."], usage=(30, 3)), ChatScript(text=["Stream", "ed."]))
    completion = setup["tenant"].dify(CompletionClient, setup["agent_key"])
    # The 0.1.10 client sends no query: the question is inputs.query, as Dify's completion apps take it.
    blocking = completion.create_completion_message({"query": "Summarise billing", "product": "Stratus"},
                                                    "blocking", "gina")
    assert blocking.status_code == 200, blocking.text
    body = blocking.json()
    assert body["mode"] == "completion" and body["answer"] == "A summary." and body["conversation_id"] is None
    assert body["metadata"]["usage"]["total_tokens"] == 33
    assert fake.chat_requests()[-1]["messages"][-1] == {"role": "user", "content": "Summarise billing"}
    events = stream_events(completion.create_completion_message({"query": "Again", "product": "Stratus"},
                                                                "streaming", "gina"))
    assert [e["event"] for e in events] == ["message", "message", "message_end"]
    assert "".join(e["answer"] for e in events[:-1]) == "Streamed."
    missing = completion.create_completion_message({"product": "Stratus"}, "blocking", "gina")
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_param"
    assert "query" in missing.json()["message"]


def test_a_smart_reasoning_agent_streams_agent_thoughts(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    agent = tenant.agent("Clock", mode="smart-reasoning", model={"name": "caller"}, tools=["current_time"])
    key = tenant.app_key("agent", agent)
    fake.reset()
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("current_time", ['{"timezone": "UTC"}'])]),
                 ChatScript(text=["It is ", "noon."]))
    events = stream_events(tenant.dify(ChatClient, key).create_chat_message(
        inputs={}, query="What time is it?", user="hank", response_mode="streaming"))
    thoughts = [e for e in events if e["event"] == "agent_thought"]
    assert thoughts and {t["id"] for t in thoughts} == {thoughts[0]["id"]}
    assert thoughts[-1]["tool"] == "current_time" and json.loads(thoughts[-1]["tool_input"]) == {
        "current_time": {"timezone": "UTC"}}
    assert thoughts[-1]["observation"]
    assert "".join(e["answer"] for e in events if e["event"] == "agent_message") == "It is noon."
    assert events[-1]["event"] == "message_end"
    info = tenant.wire("GET", "/info", key).json()
    assert info["mode"] == "agent-chat" and info["name"] == "Clock"


def test_parameters_and_info_describe_the_key_s_app(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    parameters = tenant.dify(DifyClient, setup["agent_key"]).get_application_parameters("alice")
    assert parameters.status_code == 200, parameters.text
    body = parameters.json()
    assert body["opening_statement"] == "Hi! Ask me about billing."
    assert body["suggested_questions"] == ["When am I billed?"]
    assert body["user_input_form"] == [{"text-input": {"label": "Product", "variable": "product", "required": True,
                                                       "default": "", "max_length": 0}}]
    assert tenant.wire("GET", "/info", setup["agent_key"]).json() == {
        "name": "Billing helper", "description": "", "tags": [], "mode": "chat", "author_name": ""}
    workflow = tenant.dify(DifyClient, setup["workflow_key"]).get_application_parameters("alice").json()
    assert workflow["user_input_form"] == [{"text-input": {"label": "q", "variable": "q", "required": True,
                                                           "default": "", "max_length": 0}}]
    assert tenant.wire("GET", "/info", setup["workflow_key"]).json()["mode"] == "workflow"
    # A workflow app's key scoped to running workflows only still reads its app.
    scoped = tenant.post("/api/v1/api-keys", {"name": "scoped workflow app", "resource_type": "workflow",
                                             "resource_id": setup["workflow"], "scopes": ["workflow:run"]})["token"]
    assert tenant.wire("GET", "/parameters", scoped).json()["user_input_form"] == workflow["user_input_form"]
    assert tenant.wire("GET", "/info", scoped).json()["mode"] == "workflow"
    upload = tenant.wire("POST", "/files/upload", scoped, files={"file": ("a.txt", b"hi", "text/plain")})
    assert upload.status_code == 403 and upload.json()["code"] == "forbidden"


def test_workflow_runs_blocking_streaming_and_stopped(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    key = setup["workflow_key"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Paris."], usage=(10, 2)))
    # The 0.1.10 client has no workflow method: httpx with its wire.
    blocking = tenant.wire("POST", "/workflows/run", key,
                           json={"inputs": {"q": "Capital of France?"}, "response_mode": "blocking", "user": "ivy"})
    assert blocking.status_code == 200, blocking.text
    run = blocking.json()
    assert run["workflow_run_id"] == run["task_id"] == run["data"]["id"]
    assert run["data"]["status"] == "succeeded" and run["data"]["outputs"] == {"answer": "Paris."}
    assert run["data"]["workflow_id"] == setup["workflow"] and run["data"]["total_steps"] == 3
    assert run["data"]["total_tokens"] == 12
    detail = tenant.wire("GET", f"/workflows/run/{run['workflow_run_id']}", key).json()
    assert detail["status"] == "succeeded" and detail["inputs"] == {"q": "Capital of France?"}
    assert detail["outputs"] == {"answer": "Paris."}
    # Streaming.
    fake.enqueue(ChatScript(text=["Ber", "lin."], usage=(10, 2)))
    with tenant.http.stream("POST", "/dify/v1/workflows/run", headers={"Authorization": f"Bearer {key}"},
                            json={"inputs": {"q": "Capital of Germany?"}, "response_mode": "streaming",
                                  "user": "ivy"}) as response:
        assert response.status_code == 200
        events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines()
                  if line.startswith("data: ")]
    kinds = [(e["event"], e["data"].get("node_id")) for e in events]
    assert kinds[0] == ("workflow_started", None) and kinds[-1] == ("workflow_finished", None)
    assert [k for k in kinds if k[0] == "node_started"] == [("node_started", n) for n in ("start", "llm", "end")]
    assert [k for k in kinds if k[0] == "node_finished"] == [("node_finished", n) for n in ("start", "llm", "end")]
    assert "".join(e["data"]["text"] for e in events if e["event"] == "text_chunk") == "Berlin."
    finished = events[-1]["data"]
    assert finished["status"] == "succeeded" and finished["outputs"] == {"answer": "Berlin."}
    assert finished["total_steps"] == 3 and finished["total_tokens"] == 12
    assert len({e["workflow_run_id"] for e in events}) == 1
    # A long run, stopped by its task id.
    fake.enqueue(ChatScript(text=["slow"], first_byte_delay_s=20))
    with tenant.http.stream("POST", "/dify/v1/workflows/run", headers={"Authorization": f"Bearer {key}"},
                            json={"inputs": {"q": "Take your time"}, "response_mode": "streaming"}) as response:
        started = json.loads(next(line for line in response.iter_lines() if line.startswith("data: "))[6:])
    task_id = started["task_id"]
    stopped = tenant.wire("POST", f"/workflows/tasks/{task_id}/stop", key, json={"user": "ivy"})
    assert stopped.status_code == 200 and stopped.json() == {"result": "success"}
    deadline = time.monotonic() + 60
    while (status := tenant.wire("GET", f"/workflows/run/{task_id}", key).json()["status"]) == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status == "stopped"


def test_errors_are_dify_s_own(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    bad = tenant.dify(ChatClient, "pat_not-a-real-token").create_chat_message({}, "Hi", "alice")
    assert bad.status_code == 401 and bad.json()["code"] == "unauthorized" and bad.json()["status"] == 401
    assert set(bad.json()) == {"code", "message", "status"}
    # A key bound to no app (the owner's own): Dify's app_unavailable, saying what to create.
    unbound = tenant.dify(ChatClient, tenant.token).create_chat_message({}, "Hi", "alice")
    assert unbound.status_code == 400 and unbound.json()["code"] == "app_unavailable"
    assert "resource_type" in unbound.json()["message"] and "/dify/v1/chat-messages" in unbound.json()["message"]
    assert tenant.wire("GET", "/parameters", tenant.token).json()["code"] == "app_unavailable"
    # The wrong kind of app for the route.
    on_workflow = tenant.dify(ChatClient, setup["workflow_key"]).create_chat_message({}, "Hi", "alice")
    assert on_workflow.status_code == 400 and on_workflow.json()["code"] == "not_chat_app"
    on_agent = tenant.wire("POST", "/workflows/run", setup["agent_key"], json={"inputs": {}, "user": "alice"})
    assert on_agent.status_code == 400 and on_agent.json()["code"] == "not_workflow_app"
    # Another tenant's conversation (or any unknown one): Dify's not found, before any answer.
    fake_conversation = tenant.dify(ChatClient, setup["strangers_key"]).create_chat_message(
        {}, "Hi", "alice", conversation_id="00000000-0000-4000-8000-000000000000")
    assert fake_conversation.status_code == 404
    own = _chat(setup).get_conversations("alice").json()["data"][0]["id"]
    foreign = tenant.dify(ChatClient, setup["strangers_key"]).create_chat_message({}, "Hi", "alice",
                                                                                  conversation_id=own)
    assert foreign.status_code == 404 and foreign.json() == {"code": "not_found",
                                                             "message": "Conversation Not Exists.", "status": 404}
    assert tenant.dify(ChatClient, setup["strangers_key"]).get_conversation_messages(
        "alice", conversation_id=own).status_code == 404
    # Bad input: Dify's invalid_param naming the field; unknown paths: Dify's not found.
    invalid = tenant.wire("POST", "/chat-messages", setup["agent_key"], json={"inputs": {}, "user": "alice"})
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid_param"
    assert invalid.json()["message"].startswith("query:")
    required = _chat(setup).create_chat_message({}, "Hi", "alice")
    assert required.status_code == 400 and "inputs.product" in required.json()["message"]
    unknown = tenant.wire("GET", "/audio-to-text", setup["agent_key"])
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found" and unknown.json()["status"] == 404
    run = tenant.wire("GET", "/workflows/run/00000000-0000-4000-8000-000000000000", setup["workflow_key"])
    assert run.status_code == 404 and run.json()["message"] == "Workflow run not found."


def test_files_upload_through_the_files_domain(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    client = tenant.dify(DifyClient, setup["agent_key"])
    uploaded = client.file_upload("alice", {"file": ("notes.md", b"# Billing\n\nMonthly.", "text/markdown")})
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert (body["name"], body["size"], body["extension"], body["mime_type"]) == ("notes.md", 19, "md",
                                                                                  "text/markdown")
    # The files domain keeps it: Stratus's own API reads it back by the same id.
    stored = tenant.http.get(f"/api/v1/files/{body['id']}", headers=tenant.headers)
    assert stored.status_code == 200 and stored.json()["data"]["sha256"]
    refused = client.file_upload("alice", {"file": ("tool.exe", b"MZ\x90\x00", "application/x-msdownload")})
    assert refused.status_code == 415 and refused.json()["code"] == "unsupported_file_type"
    unbound = tenant.dify(DifyClient, tenant.token).file_upload("alice", {"file": ("a.txt", b"a", "text/plain")})
    assert unbound.status_code == 400 and unbound.json()["code"] == "app_unavailable"


def test_a_chatflow_agent_streams_its_run_as_dify_s_advanced_chat(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    flow = tenant.post("/api/v1/workflows", {"name": "flow", "document": {"mode": "chatflow", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#sys.query#}}"}]}},
        {"id": "reply", "type": "answer", "config": {"answer": "Sure: {{#llm.text#}}"}}],
        "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "reply"}]}})
    tenant.post(f"/api/v1/workflows/{flow['id']}/publish", {})
    agent = tenant.agent("Flow bot", mode="chatflow", chatflow={"workflow_id": flow["id"]})
    key = tenant.app_key("agent", agent)
    fake.reset()
    fake.enqueue(ChatScript(text=["Par", "is."], usage=(20, 3)))
    events = stream_events(tenant.dify(ChatClient, key).create_chat_message(
        inputs={}, query="Capital of France?", user="jo", response_mode="streaming"))
    kinds = [event["event"] for event in events]
    assert kinds[0] == "workflow_started" and kinds[-2:] == ["workflow_finished", "message_end"]
    run_id = events[0]["workflow_run_id"]
    nodes = [(e["event"], e["data"]["node_id"]) for e in events if e["event"] in ("node_started", "node_finished")]
    assert nodes[:2] == [("node_started", "start"), ("node_finished", "start")]
    assert {node for _, node in nodes} == {"start", "llm", "reply"} and len(nodes) == 6
    assert all(e["workflow_run_id"] == run_id and e["task_id"] == events[-1]["task_id"]
               for e in events if "workflow_run_id" in e)
    assert events[-2]["data"]["status"] == "succeeded"
    assert "".join(e["answer"] for e in events if e["event"] == "message") == "Sure: Paris."
    # The run is Stratus's own, recorded with its chat context.
    run = tenant.http.get(f"/api/v1/workflow-runs/{run_id}", headers=tenant.headers).json()["data"]
    assert run["chat"]["message_id"] == events[-1]["message_id"]
    assert tenant.wire("GET", "/info", key).json()["mode"] == "advanced-chat"


def test_retriever_resources_are_the_passages_the_answer_cites(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    kb = tenant.post("/api/v1/knowledge-bases", {"name": "policies"})
    text = "# Refunds\n\nRefunds are paid back within five working days."
    document = tenant.post(f"/api/v1/knowledge-bases/{kb['id']}/documents", {"name": "refunds.md", "text": text})
    deadline = time.monotonic() + 120
    path = f"/api/v1/knowledge-bases/{kb['id']}/documents/{document['id']}"
    while (status := tenant.http.get(path, headers=tenant.headers).json()["data"]["status"]) != "indexed":
        assert status != "failed" and time.monotonic() < deadline, status
        time.sleep(0.25)
    agent = tenant.agent("Policy helper", knowledge={"knowledge_base_ids": [kb["id"]], "retrieval": {"top_k": 1}})
    chat = tenant.dify(ChatClient, tenant.app_key("agent", agent))
    fake.reset()
    fake.enqueue(ChatScript(text=["Five working days [1]."]), ChatScript(text=["Five days [1]."]))
    blocking = chat.create_chat_message(inputs={}, query="How long do refunds take?", user="kim").json()
    (resource,) = blocking["metadata"]["retriever_resources"]
    assert (resource["position"], resource["dataset_id"], resource["document_id"], resource["document_name"]) == (
        1, kb["id"], document["id"], "refunds.md")
    assert "five working days" in resource["content"] and resource["score"] > 0
    events = stream_events(chat.create_chat_message(inputs={}, query="Refund delay?", user="kim",
                                                    response_mode="streaming",
                                                    conversation_id=blocking["conversation_id"]))
    assert events[-1]["metadata"]["retriever_resources"][0]["document_name"] == "refunds.md"
    listed = chat.get_conversation_messages("kim", conversation_id=blocking["conversation_id"]).json()
    assert [m["retriever_resources"][0]["segment_id"] for m in listed["data"]] == [resource["segment_id"]] * 2


def test_an_uploaded_file_is_a_workflow_run_s_file_input(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    document = {"nodes": [
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "doc", "type": "object",
                                                                   "required": True}]}},
        {"id": "extract", "type": "document_extractor", "config": {"variable_selector": ["start", "doc"]}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "text", "value_selector": ["extract", "text"]}]}}],
        "edges": [{"source": "start", "target": "extract"}, {"source": "extract", "target": "end"}]}
    workflow = tenant.post("/api/v1/workflows", {"name": "extractor", "document": document})
    tenant.post(f"/api/v1/workflows/{workflow['id']}/publish", {})
    key = tenant.app_key("workflow", workflow["id"])
    uploaded = tenant.dify(DifyClient, key).file_upload(
        "lee", {"file": ("policy.md", b"# Policy\n\nInvoices go out monthly.", "text/markdown")}).json()
    run = tenant.wire("POST", "/workflows/run", key, json={"response_mode": "blocking", "user": "lee", "inputs": {
        "doc": {"type": "document", "transfer_method": "local_file", "upload_file_id": uploaded["id"]}}})
    assert run.status_code == 200, run.text
    assert run.json()["data"]["status"] == "succeeded"
    assert "Invoices go out monthly." in run.json()["data"]["outputs"]["text"]
    # A file id that names no upload of this tenant: refused before any run, naming the input.
    foreign = tenant.wire("POST", "/workflows/run", key, json={"inputs": {"doc": {
        "transfer_method": "local_file", "upload_file_id": str(uuid.uuid4())}}})
    assert foreign.status_code == 400 and foreign.json()["code"] == "invalid_param"
    assert foreign.json()["message"].startswith("inputs.doc:")


def test_message_files_reach_a_chatflow_agent_as_sys_files(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    flow = tenant.post("/api/v1/workflows", {"name": "reader", "document": {"mode": "chatflow", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "extract", "type": "document_extractor", "config": {"variable_selector": ["sys", "files"],
                                                                    "is_array_file": True}},
        {"id": "reply", "type": "answer", "config": {"answer": "Read: {{#extract.text#}}"}}],
        "edges": [{"source": "start", "target": "extract"}, {"source": "extract", "target": "reply"}]}})
    tenant.post(f"/api/v1/workflows/{flow['id']}/publish", {})
    key = tenant.app_key("agent", tenant.agent("Reader", mode="chatflow", chatflow={"workflow_id": flow["id"]}))
    uploaded = tenant.dify(DifyClient, key).file_upload(
        "mo", {"file": ("terms.md", b"Payment is due in 30 days.", "text/markdown")}).json()
    files = [{"type": "document", "transfer_method": "local_file", "upload_file_id": uploaded["id"]}]
    answer = tenant.dify(ChatClient, key).create_chat_message({}, "What does it say?", "mo", files=files)
    assert answer.status_code == 200, answer.text
    assert "Payment is due in 30 days." in answer.json()["answer"]
    # Another agent kind takes no files; a remote URL is not an upload: Dify's invalid_param naming files.
    refused = _chat(setup).create_chat_message({"product": "Stratus"}, "Hi", "mo", files=files)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_param"
    assert refused.json()["message"].startswith("files")
    remote = tenant.dify(ChatClient, key).create_chat_message({}, "Hi", "mo", files=[
        {"type": "image", "transfer_method": "remote_url", "url": "https://example.com/a.png"}])
    assert remote.status_code == 400 and remote.json()["message"].startswith("files")
