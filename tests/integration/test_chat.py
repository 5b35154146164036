"""Chat turns through the local gateway with the chat function mounted (as the local runtime
serves it), against the embedded PostgreSQL and a scripted OpenAI-compatible server: streamed
and non-streamed turns, stored messages, history, end-user and tenant isolation, bound keys,
cancel, replay, the reaper. Retrieval is a fake of our own port here; the end-to-end test
retrieves from a real ingested knowledge base."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from starlette.testclient import TestClient

from infra.local.gateway import LocalGateway, streaming_mounts
from infra.local.invoker import LocalInvoker
from shared.auth.principal import Principal
from shared.cache.memory import MemoryEventStream, MemoryKeyValueStore
from shared.cache.ports import EventStream, KeyValueStore
from shared.chat.api import ChatBody
from shared.chat.service import ChatDeps, ChatService, ChatSettings
from shared.chat.wiring import _count_tokens, reset_chat_service
from shared.knowledge.contract import Retrieval, RetrievalQuery, RetrievedPassage
from shared.models.wiring import model_gateway, model_resolver
from tests.integration.conftest import API_KEY, bearer
from tests.support.fake_openai import ChatScript, FakeOpenAI, RawReply

Sql = Callable[..., list[tuple[Any, ...]]]


def parse_sse(raw: str) -> list[dict[str, Any]]:
    events = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, Any] = {"id": None}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event["type"] = value
            elif name == "id":
                event["id"] = value
            elif name == "data":
                event["data"] = json.loads(value)
        events.append(event)
    return events


def assert_documented(events: list[dict[str, Any]]) -> None:
    """Every event is one the catalog's chat route declares, its data what the declared model
    (and so the OpenAPI document) says: no field missing, none undocumented."""
    from functions.catalog import FunctionUrl, by_name
    from shared.http.refs import model_of

    trigger = by_name()["chat"].trigger
    assert isinstance(trigger, FunctionUrl)
    declared = {event.type: model_of(event.data) for event in trigger.routes[0].events}
    for event in events:
        if event["type"] == "heartbeat":
            assert event["data"] == {} and event["id"] is None
            continue
        model = declared[event["type"]]
        assert set(event["data"]) <= set(model.model_fields), (event["type"], event["data"])
        model.model_validate(event["data"])


@pytest.fixture(scope="module")
def chat_client(app_env: None, kms: str) -> Iterator[TestClient]:
    reset_chat_service()
    gateway = LocalGateway(LocalInvoker(), mounts=streaming_mounts())
    with TestClient(gateway, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client
    reset_chat_service()


class Tenant:
    def __init__(self, client: TestClient, data: dict[str, Any], fake: FakeOpenAI) -> None:
        self.client = client
        self.data = data
        self.tenant_id = uuid.UUID(data["tenant"]["id"])
        self.token = data["owner_token"]
        self.headers = bearer(self.token)
        body = {"name": "chatty", "protocol": "openai", "provider_model": "gpt-chatty", "base_url": fake.base_url,
                "api_key": API_KEY, "test": False}
        response = client.post("/api/v1/models", json=body, headers=self.headers)
        assert response.status_code == 201, response.text

    def agent(self, **config: Any) -> dict[str, Any]:
        body = {"name": f"agent {uuid.uuid4().hex[:6]}",
                "config": {"model": {"name": "chatty"}, "system_prompt": "You are {{persona}}.",
                           "variables": [{"name": "persona", "default": "a helpful assistant"}], **config}}
        agent = self.client.post("/api/v1/agents", json=body, headers=self.headers).json()["data"]
        published = self.client.post(f"/api/v1/agents/{agent['id']}/publish", json={}, headers=self.headers)
        assert published.status_code == 201, published.text
        return agent  # type: ignore[no-any-return]

    def chat(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post("/api/v1/chat", json=body, headers=self.headers if headers is None else headers)

    def stream(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.chat({**body, "stream": True})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        assert_documented(events)
        return events


@pytest.fixture
def tenant(chat_client: TestClient, new_tenant: Callable[..., dict[str, Any]], fake: FakeOpenAI) -> Tenant:
    fake.reset()
    return Tenant(chat_client, new_tenant(), fake)


def test_streamed_turn_events_and_stored_messages(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    fake.enqueue(ChatScript(text=["Hel", "lo ", "there"], usage=(30, 3)))
    events = tenant.stream({"agent_id": agent["id"], "message": "Hi!", "user": "alice",
                            "inputs": {"persona": "a pirate"}})
    types = [e["type"] for e in events]
    assert types == ["message.start", "message.delta", "message.delta", "message.delta", "message.complete", "done"]
    ids = [e["id"] for e in events]
    assert all(ids) and len(set(ids)) == len(ids)
    start = events[0]["data"]
    assert start["created_conversation"] is True and start["agent_version"] == 1
    assert "".join(e["data"]["text"] for e in events if e["type"] == "message.delta") == "Hello there"
    complete = events[-2]["data"]
    assert complete["status"] == "completed" and complete["content"] == "Hello there"
    assert complete["usage"] == {"input_tokens": 30, "output_tokens": 3, "total_tokens": 33, "estimated": False}
    assert complete["latency"]["total_ms"] >= complete["latency"]["first_token_ms"] >= 0
    assert complete["model"] == "chatty" and complete["stop_reason"] == "stop"
    assert events[-1]["data"] == {"status": "completed"}
    # The prompt: the rendered system prompt, then the question.
    sent = fake.chat_requests()[-1]
    assert sent["messages"] == [{"role": "system", "content": "You are a pirate."},
                                {"role": "user", "content": "Hi!"}]
    assert sent["stream"] is True and sent["model"] == "gpt-chatty"
    # Stored: the question and the answer, readable through the conversation API.
    conversation_id = start["conversation_id"]
    messages = tenant.client.get(f"/api/v1/conversations/{conversation_id}/messages",
                                 params={"user": "alice", "order": "asc"}, headers=tenant.headers)
    assert messages.status_code == 200, messages.text
    stored = messages.json()["data"]
    assert [(m["role"], m["content"], m["status"]) for m in stored] == [
        ("user", "Hi!", "completed"), ("assistant", "Hello there", "completed")]
    assert stored[1]["reply_to"] == stored[0]["id"] and stored[1]["usage"]["total_tokens"] == 33


def test_history_follows_the_conversation_and_inputs_stay(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    fake.enqueue(ChatScript(text=["First answer"]), ChatScript(text=["Second answer"]))
    first = tenant.chat({"agent_id": agent["id"], "message": "Question one", "stream": False,
                         "inputs": {"persona": "Ada"}})
    assert first.status_code == 200, first.text
    answer = first.json()["data"]
    assert answer["content"] == "First answer" and answer["status"] == "completed"
    second = tenant.chat({"agent_id": agent["id"], "conversation_id": answer["conversation_id"],
                          "message": "Question two", "stream": False})
    assert second.status_code == 200, second.text
    sent = fake.chat_requests()[-1]["messages"]
    assert sent == [{"role": "system", "content": "You are Ada."},
                    {"role": "user", "content": "Question one"}, {"role": "assistant", "content": "First answer"},
                    {"role": "user", "content": "Question two"}]
    conversation = tenant.client.get(f"/api/v1/conversations/{answer['conversation_id']}",
                                     headers=tenant.headers).json()["data"]
    assert conversation["message_count"] == 4 and conversation["name"] == "Question one"


def test_memory_budget_drops_the_oldest_turns_first(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent(memory={"turns": 10, "max_tokens": 60})
    conversation_id = None
    for n in range(4):
        fake.enqueue(ChatScript(text=[f"answer {n} " + "word " * 12]))
        body: dict[str, Any] = {"agent_id": agent["id"], "message": f"question {n}", "stream": False}
        if conversation_id:
            body["conversation_id"] = conversation_id
        data = tenant.chat(body).json()["data"]
        conversation_id = data["conversation_id"]
    sent = fake.chat_requests()[-1]["messages"]
    questions = [m["content"] for m in sent if m["role"] == "user"]
    # Each past turn costs ~20 tokens: the newest two fit in 60, the oldest is dropped.
    assert questions[-1] == "question 3" and "question 0" not in questions and "question 2" in questions
    assert data["context"]["history_turns_dropped"] >= 1
    assert data["context"]["history_turns_used"] == len(questions) - 1


def test_errors_before_the_stream_are_envelopes_and_change_nothing(tenant: Tenant, admin_sql: Sql) -> None:
    agent = tenant.agent()

    def count() -> int:
        return admin_sql("SELECT count(*) FROM messages WHERE tenant_id = %s", (tenant.tenant_id,))[0][0]

    before = count()
    assert tenant.chat({"agent_id": agent["id"], "message": "hi"}, headers={}).json()["code"] == "auth_missing_token"
    bad = tenant.chat({"agent_id": agent["id"], "message": ""})
    assert bad.status_code == 422 and bad.json()["details"]["fields"][0]["field"] == "body.message"
    assert bad.headers["x-request-id"] == bad.json()["request_id"]
    # Under the Web Adapter the request id is Lambda's, from the forwarded request context.
    lambda_id = tenant.chat({"agent_id": agent["id"], "message": ""},
                            headers={**tenant.headers, "x-amzn-request-context": '{"requestId": "req-123"}'})
    assert lambda_id.json()["request_id"] == "req-123" and lambda_id.headers["x-request-id"] == "req-123"
    assert tenant.client.post("/api/v1/chat", content=b"{nope", headers=tenant.headers).status_code == 400
    assert tenant.chat({"agent_id": str(uuid.uuid4()), "message": "hi"}).json()["code"] == "agent_not_found"
    missing = tenant.chat({"agent_id": agent["id"], "conversation_id": str(uuid.uuid4()), "message": "hi"})
    assert missing.status_code == 404 and missing.json()["code"] == "conversation_not_found"
    unpublished = tenant.client.post("/api/v1/agents", json={"name": "draft only"},
                                     headers=tenant.headers).json()["data"]
    assert tenant.chat({"agent_id": unpublished["id"], "message": "hi"}).json()["code"] == "agent_not_published"
    huge = tenant.chat({"agent_id": agent["id"], "message": "word " * 6000})
    assert huge.status_code == 422 and huge.json()["code"] == "chat_message_too_long"
    assert count() == before


def test_other_tenant_and_other_end_user_cannot_read_or_chat(tenant: Tenant, fake: FakeOpenAI,
                                                             new_tenant: Callable[..., Any]) -> None:
    agent = tenant.agent()
    data = tenant.chat({"agent_id": agent["id"], "message": "secret", "stream": False, "user": "alice"}).json()["data"]
    conversation_id, message_id = data["conversation_id"], data["id"]
    # Another end user of the same tenant: the conversation does not exist for them.
    as_bob = tenant.chat({"agent_id": agent["id"], "conversation_id": conversation_id, "message": "hi",
                          "user": "bob"})
    assert as_bob.status_code == 404 and as_bob.json()["code"] == "conversation_not_found"
    replay = tenant.client.get(f"/api/v1/chat/{message_id}/events", params={"user": "bob"}, headers=tenant.headers)
    assert replay.status_code == 404 and replay.json()["code"] == "message_not_found"
    # Another tenant: neither the agent, the conversation nor the message exist.
    stranger = bearer(new_tenant()["owner_token"])
    assert tenant.chat({"agent_id": agent["id"], "message": "hi"}, headers=stranger).status_code == 404
    assert tenant.chat({"agent_id": "builtin-quick-answer", "conversation_id": conversation_id, "message": "hi",
                        "user": "alice"}, headers=stranger).json()["code"] == "conversation_not_found"
    for path in (f"/api/v1/chat/{message_id}/events?user=alice", f"/api/v1/chat/{message_id}/cancel?user=alice"):
        method = "GET" if path.endswith("alice") and "events" in path else "POST"
        assert tenant.client.request(method, path, headers=stranger).status_code == 404
    # The owner's replay works and ends with done.
    own = tenant.client.get(f"/api/v1/chat/{message_id}/events", params={"user": "alice"}, headers=tenant.headers)
    assert own.status_code == 200 and parse_sse(own.text)[-1]["type"] == "done"
    assert_documented(parse_sse(own.text))


def test_key_bound_to_an_agent_chats_only_with_it(tenant: Tenant, fake: FakeOpenAI) -> None:
    mine, other = tenant.agent(), tenant.agent()
    created = tenant.client.post("/api/v1/api-keys", json={"name": "widget", "scopes": ["agent:run"],
                                                          "resource_type": "agent", "resource_id": mine["id"]},
                                 headers=tenant.headers)
    assert created.status_code == 201, created.text
    key = bearer(created.json()["data"]["token"])
    refused = tenant.chat({"agent_id": other["id"], "message": "hi"}, headers=key)
    assert refused.status_code == 403 and refused.json()["code"] == "auth_agent_not_allowed"
    allowed = tenant.chat({"agent_id": mine["id"], "message": "hi", "stream": False}, headers=key)
    assert allowed.status_code == 200, allowed.text
    # The owner's conversation with the other agent does not exist for the bound key.
    theirs = tenant.chat({"agent_id": other["id"], "message": "hi", "stream": False}).json()["data"]
    hidden = tenant.chat({"agent_id": mine["id"], "conversation_id": theirs["conversation_id"], "message": "hi"},
                         headers=key)
    assert hidden.status_code == 404 and hidden.json()["code"] == "conversation_not_found"
    # A key without agent:run cannot chat at all.
    reader = tenant.client.post("/api/v1/api-keys", json={"name": "reader", "scopes": ["agent:read"]},
                                headers=tenant.headers).json()["data"]["token"]
    denied = tenant.chat({"agent_id": mine["id"], "message": "hi"}, headers=bearer(reader))
    assert denied.status_code == 403 and denied.json()["code"] == "auth_permission_denied"


def test_provider_failure_is_an_error_event_and_a_failed_answer(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    fake.enqueue(*[RawReply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})])
    events = tenant.stream({"agent_id": agent["id"], "message": "boom"})
    assert [e["type"] for e in events] == ["message.start", "error", "done"]
    assert events[1]["data"]["code"].startswith("model_") and events[-1]["data"] == {"status": "failed"}
    message_id = events[0]["data"]["message_id"]
    stored = tenant.client.get(f"/api/v1/conversations/{events[0]['data']['conversation_id']}/messages",
                               headers=tenant.headers).json()["data"]
    answer = next(m for m in stored if m["id"] == message_id)
    assert answer["status"] == "failed" and answer["error"]["code"] == events[1]["data"]["code"]
    # Non-streaming: the same failure is the HTTP error, naming the answer.
    fake.enqueue(*[RawReply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})])
    failed = tenant.chat({"agent_id": agent["id"], "message": "boom", "stream": False})
    assert failed.status_code >= 400 and failed.json()["details"]["message_id"]


def test_a_busy_conversation_refuses_a_second_turn(tenant: Tenant, admin_sql: Sql) -> None:
    agent = tenant.agent()
    data = tenant.chat({"agent_id": agent["id"], "message": "one", "stream": False}).json()["data"]
    admin_sql("UPDATE messages SET status = 'running' WHERE id = %s", (data["id"],))
    busy = tenant.chat({"agent_id": agent["id"], "conversation_id": data["conversation_id"], "message": "two"})
    assert busy.status_code == 409 and busy.json()["code"] == "conversation_busy"
    finished = tenant.client.post(f"/api/v1/chat/{data['id']}/cancel", headers=tenant.headers)
    assert finished.status_code == 202  # it looks running: the flag is set
    admin_sql("UPDATE messages SET status = 'completed' WHERE id = %s", (data["id"],))
    again = tenant.client.post(f"/api/v1/chat/{data['id']}/cancel", headers=tenant.headers)
    assert again.status_code == 409 and again.json()["code"] == "chat_turn_finished"


# The service directly, with threads: cancel mid-stream, replay while live, the reaper ---------
class FakeRetrieval:
    """Our retrieval port, answering fixed segments and recording queries."""

    def __init__(self, segments: list[RetrievedPassage]) -> None:
        self.segments = segments
        self.queries: list[str] = []

    def retrieve(self, tenant_id: uuid.UUID, query: RetrievalQuery) -> Retrieval:
        assert query.skip_unavailable  # an agent's knowledge base may be gone since it was published
        self.queries.append(query.text)
        return Retrieval(query=query.text, mode="hybrid", reranked=False, passages=self.segments[: query.top_k or 5])


def segment(n: int, text: str, kb_id: uuid.UUID) -> RetrievedPassage:
    return RetrievedPassage(segment_id=uuid.uuid4(), knowledge_base_id=kb_id, document_id=uuid.uuid4(),
                            document_name=f"doc{n}.md", position=n, page=None, text=text, content=text,
                            score=1 - n / 10, score_type="hybrid", scores={}, metadata={}, tags=[])


def service_for(retrieval: Any, *, kv: KeyValueStore | None = None, events: EventStream | None = None,
                **settings: Any) -> ChatService:
    """The chat service on the test database and model gateway, with our own ports: the
    retrieval given, and the cache ports given or in-process ones."""
    from shared.agents.wiring import agent_service
    from shared.conversations.wiring import turn_store

    kv, events = kv or MemoryKeyValueStore(), events or MemoryEventStream()
    return ChatService(ChatDeps(conversations=turn_store, agents=agent_service, resolver=model_resolver,
                                gateway=model_gateway, retrieval=lambda: retrieval, kv=lambda: kv,
                                events=lambda: events, count_tokens=_count_tokens,
                                settings=ChatSettings(**settings)))


def principal_of(tenant: Tenant) -> Principal:
    from shared.tenancy.service import tenancy_service

    return tenancy_service().resolve_token(tenant.token)


def test_references_reach_the_prompt_and_the_answer(tenant: Tenant, fake: FakeOpenAI, admin_sql: Sql) -> None:
    kb = tenant.client.post("/api/v1/knowledge-bases", json={"name": "handbook"}, headers=tenant.headers)
    assert kb.status_code == 201, kb.text
    kb_id = uuid.UUID(kb.json()["data"]["id"])
    agent = tenant.agent(knowledge={"knowledge_base_ids": [str(kb_id)], "retrieval": {"top_k": 2}})
    retrieval = FakeRetrieval([segment(1, "Refunds take 14 days.", kb_id), segment(2, "Shipping is free.", kb_id),
                               segment(3, "Never shown.", kb_id)])
    service = service_for(retrieval)
    principal = principal_of(tenant)
    fake.enqueue(ChatScript(text=["Refunds take 14 days [1]."]))
    turn = service.start(principal, ChatBody(agent_id=agent["id"], message="How long do refunds take?"))
    seen: list[Any] = []
    final, error = service.run(turn, seen.append)
    assert error is None and final.status == "completed"
    assert [e.type for e in seen] == ["message.start", "retrieval.references", "message.delta",
                                      "message.complete", "done"]
    assert_documented([{"type": e.type, "id": e.id, "data": json.loads(json.dumps(e.data))} for e in seen])
    refs = seen[1].data["references"]
    assert [r["index"] for r in refs] == [1, 2] and refs[0]["document_name"] == "doc1.md"
    assert [r.index for r in final.references] == [1, 2] and final.references[0].content == "Refunds take 14 days."
    system = fake.chat_requests()[-1]["messages"][0]["content"]
    assert "[1] (doc1.md)\nRefunds take 14 days." in system and "[2] (doc2.md)" in system
    assert "Never shown" not in system and retrieval.queries == ["How long do refunds take?"]
    assert final.context is not None and final.context["references_used"] == 2


def test_query_rewrite_feeds_retrieval_not_the_answer(tenant: Tenant, fake: FakeOpenAI) -> None:
    kb_id = uuid.UUID(tenant.client.post("/api/v1/knowledge-bases", json={"name": "kb"},
                                         headers=tenant.headers).json()["data"]["id"])
    agent = tenant.agent(query_rewrite=True, knowledge={"knowledge_base_ids": [str(kb_id)]})
    retrieval = FakeRetrieval([segment(1, "Paris is the capital.", kb_id)])
    service = service_for(retrieval)
    principal = principal_of(tenant)
    fake.enqueue(ChatScript(text=["France is in Europe."]))
    first, _ = service.run(service.start(principal, ChatBody(agent_id=agent["id"], message="Tell me about France")))
    fake.enqueue(ChatScript(text=["What is the capital of France?"]), ChatScript(text=["Paris [1]."]))
    second, error = service.run(service.start(principal, ChatBody(
        agent_id=agent["id"], conversation_id=first.conversation_id, message="And its capital?")))
    assert error is None and second.rewritten_query == "What is the capital of France?"
    assert retrieval.queries[-1] == "What is the capital of France?"
    assert fake.chat_requests()[-1]["messages"][-1] == {"role": "user", "content": "And its capital?"}


def test_cancel_mid_stream_keeps_what_was_generated(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    service = service_for(FakeRetrieval([]))
    principal = principal_of(tenant)
    fake.enqueue(ChatScript(text=[f"tok{n} " for n in range(200)], chunk_delay_s=0.02))
    turn = service.start(principal, ChatBody(agent_id=agent["id"], message="Count slowly"))
    deltas = threading.Event()
    seen: list[Any] = []

    def emit(event: Any) -> None:
        seen.append(event)
        if sum(e.type == "message.delta" for e in seen) == 3:
            deltas.set()

    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(service.run(turn, emit)))
    worker.start()
    assert deltas.wait(10)
    out = service.cancel(principal, turn.answer_id, None)
    assert out.cancel_requested is True
    worker.join(10)
    final, error = result[0]
    assert error is None and final.status == "cancelled" and final.stop_reason == "cancelled"
    streamed = "".join(e.data["text"] for e in seen if e.type == "message.delta")
    assert final.content == streamed and 3 <= len(streamed.split()) < 200
    assert [e.type for e in seen][-2:] == ["message.complete", "done"]
    assert seen[-2].data["status"] == "cancelled"


def test_replay_after_an_id_loses_and_duplicates_nothing(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    service = service_for(FakeRetrieval([]))
    principal = principal_of(tenant)
    fake.enqueue(ChatScript(text=[f"w{n} " for n in range(30)], chunk_delay_s=0.01))
    turn = service.start(principal, ChatBody(agent_id=agent["id"], message="Stream"))
    live: list[Any] = []
    worker = threading.Thread(target=lambda: service.run(turn, live.append))
    worker.start()
    while sum(e.type == "message.delta" for e in live) < 5:
        time.sleep(0.005)
    cut = live[3].id  # a client dropped after the fourth event
    replayed: list[Any] = []
    for batch in service.replay(principal, turn.answer_id, None, cut, block_ms=200):
        replayed += batch
    worker.join(10)
    assert [e.id for e in live[:4]] + [e.id for e in replayed] == [e.id for e in live]
    assert replayed[-1].type == "done"
    # Caught up with an ended answer: one closing done after the client's position, never a restart.
    after_last = [e for batch in service.replay(principal, turn.answer_id, None, live[-1].id, block_ms=20)
                  for e in batch]
    assert [e.type for e in after_last] == ["done"] and after_last[0].id > live[-1].id


def test_reaper_fails_stuck_turns_and_closes_their_streams(tenant: Tenant, admin_sql: Sql) -> None:
    agent = tenant.agent()
    service = service_for(FakeRetrieval([]), stuck_after_s=60)
    principal = principal_of(tenant)
    turn = service.start(principal, ChatBody(agent_id=agent["id"], message="never answered"))
    fresh = service.start(principal, ChatBody(agent_id=agent["id"], message="just started"))
    admin_sql("UPDATE messages SET updated_at = now() - interval '2 minutes' WHERE id = %s", (turn.answer_id,))
    assert service.reap() >= 1
    status = dict(admin_sql("SELECT id, status FROM messages WHERE id = ANY(%s)",
                            ([turn.answer_id, fresh.answer_id],)))
    assert status == {turn.answer_id: "failed", fresh.answer_id: "running"}
    replay = [e for batch in service.replay(principal, turn.answer_id, None, None, 100) for e in batch]
    assert [e.type for e in replay] == ["error", "done"] and replay[0].data["code"] == "chat_turn_timed_out"
    # The generator that comes back later cannot overwrite the reaper's verdict.
    final, _ = service.run(turn)
    assert final.status == "failed" and final.error is not None and final.error.code == "chat_turn_timed_out"


def test_reaper_fails_expired_client_tool_pauses_only(tenant: Tenant, admin_sql: Sql) -> None:
    """A pause on client tools (ADR 0051) is never stuck while its offer lasts, however long ago
    it was written; past its expiry the reaper fails it with its own code."""
    agent = tenant.agent()
    service = service_for(FakeRetrieval([]), stuck_after_s=60)
    principal = principal_of(tenant)
    expired = service.start(principal, ChatBody(agent_id=agent["id"], message="paused, expired"))
    waiting = service.start(principal, ChatBody(agent_id=agent["id"], message="paused, waiting"))
    action = Jsonb({"tool_calls": [{"id": "call_1", "name": "locate", "arguments": "{}"}]})
    for answer_id, expires in ((expired.answer_id, "-1 second"), (waiting.answer_id, "10 minutes")):
        admin_sql("""UPDATE messages SET status = 'requires_action', required_action = %s,
                         action_expires_at = now() + %s::interval, updated_at = now() - interval '1 hour'
                      WHERE id = %s""", (action, expires, answer_id))
    assert service.reap() >= 1
    rows = {r[0]: (r[1], r[2]) for r in admin_sql("SELECT id, status, error_code FROM messages WHERE id = ANY(%s)",
                                                  ([expired.answer_id, waiting.answer_id],))}
    assert rows == {expired.answer_id: ("failed", "chat_tool_outputs_expired"),
                    waiting.answer_id: ("requires_action", None)}
    replay = [e for batch in service.replay(principal, expired.answer_id, None, None, 100) for e in batch]
    assert [e.type for e in replay] == ["error", "done"] and replay[0].data["code"] == "chat_tool_outputs_expired"



def test_a_claim_takes_only_the_pause_its_outputs_were_checked_against(tenant: Tenant, admin_sql: Sql) -> None:
    """Of two submits one claims a pause; one checked against an earlier pause of the same answer
    never takes a later one (the expiry, read back from PostgreSQL, names the pause exactly)."""
    from datetime import timedelta

    from shared.conversations.wiring import turn_store

    agent = tenant.agent()
    service = service_for(FakeRetrieval([]))
    principal = principal_of(tenant)
    turn = service.start(principal, ChatBody(agent_id=agent["id"], message="paused"))
    action = Jsonb({"tool_calls": [{"id": "call_1", "name": "locate", "arguments": "{}"}]})
    admin_sql("""UPDATE messages SET status = 'requires_action', required_action = %s,
                     action_expires_at = now() + interval '10 minutes' WHERE id = %s""", (action, turn.answer_id))
    store = turn_store()
    paused = store.visible_answer(principal, turn.answer_id, None)
    assert paused.required_action is not None
    expires_at = paused.required_action.expires_at
    assert not store.claim_paused(tenant.tenant_id, turn.answer_id, expires_at - timedelta(microseconds=1))
    assert store.claim_paused(tenant.tenant_id, turn.answer_id, expires_at)
    assert not store.claim_paused(tenant.tenant_id, turn.answer_id, expires_at)
    assert store.answer_status(tenant.tenant_id, turn.answer_id) == "running"

def test_idle_stream_gets_heartbeats_without_ids(tenant: Tenant, fake: FakeOpenAI,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import reset_settings

    agent = tenant.agent()
    monkeypatch.setenv("CHAT_HEARTBEAT_S", "0.2")
    reset_settings()
    try:
        fake.enqueue(ChatScript(text=["late"], first_byte_delay_s=0.9))
        events = tenant.stream({"agent_id": agent["id"], "message": "Take your time"})
    finally:
        monkeypatch.delenv("CHAT_HEARTBEAT_S")
        reset_settings()
    types = [e["type"] for e in events]
    first_delta = types.index("message.delta")
    beats = [e for e in events[:first_delta] if e["type"] == "heartbeat"]
    assert len(beats) >= 2 and all(e["id"] is None and e["data"] == {} for e in beats)
    assert [t for t in types if t != "heartbeat"] == ["message.start", "message.delta", "message.complete", "done"]


def test_reaper_function_runs_on_its_schedule_event(tenant: Tenant, admin_sql: Sql) -> None:
    from functions.chat.reap_turns import handler
    from infra.local.invoker import LocalContext
    from tests.support.events import load_event

    agent = tenant.agent()
    service = service_for(FakeRetrieval([]))
    turn = service.start(principal_of(tenant), ChatBody(agent_id=agent["id"], message="abandoned"))
    admin_sql("UPDATE messages SET updated_at = now() - interval '1 hour' WHERE id = %s", (turn.answer_id,))
    result = handler(load_event("eventbridge_schedule"), LocalContext("chat-reap-turns", 256, 10))
    assert result["reaped"] >= 1
    row = admin_sql("SELECT status, error_code FROM messages WHERE id = %s", (turn.answer_id,))[0]
    assert row == ("failed", "chat_turn_timed_out")


def test_draft_chats_are_for_builders_only(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    owner_draft = tenant.chat({"agent_id": agent["id"], "message": "debug", "draft": True, "stream": False})
    assert owner_draft.status_code == 200 and owner_draft.json()["data"]["agent_version"] is None
    bound = tenant.client.post("/api/v1/api-keys", json={"name": "app", "scopes": ["agent:run", "agent:write"],
                                                        "resource_type": "agent", "resource_id": agent["id"]},
                               headers=tenant.headers).json()["data"]["token"]
    refused = tenant.chat({"agent_id": agent["id"], "message": "debug", "draft": True}, headers=bearer(bound))
    assert refused.status_code == 403 and refused.json()["code"] == "auth_draft_not_allowed"
    runner = tenant.client.post("/api/v1/api-keys", json={"name": "runner", "scopes": ["agent:run"]},
                                headers=tenant.headers).json()["data"]["token"]
    denied = tenant.chat({"agent_id": agent["id"], "message": "debug", "draft": True}, headers=bearer(runner))
    assert denied.status_code == 403 and denied.json()["code"] == "auth_permission_denied"
    # Continuing the owner's draft conversation is a draft chat too.
    conversation_id = owner_draft.json()["data"]["conversation_id"]
    again = tenant.chat({"agent_id": agent["id"], "conversation_id": conversation_id, "message": "more"},
                        headers=bearer(runner))
    assert again.status_code == 403


def test_replay_input_and_ended_streams(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    events = tenant.stream({"agent_id": agent["id"], "message": "hello"})
    message_id = events[0]["data"]["message_id"]
    bad = tenant.client.get(f"/api/v1/chat/{message_id}/events",
                            headers={**tenant.headers, "Last-Event-ID": "not-an-id"})
    assert bad.status_code == 422 and bad.json()["code"] == "chat_event_id_invalid"
    assert tenant.client.get(f"/api/v1/chat/{message_id}/events?last_event_id=99999999999999999999-0",
                             headers=tenant.headers).status_code == 422
    # At the end already (the client saw done): one more done, so a reconnecting client stops.
    after_done = tenant.client.get(f"/api/v1/chat/{message_id}/events",
                                   headers={**tenant.headers, "Last-Event-ID": events[-1]["id"]})
    tail = parse_sse(after_done.text)
    assert [e["type"] for e in tail] == ["done"] and tail[0]["data"] == {"status": "completed"}
    assert tail[0]["id"] and tail[0]["id"] > events[-1]["id"]
    malformed = tenant.client.get("/api/v1/chat/not-a-uuid/events", headers=tenant.headers)
    assert malformed.status_code == 404 and malformed.json()["code"] == "message_not_found"


class BrokenEvents(MemoryEventStream):
    """An event stream that fails from one event type on (Redis going away mid-turn)."""

    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on

    def append(self, stream: str, event_type: str, data: dict[str, Any], **kwargs: Any) -> str:
        if event_type == self.fail_on:
            raise ConnectionError("event stream unreachable")
        return super().append(stream, event_type, data, **kwargs)


def test_a_turn_that_cannot_record_still_ends_its_live_stream(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    service = service_for(FakeRetrieval([]), events=BrokenEvents("message.complete"))
    turn = service.start(principal_of(tenant), ChatBody(agent_id=agent["id"], message="hi"))
    seen: list[Any] = []
    with pytest.raises(ConnectionError):
        service.run(turn, seen.append)
    assert [e.type for e in seen][-2:] == ["error", "done"] and seen[-1].id == ""
    assert seen[-1].data == {"status": "failed"}


def test_fallback_model_limits_size_the_turn(tenant: Tenant, fake: FakeOpenAI) -> None:
    small = {"name": "small", "protocol": "openai", "provider_model": "gpt-small", "base_url": fake.base_url,
             "api_key": API_KEY, "test": False, "max_context_tokens": 4000, "max_output_tokens": 300}
    assert tenant.client.post("/api/v1/models", json=small, headers=tenant.headers).status_code == 201
    agent = tenant.agent(fallback_model="small")
    tenant.chat({"agent_id": agent["id"], "message": "hi", "stream": False})
    assert fake.chat_requests()[-1]["max_tokens"] == 300  # chatty alone would allow 4096
    too_long = tenant.chat({"agent_id": agent["id"], "message": "word " * 4000})
    assert too_long.status_code == 422 and too_long.json()["code"] == "chat_message_too_long"


def test_a_context_overflow_fails_the_turn_once_and_sizes_the_next(tenant: Tenant, fake: FakeOpenAI) -> None:
    # chatty declares 8192 tokens; the server behind it was started with 2048.
    agent = tenant.agent()
    message = "word " * 1500
    fake.enqueue(RawReply(400, {"object": "error", "message": "This model's maximum context length is 2048 tokens. "
                                "However, you requested 5600 tokens.", "type": "BadRequestError", "param": None,
                                "code": 400}))
    before = len(fake.chat_requests())
    events = tenant.stream({"agent_id": agent["id"], "message": message})
    assert [e["type"] for e in events] == ["message.start", "error", "done"]
    assert events[1]["data"]["code"] == "model_context_too_long"
    assert len(fake.chat_requests()) == before + 1  # not retried
    # The next turn is sized for the window the server named: refused before any call.
    too_long = tenant.chat({"agent_id": agent["id"], "message": message})
    assert too_long.status_code == 422 and too_long.json()["code"] == "chat_message_too_long"
    assert len(fake.chat_requests()) == before + 1
    assert tenant.chat({"agent_id": agent["id"], "message": "hi", "stream": False}).status_code == 200


def test_a_failed_rewrite_falls_back_to_the_question(tenant: Tenant, fake: FakeOpenAI) -> None:
    kb_id = uuid.UUID(tenant.client.post("/api/v1/knowledge-bases", json={"name": "kb2"},
                                         headers=tenant.headers).json()["data"]["id"])
    agent = tenant.agent(query_rewrite=True, knowledge={"knowledge_base_ids": [str(kb_id)]})
    retrieval = FakeRetrieval([segment(1, "Lyon ships on Tuesdays.", kb_id)])
    service = service_for(retrieval)
    principal = principal_of(tenant)
    fake.enqueue(ChatScript(text=["First."]))
    first, _ = service.run(service.start(principal, ChatBody(agent_id=agent["id"], message="Shipping?")))
    fake.enqueue(RawReply(400, {"error": {"message": "context too long", "type": "invalid_request_error"}}),
                 ChatScript(text=["Tuesdays [1]."]))
    second, error = service.run(service.start(principal, ChatBody(
        agent_id=agent["id"], conversation_id=first.conversation_id, message="When?")))
    assert error is None and second.status == "completed" and second.rewritten_query is None
    assert retrieval.queries[-1] == "When?"


def test_token_counts_have_a_floor_for_unknown_scripts() -> None:
    thai = "สวัสดีครับ" * 700
    assert _count_tokens(thai) >= len(thai.encode()) // 4 > 1000
    assert _count_tokens("hello world") >= 2


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from shared.cache.redis_adapter import connect
    from tests.support.redis_server import start_cluster_redis

    url, stop = start_cluster_redis(tmp_path_factory.mktemp("chat-valkey"))
    client = connect(url, cluster=True)
    try:
        yield client
    finally:
        client.close()
        stop()


def test_cancel_and_replay_through_redis_in_cluster_mode(tenant: Tenant, fake: FakeOpenAI, redis_cluster: Any) -> None:
    """As deployed: the cancel flag and the event stream in Redis (cluster mode, hash-tagged keys)."""
    from shared.cache.redis_adapter import RedisEventStream, RedisKeyValueStore

    agent = tenant.agent()
    service = service_for(FakeRetrieval([]), kv=RedisKeyValueStore(redis_cluster),
                          events=RedisEventStream(redis_cluster))
    principal = principal_of(tenant)
    fake.enqueue(ChatScript(text=[f"r{n} " for n in range(200)], chunk_delay_s=0.02))
    turn = service.start(principal, ChatBody(agent_id=agent["id"], message="Go on"))
    live: list[Any] = []
    worker = threading.Thread(target=lambda: live.append(service.run(turn, seen.append)))
    seen: list[Any] = []
    worker.start()
    while sum(e.type == "message.delta" for e in seen) < 4:
        time.sleep(0.005)
    service.cancel(principal, turn.answer_id, None)
    worker.join(10)
    final, _ = live[0]
    assert final.status == "cancelled" and 4 <= len(final.content.split()) < 200
    replayed = [e for batch in service.replay(principal, turn.answer_id, None, seen[1].id, block_ms=100)
                for e in batch]
    assert [e.id for e in seen[:2]] + [e.id for e in replayed] == [e.id for e in seen]
    assert replayed[-2].data["status"] == "cancelled" and replayed[-1].type == "done"


def test_a_revoked_key_stops_chatting_at_once(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    created = tenant.client.post("/api/v1/api-keys", json={"name": "short-lived", "scopes": ["agent:run"]},
                                 headers=tenant.headers).json()["data"]
    key = bearer(created["token"])
    # Twice: the second request is answered from the chat function's cache of resolved tokens.
    for _ in range(2):
        assert tenant.chat({"agent_id": agent["id"], "message": "hi", "stream": False}, headers=key).status_code == 200
    assert tenant.client.delete(f"/api/v1/api-keys/{created['id']}", headers=tenant.headers).status_code == 204
    revoked = tenant.chat({"agent_id": agent["id"], "message": "hi"}, headers=key)
    assert revoked.status_code == 401 and revoked.json()["code"] == "auth_token_revoked"
    wrong = tenant.chat({"agent_id": agent["id"], "message": "hi"}, headers=bearer("pat_" + "x" * 43))
    assert wrong.status_code == 401 and wrong.json()["code"] == "auth_invalid_token"
