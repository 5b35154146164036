"""The Dify facade's translation, without a server: domain errors into Dify's error body and
status; a chat turn's and a workflow run's events into Dify's stream; the app a key acts for;
the requests as Dify's clients send them; and the catalog's facade rules (docs/adr/0046)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from functions import catalog
from infra.topology import validate_facades
from shared.auth.principal import Principal
from shared.cache.ports import StreamEvent
from shared.conversations.errors import ConversationNotFound
from shared.errors import Conflict, NotFound, RateLimited, StratusError, Unauthenticated, ValidationFailed
from shared.facades.dify.api import DifyChatMessageRequest, DifyCompletionMessageRequest
from shared.facades.dify.dialect import DIFY, PING, ChatMessageStream, WorkflowRunStream, run_status
from shared.facades.dify.service import agent_of, app_of, workflow_of
from shared.http.routing import facade_dialect
from shared.http.stream import validate

MESSAGE = str(uuid.UUID(int=7))
CONVERSATION = str(uuid.UUID(int=8))
RUN = str(uuid.UUID(int=9))


def _answer(exc: StratusError) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = DIFY.error(exc, "r-1")
    body = json.loads(answer.body)
    assert set(body) == {"code", "message", "status"} and body["status"] == answer.status
    return answer.status, body, answer.headers


@pytest.mark.parametrize(("error", "status", "code", "message"), [
    (Unauthenticated(), 401, "unauthorized", "Missing or invalid credentials"),
    (ConversationNotFound(), 404, "not_found", "Conversation Not Exists."),
    (NotFound("x", code="message_not_found"), 404, "not_found", "Message Not Exists."),
    (NotFound("x", code="workflow_run_not_found"), 404, "not_found", "Workflow run not found."),
    (NotFound("No route for /dify/v1/x", code="biz_route_not_found"), 404, "not_found", "No route for /dify/v1/x"),
    (Conflict("Not published", code="agent_not_published"), 400, "app_unavailable", "Not published"),
    (StratusError("No model", code="model_not_configured"), 400, "provider_not_initialize", "No model"),
    (StratusError("Upstream failed", code="model_provider_error"), 400, "completion_request_error",
     "Upstream failed"),
    # What Dify has no word for keeps Stratus's status and code.
    (Conflict("An answer is running", code="conversation_busy"), 409, "conversation_busy", "An answer is running"),
    (StratusError(), 500, "internal_server_error", StratusError.default_message),
])
def test_domain_errors_become_dify_s(error: StratusError, status: int, code: str, message: str) -> None:
    found_status, body, _ = _answer(error)
    assert (found_status, body["code"], body["message"]) == (status, code, message)


def test_validation_is_dify_s_invalid_param_naming_the_fields() -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate(DifyChatMessageRequest, {"inputs": {}, "user": "alice", "bogus": 1}, "body")
    status, body, _ = _answer(refused.value)
    assert (status, body["code"]) == (400, "invalid_param")
    assert body["message"].startswith("query: ") and "bogus: " in body["message"]


def test_a_rate_limit_keeps_its_headers() -> None:
    status, body, headers = _answer(RateLimited("Too many", code="sys_rate_limited", headers={"Retry-After": "3"}))
    assert (status, body["code"], headers["Retry-After"]) == (429, "too_many_requests", "3")


def test_requests_take_what_dify_s_clients_send() -> None:
    # dify-client 0.1.10 sends files: null, and "" for no conversation.
    body = validate(DifyChatMessageRequest, {"inputs": {}, "query": "  Hi  ", "user": "alice",
                                             "response_mode": "streaming", "files": None, "conversation_id": ""},
                    "body")
    assert body.conversation_id is None and body.query == "  Hi  " and body.response_mode == "streaming"
    assert validate(DifyChatMessageRequest, {"query": "Hi"}, "body").response_mode == "blocking"
    with pytest.raises(ValidationFailed) as files:
        validate(DifyCompletionMessageRequest, {"inputs": {}, "files": [{"type": "image"}]}, "body")
    assert _answer(files.value)[1]["message"].startswith("files: ")
    with pytest.raises(ValidationFailed):
        validate(DifyChatMessageRequest, {"query": "Hi", "response_mode": "async"}, "body")


def _principal(resource_type: str | None, resource_id: uuid.UUID | None = None) -> Principal:
    return Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), user_id=uuid.uuid4(),
                     role="developer", resource_type=resource_type, resource_id=resource_id)


def test_the_app_is_the_key_s_binding() -> None:
    agent, workflow = uuid.uuid4(), uuid.uuid4()
    assert app_of(_principal("agent", agent), "GET /dify/v1/info") == ("agent", agent)
    assert agent_of(_principal("agent", agent), "r") == agent
    assert workflow_of(_principal("workflow", workflow), "r") == workflow
    with pytest.raises(StratusError) as unbound:
        app_of(_principal(None), "POST /dify/v1/chat-messages")
    status, body, _ = _answer(unbound.value)
    assert (status, body["code"]) == (400, "app_unavailable")
    assert "POST /dify/v1/chat-messages" in body["message"] and "resource_type" in body["message"]
    with pytest.raises(StratusError) as chat_on_workflow:
        agent_of(_principal("workflow", workflow), "POST /dify/v1/chat-messages")
    assert _answer(chat_on_workflow.value)[1]["code"] == "not_chat_app"
    with pytest.raises(StratusError) as run_on_agent:
        workflow_of(_principal("agent", agent), "POST /dify/v1/workflows/run")
    assert _answer(run_on_agent.value)[1]["code"] == "not_workflow_app"


def _data(frame: bytes) -> dict[str, Any]:
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    return dict(json.loads(frame[6:]))


def _chat(agent: bool = False, conversation: str | None = CONVERSATION) -> ChatMessageStream:
    return ChatMessageStream(task_id=MESSAGE, message_id=MESSAGE, conversation_id=conversation, agent=agent,
                             created_at=1700000000)


def test_a_turn_s_events_become_dify_s_chat_stream() -> None:
    stream = _chat()
    assert stream.frames(StreamEvent("1-0", "message.start", {"message_id": MESSAGE})) == []
    assert stream.frames(StreamEvent("1-1", "retrieval.references", {"references": []})) == []
    (delta,) = stream.frames(StreamEvent("1-2", "message.delta", {"text": "Hel"}))
    assert _data(delta) == {"event": "message", "task_id": MESSAGE, "id": MESSAGE, "message_id": MESSAGE,
                            "conversation_id": CONVERSATION, "answer": "Hel", "created_at": 1700000000}
    kb, doc, seg = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    complete = {"usage": {"input_tokens": 12, "output_tokens": 3}, "latency": {"total_ms": 1500},
                "references": [{"index": 1, "knowledge_base_id": str(kb), "document_id": str(doc),
                                "document_name": "faq.md", "segment_id": str(seg), "position": 4, "score": 0.8,
                                "content": "Refunds take 5 days."}]}
    (end,) = stream.frames(StreamEvent("1-3", "message.complete", complete))
    data = _data(end)
    assert data["event"] == "message_end" and data["conversation_id"] == CONVERSATION
    usage = data["metadata"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"], usage["latency"]) == (
        12, 3, 15, 1.5)
    assert data["metadata"]["retriever_resources"] == [{
        "position": 1, "dataset_id": str(kb), "dataset_name": "", "document_id": str(doc),
        "document_name": "faq.md", "segment_id": str(seg), "score": 0.8, "content": "Refunds take 5 days.",
        "segment_position": 4}]
    assert stream.frames(StreamEvent("1-4", "done", {"status": "completed"})) == []
    assert stream.heartbeat() == PING == b"event: ping\n\n"


def test_a_failed_turn_is_dify_s_stream_error() -> None:
    (error,) = _chat().frames(StreamEvent("1-5", "error", {"code": "model_timeout", "message": "Too slow"}))
    assert _data(error) == {"event": "error", "task_id": MESSAGE, "id": MESSAGE, "message_id": MESSAGE,
                            "conversation_id": CONVERSATION, "code": "completion_request_error",
                            "message": "Too slow", "status": 400}


def test_a_smart_reasoning_step_is_one_growing_agent_thought() -> None:
    stream = _chat(agent=True, conversation=None)
    (thought,) = stream.frames(StreamEvent("1", "agent.thought", {"step": 1, "text": "Check the clock"}))
    (call,) = stream.frames(StreamEvent("2", "tool.call", {"step": 1, "id": "c1", "name": "current_time",
                                                          "arguments": {"timezone": "UTC"}}))
    (result,) = stream.frames(StreamEvent("3", "tool.result", {"step": 1, "id": "c1", "name": "current_time",
                                                              "output": "12:00"}))
    first, second, third = _data(thought), _data(call), _data(result)
    assert first["id"] == second["id"] == third["id"] and first["position"] == 1
    assert "conversation_id" not in first
    assert (third["thought"], third["tool"], json.loads(third["tool_input"]), third["observation"]) == (
        "Check the clock", "current_time", {"current_time": {"timezone": "UTC"}}, "12:00")
    (delta,) = stream.frames(StreamEvent("4", "message.delta", {"text": "Noon."}))
    assert _data(delta)["event"] == "agent_message"


def test_a_run_s_events_become_dify_s_workflow_stream() -> None:
    stream = WorkflowRunStream(run_id=RUN, workflow_id="wf", inputs={"q": "x"}, created_at=1700000000)
    frames = [_data(frame) for event in (
        StreamEvent("1", "workflow.started", {"run_id": RUN}),
        StreamEvent("2", "node.started", {"node_id": "llm", "node_type": "if_else", "title": "Branch"}),
        StreamEvent("3", "node.delta", {"node_id": "llm", "text": "Par"}),
        StreamEvent("4", "node.finished", {"node_id": "llm", "node_type": "if_else", "status": "succeeded",
                                           "outputs": {"text": "Paris"}, "elapsed_ms": 1500, "tokens": 12}),
        StreamEvent("5", "iteration.next", {"node_id": "it", "index": 0}),
        StreamEvent("6", "workflow.finished", {"status": "cancelled", "outputs": None}),
        StreamEvent("7", "error", {"code": "workflow_run_cancelled", "message": "Stopped"}),
        StreamEvent("8", "done", {"status": "cancelled"}),
    ) for frame in stream.frames(event)]
    assert [f["event"] for f in frames] == ["workflow_started", "node_started", "text_chunk", "node_finished",
                                            "workflow_finished"]
    assert all(f["task_id"] == f["workflow_run_id"] == RUN for f in frames)
    assert frames[0]["data"]["inputs"] == {"q": "x"}
    started, finished = frames[1]["data"], frames[3]["data"]
    assert started["id"] == finished["id"] and started["node_type"] == finished["node_type"] == "if-else"
    assert finished["elapsed_time"] == 1.5 and finished["execution_metadata"] == {"total_tokens": 12}
    assert frames[2]["data"] == {"text": "Par", "from_variable_selector": ["llm", "text"]}
    end = frames[4]["data"]
    assert (end["status"], end["total_tokens"], end["total_steps"]) == ("stopped", 12, 1)


def test_a_run_stream_that_fails_unfinished_says_so() -> None:
    stream = WorkflowRunStream(run_id=RUN, workflow_id="wf", inputs={}, created_at=0)
    (error,) = stream.frames(StreamEvent("1", "error", {"code": "sys_internal_error", "message": "Broken"}))
    assert _data(error) == {"event": "error", "task_id": RUN, "workflow_run_id": RUN,
                            "code": "internal_server_error", "message": "Broken", "status": 500}


def test_the_dify_facade_owns_its_prefix() -> None:
    validate_facades()
    (dify,) = [f for f in catalog.FACADES if f.name == "dify"]
    assert (dify.prefix, dify.base_path, dify.dialect) == ("/dify", "/dify/v1", "dify")
    assert facade_dialect("/dify/v1/audio-to-text", catalog.FACADES) == "dify"
    routes = [fn.trigger for fn in catalog.http_functions() if fn.trigger.path.startswith("/dify/")]  # type: ignore[union-attr]
    streamed = [route for fn in catalog.streaming_functions() for route in fn.trigger.routes  # type: ignore[union-attr]
                if route.path.startswith("/dify/")]
    assert {r.path for r in [*routes, *streamed]} >= {
        "/dify/v1/chat-messages", "/dify/v1/chat-messages/{task_id}/stop", "/dify/v1/messages",
        "/dify/v1/messages/{message_id}/feedbacks", "/dify/v1/conversations",
        "/dify/v1/conversations/{conversation_id}",
        "/dify/v1/conversations/{conversation_id}/name", "/dify/v1/workflows/run",
        "/dify/v1/workflows/run/{workflow_run_id}", "/dify/v1/workflows/tasks/{task_id}/stop",
        "/dify/v1/completion-messages", "/dify/v1/parameters", "/dify/v1/info"}
    assert all(r.dialect == "dify" for r in [*routes, *streamed])


@pytest.mark.parametrize(("stratus", "dify"), [("cancelled", "stopped"), ("pending", "running"), ("paused", "paused"),
                                               ("running", "running"), ("succeeded", "succeeded")])
def test_run_statuses_are_dify_s_words(stratus: str, dify: str) -> None:
    assert run_status(stratus) == dify
